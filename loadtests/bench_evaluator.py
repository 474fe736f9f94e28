"""Measure /v1/assign with the background evaluator off and evaluating without pause.

Run ``.venv/bin/python loadtests/bench_evaluator.py`` (``--quick`` for a smoke run). It uses
``loadtests/bench.py``'s servers and wrk driver: the same gunicorn settings, the five seeded
experiments, fresh visitors. The second server evaluates every ``STRESS_INTERVAL`` seconds
instead of once a minute, so one worker computes results nearly all the time (the worst case
for the GIL it shares with the assign threads). It prints figures and never fails.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

from bench import (
    CPU_LEGEND,
    DURATION,
    QUICK_DURATION,
    QUICK_WARMUP_DURATION,
    WARMUP_DURATION,
    Setup,
    print_table,
    running,
    warm_and_measure,
)
from seed import EXPERIMENT_KEYS, seed

from server.app import EVALUATOR, create_app
from server.storage.embedded import EmbeddedRedis

STRESS_INTERVAL = "0.2"  # seconds between evaluations: 300 times the default of 60 s
APP = "evaluating_app:create()"  # loadtests/evaluating_app.py: the app with its evaluator on


def turn_seconds(setup: Setup) -> float:
    """The best thread CPU time of five evaluations of the seeded experiments, in process."""
    env = setup.environment()
    app = create_app(
        {
            "REDIS_URL": setup.redis_url,
            "SECRET_KEY": setup.secret,
            "TOKENS": env["SPLITWERK_TOKENS"],
            "RESULTS_CACHE_TTL": 0.0,  # every turn computes afresh, as once a minute does
        }
    )
    evaluator = app.extensions[EVALUATOR]
    best = float("inf")
    for _ in range(5):
        began = time.thread_time()
        evaluator.run_once(time.time())
        best = min(best, time.thread_time() - began)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 3 s per measurement")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as name:
        folder = Path(name)
        embedded = EmbeddedRedis(folder / "redis")
        redis_url = embedded.start()
        try:
            setup = Setup(
                redis_url=redis_url,
                secret=secrets.token_urlsafe(32),
                editor_token=secrets.token_urlsafe(24),
                ingest_token=secrets.token_urlsafe(24),
                duration=QUICK_DURATION if options.quick else DURATION,
                warmup=QUICK_WARMUP_DURATION if options.quick else WARMUP_DURATION,
                folder=folder,
                run_id=secrets.token_hex(4),
            )
            rows = []
            for label, interval in (("evaluator off", "0"), ("evaluating", STRESS_INTERVAL)):
                env = {**setup.environment(), "SPLITWERK_EVALUATION_INTERVAL": interval}
                with running(APP, "gthread", env, folder / "gunicorn.log") as server:
                    for line in seed(server.url, setup.editor_token):
                        print(f"  seed: {line}")
                    rows.append(
                        warm_and_measure(
                            setup,
                            server,
                            f"assign, 5 experiments, {label}",
                            EXPERIMENT_KEYS,
                            label.replace(" ", "-"),
                        )
                    )
                print_table(rows[-1:])
            turn = turn_seconds(setup)
            count = len(EXPERIMENT_KEYS)
            print(f"one evaluation of the {count} experiments: {turn * 1e3:.1f} ms CPU")
        finally:
            embedded.stop()
    print(f"\nevaluating every {STRESS_INTERVAL} s; {CPU_LEGEND}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
