"""redis+sentinel:// URLs: a local master, a replica and three sentinels that the test starts."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from server.app import create_app
from server.config import ConfigError, load_config
from server.storage.clients import parse_sentinel_url
from tests.cluster import started
from tests.helpers import EDITOR, SECRET, TOKENS, app_settings, free_port

SERVICE = "splitwerk"
DOWN_AFTER_MS = 1000  # sentinels call the master down after 1 s without an answer
# A sentinel tries a failover again only after twice this, e.g. after a vote that elected no
# leader. At 10 s, one full run of the suite saw no failover within 30 s (the sentinels'
# logs were not kept then; they are now, and a failure message shows them).
FAILOVER_TIMEOUT_MS = 4000
EXPERIMENT: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Checkout button",
    "variants": [{"key": "control"}, {"key": "green"}],
    "goals": [{"key": "purchase", "primary": True}],
}


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Cluster:
    """A master, a replica and three sentinels on free loopback ports."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, name: str, *arguments: str) -> None:
        with (self.folder / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", *arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start(self) -> None:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        # a replica's full sync writes the master's snapshot to disk, by default into the working
        # folder (which was the repository); and it starts at once, not 5 s after the replica came
        common += ["--dir", str(self.folder), "--repl-diskless-sync-delay", "0"]
        self._start("master", "--port", str(self.master_port), *common)
        self._start(
            "replica",
            "--port",
            str(self.replica_port),
            "--replicaof",
            "127.0.0.1",
            str(self.master_port),
            *common,
        )
        for number, port in enumerate(self.sentinel_ports):
            config = self.folder / f"sentinel-{number}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._start(f"sentinel-{number}", str(config), "--sentinel")
        replica = redis.Redis(port=self.replica_port, socket_timeout=1)
        _wait(lambda: replica.info("replication")["master_link_status"] == "up", 20, "the sync")
        sentinel = self.sentinel(0)
        # the sentinels must know the replica and each other before a failover can happen
        _wait(lambda: len(sentinel.sentinel_slaves(SERVICE)) == 1, 20, "the replica")
        _wait(lambda: len(sentinel.sentinel_sentinels(SERVICE)) == 2, 20, "the sentinels")

    def sentinel(self, number: int) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[number], socket_timeout=1)

    def master_address(self) -> tuple[str, int]:
        host, port = self.sentinel(0).sentinel_get_master_addr_by_name(SERVICE)
        return host, int(port)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def sentinel_logs(self) -> str:
        """What the sentinels logged (written to the test's folder), for a failure message."""
        return "\n".join(
            (self.folder / f"sentinel-{number}.log").read_text(errors="replace")
            for number in range(len(self.sentinel_ports))
        )

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()
            process.wait()


@pytest.fixture
def sentinels() -> Iterator[Cluster]:
    with started(Cluster, "sw-sentinel-") as cluster:
        yield cluster


def test_sentinel_urls_are_parsed_and_checked() -> None:
    assert parse_sentinel_url("redis+sentinel://:s%40cret@a:26379,b:26380/shop/2") == (
        [("a", 26379), ("b", 26380)],
        "shop",
        2,
        "s@cret",
    )
    assert parse_sentinel_url("redis+sentinel://a:1/shop")[1:3] == ("shop", 0)
    base = {"SECRET_KEY": SECRET, "TOKENS": TOKENS}
    assert load_config({**base, "REDIS_URL": "redis+sentinel://a:1,b:2/shop/0"}).REDIS_URL
    for wrong in ("redis+sentinel://a:1", "redis+sentinel://a/shop", "redis+sentinel://a:1/"):
        with pytest.raises(ConfigError, match="REDIS_URL"):
            load_config({**base, "REDIS_URL": wrong})


@pytest.mark.slow
def test_the_server_serves_again_within_failover_time_plus_two_seconds(
    sentinels: Cluster,
) -> None:
    app = create_app(app_settings(sentinels.url, CONFIG_REFRESH_INTERVAL=0.1))
    client = app.test_client()
    assert client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR).status_code == 201
    assert client.post("/v1/experiments/checkout-button/start", headers=EDITOR).status_code == 200
    assert client.post("/v1/assign", json={"visitor": "before"}).json["recorded"] is True
    master = redis.Redis(port=sentinels.master_port)
    assert master.wait(1, 2000) == 1  # the replica holds everything so far
    # the replica's full sync wrote the master's snapshot into the test's folder, not the
    # working folder (a dump.rdb once landed in the repository that way)
    replica = redis.Redis(port=sentinels.replica_port)
    assert Path(replica.config_get("dir")["dir"]) == sentinels.folder.resolve()
    old_master = sentinels.master_address()

    killed = time.monotonic()
    sentinels.processes["master"].kill()
    failed_over = served = 0.0
    number = 0
    while not (failed_over and served):
        now = time.monotonic()
        assert now - killed < 30, f"no failover within 30 s:\n{sentinels.sentinel_logs()}"
        if not failed_over:
            try:
                if sentinels.master_address() != old_master:
                    failed_over = now - killed
            except redis.RedisError:
                pass
        if not served:
            number += 1
            answer = client.post("/v1/assign", json={"visitor": f"during-{number}"})
            assert answer.status_code == 200  # degraded while there is no master, never a 500
            if answer.json["recorded"] is True:
                served = time.monotonic() - killed
        time.sleep(0.05)
    assert served <= failed_over + 2, (served, failed_over)
    # writes of every kind work on the new master, and what the old one had is there
    created = client.post("/v1/experiments", json={**EXPERIMENT, "key": "after"}, headers=EDITOR)
    assert created.status_code == 201
    assert client.get("/v1/experiments/checkout-button", headers=EDITOR).status_code == 200
    assert client.get("/readyz?strict=true").json == {"status": "ok", "redis": "ok"}
