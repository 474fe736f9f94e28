"""loadtests/shop.py and bench_health.py: reading the access and request logs, the summaries."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis

from server.storage.embedded import EmbeddedRedis

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"


def _load(name: str) -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(LOADTESTS))
        return importlib.import_module(name)


def test_server_and_client_times_are_grouped_by_route(tmp_path: Path) -> None:
    shop = _load("shop")
    access = tmp_path / "access.log"
    access.write_text(
        "POST /v1/assign 200 1500\nGET /v1/config 304 250\nPOST /v1/assign 200 2500\n"
        "GET /healthz 200 90\nnot a line of ours\n"
    )
    requests = tmp_path / "requests.jsonl"
    lines = [
        {"start": 1.0, "name": "/v1/assign [1 experiment]", "seconds": 0.004},
        {"start": 1.1, "name": "/v1/assign [5 experiments]", "seconds": 0.006},
        {"start": 1.2, "name": "/v1/config", "seconds": 0.001},
        {"start": 1.3, "name": "/v1/events", "seconds": 0.02, "events": 3, "visitors": 2},
    ]
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert shop.server_times(access) == {
        "POST /v1/assign": [0.0015, 0.0025],
        "GET /v1/config": [0.00025],
        "GET /healthz": [0.00009],
    }
    assert shop.client_times(requests) == {
        "POST /v1/assign": [0.004, 0.006],
        "GET /v1/config": [0.001],
        "POST /v1/events": [0.02],
    }


def test_percentiles_are_nearest_rank() -> None:
    shop = _load("shop")
    values = [i / 1000 for i in range(1, 201)]  # 1..200 ms
    assert shop.percentiles(values) == (0.101, 0.198, 0.2)


def test_health_summary_counts_probes_within_the_target() -> None:
    health = _load("bench_health")
    line = health.summary("Redis stopped", [0.002, 0.004, 0.08, float("inf")])
    assert "2/4 within 50 ms" in line


def test_script_times_are_the_slow_logs_evalsha_durations_oldest_first() -> None:
    shop = _load("shop")
    entries = [  # as redis-py returns SLOWLOG GET: newest first, duration in µs
        {"id": 3, "duration": 2500, "command": b"EVALSHA abc 5 k1 k2 ... (700 more arguments)"},
        {"id": 2, "duration": 900, "command": b"HGETALL sw:{e}:p1:counts"},
        {"id": 1, "duration": 1200, "command": b"evalsha abc 5 k1"},
        {"id": 0, "duration": "odd", "command": b"EVALSHA abc"},
    ]
    assert shop.script_times(entries) == [0.0012, 0.0025]


def _busy_script(url: str, iterations: int) -> float:
    """Have Redis run a script that counts to ``iterations``; the milliseconds the call took."""
    with redis.Redis.from_url(url) as client:
        busy = f"local n = 0 for i = 1, {iterations} do n = n + i end return n"
        started = time.perf_counter()
        client.evalsha(client.script_load(busy), 0)
        return (time.perf_counter() - started) * 1e3


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh embedded redis-server, stopped after the test."""
    embedded = EmbeddedRedis(tmp_path / "redis")
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


def test_the_slow_log_of_a_real_redis_gives_the_script_times(redis_url: str) -> None:
    shop = _load("shop")
    shop.watch_slow_commands(redis_url)
    _busy_script(redis_url, 3_000_000)
    times = shop.slow_scripts(redis_url)
    assert len(times) == 1 and times[0] > shop.SLOW_SCRIPT_USEC / 1e6


def test_the_slowest_event_batches_come_with_their_events_and_orders(tmp_path: Path) -> None:
    shop = _load("shop")
    log = tmp_path / "requests.jsonl"
    lines = [
        {"start": 1.0, "name": "/v1/events", "seconds": 0.012, "events": 40, "orders": 1},
        {"start": 1.1, "name": "/v1/assign [1 experiment]", "seconds": 0.9},
        {"start": 2.0, "name": "/v1/events", "seconds": 0.031, "events": 70, "orders": 4},
        {"start": 3.0, "name": "/v1/events", "seconds": 0.020, "events": 55, "is_final": True},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    batches = shop.event_batches(log)
    assert [batch["events"] for batch in batches] == [40, 70, 55]
    slowest = shop.slowest_batches(batches, count=2)
    assert [(batch["seconds"], batch["events"]) for batch in slowest] == [(0.031, 70), (0.02, 55)]


def test_cpu_shares_name_busy_steal_and_idle_over_a_run(tmp_path: Path) -> None:
    shop = _load("shop")
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal (guest columns after are not read)
    stat.write_text("cpu  100 0 50 800 10 0 0 5 0 0\ncpu0 1 2 3\n")
    before = shop.cpu_ticks(stat)
    stat.write_text("cpu  400 0 150 1300 10 0 0 105 0 0\ncpu0 1 2 3\n")
    after = shop.cpu_ticks(stat)
    assert after == {
        "user": 400, "nice": 0, "system": 150, "idle": 1300,
        "iowait": 10, "irq": 0, "softirq": 0, "steal": 105,
    }  # fmt: skip
    # 1,000 ticks in all: 400 busy, 100 steal, 500 idle
    assert shop.cpu_shares(before, after) == (
        "CPU time over the run: busy 40.0%, steal 10.00%, idle 50.0%"
    )
    assert shop.cpu_ticks(tmp_path / "absent") is None
    assert "not available" in shop.cpu_shares(None, after)


def test_redis_latency_monitor_names_a_stalled_command(redis_url: str) -> None:
    shop = _load("shop")
    shop.watch_latency(redis_url)
    assert shop.latency_events(redis_url) == {}
    took_ms = _busy_script(redis_url, 10_000_000)  # tens of ms
    events = shop.latency_events(redis_url)
    assert shop.LATENCY_THRESHOLD_MS <= events["command"][1] <= took_ms + 1
