"""Redis memory per enrolled visitor, measured with MEMORY USAGE on the keys enrol.lua writes.

Issue 20 adds the CUPED covariate to the enrolment record: a visitor who sends none must cost
what they cost before (at most 120 bytes per visitor and experiment, README "Limits"). The
figures are printed (``pytest -s``); loadtests/bench.py measures the same through used_memory.
"""

from __future__ import annotations

from typing import Any

import redis

from server.core.models import Enrolment
from server.core.privacy import Pseudonymiser
from server.storage import keys
from server.storage.clients import connect
from server.storage.store import Store

VISITORS = 10_000  # enough that the enrolment hash is a real hashtable, not a listpack
TARGET_BYTES = 120.0  # README: Redis memory per enrolled visitor and experiment
SOURCES = ("google", "facebook", "direct", "newsletter")
DEVICES = ("mobile", "desktop", "tablet")


def bytes_per_visitor(url: str, client: redis.Redis, experiment: str, covariate: bool) -> float:
    """MEMORY USAGE (every element sampled) of the experiment's keys over its visitors."""
    client_of_store = connect(
        url, socket_timeout=5.0, connect_timeout=1.0, retries=0, max_connections=2
    )
    store = Store(client_of_store)
    pseudonymiser = Pseudonymiser(b"memory-test-secret")
    try:
        for start in range(0, VISITORS, 500):
            store.enrol(
                [
                    Enrolment(
                        experiment,
                        1,
                        pseudonymiser.pseudonymise(f"visitor-{number}"),
                        number % 2,
                        ("source", "device"),
                        (SOURCES[number % 4], DEVICES[number % 3]),
                        covariate=(number * 137) % 1_000_000 if covariate else None,
                    )
                    for number in range(start, min(start + 500, VISITORS))
                ],
                "2026-12-02",
                50,
            )
    finally:
        store.close()
    names = [
        keys.enrolments(experiment, 1),
        keys.counts(experiment, 1),
        keys.segment_values(experiment, 1, "source"),
        keys.segment_values(experiment, 1, "device"),
    ]
    assert client.hlen(names[0]) == VISITORS
    used = sum(client.memory_usage(name, samples=0) or 0 for name in names)
    return used / VISITORS


def test_a_visitor_without_a_covariate_costs_at_most_120_bytes(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    plain = bytes_per_visitor(redis_server.url, redis_client, "plain", covariate=False)
    cuped = bytes_per_visitor(redis_server.url, redis_client, "cuped", covariate=True)
    print(f"\nRedis MEMORY USAGE per enrolled visitor: {plain:.1f} B without a covariate, "
          f"{cuped:.1f} B with one")  # fmt: skip
    assert plain <= TARGET_BYTES
    # the covariate is a few bytes in the record ("\x1ex:" and up to 10 digits), nothing more
    assert cuped - plain <= 16
