"""The embedded redis-server: starts, answers, keeps data across a restart, stops cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from server.storage.embedded import EmbeddedRedis, find_redis_server
from server.storage.errors import StorageUnavailable


def short_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # unix socket paths must stay short
    return Path(tmp_path_factory.mktemp("emb", numbered=True))


def test_data_survives_a_restart_and_the_process_stops(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = short_folder(tmp_path_factory)
    embedded = EmbeddedRedis(folder)
    with embedded:
        client = redis.Redis.from_url(embedded.url)
        client.set("sw:test", "kept")
        client.close()
    assert not embedded.socket_path.exists() or not _answers(embedded)
    assert (folder / "appendonlydir").is_dir()
    with EmbeddedRedis(folder) as again:
        client = redis.Redis.from_url(again.url)
        assert client.get("sw:test") == b"kept"
        client.close()


def _answers(embedded: EmbeddedRedis) -> bool:
    try:
        redis.Redis.from_url(embedded.url, socket_connect_timeout=0.2).ping()
    except redis.ConnectionError:
        return False
    return True


def test_no_tcp_port_is_opened(tmp_path_factory: pytest.TempPathFactory) -> None:
    with EmbeddedRedis(short_folder(tmp_path_factory)) as embedded:
        config = redis.Redis.from_url(embedded.url).config_get("port")
        assert config["port"] == "0"


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(StorageUnavailable, match="redis-server"):
        find_redis_server()


def test_a_binary_that_exits_at_once_is_reported(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with pytest.raises(StorageUnavailable, match="exited"):
        EmbeddedRedis(short_folder(tmp_path_factory), binary="/bin/false").start()
