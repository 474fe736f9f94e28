"""What one event batch of the shop mix costs, in process: Redis's script time and the server's CPU.

Run ``.venv/bin/python loadtests/bench_batch.py`` (about 20 s). It starts its own redis-server
(embedded, AOF as in production), builds the app in this process, creates and starts the five
experiments of ``seed.py``, enrols ``--visitors`` visitors in all five (source and device set,
as the shop mix sends them), then posts ``--batches`` batches of ``--events`` events through
the app, as ``locustfile.py`` makes them: add-to-cart conversions and, one in ``--order-every``,
an order with revenue and costs. The batches go through Flask's test client, one after the
other, with no other load: the figures are a batch's own cost, not its latency under load.

It prints per batch: the wall time (p50 and p99), the CPU time of this process (the server's
work, the test client's small share included), Redis's time in ``EVALSHA`` (``INFO
commandstats``: the scripts with the commands they call) and all of Redis's CPU time (``INFO
cpu``: also reading the requests, the enrolment look-up, the append-only file), and the share
of events counted. The server sends each experiment's script while it builds the next, so a
batch's wall time is about the server's work before the first script, Redis's CPU, and the
reply.
Wall and CPU times vary with what else the machine does; the instruction count below does not.

``--callgrind`` runs redis-server under ``valgrind --tool=callgrind`` twice, with and without
the batches, and prints Redis's instructions per batch (the difference over ``--batches``):
a count that does not depend on what else the machine is doing, to compare two versions of
the scripts. It takes a few minutes.
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import shutil
import stat
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis as redis_py
from seed import EXPERIMENT_KEYS, EXPERIMENTS
from shop import percentiles

from server.app import create_app
from server.config import hash_token
from server.storage.embedded import EmbeddedRedis

SOURCES = ["search", "facebook", "instagram", "direct", "youtube", "newsletter"]
DEVICES = ["mobile", "desktop", "tablet"]
# seconds for Redis's reply and a request's Redis work under callgrind, where Redis runs some 50
# times slower (otherwise the defaults of server.config, as in production)
CALLGRIND_TIMEOUT = 30.0


def _settings(redis_url: str, editor: str, ingest: str, is_slow: bool) -> dict[str, object]:
    """The app's settings: this Redis, fresh tokens, longer timeouts if ``is_slow``."""
    settings: dict[str, object] = {
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "TOKENS": f"editor:bench:{hash_token(editor)},ingest:shop:{hash_token(ingest)}",
    }
    if is_slow:
        settings.update(
            REDIS_REQUEST_TIMEOUT=CALLGRIND_TIMEOUT, REDIS_SOCKET_TIMEOUT=CALLGRIND_TIMEOUT
        )
    return settings


def _batch(visitors: list[str], size: int, order_every: int) -> list[dict[str, Any]]:
    """One batch of the shop mix: conversions, and an order every ``order_every`` events."""
    events: list[dict[str, Any]] = []
    for n in range(size):
        visitor = random.choice(visitors)
        if n % order_every == order_every - 1:
            events.append(
                {
                    "type": "order",
                    "id": str(uuid.uuid4()),
                    "visitor": visitor,
                    "order_id": f"o-{uuid.uuid4().hex[:12]}",
                    "revenue": "49.90",
                    "cost_of_goods": "20.00",
                    "shipping": "4.90",
                    "payment_fee": "0.95",
                    "tax": "7.97",
                }
            )
        else:
            events.append(
                {
                    "type": "conversion",
                    "id": str(uuid.uuid4()),
                    "visitor": visitor,
                    "goal": "add_to_cart",
                }
            )
    return events


def _script_usec(client: Any) -> int:
    """Microseconds Redis spent so far in EVALSHA: the scripts with the commands they call."""
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("usec", 0))


def _redis_cpu(client: Any) -> float:
    """Seconds of CPU Redis has used so far, all its work (INFO cpu: user and system)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def run(options: argparse.Namespace, redis: EmbeddedRedis, *, send: bool) -> dict[str, float]:
    """Start ``redis``, set up the experiments and visitors, post the batches if ``send``;
    returns the figures. Stops ``redis`` before it returns."""
    random.seed(options.seed)
    editor, ingest = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    url = redis.start()
    try:
        app = create_app(_settings(url, editor, ingest, options.callgrind))
        client = app.test_client()
        editor_headers = {"Authorization": f"Bearer {editor}"}
        for definition in EXPERIMENTS:
            key = definition["key"]
            created = client.post("/v1/experiments", json=definition, headers=editor_headers)
            running = client.post(f"/v1/experiments/{key}/start", headers=editor_headers)
            if created.status_code != 201 or running.status_code != 200:
                raise SystemExit(f"bench_batch: setting up {key} failed: {created.json}")
        visitors = [f"v-{n}" for n in range(options.visitors)]
        for visitor in visitors:
            body = {
                "visitor": visitor,
                "experiments": EXPERIMENT_KEYS,
                "attributes": {"source": random.choice(SOURCES), "device": random.choice(DEVICES)},
            }
            if client.post("/v1/assign", json=body).status_code != 200:
                raise SystemExit("bench_batch: an assign failed")
        batches = [
            _batch(visitors, options.events, options.order_every) for _ in range(options.batches)
        ]
        if not send:
            return {}
        headers = {"X-Splitwerk-Ingest-Key": ingest}
        side = redis_py.Redis.from_url(url)
        walls, cpus, counted, sent = [], [], 0, 0
        scripts_before, redis_cpu_before = _script_usec(side), _redis_cpu(side)
        for batch in batches:
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.post("/v1/events", json={"events": batch}, headers=headers)
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu_started)
            if response.status_code != 200:
                raise SystemExit(
                    f"bench_batch: a batch failed: {response.status_code} {response.json}"
                )
            counted += response.get_json()["accepted"]
            sent += len(batch)
        scripts_after, redis_cpu_after = _script_usec(side), _redis_cpu(side)
        side.close()
        wall_p50, wall_p99, _ = percentiles(walls)
        return {
            "wall_p50": wall_p50 * 1e3,
            "wall_p99": wall_p99 * 1e3,
            "cpu": statistics.mean(cpus) * 1e3,
            "scripts": (scripts_after - scripts_before) / len(batches) / 1e3,
            "redis_cpu": (redis_cpu_after - redis_cpu_before) / len(batches) * 1e3,
            "accepted": counted / sent,
        }
    finally:
        redis.stop()


def _callgrind_binary(folder: Path, output: Path) -> str:
    """A redis-server command that runs the real one under callgrind, writing to ``output``."""
    real = shutil.which("redis-server")
    valgrind = shutil.which("valgrind")
    if real is None or valgrind is None:
        raise SystemExit("bench_batch: --callgrind needs redis-server and valgrind on PATH")
    wrapper = folder / "redis-server-callgrind"
    command = f"{valgrind} --quiet --tool=callgrind --callgrind-out-file={output} {real}"
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def _instructions(output: Path) -> int:
    """Total instructions (Ir) of a callgrind output file."""
    found = re.search(r"^(?:summary|totals): (\d+)", output.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"bench_batch: no total in {output}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="batches posted (default 40)")
    parser.add_argument("--events", type=int, default=55, help="events per batch (default 55)")
    parser.add_argument("--order-every", type=int, default=5, help="one order per this many events")
    parser.add_argument("--visitors", type=int, default=200, help="visitors enrolled (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of visitors and events")
    parser.add_argument(
        "--callgrind", action="store_true", help="count Redis's instructions per batch instead"
    )
    parser.add_argument(
        "--callgrind-dir",
        type=Path,
        help="keep callgrind's two output files here (for callgrind_annotate)",
    )
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as temporary:
        folder = Path(temporary)
        if options.callgrind:
            counts = []
            for send in (False, True):
                kept = options.callgrind_dir or folder
                kept.mkdir(parents=True, exist_ok=True)
                output = kept / f"callgrind-{'batches' if send else 'setup'}.out"
                binary = _callgrind_binary(folder, output)
                run(options, EmbeddedRedis(folder / f"redis-{send}", binary), send=send)
                counts.append(_instructions(output))
            per_batch = (counts[1] - counts[0]) / options.batches
            print(
                f"Redis instructions per batch: {per_batch / 1e6:.1f} M "
                f"({options.batches} batches of {options.events} events, callgrind)"
            )
            return 0
        figures = run(options, EmbeddedRedis(folder / "redis"), send=True)
    print(
        f"{options.batches} batches of {options.events} events (one order in "
        f"{options.order_every}), {options.visitors} visitors in {len(EXPERIMENTS)} experiments, "
        f"{figures['accepted']:.0%} accepted\n"
        f"per batch: wall p50 {figures['wall_p50']:.2f} ms, p99 {figures['wall_p99']:.2f} ms; "
        f"this process's CPU {figures['cpu']:.2f} ms; Redis's scripts (EVALSHA) "
        f"{figures['scripts']:.2f} ms of its CPU {figures['redis_cpu']:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
