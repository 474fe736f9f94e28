"""Measure a local Redis Cluster side by side with a single Redis, and Redis bytes per visitor.

Run ``.venv/bin/python loadtests/bench_cluster.py`` (``--duration`` seconds per measurement,
4 by default: the machine is shared). It starts a single redis-server and a cluster of three
masters, both on 127.0.0.1 TCP ports (the same transport, so that the ratio is the cluster's
cost and not the unix socket's gain), then the same gunicorn server (``bench.py``'s settings)
against each in turn, and drives it with ``wrk`` as ``bench.py`` does: fresh-visitor assigns
and 50-event batches over the five seeded experiments, with 2 and with 1 worker process. It
prints the figures, the cluster/single ratios, the spread of one experiment with three
sub-shards over the masters, bytes per visitor measured with ``MEMORY USAGE``, and the client
CPU per script with and without the pinned connections of ``storage.store.PinnedClients``.
"""

from __future__ import annotations

import argparse
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import bench
import redis
from bench import (
    RETURNING_POOL,
    Figures,
    Setup,
    enrol_returning_pool,
    events_load,
    post_json,
    print_table,
    running,
    side_store,
    warm_and_measure,
)
from seed import EXPERIMENT_KEYS, seed

from server.core.models import Enrolment
from server.core.privacy import Pseudonymiser
from server.storage import keys
from server.storage.clients import connect
from server.storage.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/
from tests.cluster import LocalCluster, cluster_ports

DURATION = 4.0  # seconds per measurement: short, the machine is shared by several people
WARMUP = 1.0  # seconds of warm-up before each measurement
TARGET = 0.8  # the cluster's throughput as a share of the single Redis's, at least
SIZING_VISITORS = 20_000  # visitors of the sizing experiment: a real hashtable, a second's work
ENROL_BATCH = 500  # enrolments per round trip while sizing
PINNED_CALLS = 4000  # scripts per thread in the pinned-connection comparison
PINNED_THREADS = 4  # threads, as one gthread worker
SOURCES = ("search", "facebook", "direct")  # segment values of the sizing visitors
DEVICES = ("mobile", "desktop")


def start_single(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A single redis-server on a free TCP port, with the cluster nodes' settings."""
    (port,) = cluster_ports(1)
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--maxmemory-policy", "noeviction", "--dir", str(folder)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port).ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def measure_backend(name: str, setup: Setup, workers: int) -> tuple[Figures, Figures | str]:
    """Fresh assigns and event batches against one Redis setup with ``workers`` processes."""
    bench.WORKERS = workers  # read when the next gunicorn starts
    env = setup.environment()
    with running(
        "server.app:create_app()", "gthread", env, setup.folder / "gunicorn.log"
    ) as server:
        seed(server.url, setup.editor_token)
        fresh = warm_and_measure(
            setup, server, f"{name}, {workers}w, assign fresh", EXPERIMENT_KEYS[:1], name
        )
        print_table([fresh])
        # the batches are for the returning pool: enrolled, so that every event is recorded
        # (for visitors enrolled nowhere the server only reads the enrolments and ignores them)
        store = side_store(setup.redis_url)
        try:
            enrolled = enrol_returning_pool(setup, server, store, f"{name}, {workers}w")
        finally:
            store.close()
        if enrolled < RETURNING_POOL:
            return fresh, f"skipped: {enrolled} of the {RETURNING_POOL} returning visitors enrolled"
        events = events_load(setup, server, f"{name}, {workers}w, events 50/req")
        if isinstance(events, Figures):
            print_table([events])
    return fresh, events


def spread_and_sizing(url: str, secret: str, editor: str, folder: Path, cluster: bool) -> None:
    """Enrol visitors into a three-sub-shard experiment through the store, then print where
    they landed (cluster) and the bytes per visitor that ``MEMORY USAGE`` counts."""
    env_setup = Setup(url, secret, editor, secrets.token_urlsafe(24), 1, 1, folder, "sizing")
    with running(
        "server.app:create_app()", "gthread", env_setup.environment(), folder / "gunicorn.log"
    ) as server:
        body = {
            "key": "sizing",
            "name": "Sizing",
            "variants": [{"key": "control"}, {"key": "green"}],
            "goals": [{"key": "purchase", "primary": True}],
            "segments": ["source", "device"],
            "shards": 3,
        }
        headers = {"Authorization": f"Bearer {editor}"}
        post_json(server.url, "/v1/experiments", body, headers)
        post_json(server.url, "/v1/experiments/sizing/start", {}, headers)
    client = connect(url, socket_timeout=5.0, connect_timeout=1.0, retries=0, max_connections=4)
    store = Store(client)
    pseudonymiser = Pseudonymiser(secret.encode())
    try:
        for start in range(0, SIZING_VISITORS, ENROL_BATCH):
            store.enrol(
                [
                    Enrolment(
                        "sizing",
                        1,
                        pseudonymiser.pseudonymise(f"sizing-{number}"),
                        number % 2,
                        ("source", "device"),
                        (
                            ("search", "facebook", "direct")[number % 3],
                            ("mobile", "desktop")[number % 2],
                        ),
                        shards=3,
                    )
                    for number in range(start, min(start + ENROL_BATCH, SIZING_VISITORS))
                ],
                "2026-12-02",
                50,
            )
        names = [keys.enrolments(keys.sub_shard("sizing", shard, 3), 1) for shard in range(3)]
        sizes = [client.memory_usage(name, samples=0) or 0 for name in names]
        counted = [client.hlen(name) for name in names]
        print(
            f"  enrolments hash: {sum(sizes) / SIZING_VISITORS:.1f} bytes per visitor "
            f"(MEMORY USAGE, {SIZING_VISITORS} visitors, 2 segments)"
        )
        if cluster:
            nodes: dict[int, int] = {}
            for name, count in zip(names, counted, strict=True):
                port = client.get_node_from_key(name).port
                nodes[port] = nodes.get(port, 0) + count
            shares = ", ".join(f"{count / SIZING_VISITORS:.3f}" for count in nodes.values())
            print(f"  3 sub-shards over {len(nodes)} masters: shares {shares} (target 0.300-0.367)")
    finally:
        store.close()


def pinned_comparison(url: str) -> None:
    """Client CPU per enrol script from 4 threads, with and without pinned connections."""
    for is_pinned in (True, False):
        store = side_store(url, max_connections=32)
        if not is_pinned:
            store._pinned = None  # the pooled path the cluster also takes
        tag = secrets.token_hex(3)

        def work(thread: int, store: Store = store, tag: str = tag) -> None:
            for number in range(PINNED_CALLS):
                item = Enrolment("pinned", 1, f"{tag}-{thread}-{number}", 0, (), ())
                store.enrol([item], "2026-12-02", 50)

        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(PINNED_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        calls = PINNED_CALLS * PINNED_THREADS
        print(
            f"  {'pinned' if is_pinned else 'pooled'}: {cpu / calls * 1e6:.1f} µs client CPU "
            f"per script, {calls / elapsed:.0f} scripts/s"
        )
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement; 0 unless the bench itself could not run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=DURATION, help="seconds per run")
    options = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench_cluster: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="splitwerk-bench-cluster-") as name:
        folder = Path(name)
        (folder / "single").mkdir()
        (folder / "cluster").mkdir()
        single_process, single_url = start_single(folder / "single")
        cluster = LocalCluster(folder / "cluster")
        try:
            cluster.start()
            secret, editor = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
            ingest = secrets.token_urlsafe(24)
            rows: dict[tuple[str, int], tuple[Figures, Figures | str]] = {}
            for workers in (2, 1):
                for backend, url in (("single", single_url), ("cluster", cluster.url)):
                    setup = Setup(
                        url, secret, editor, ingest, options.duration, WARMUP, folder,
                        f"{backend[0]}{workers}{secrets.token_hex(2)}",
                    )  # fmt: skip
                    rows[backend, workers] = measure_backend(backend, setup, workers)
            print("\ncluster / single:")
            for workers in (2, 1):
                (single_fresh, single_events) = rows["single", workers]
                (cluster_fresh, cluster_events) = rows["cluster", workers]
                pairs = [("assign fresh", single_fresh, cluster_fresh)]
                if isinstance(single_events, Figures) and isinstance(cluster_events, Figures):
                    pairs.append(("events 50/req", single_events, cluster_events))
                for label, single, clustered in pairs:
                    share = bench.ratio(clustered.rate, single.rate)
                    # what the req/s ratio would be where the server's CPU is the limit, as
                    # here; robust where other programs take the machine's cores meanwhile
                    by_cpu = bench.ratio(single.server_cost, clustered.server_cost)
                    print(
                        f"  {workers} worker(s), {label:<14} {clustered.rate:7.0f} / "
                        f"{single.rate:7.0f} req/s = {share:.2f} "
                        f"({bench.verdict(share >= TARGET)}), by server CPU {by_cpu:.2f} "
                        f"({bench.verdict(by_cpu >= TARGET)}; target >= {TARGET}); "
                        f"server CPU ms/req {clustered.server_cost * 1e3:.3f} / "
                        f"{single.server_cost * 1e3:.3f}, redis "
                        f"{clustered.redis_cost * 1e3:.3f} / {single.redis_cost * 1e3:.3f}"
                    )
            for workers in ("single", "cluster"):
                two, one = rows[workers, 2][0], rows[workers, 1][0]
                print(
                    f"  {workers}: 2 workers / 1 worker, assign fresh: "
                    f"{bench.ratio(two.rate, one.rate):.2f}"
                )
            print("\nsizing, single Redis:")
            spread_and_sizing(single_url, secret, editor, folder, cluster=False)
            print("sizing and spread, cluster:")
            spread_and_sizing(cluster.url, secret, editor, folder, cluster=True)
            print("\npinned connections (single Redis, in-process, 4 threads):")
            pinned_comparison(single_url)
        except RuntimeError as error:
            log = folder / "gunicorn.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            print(f"bench_cluster: {error}\n{tail}", file=sys.stderr)
            return 1
        finally:
            cluster.stop()
            single_process.terminate()
            single_process.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
