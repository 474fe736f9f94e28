"""The load-test helpers: wrk output parsing, target verdicts, seeding, and the wrk scripts."""

from __future__ import annotations

import http.server
import importlib
import shutil
import sys
import threading
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from server.storage import keys
from server.storage.clients import connect
from server.storage.store import Store
from tests.helpers import EDITOR_TOKEN, INGEST_TOKEN, LiveServer

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    # bench.py runs as a script from loadtests/ and imports its neighbour seed.py by name.
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(LOADTESTS))
        return importlib.import_module("bench")


WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:5000/v1/assign
BENCH-RESULT {"requests": 3000, "duration_us": 3000000, "bytes": 1, "errors": {"connect": 0, \
"read": 1, "write": 0, "status": 2, "timeout": 0}, "latency_us": {"p50": 4000, "p90": 8000, \
"p99": 20000, "max": 30000, "mean": 5000.0}}
"""


def figures(bench: ModuleType, name: str, rate: float, p50: float, p99: float, cpu: float):  # type: ignore[no-untyped-def]
    return bench.Figures(name, int(rate * 10), 10.0, p50, p99, 0, 0.05, cpu * rate * 10, 0.0, 0.0)


def test_wrk_result_line_becomes_seconds_and_summed_failures(bench: ModuleType) -> None:
    result = bench.parse_wrk_output("(b) fresh", WRK_OUTPUT, 0.1)
    assert result.rate == 1000
    assert (result.p50, result.p99) == (0.004, 0.02)
    assert result.failures == 3


def test_wrk_output_without_result_line_is_an_error(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match="no result"):
        bench.parse_wrk_output("(b) fresh", "unable to connect to 127.0.0.1:1\n", 0.0)


def test_targets_compare_ratios_latency_and_memory(bench: ModuleType) -> None:
    bare = figures(bench, "(a) bare", 2000, 0.004, 0.010, 0.0005)
    fresh = figures(bench, "(b) fresh", 900, 0.008, 0.020, 0.0010)
    returning = figures(bench, "(c) returning", 1300, 0.006, 0.030, 0.0008)
    multi = figures(bench, "(d) multi", 500, 0.017, 0.024, 0.0018)
    lines = {
        label: (value, is_met)
        for label, value, _, is_met in bench.target_lines(
            bare, fresh, returning, multi, "skipped: no endpoint", 110.0
        )
    }
    assert lines["fresh / bare, req/s"] == (0.45, False)
    assert lines["fresh / bare, by server CPU per request"] == (0.5, True)
    assert lines["returning / bare, req/s"] == (0.65, True)
    assert lines["5-experiment / 1-experiment p50"][1] is False  # 2.125 times
    assert lines["p99 ms, returning"][1] is False
    assert lines["Redis bytes per visitor and experiment"] == (110.0, True)
    assert "events per second" not in lines


def test_events_target_counts_events_not_requests(bench: ModuleType) -> None:
    row = figures(bench, "(x)", 500, 0.001, 0.002, 0.001)
    events = figures(bench, "(e) events", 450, 0.01, 0.02, 0.002)
    single = figures(bench, "(e1) events", 300, 0.01, 0.02, 0.002)
    lines = {
        label: (value, is_met)
        for label, value, _, is_met in bench.target_lines(row, row, row, row, events, 100.0, single)
    }
    assert lines["events per second, 5 experiments"] == (450 * bench.EVENT_BATCH, True)
    assert lines["events per second, 1 experiment"] == (300 * bench.EVENT_BATCH, False)


def test_worker_classes_leave_out_what_is_not_installed(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: None)
    assert bench.worker_classes("gthread, sync,gevent") == ["gthread", "sync"]


def test_quick_mode_shortens_every_measurement(bench: ModuleType) -> None:
    options = bench.options_from(["--quick"])
    assert options.duration == bench.QUICK_DURATION
    assert options.memory_visitors == bench.QUICK_MEMORY_VISITORS


def test_unbounded_durations_are_refused(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.options_from(["--duration", "3600"])


def test_seeding_twice_creates_and_starts_each_experiment_once(app, bench: ModuleType) -> None:  # type: ignore[no-untyped-def]
    seed = sys.modules["seed"]
    with LiveServer(app) as server:
        first = seed.seed(server.url, EDITOR_TOKEN)
        second = seed.seed(server.url, EDITOR_TOKEN)
    assert len(seed.EXPERIMENT_KEYS) == 5
    assert first == [
        f"{verb} {key}" for key in seed.EXPERIMENT_KEYS for verb in ("created", "started")
    ]
    assert second == []


def test_seeding_with_a_wrong_token_says_so(app, bench: ModuleType) -> None:  # type: ignore[no-untyped-def]
    seed = sys.modules["seed"]
    with LiveServer(app) as server, pytest.raises(seed.SeedError, match="HTTP 401"):
        seed.seed(server.url, "not-a-token")


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
@pytest.mark.parametrize("mode", ["fresh", "returning"])
def test_wrk_assign_script_sends_requests_the_server_accepts(
    app, bench: ModuleType, mode: str
) -> None:  # type: ignore[no-untyped-def]
    seed = sys.modules["seed"]
    with LiveServer(app) as server:
        seed.seed(server.url, EDITOR_TOKEN)
        arguments = [mode, ",".join(seed.EXPERIMENT_KEYS), "test", "10", "0"]
        result = bench.run_wrk("t", f"{server.url}/v1/assign", "assign.lua", arguments, 1.0, 0)
    assert result.requests > 0
    assert result.failures == 0


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every POST with a small JSON body and counts connections and closing requests."""

    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn's gthread workers serve it
    disable_nagle_algorithm = True  # small answers go out at once, not after a delayed ACK
    wbufsize = 4096  # headers and body in one write; flushed after each request
    connections = 0
    requests = 0
    closing = 0
    lock = threading.Lock()

    def setup(self) -> None:
        super().setup()
        with self.lock:
            type(self).connections += 1

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        is_closing = self.headers.get("Connection", "").lower() == "close"
        with self.lock:
            type(self).requests += 1
            type(self).closing += is_closing
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        if is_closing:  # said in the answer too, as gunicorn does; then the socket closes
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
@pytest.mark.parametrize(
    ("script", "arguments"),
    [
        ("assign.lua", ["fresh", "checkout-button", "test", "10", "0"]),
        ("events.lua", ["5", "1", "test", "10", "ingest-key", "0000abcd"]),
    ],
)
def test_wrk_scripts_turn_connections_over(
    bench: ModuleType, script: str, arguments: list[str]
) -> None:
    # Without turnover, one gthread worker can keep all of wrk's connections for a whole run.
    handler = type("Handler", (_CountingHandler,), {"connections": 0, "requests": 0, "closing": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        result = bench.run_wrk("t", url, script, arguments, 1.0, 0)
    finally:
        server.shutdown()
        server.server_close()
    assert result.failures == 0
    assert handler.requests >= 500  # enough requests for the ratio below to mean something
    # one request in 100 asks to close, and wrk opens a new connection for the next one
    assert handler.closing == pytest.approx(handler.requests / 100, abs=2)
    assert handler.connections > handler.closing  # wrk's first ones, then one per close


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_the_event_batches_are_for_visitors_the_warm_up_enrolled(
    app, bench: ModuleType, redis_url: str, redis_client: Any, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # (e) and bench_cluster's event figures measure recording only if the batches' visitors
    # are enrolled: for anyone else the server reads the enrolments and ignores the events
    seed = sys.modules["seed"]
    pool = bench.RETURNING_POOL
    store = Store(
        connect(redis_url, socket_timeout=5.0, connect_timeout=1.0, retries=0, max_connections=2)
    )
    setup = bench.Setup(
        redis_url, "unused", EDITOR_TOKEN, INGEST_TOKEN, 1.0, 1.0, tmp_path, "0000abcd"
    )
    try:
        with LiveServer(app) as live:
            seed.seed(live.url, EDITOR_TOKEN)
            server = SimpleNamespace(url=live.url, process_group=0)
            enrolled = bench.enrol_returning_pool(setup, server, store)
            figures = bench.events_load(setup, server)
    finally:
        store.close()
    assert enrolled == pool
    assert isinstance(figures, bench.Figures) and figures.requests > 0 and figures.failures == 0
    found = {
        k.decode(): int(v)
        for k, v in redis_client.hgetall(keys.counts("checkout-button", 1)).items()
    }
    # the batches' visitors were found enrolled: their add-to-cart events counted (a visitor
    # enrolled nowhere counts nothing, and events.lua names pool visitors only)
    converted = sum(
        v for k, v in found.items() if k.startswith("c:") and k.endswith(":add_to_cart")
    )
    assert 0 < converted <= pool
    events = sum(v for k, v in found.items() if k.startswith("n:") and k.endswith(":add_to_cart"))
    assert events >= converted
