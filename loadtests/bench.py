"""Measure the hot paths side by side under production gunicorn settings and print the ratios.

Run ``.venv/bin/python loadtests/bench.py`` (``make loadtest``); ``--quick`` for a smoke run.
It starts its own redis-server (unix socket in a temporary folder) and one gunicorn server at
a time on a free 127.0.0.1 port, drives each with ``wrk`` (Debian package ``wrk``), and stops
everything before it exits. It prints figures and never fails on a missed target: the locust
run (``loadtests/locustfile.py``) is the one with thresholds.

Why wrk: it is written in C and spends a fraction of one core on this load, where a Python
client would need more CPU than the server it measures; on a 2-core machine every cycle the
generator burns is taken from the server. The bench prints wrk's own CPU use next to each
figure, so the distortion is visible. wrk keeps 16 connections busy (closed loop), so its
latencies are service times under saturation, not those of an open arrival rate.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import importlib.util
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from seed import EXPERIMENT_KEYS, seed

from server.config import hash_token
from server.core.models import Enrolment
from server.core.privacy import Pseudonymiser
from server.storage import keys
from server.storage.clients import connect
from server.storage.embedded import EmbeddedRedis
from server.storage.errors import StorageUnavailable
from server.storage.store import Store

HERE = Path(__file__).resolve().parent
WRK_FOLDER = HERE / "wrk"  # wrk runs here, so that its scripts find report.lua
LOOPBACK = "127.0.0.1"  # the only address the bench ever talks to

CONNECTIONS = 16  # concurrent connections: 8 per core keeps both workers' 4 threads busy
WRK_THREADS = 1  # one wrk thread: the load generator can never take more than one core
WORKERS = 2  # gunicorn workers: one per core on the 2-core machine, as `splitwerk serve`
THREADS = 4  # threads per gthread worker: Redis round trips release the GIL meanwhile
# `splitwerk serve` runs gthread as server.worker's class (liveness probes on threads of
# their own); "gthread" in the bench means that class
PRODUCTION_WORKERS = {"gthread": "server.worker.HealthFirstWorker"}
GUNICORN_TIMEOUT = 30  # seconds, as `splitwerk serve`: far above the Redis timeouts
DURATION = 12.0  # seconds per measurement: long enough for a stable p99 (>10,000 requests)
QUICK_DURATION = 3.0  # seconds per measurement in --quick mode (a smoke run, noisy figures)
WARMUP_DURATION = 2.0  # seconds of load before each measurement: workers import, connect, cache
QUICK_WARMUP_DURATION = 1.0  # seconds of warm-up in --quick mode
WRK_TIMEOUT = 2.0  # seconds before wrk counts a request as timed out (far above the p99 target)
START_TIMEOUT = 20.0  # seconds for a gunicorn server to answer after its start
STOP_TIMEOUT = 10.0  # seconds for a gunicorn server to stop after SIGTERM before SIGKILL
POLL_INTERVAL = 0.1  # seconds between checks while a server starts
PROBE_TIMEOUT = 5.0  # seconds for one probing request of the bench itself
RETURNING_POOL = 1000  # returning visitors; small enough that one warm-up enrols them all
WARMUP_ATTEMPTS = 3  # warm-ups tried until the whole returning pool is enrolled
EVENT_BATCH = 50  # events per /v1/events request, as the brief's target names
ORDERS_PER_BATCH = 5  # orders among them; the rest are add_to_cart conversions (1 in 10 buys)
MEMORY_VISITORS = 50_000  # visitors enrolled for the memory figure (~1 s through the store)
QUICK_MEMORY_VISITORS = 10_000  # in --quick mode; large enough that the hash is a real hashtable
ENROL_BATCH = 500  # enrolments per round trip while measuring memory
MEMORY_EXPERIMENT = "memory-probe"  # an experiment key of its own, so the hash starts empty
MULTI_EXPERIMENTS = 5  # experiments named by one request in case (d)

# Targets the bench compares against (printed, never enforced here).
FRESH_RATIO_TARGET = 0.5  # fresh visitors: at least half the throughput of bare Flask
RETURNING_RATIO_TARGET = 0.6  # returning visitors: a Redis look-up, cheaper than an enrolment
MULTI_LATENCY_TARGET = 2.0  # five experiments in one request: at most twice the p50 of one
P99_TARGET = 0.025  # seconds: the product page waits for /v1/assign before it renders
EVENTS_TARGET = 20_000.0  # events per second ingested in 50-event batches
CONFIG_PROPAGATION = 2.0  # seconds for every worker to see paused experiments (refresh: 1 s)
MEMORY_TARGET = 120.0  # bytes of Redis memory per enrolled visitor and experiment

SEGMENT_SOURCES = ("search", "facebook", "instagram", "direct", "newsletter", "youtube")
SEGMENT_DEVICES = ("mobile", "desktop", "tablet")


@dataclass(frozen=True)
class Figures:
    """One measurement: throughput, latency and failures, and what the generator cost."""

    name: str
    requests: int
    duration: float  # seconds
    p50: float  # seconds
    p99: float  # seconds
    failures: int
    generator_cpu: float  # share of one core that wrk used
    server_cpu: float = 0.0  # CPU seconds of every gunicorn process
    redis_cpu: float = 0.0  # CPU seconds of redis-server
    other_cpu: float = 0.0  # cores that processes outside the bench kept busy meanwhile

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.duration if self.duration else 0.0

    @property
    def server_cost(self) -> float:
        """Server CPU seconds per request: robust where req/s suffer from a busy machine."""
        return ratio(self.server_cpu, self.requests)

    @property
    def redis_cost(self) -> float:
        """redis-server CPU seconds per request."""
        return ratio(self.redis_cpu, self.requests)


def parse_wrk_output(name: str, output: str, generator_cpu: float) -> Figures:
    """Read the ``BENCH-RESULT`` line that ``wrk/report.lua`` prints.

    Raises:
        ValueError: wrk printed no such line (it failed before its end).
    """
    for line in output.splitlines():
        if line.startswith("BENCH-RESULT "):
            data = json.loads(line.removeprefix("BENCH-RESULT "))
            latency = data["latency_us"]
            return Figures(
                name=name,
                requests=data["requests"],
                duration=data["duration_us"] / 1e6,
                p50=latency["p50"] / 1e6,
                p99=latency["p99"] / 1e6,
                failures=sum(data["errors"].values()),
                generator_cpu=generator_cpu,
            )
    raise ValueError(f"wrk printed no result for {name}:\n{output[-2000:]}")


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, or 0.0 when there is nothing to divide by."""
    return numerator / denominator if denominator else 0.0


def verdict(is_met: bool) -> str:
    """How a target line ends: met or missed."""
    return "ok" if is_met else "MISSED"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class Gunicorn:
    """A gunicorn server in its own process group, stopped with the whole group."""

    def __init__(self, app: str, worker_class: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.worker_class = worker_class
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{LOOPBACK}:{self.port}",
            "--workers",
            str(WORKERS),
            "--worker-class",
            PRODUCTION_WORKERS.get(worker_class, worker_class),
            "--timeout",
            str(GUNICORN_TIMEOUT),
            "--no-control-socket",
            "--pythonpath",
            str(HERE),
            "--log-level",
            "warning",
        ]
        if "gthread" in worker_class:
            command += ["--threads", str(THREADS)]
        self._log = log.open("ab")
        self._process = subprocess.Popen(
            [*command, app],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # its own process group: stop() reaches every worker
        )
        self._log_path = log

    @property
    def process_group(self) -> int:
        """The process group of the master and its workers."""
        return self._process.pid

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{LOOPBACK}:{self.port}"

    def wait_until_ready(self) -> None:
        """Wait until the server answers HTTP at all (any status).

        Raises:
            RuntimeError: it exited or did not answer within START_TIMEOUT.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start; see {self._log_path}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=1.0)
                try:
                    connection.request("GET", "/healthz")
                    connection.getresponse().read()
                    return
                finally:
                    connection.close()
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(
            f"gunicorn did not answer within {START_TIMEOUT} s; see {self._log_path}"
        )

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it does not stop in time."""
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(STOP_TIMEOUT)
        self._log.close()


@contextlib.contextmanager
def running(app: str, worker_class: str, env: dict[str, str], log: Path) -> Iterator[Gunicorn]:
    """A started, answering gunicorn server for the duration of the block."""
    server = Gunicorn(app, worker_class, env, log)
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


def children_cpu_seconds() -> float:
    """User and system CPU seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # units of the CPU times in /proc


def process_cpu_seconds(process_group: int | None = None, command: str | None = None) -> float:
    """CPU seconds of the running processes of one process group, or of one command name."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        # after the name: state, ppid, pgrp, …; utime and stime are the 12th and 13th
        if process_group is not None and int(fields[2]) != process_group:
            continue
        if command is not None and name != command:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and I/O wait)."""
    with Path("/proc/stat").open() as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSample:
    """CPU times at one moment: the server's, Redis's, wrk's and the whole machine's."""

    server: float
    redis: float
    generator: float
    machine: float

    @classmethod
    def take(cls, server_group: int) -> CpuSample:
        """Read every counter now."""
        return cls(
            server=process_cpu_seconds(process_group=server_group),
            redis=process_cpu_seconds(process_group=os.getpgid(0), command="redis-server"),
            generator=children_cpu_seconds(),
            machine=machine_busy_seconds(),
        )


def run_wrk(
    name: str,
    url: str,
    script: str,
    arguments: Sequence[str],
    duration: float,
    server_group: int,
) -> Figures:
    """Drive ``url`` with one wrk script for ``duration`` seconds and read its figures.

    Raises:
        RuntimeError: wrk failed or printed no result.
    """
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise RuntimeError(f"the bench only loads {LOOPBACK}, not {url}")
    command = [
        "wrk",
        "--threads",
        str(WRK_THREADS),
        "--connections",
        str(CONNECTIONS),
        "--duration",
        f"{max(1, round(duration))}s",
        "--timeout",
        f"{WRK_TIMEOUT:g}s",
        "--script",
        script,
        url,
        "--",
        *arguments,
    ]
    before = CpuSample.take(server_group)
    try:
        finished = subprocess.run(
            command,
            cwd=WRK_FOLDER,
            capture_output=True,
            text=True,
            timeout=duration + 30,  # seconds: wrk stops itself; this only guards a hang
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"wrk did not finish: {name}") from error
    if finished.returncode != 0:
        raise RuntimeError(f"wrk failed for {name}: {finished.stderr.strip()}")
    after = CpuSample.take(server_group)
    seconds = max(1, round(duration))
    generator = after.generator - before.generator
    server = after.server - before.server
    redis_cpu = after.redis - before.redis
    other = after.machine - before.machine - generator - server - redis_cpu
    figures = parse_wrk_output(name, finished.stdout, generator / seconds)
    return dataclasses.replace(
        figures, server_cpu=server, redis_cpu=redis_cpu, other_cpu=max(0.0, other / seconds)
    )


def post_json(
    base_url: str, path: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One POST of the bench itself (not load); returns status and body."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=PROBE_TIMEOUT)
    try:
        connection.request(
            "POST",
            path,
            json.dumps(body),
            {"Content-Type": "application/json", **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass(frozen=True)
class Setup:
    """What every server of one bench run shares: Redis, secrets, tokens and options."""

    redis_url: str
    secret: str
    editor_token: str
    ingest_token: str
    duration: float
    warmup: float
    folder: Path
    run_id: str

    def environment(self) -> dict[str, str]:
        """The server's environment: the caller's without SPLITWERK_*, plus the bench's."""
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("SPLITWERK_")
        }
        env.update(
            {
                "SPLITWERK_REDIS_URL": self.redis_url,
                "SPLITWERK_SECRET_KEY": self.secret,
                "SPLITWERK_TOKENS": f"editor:bench:{hash_token(self.editor_token)},"
                f"ingest:shop:{hash_token(self.ingest_token)}",
                "SPLITWERK_LOG_LEVEL": "WARNING",
                # (e) sends some 300 conversions to each of its 1,000 visitors per run, far
                # beyond a person's day: every event should count, as before the cap existed
                "SPLITWERK_CONVERSIONS_PER_VISITOR_DAY": "100000000",
            }
        )
        return env


def assign_load(
    setup: Setup,
    server: Gunicorn,
    name: str,
    mode: str,
    experiments: Sequence[str],
    prefix: str,
    *,
    duration: float | None = None,
    first_visitor: int = 0,
) -> Figures:
    """Measure /v1/assign with one kind of visitor; ``duration`` defaults to the run's."""
    arguments = [
        mode,
        ",".join(experiments),
        f"{setup.run_id}-{prefix}",
        str(RETURNING_POOL),
        str(first_visitor),
    ]
    url = f"{server.url}/v1/assign"
    return run_wrk(
        name, url, "assign.lua", arguments, duration or setup.duration, server.process_group
    )


def warm_and_measure(
    setup: Setup,
    server: Gunicorn,
    name: str,
    experiments: Sequence[str],
    prefix: str,
) -> Figures:
    """Warm up with fresh visitors of their own, then measure fresh visitors."""
    assign_load(
        setup,
        server,
        f"{name} (warm-up)",
        "fresh",
        experiments,
        f"warm-{prefix}",
        duration=setup.warmup,
    )
    return assign_load(setup, server, name, "fresh", experiments, prefix)


def side_store(redis_url: str, max_connections: int = 2) -> Store:
    """A Store of the bench's own, beside the server's: to read what the server wrote and to
    write set-up data directly (generous timeouts, no retries)."""
    client = connect(
        redis_url,
        socket_timeout=5.0,
        connect_timeout=1.0,
        retries=0,
        max_connections=max_connections,
    )
    return Store(client)


def enrolled_total(store: Store, experiment: str) -> int:
    """Visitors enrolled in an experiment's current phase, over all variants."""
    current = store.load_experiment(experiment)
    if current is None:
        return 0
    counts = store.read_counts(experiment, current.phase)
    return sum(value for field, value in counts.items() if field.count(":") == 1)


def enrol_returning_pool(
    setup: Setup, server: Gunicorn, store: Store, name: str = "(c) assign, returning visitor"
) -> int:
    """Enrol the returning pool (the visitors the event batches are sent for) with warm-up
    assigns; returns how many visitors they enrolled (RETURNING_POOL when all of it)."""
    experiment = EXPERIMENT_KEYS[0]
    before = enrolled_total(store, experiment)
    sent = 0
    for _ in range(WARMUP_ATTEMPTS):
        # the pool is cycled in order and each warm-up continues where the last one stopped,
        # so warm-ups of RETURNING_POOL requests in all enrol every pool visitor
        warm = assign_load(
            setup,
            server,
            f"{name} (warm-up)",
            "returning",
            [experiment],
            "returning",
            duration=setup.warmup,
            first_visitor=sent,
        )
        sent += warm.requests
        if enrolled_total(store, experiment) - before >= RETURNING_POOL:
            break
    return enrolled_total(store, experiment) - before


def returning_load(setup: Setup, server: Gunicorn, store: Store) -> tuple[Figures, int]:
    """Enrol the returning pool, then measure it; also returns enrolments made meanwhile (0)."""
    experiment = EXPERIMENT_KEYS[0]
    name = "(c) assign, returning visitor"
    enrol_returning_pool(setup, server, store, name)
    before = enrolled_total(store, experiment)
    figures = assign_load(setup, server, name, "returning", [experiment], "returning")
    return figures, enrolled_total(store, experiment) - before


def events_load(
    setup: Setup, server: Gunicorn, name: str = f"(e) events, {EVENT_BATCH} per request"
) -> Figures | str:
    """Measure /v1/events with 50-event batches, or say why it was skipped."""
    headers = {"X-Splitwerk-Ingest-Key": setup.ingest_token}
    probe = {
        "events": [
            {
                "type": "conversion",
                "id": f"{setup.run_id}-0000-4000-8000-000000000000",
                "visitor": f"{setup.run_id}-returning-t0-1",
                "goal": "add_to_cart",
            }
        ]
    }
    try:
        status, body = post_json(server.url, "/v1/events", probe, headers)
    except (OSError, http.client.HTTPException) as error:
        return f"skipped: probing /v1/events failed ({error})"
    if status in (404, 405):
        return f"skipped: /v1/events is not there yet (HTTP {status})"
    if status >= 300:
        return f"skipped: /v1/events refused the probe batch: HTTP {status} {body[:200]!r}"
    arguments = [
        str(EVENT_BATCH),
        str(ORDERS_PER_BATCH),
        f"{setup.run_id}-returning",
        str(RETURNING_POOL),
        setup.ingest_token,
        setup.run_id,
    ]
    url = f"{server.url}/v1/events"
    run_wrk("events (warm-up)", url, "events.lua", arguments, setup.warmup, server.process_group)
    return run_wrk(name, url, "events.lua", arguments, setup.duration, server.process_group)


def single_experiment_events(setup: Setup, server: Gunicorn) -> Figures | str:
    """(e1): the same event load with one running experiment instead of five.

    Every running experiment whose goals listen to an event counts it, so (e) does five
    attributions per event; pausing the other four shows the cost of one.
    """
    headers = {"Authorization": f"Bearer {setup.editor_token}"}
    for key in EXPERIMENT_KEYS[1:]:
        post_json(server.url, f"/v1/experiments/{key}/pause", {}, headers)
    time.sleep(CONFIG_PROPAGATION)
    try:
        return events_load(setup, server, f"(e1) events, {EVENT_BATCH}/request, 1 experiment")
    finally:
        for key in EXPERIMENT_KEYS[1:]:
            post_json(server.url, f"/v1/experiments/{key}/resume", {}, headers)


def memory_per_visitor(redis_url: str, secret: str, visitors: int) -> float:
    """Bytes of Redis memory per visitor enrolled in one experiment, through the enrol script.

    Enrols ``visitors`` pseudonymised visitors with two segments (source, device), exactly as
    /v1/assign does, into an experiment of their own, and divides the growth of
    ``used_memory`` by their number.
    """
    client = connect(
        redis_url, socket_timeout=5.0, connect_timeout=1.0, retries=0, max_connections=2
    )
    store = Store(client)
    pseudonymiser = Pseudonymiser(secret.encode())
    segments = ("source", "device")
    try:
        before = int(client.info("memory")["used_memory"])
        for start in range(0, visitors, ENROL_BATCH):
            batch = [
                Enrolment(
                    experiment=MEMORY_EXPERIMENT,
                    phase=1,
                    visitor=pseudonymiser.pseudonymise(f"memory-{number}"),
                    variant_index=number % 2,
                    segments=segments,
                    segment_values=(
                        SEGMENT_SOURCES[number % len(SEGMENT_SOURCES)],
                        SEGMENT_DEVICES[number % len(SEGMENT_DEVICES)],
                    ),
                )
                for number in range(start, min(start + ENROL_BATCH, visitors))
            ]
            store.enrol(batch, "2025-01-01", 50)
        after = int(client.info("memory")["used_memory"])
        enrolled = client.hlen(keys.enrolments(MEMORY_EXPERIMENT, 1))
    finally:
        store.close()
    if enrolled != visitors:
        raise RuntimeError(f"enrolled {enrolled} of {visitors} visitors")
    return (after - before) / visitors


def print_table(rows: Sequence[Figures]) -> None:
    """The figures as a fixed-width table (CPU columns: milliseconds per request, cores)."""
    print(
        f"{'measurement':<38} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6} "
        f"{'server':>7} {'redis':>6} {'wrk':>5} {'other':>5}"
    )
    for row in rows:
        print(
            f"{row.name:<38} {row.rate:>7.0f} {row.p50 * 1e3:>7.2f} {row.p99 * 1e3:>7.2f} "
            f"{row.failures:>6} {row.server_cost * 1e3:>7.3f} {row.redis_cost * 1e3:>6.3f} "
            f"{row.generator_cpu:>5.2f} {row.other_cpu:>5.2f}"
        )
    sys.stdout.flush()


CPU_LEGEND = (
    "server, redis: CPU ms per request; wrk: cores used by the load generator; other: cores "
    "busy outside the bench (other programs, kernel network work); above 0.3 the machine was "
    "not quiet and req/s understate the server"
)


def options_from(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 3 s per measurement")
    parser.add_argument("--duration", type=float, help=f"seconds per measurement ({DURATION:g})")
    parser.add_argument("--warmup", type=float, help=f"seconds of warm-up ({WARMUP_DURATION:g})")
    parser.add_argument("--memory-visitors", type=int, help=f"visitors for (g) ({MEMORY_VISITORS})")
    parser.add_argument(
        "--only",
        choices=["events"],
        help="events: only (a) and the event figures (e), (e1), about a minute",
    )
    parser.add_argument(
        "--worker-classes",
        default="gthread,sync,gevent",
        help="gunicorn worker classes compared in (f); gevent only if installed",
    )
    options = parser.parse_args(argv)
    options.duration = options.duration or (QUICK_DURATION if options.quick else DURATION)
    options.warmup = options.warmup or (QUICK_WARMUP_DURATION if options.quick else WARMUP_DURATION)
    options.memory_visitors = options.memory_visitors or (
        QUICK_MEMORY_VISITORS if options.quick else MEMORY_VISITORS
    )
    if not 1 <= options.duration <= 600 or not 1 <= options.warmup <= 60:
        parser.error("--duration must be 1..600 s and --warmup 1..60 s")
    return options


def worker_classes(requested: str) -> list[str]:
    """The requested worker classes that can run here (gevent needs its package)."""
    names = [name.strip() for name in requested.split(",") if name.strip()]
    return [n for n in names if n != "gevent" or importlib.util.find_spec("gevent") is not None]


def bench(options: argparse.Namespace, folder: Path) -> None:
    """Every measurement, one server at a time, printed as it finishes."""
    embedded = EmbeddedRedis(folder / "redis")
    redis_url = embedded.start()
    try:
        setup = Setup(
            redis_url=redis_url,
            secret=secrets.token_urlsafe(32),
            editor_token=secrets.token_urlsafe(24),
            ingest_token=secrets.token_urlsafe(24),
            duration=options.duration,
            warmup=options.warmup,
            folder=folder,
            run_id=secrets.token_hex(4),
        )
        measure(setup, options)
    finally:
        embedded.stop()


Target = tuple[str, float, str, bool]  # label, measured value, target text, whether met


def target_lines(
    bare: Figures,
    fresh: Figures,
    returning: Figures,
    multi: Figures,
    events: Figures | str,
    memory: float,
    single: Figures | str = "not measured",
) -> list[Target]:
    """Every target with its measured value; ratios both by req/s and by CPU per request.

    The CPU ratios (bare's server CPU per request over the endpoint's) say what the req/s
    ratios would be on a quiet machine where the server is CPU-bound, as it is here.
    """
    fresh_rate = ratio(fresh.rate, bare.rate)
    returning_rate = ratio(returning.rate, bare.rate)
    fresh_cpu = ratio(bare.server_cost, fresh.server_cost)
    returning_cpu = ratio(bare.server_cost, returning.server_cost)
    multi_latency = ratio(multi.p50, fresh.p50)
    lines: list[Target] = [
        (
            "fresh / bare, req/s",
            fresh_rate,
            f">= {FRESH_RATIO_TARGET}",
            fresh_rate >= FRESH_RATIO_TARGET,
        ),
        (
            "fresh / bare, by server CPU per request",
            fresh_cpu,
            f">= {FRESH_RATIO_TARGET}",
            fresh_cpu >= FRESH_RATIO_TARGET,
        ),
        (
            "returning / bare, req/s",
            returning_rate,
            f">= {RETURNING_RATIO_TARGET}",
            returning_rate >= RETURNING_RATIO_TARGET,
        ),
        (
            "returning / bare, by server CPU per request",
            returning_cpu,
            f">= {RETURNING_RATIO_TARGET}",
            returning_cpu >= RETURNING_RATIO_TARGET,
        ),
        (
            f"{MULTI_EXPERIMENTS}-experiment / 1-experiment p50",
            multi_latency,
            f"<= {MULTI_LATENCY_TARGET}",
            multi_latency <= MULTI_LATENCY_TARGET,
        ),
    ]
    for row in (fresh, returning, multi):
        lines.append(
            (
                f"p99 ms, {row.name[4:]}",
                row.p99 * 1e3,
                f"<= {P99_TARGET * 1e3:g}",
                row.p99 <= P99_TARGET,
            )
        )
    for label, row in (("events per second, 5 experiments", events),
                       ("events per second, 1 experiment", single)):  # fmt: skip
        if isinstance(row, Figures):
            rate = row.rate * EVENT_BATCH
            lines.append((label, rate, f">= {EVENTS_TARGET:g}", rate >= EVENTS_TARGET))
    lines.append(
        (
            "Redis bytes per visitor and experiment",
            memory,
            f"<= {MEMORY_TARGET:g}",
            memory <= MEMORY_TARGET,
        )
    )
    return lines


QUIET_SAMPLE_INTERVAL = 1.0  # seconds over which the machine's background load is sampled


def background_load() -> float:
    """Cores kept busy by other programs right now (nothing of the bench is running)."""
    before = machine_busy_seconds()
    time.sleep(QUIET_SAMPLE_INTERVAL)
    return (machine_busy_seconds() - before) / QUIET_SAMPLE_INTERVAL


def measure(setup: Setup, options: argparse.Namespace) -> None:
    """Run (a) to (g) and print the figures, the ratios and the verdicts."""
    env = setup.environment()
    log = setup.folder / "gunicorn.log"
    app = "server.app:create_app()"
    print(
        f"wrk {WRK_THREADS} thread, {CONNECTIONS} connections; gunicorn {WORKERS} workers; "
        f"{setup.duration:g} s per measurement after {setup.warmup:g} s warm-up; "
        f"{os.cpu_count()} cores; other programs keep {background_load():.2f} cores busy\n",
        flush=True,
    )
    rows: list[Figures] = []
    with running("baseline:create_app()", "gthread", env, log) as server:
        bare = warm_and_measure(setup, server, "(a) bare Flask, constant JSON", ["x"], "bare")
    rows.append(bare)
    print_table(rows[-1:])
    if options.only == "events":
        measure_events(setup, bare)
        return

    store = side_store(setup.redis_url)
    try:
        with running(app, "gthread", env, log) as server:
            for line in seed(server.url, setup.editor_token):
                print(f"  seed: {line}")
            fresh = warm_and_measure(
                setup, server, "(b) assign, fresh visitor", EXPERIMENT_KEYS[:1], "fresh"
            )
            print_table([fresh])
            returning, new_enrolments = returning_load(setup, server, store)
            print_table([returning])
            multi = warm_and_measure(
                setup,
                server,
                f"(d) assign, {MULTI_EXPERIMENTS} experiments, fresh",
                EXPERIMENT_KEYS[:MULTI_EXPERIMENTS],
                "multi",
            )
            print_table([multi])
            events = events_load(setup, server)
            if isinstance(events, Figures):
                print_table([events])
            else:
                print(f"(e) events: {events}")
            single = single_experiment_events(setup, server)
            if isinstance(single, Figures):
                print_table([single])
    finally:
        store.close()
    rows += [fresh, returning, multi]
    rows += [row for row in (events, single) if isinstance(row, Figures)]

    print("\n(f) worker classes, fresh visitors:", flush=True)
    by_class: list[Figures] = []
    for worker_class in worker_classes(options.worker_classes):
        with running(app, worker_class, env, log) as server:
            figures = warm_and_measure(
                setup, server, f"(f) {worker_class}", EXPERIMENT_KEYS[:1], f"class-{worker_class}"
            )
        by_class.append(figures)
        print_table([figures])

    print("\n(g) Redis memory per enrolled visitor:", flush=True)
    memory = memory_per_visitor(setup.redis_url, setup.secret, options.memory_visitors)
    print(f"  {memory:.1f} bytes per visitor and experiment ({options.memory_visitors} visitors)")

    print("\nall figures:")
    print_table(rows + by_class)
    print(CPU_LEGEND)
    print("\ntargets:")
    for label, value, target, is_met in target_lines(
        bare, fresh, returning, multi, events, memory, single
    ):
        print(f"  {label:<48} {value:>9.2f}  target {target:<8} {verdict(is_met)}")
    if not isinstance(events, Figures):
        print(f"  {'events per second':<48} {'-':>9}  {events}")
    failed = sum(row.failures for row in rows + by_class)
    print(
        f"  failed requests over all runs: {failed}; new enrolments while measuring "
        f"returning visitors: {new_enrolments} (0 means every request was a look-up)"
    )
    best = max(by_class, key=lambda row: row.rate, default=None)
    if best is not None:
        print(
            f"  fastest worker class for fresh visitors: {best.name[4:]} ({best.rate:.0f} req/s, "
            f"{best.server_cost * 1e3:.2f} ms server CPU per request)"
        )


def measure_events(setup: Setup, bare: Figures) -> None:
    """Only the event figures, beside the bare app's (``--only events``)."""
    env = setup.environment()
    store = side_store(setup.redis_url)
    try:
        with running(
            "server.app:create_app()", "gthread", env, setup.folder / "gunicorn.log"
        ) as server:
            seed(server.url, setup.editor_token)
            enrol_returning_pool(setup, server, store)  # the visitors the events are for
            rows = [bare]
            for row in (events_load(setup, server), single_experiment_events(setup, server)):
                if isinstance(row, Figures):
                    rows.append(row)
                else:
                    print(f"events: {row}")
    finally:
        store.close()
    print_table(rows)
    print(CPU_LEGEND)
    for row in rows[1:]:
        events = row.rate * EVENT_BATCH
        print(
            f"  {row.name:<38} {events:>7.0f} events/s ({verdict(events >= EVENTS_TARGET)} "
            f"for >= {EVENTS_TARGET:g}); {ratio(row.rate, bare.rate):.3f} × bare req/s, "
            f"{ratio(row.server_cost, bare.server_cost):.2f} × bare server CPU per request, "
            f"{row.server_cost / EVENT_BATCH * 1e6:.1f} µs server + "
            f"{row.redis_cost / EVENT_BATCH * 1e6:.1f} µs Redis CPU per event"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; 0 unless the bench itself could not run."""
    options = options_from(argv)
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed; install it with `apt-get install -y wrk` "
            "(Debian package; `sudo` if you are not root)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="splitwerk-bench-") as folder:
        try:
            bench(options, Path(folder))
        except (RuntimeError, redis.RedisError, StorageUnavailable) as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
