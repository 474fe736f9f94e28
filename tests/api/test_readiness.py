"""/readyz: ready while the worker can answer (degraded included); ?strict=true for deploy gates."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import redis

from server.app import create_app
from tests.conftest import RedisServer
from tests.helpers import app_settings, free_port

SHAPE = {"code", "status", "message", "errors"}


FULL_MARGIN = 200_000  # bytes Redis stays above its maxmemory once filled


def fill_until_full(client: redis.Redis) -> int:
    """Write filler keys until Redis refuses even a tiny one with OOM; returns how many.

    Then maxmemory is lowered to ``FULL_MARGIN`` below what Redis uses: filled to the last
    byte, Redis is over its limit by a few bytes only, and the next shrink of a client
    buffer (clientsCron) would let writes in again, sooner on a busy machine. Deleting the
    fillers still frees far more than the margin.
    """
    written = 0
    for size in (10_000, 1_000, 100, 1):  # smaller and smaller, to the last byte
        while True:
            try:
                client.set(f"filler:{written}", b"x" * size)
            except redis.exceptions.OutOfMemoryError:
                break
            written += 1
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used - FULL_MARGIN)
    return written


def test_healthy_redis_is_ready_and_strictly_ready(client: Any) -> None:
    for path in ("/readyz", "/readyz?strict=true"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json == {"status": "ok", "redis": "ok"}


def test_a_stopped_redis_is_degraded_but_ready_and_not_strictly_ready(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    client = create_app(app_settings(server.url, CONFIG_REFRESH_INTERVAL=0.001)).test_client()
    assert client.get("/readyz").status_code == 200  # loads the configuration
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        relaxed = client.get("/readyz")
        strict = client.get("/readyz?strict=1")
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert relaxed.status_code == 200
    assert relaxed.json == {"status": "degraded", "redis": "unreachable"}
    assert strict.status_code == 503
    assert set(strict.json) == SHAPE
    assert strict.json["errors"] == {"redis": ["unreachable"]}
    assert int(strict.headers["Retry-After"]) > 0
    assert client.get("/readyz?strict=1").json == {"status": "ok", "redis": "ok"}


def test_a_worker_that_never_saw_the_configuration_is_not_ready(tmp_path: Any) -> None:
    client = create_app(app_settings(f"unix://{tmp_path}/no-redis.sock")).test_client()
    for path in ("/readyz", "/readyz?strict=true"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.json["errors"] == {"redis": ["unreachable"]}


def test_a_full_redis_is_degraded_and_not_strictly_ready_until_memory_frees(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    client = create_app(app_settings(server.url)).test_client()
    admin = server.client()
    fill_until_full(admin)
    relaxed = client.get("/readyz")
    assert relaxed.status_code == 200
    assert relaxed.json == {"status": "degraded", "redis": "out_of_memory"}
    strict = client.get("/readyz?strict=true")
    assert strict.status_code == 503
    assert strict.json["errors"] == {"redis": ["out_of_memory"]}
    admin.flushall()
    assert client.get("/readyz?strict=true").json == {"status": "ok", "redis": "ok"}
    admin.close()


def test_a_read_only_replica_is_degraded_and_not_strictly_ready(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    admin = server.client()
    admin.replicaof("127.0.0.1", free_port())  # a master that is not there: stays read-only
    client = create_app(app_settings(server.url)).test_client()
    assert client.get("/readyz").json == {"status": "degraded", "redis": "read_only"}
    assert client.get("/readyz?strict=true").json["errors"] == {"redis": ["read_only"]}
    admin.replicaof("no", "one")
    admin.close()


def test_a_bad_strict_value_is_a_422_naming_it(client: Any) -> None:
    response = client.get("/readyz?strict=maybe")
    assert response.status_code == 422
    assert "strict" in response.json["errors"]


def test_healthz_never_waits_for_redis(own_redis: Callable[..., RedisServer]) -> None:
    server = own_redis()
    client = create_app(app_settings(server.url)).test_client()
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        timings = []
        for _ in range(20):
            begin = time.monotonic()
            assert client.get("/healthz").json == {"status": "ok"}
            timings.append(time.monotonic() - begin)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert sorted(timings)[len(timings) // 2] < 0.05  # the median: scheduler noise aside
