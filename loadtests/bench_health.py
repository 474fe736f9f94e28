"""Print /healthz latency under full load, with Redis healthy and with Redis stopped (SIGSTOP).

Run ``.venv/bin/python loadtests/bench_health.py`` (about 30 s; ``--duration`` per phase).
Like ``bench.py`` it starts its own redis-server and gunicorn servers on 127.0.0.1 with the
production settings (2 workers × 4 threads) and stops them at the end. While wrk keeps 16
fresh-visitor assigns in flight (twice as many as there are threads), the script probes
/healthz every 50 ms on a new connection, as an orchestrator does, first with Redis healthy,
then with redis-server stopped by SIGSTOP, so that every thread waits out the 0.3 s request
budget. It does so for `splitwerk serve`'s worker class (``server.worker``) and, side by side,
for gunicorn's stock gthread worker. The target: every probe within 50 ms. It prints figures
and never fails on a missed target.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import bench
from seed import EXPERIMENT_KEYS, seed

from server.storage.embedded import EmbeddedRedis

PROBE_INTERVAL = 0.05  # seconds between probes: 20 per second, far more than any orchestrator
PROBE_TIMEOUT = 10.0  # seconds: far above any queueing, so a slow probe is measured, not lost
HEALTH_TARGET = 0.05  # seconds: /healthz within 50 ms under full load (issue 16)
PHASE_DURATION = 8.0  # seconds per phase (healthy Redis, stopped Redis)
WORKER_CLASSES = {  # label -> the bench's worker class name
    "splitwerk serve (server.worker)": "gthread",
    "stock gunicorn gthread": "gunicorn.workers.gthread.ThreadWorker",
}


def probe(port: int) -> float:
    """Seconds for one GET /healthz on a new connection; inf when it failed."""
    begin = time.monotonic()
    connection = http.client.HTTPConnection(bench.LOOPBACK, port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            return float("inf")
    except (OSError, http.client.HTTPException):
        return float("inf")
    finally:
        connection.close()
    return time.monotonic() - begin


def probe_for(port: int, duration: float) -> list[float]:
    """Probe every PROBE_INTERVAL for ``duration`` seconds."""
    timings = []
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        timings.append(probe(port))
        time.sleep(PROBE_INTERVAL)
    return timings


def summary(label: str, timings: Sequence[float]) -> str:
    """One line: probes, p50, p99 and max in ms, and how many met the target."""
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    within = sum(timing <= HEALTH_TARGET for timing in ordered)
    return (
        f"  {label:<22} {len(ordered):>6} {statistics.median(ordered) * 1e3:>8.1f} "
        f"{p99 * 1e3:>8.1f} {ordered[-1] * 1e3:>8.1f}   {within}/{len(ordered)} within "
        f"{HEALTH_TARGET * 1e3:g} ms"
    )


def measure(setup: bench.Setup, redis_pid: int, worker_class: str, duration: float) -> None:
    """Both phases against one server; prints a line per phase."""
    env = setup.environment()
    with bench.running(
        "server.app:create_app()", worker_class, env, setup.folder / "gunicorn.log"
    ) as server:
        seed(server.url, setup.editor_token)
        load = threading.Thread(
            target=bench.assign_load,
            args=(setup, server, "load", "fresh", EXPERIMENT_KEYS[:1], f"health-{server.port}"),
            kwargs={"duration": 2 * duration + 2},
        )
        load.start()
        try:
            time.sleep(1.0)  # the load reaches full speed
            print(summary("Redis healthy", probe_for(server.port, duration)), flush=True)
            os.kill(redis_pid, signal.SIGSTOP)
            try:
                print(summary("Redis stopped", probe_for(server.port, duration)), flush=True)
            finally:
                os.kill(redis_pid, signal.SIGCONT)
        finally:
            load.join()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; 0 unless the bench itself could not run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=PHASE_DURATION, help="s per phase")
    options = parser.parse_args(argv)
    if not 1 <= options.duration <= 60:
        parser.error("--duration must be 1..60 s")
    with tempfile.TemporaryDirectory(prefix="splitwerk-health-") as folder:
        embedded = EmbeddedRedis(Path(folder) / "redis")
        redis_url = embedded.start()
        try:
            redis_pid = int(embedded.pid_path.read_text())
            setup = bench.Setup(
                redis_url=redis_url,
                secret=secrets.token_urlsafe(32),
                editor_token=secrets.token_urlsafe(24),
                ingest_token=secrets.token_urlsafe(24),
                duration=options.duration,
                warmup=1.0,
                folder=Path(folder),
                run_id=secrets.token_hex(4),
            )
            print(
                f"/healthz on new connections every {PROBE_INTERVAL * 1e3:g} ms while wrk keeps "
                f"{bench.CONNECTIONS} assigns in flight against {bench.WORKERS} workers × "
                f"{bench.THREADS} threads; other programs keep "
                f"{bench.background_load():.2f} cores busy; load average "
                f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}"
            )
            for label, worker_class in WORKER_CLASSES.items():
                print(f"\n{label}:\n  {'phase':<22} {'probes':>6} {'p50 ms':>8} {'p99 ms':>8} "
                      f"{'max ms':>8}")  # fmt: skip
                measure(setup, redis_pid, worker_class, options.duration)
        except (RuntimeError, OSError) as error:
            print(f"bench_health: {error}", file=sys.stderr)
            return 1
        finally:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
