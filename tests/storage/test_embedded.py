"""The embedded redis-server: starts, answers, keeps data across a restart, stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from server.storage.embedded import EmbeddedRedis, FolderInUse, find_redis_server
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
        client.set("persistence-check", "kept")
        client.close()
    assert not embedded.socket_path.exists() or not _answers(embedded)
    assert (folder / "appendonlydir").is_dir()
    with EmbeddedRedis(folder) as again:
        client = redis.Redis.from_url(again.url)
        assert client.get("persistence-check") == b"kept"
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


def test_hashes_of_more_than_128_fields_are_hash_tables(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # a running experiment's counter hash: hundreds of fields, dozens touched per event
    with EmbeddedRedis(short_folder(tmp_path_factory)) as embedded:
        client = redis.Redis.from_url(embedded.url)
        client.hset("sw:{e}:p1:counts", mapping={f"n:{i}": i for i in range(200)})
        assert client.object("encoding", "sw:{e}:p1:counts") == b"hashtable"
        client.close()


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


def _redis_processes(folder: Path) -> list[int]:
    """Pids of redis-servers whose command line names ``folder``."""
    found = subprocess.run(
        ["pgrep", "-f", f"redis-server.*{folder}"], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def test_a_second_server_on_the_same_folder_refuses_and_names_the_first(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = short_folder(tmp_path_factory)
    with EmbeddedRedis(folder) as first:
        with pytest.raises(FolderInUse, match=rf"pid {os.getpid()}\).*{folder}"):
            EmbeddedRedis(folder).start()
        assert _answers(first)
        assert len(_redis_processes(folder)) == 1
    with EmbeddedRedis(folder) as again:  # the lock went with the first server
        assert _answers(again)


ORPHAN_MAKER = """
import sys, time
from pathlib import Path
import redis
from server.storage.embedded import EmbeddedRedis
embedded = EmbeddedRedis(Path(sys.argv[1]))
embedded.start()
redis.Redis.from_url(embedded.url).set("persistence-check", "written before the kill")
print(embedded._process.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("stopped", [False, True], ids=["running", "sigstopped"])
def test_an_orphan_of_a_killed_server_is_stopped_before_a_new_one_starts(
    tmp_path_factory: pytest.TempPathFactory, stopped: bool
) -> None:
    folder = short_folder(tmp_path_factory)
    owner = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_MAKER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    orphan = int(owner.stdout.readline())
    owner.kill()  # kill -9: no chance to stop its redis-server
    owner.wait()
    assert _redis_processes(folder) == [orphan]
    if stopped:
        os.kill(orphan, signal.SIGSTOP)
    with EmbeddedRedis(folder) as embedded:
        running = _redis_processes(folder)
        assert orphan not in running
        assert len(running) == 1  # never two redis-servers on one AOF
        client = redis.Redis.from_url(embedded.url)
        assert client.get("persistence-check") == b"written before the kill"
        client.close()
    assert _redis_processes(folder) == []


def test_a_stale_pidfile_naming_another_process_is_ignored(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = short_folder(tmp_path_factory)
    (folder / "redis.pid").write_text(str(os.getpid()))  # a live process, not redis-server
    with EmbeddedRedis(folder) as embedded:
        assert _answers(embedded)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_keep_the_folder_locked(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = short_folder(tmp_path_factory)
    reader, writer = os.pipe()
    forked_reader, forked_writer = os.pipe()
    with EmbeddedRedis(folder):
        pid = os.fork()
        if pid == 0:  # a worker: lives on after the server that took the lock stopped
            os.close(writer)
            os.close(forked_reader)
            # the fork hooks have run once fork() returned here; say so, or on a busy
            # machine the parent may stop before this child has been scheduled at all
            os.write(forked_writer, b"x")
            os.read(reader, 1)  # until the parent is done
            os._exit(0)
        os.close(forked_writer)
        assert os.read(forked_reader, 1) == b"x"
        os.close(forked_reader)
    os.close(reader)
    try:
        # the parent stopped its Redis and released the lock; the child's copy is closed
        with EmbeddedRedis(folder) as again:
            assert _answers(again)
    finally:
        os.close(writer)
        os.waitpid(pid, 0)
