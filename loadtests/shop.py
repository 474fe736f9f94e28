"""Run the locust shop mix against a fresh server and print client- and server-side latency.

Run ``.venv/bin/python loadtests/shop.py --run-time 10m`` (any ``locust.conf`` option may
follow, e.g. ``--users 100``). It starts its own redis-server (embedded, AOF as in production)
and gunicorn with the settings of `splitwerk serve` (2 workers × 4 threads of
``server.worker``, keep-alive 75 s) plus an access log of each request's service time, seeds
the five experiments, runs locust with ``loadtests/locust.conf`` and its thresholds, and stops
everything. Then it prints per route the p50, p99 and max that locust saw (client side: queueing
in the kernel and the worker, the network, locust's own scheduling) beside the server's own
time for the same requests (from the thread taking the request to the last byte written), the
machine's load average before and after, Redis's own slow events (its latency monitor: slow
commands, AOF writes) and the share of CPU time the hypervisor took (steal). Exit code:
locust's (1 on a missed threshold).
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bench
import redis
from seed import seed

from server.storage.embedded import EmbeddedRedis

HERE = Path(__file__).resolve().parent
KEEPALIVE = 75  # seconds, as `splitwerk serve` (server.config KEEPALIVE)
ACCESS_FORMAT = "%(m)s %(U)s %(s)s %(D)s"  # method, path, status, microseconds of service


def percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p99 and max of ``values`` (seconds), nearest rank."""
    ordered = sorted(values)
    rank = min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))
    return ordered[len(ordered) // 2], ordered[rank], ordered[-1]


def route(method: str, path: str) -> str:
    """The route a request line belongs to (assigns of one and of five experiments share it)."""
    return f"{method} {path}"


def server_times(access_log: Path) -> dict[str, list[float]]:
    """Seconds of service per route from gunicorn's access log."""
    found: dict[str, list[float]] = collections.defaultdict(list)
    for line in access_log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].isdigit():
            found[route(parts[0], parts[1])].append(int(parts[3]) / 1e6)
    return found


def event_batches(request_log: Path) -> list[dict[str, Any]]:
    """The event batches of locust's --request-log, as logged."""
    found = []
    for line in request_log.read_text().splitlines():
        request = json.loads(line)
        if request["name"] == "/v1/events":
            found.append(request)
    return found


def client_times(request_log: Path) -> dict[str, list[float]]:
    """Seconds per route as locust saw them, from the locustfile's --request-log."""
    found: dict[str, list[float]] = collections.defaultdict(list)
    for line in request_log.read_text().splitlines():
        request = json.loads(line)
        method = "GET" if request["name"] == "/v1/config" else "POST"
        found[route(method, request["name"].split(" ")[0])].append(request["seconds"])
    return found


def slowest_batches(batches: Sequence[dict[str, Any]], count: int = 5) -> list[dict[str, Any]]:
    """The ``count`` slowest of ``event_batches``, slowest first, with their events, orders and
    whether they were the final flush (what a batch's time depends on)."""
    return sorted(batches, key=lambda request: -request["seconds"])[:count]


def wait_until_answering(port: int, server: subprocess.Popen[bytes]) -> None:
    """Wait until gunicorn answers /healthz.

    Raises:
        RuntimeError: it exited or did not answer within bench.START_TIMEOUT.
    """
    deadline = time.monotonic() + bench.START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited at start")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(bench.LOOPBACK, port, timeout=1.0)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            finally:
                connection.close()
        time.sleep(bench.POLL_INTERVAL)
    raise RuntimeError("gunicorn did not answer in time")


SLOW_SCRIPT_USEC = 500  # Redis's slow log keeps every command slower than this (µs)
SLOW_LOG_LENGTH = 100_000  # enough for every event batch's scripts of a long run


def watch_slow_commands(redis_url: str) -> None:
    """Have Redis log every command slower than SLOW_SCRIPT_USEC: the event batches' scripts."""
    with redis.Redis.from_url(redis_url) as client:
        client.config_set("slowlog-log-slower-than", SLOW_SCRIPT_USEC)
        client.config_set("slowlog-max-len", SLOW_LOG_LENGTH)
        client.slowlog_reset()


def script_times(entries: Sequence[dict[str, object]]) -> list[float]:
    """Seconds Redis spent in each slow script call (EVALSHA) of its slow log, oldest first."""
    found = []
    for entry in reversed(entries):
        command = entry.get("command", b"")
        name = command.split(b" ", 1)[0] if isinstance(command, bytes) else b""
        duration = entry.get("duration", 0)
        if name.upper() == b"EVALSHA" and isinstance(duration, int):
            found.append(duration / 1e6)
    return found


def slow_scripts(redis_url: str) -> list[float]:
    """The slow log's script times (see script_times)."""
    with redis.Redis.from_url(redis_url) as client:
        return script_times(client.slowlog_get(SLOW_LOG_LENGTH))


LATENCY_THRESHOLD_MS = 5  # Redis's latency monitor records each of its events slower than this


def watch_latency(redis_url: str) -> None:
    """Have Redis's latency monitor record its own slow events (commands, AOF writes, forks)."""
    with redis.Redis.from_url(redis_url) as client:
        client.config_set("latency-monitor-threshold", LATENCY_THRESHOLD_MS)
        client.execute_command("LATENCY", "RESET")


def latency_events(redis_url: str) -> dict[str, tuple[int, int]]:
    """Redis's slow events since watch_latency: name -> (latest ms, worst ms)."""
    with redis.Redis.from_url(redis_url) as client:
        rows = client.execute_command("LATENCY", "LATEST")
    found = {}
    for row in rows:  # [event, time of the latest, latest ms, worst ms, ...]
        name = row[0].decode() if isinstance(row[0], bytes) else str(row[0])
        found[name] = (int(row[2]), int(row[3]))
    return found


def cpu_ticks(stat: Path = Path("/proc/stat")) -> dict[str, int] | None:
    """The machine's CPU time so far by kind (Linux's /proc/stat, in ticks), or None."""
    try:
        fields = stat.read_text().splitlines()[0].split()
    except OSError:
        return None
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, (int(value) for value in fields[1:9]), strict=False))


def cpu_shares(before: dict[str, int] | None, after: dict[str, int] | None) -> str:
    """Busy, steal (time the hypervisor gave the cores to another guest) and idle over a run."""
    if before is None or after is None:
        return "CPU time: not available here"
    spent = {name: after[name] - before.get(name, 0) for name in after}
    total = sum(spent.values()) or 1
    idle = spent.get("idle", 0) + spent.get("iowait", 0)
    steal = spent.get("steal", 0)
    busy = total - idle - steal
    return (
        f"CPU time over the run: busy {busy / total:.1%}, steal {steal / total:.2%}, "
        f"idle {idle / total:.1%}"
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    """Start, seed, run locust, compare; returns locust's exit code."""
    locust_options = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="splitwerk-shop-") as name:
        folder = Path(name)
        embedded = EmbeddedRedis(folder / "redis")
        setup = bench.Setup(
            redis_url=embedded.start(),
            secret=secrets.token_urlsafe(32),
            editor_token=secrets.token_urlsafe(24),
            ingest_token=secrets.token_urlsafe(24),
            duration=0,
            warmup=0,
            folder=folder,
            run_id=secrets.token_hex(4),
        )
        access_log, request_log = folder / "access.log", folder / "requests.jsonl"
        port = bench.free_port()
        command = [sys.executable, "-m", "gunicorn", "--bind", f"{bench.LOOPBACK}:{port}"]
        command += ["--workers", str(bench.WORKERS), "--threads", str(bench.THREADS)]
        command += ["--worker-class", bench.PRODUCTION_WORKERS["gthread"]]
        command += ["--keep-alive", str(KEEPALIVE), "--timeout", str(bench.GUNICORN_TIMEOUT)]
        command += ["--no-control-socket", "--access-logfile", str(access_log)]
        command += ["--access-logformat", ACCESS_FORMAT, "server.app:create_app()"]
        before = load_average()
        server = subprocess.Popen(
            command, env=setup.environment(), stderr=subprocess.DEVNULL, start_new_session=True
        )
        scripts: list[float] = []
        latencies: dict[str, tuple[int, int]] = {}
        ticks_before = ticks_after = None
        try:
            wait_until_answering(port, server)
            seed(f"http://{bench.LOOPBACK}:{port}", setup.editor_token)
            watch_slow_commands(setup.redis_url)
            watch_latency(setup.redis_url)
            ticks_before = cpu_ticks()
            locust = subprocess.run(
                [
                    *(sys.executable, "-m", "locust", "--config", str(HERE / "locust.conf")),
                    *("--host", f"http://{bench.LOOPBACK}:{port}"),
                    *("--ingest-key", setup.ingest_token, "--request-log", str(request_log)),
                    *locust_options,
                ],
                check=False,
            )
            ticks_after = cpu_ticks()
            scripts = slow_scripts(setup.redis_url)
            latencies = latency_events(setup.redis_url)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(bench.STOP_TIMEOUT)
            embedded.stop()
        after = load_average()
        servers, clients = server_times(access_log), client_times(request_log)
        print(f"\nload average before {before}, after {after} ({os.cpu_count()} cores)")
        print(f"{'route':<18} {'requests':>8}  client p50/p99/max ms   server p50/p99/max ms")
        for name in sorted(clients):
            client = percentiles(clients[name])
            server_side = percentiles(servers.get(name) or [0.0])
            print(
                f"{name:<18} {len(clients[name]):>8}  "
                f"{'/'.join(f'{value * 1e3:.1f}' for value in client):<22} "
                f"{'/'.join(f'{value * 1e3:.1f}' for value in server_side)}"
            )
        batches = event_batches(request_log)
        if batches:
            slowest = slowest_batches(batches)
            sizes = [request["events"] for request in batches]
            print(
                f"event batches: median {statistics.median(sizes):.0f} events; the slowest "
                "(client ms: events, orders): "
                + ", ".join(
                    f"{request['seconds'] * 1e3:.1f}: {request['events']}, "
                    f"{request.get('orders', '?')}{' (final)' if request.get('is_final') else ''}"
                    for request in slowest
                )
            )
        if scripts:
            print(
                f"Redis's own time in script calls over {SLOW_SCRIPT_USEC} µs (an event batch "
                f"runs one per listening experiment): {len(scripts)} calls, p50/p99/max ms "
                f"{'/'.join(f'{value * 1e3:.1f}' for value in percentiles(scripts))}"
            )
        print(
            f"Redis's own events over {LATENCY_THRESHOLD_MS} ms (latency monitor; worst ms): "
            + (
                ", ".join(f"{name} {worst}" for name, (_, worst) in sorted(latencies.items()))
                or "none"
            )
        )
        print(cpu_shares(ticks_before, ticks_after))
        return locust.returncode


if __name__ == "__main__":
    sys.exit(main())
