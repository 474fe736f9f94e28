"""The capped sums stored as differences from the uncapped ones (ds, dq, dqh), and the phases
begun before that format, which keep their capped sums (cs, cq, cqh) to the end."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from server.app import create_app
from server.core.models import Experiment, Variant
from server.storage import keys
from server.storage.codec import experiment_from_json, experiment_to_json
from tests.api.test_events import enrol, order, send, start
from tests.helpers import EDITOR, VIEWER, app_settings

pytestmark = pytest.mark.both_redis

CAPPED = ("cs:", "cq:", "cqh:")
DIFFERENCES = ("ds:", "dq:", "dqh:")
SOURCES = ["facebook", "instagram", "newsletter"]
# revenue per order (the default cap is 1,000.00): under it, two that pass it together, one
# far over it, and one that a refund brings back under it
ORDERS = {
    "kunde-0": ["49.90"],
    "kunde-1": ["600.00", "700.00"],
    "kunde-2": ["250000.00"],
    "kunde-3": ["1500.00"],
    "kunde-4": ["19.99", "5.00"],
    "kunde-5": ["999.99"],
}
REFUNDS = {"kunde-3": ("o-kunde-3-0", "800.00"), "kunde-2": ("o-kunde-2-0", "100.00")}


def stored(redis_client: redis.Redis, phase: int = 1) -> dict[str, int]:
    raw = redis_client.hgetall(keys.counts("checkout-button", phase))
    return {k.decode(): int(v) for k, v in raw.items()}


def shop(client: Any) -> None:
    """The same traffic every time: enrolments, orders (some over the cap), refunds."""
    for number, (visitor, amounts) in enumerate(ORDERS.items()):
        enrol(client, visitor, SOURCES[number % len(SOURCES)])
        for index, amount in enumerate(amounts):
            event = order(visitor, f"o-{visitor}-{index}", amount, cost_of_goods="30.00")
            assert send(client, event).json["accepted"] == 1
    for visitor, (order_id, amount) in REFUNDS.items():
        refund = {"type": "refund", "id": f"r-{visitor}", "order_id": order_id, "amount": amount}
        assert send(client, refund).json["accepted"] == 1


def results(client: Any) -> dict[str, Any]:
    body = client.get("/v1/experiments/checkout-button/results", headers=VIEWER).json
    return {"goals": body["goals"], "segments": body["segments"]}


def as_before_the_format(redis_client: redis.Redis) -> None:
    """Store the experiment's document as versions before the format did: without the field."""
    document = json.loads(redis_client.hget(keys.EXPERIMENTS, "checkout-button") or "{}")
    del document["capped_differences_from"]
    redis_client.hset(keys.EXPERIMENTS, "checkout-button", json.dumps(document))


def test_a_visitor_within_the_cap_adds_nothing_to_the_capped_sums(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    enrol(client, "kunde-1")
    assert send(client, order("kunde-1", "o-1", "119.00")).json["accepted"] == 1
    names = stored(redis_client)
    assert any(name.startswith("s:") for name in names)
    assert not [name for name in names if name.startswith(CAPPED + DIFFERENCES)]
    # over the cap, the differences appear, in every scope the sums are kept in
    assert send(client, order("kunde-1", "o-2", "1000.00")).json["accepted"] == 1
    names = stored(redis_client)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    v = next(name for name in names if name.startswith("e:")).split(":")[1]
    for scope in ("", f":d:{day}", ":source=facebook"):
        assert names[f"ds:{v}:revenue{scope}"] == 100_000 - 111_900
    assert not [name for name in names if name.startswith(CAPPED)]


def test_results_are_the_same_whichever_way_the_capped_sums_are_stored(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A phase begun before the format keeps writing cs/cq/cqh; the same traffic gives the same
    results as in a phase that stores the differences."""
    found = {}
    for is_legacy in (False, True):
        redis_client.flushall()
        client = create_app(app_settings(redis_url)).test_client()
        start(client)
        if is_legacy:
            as_before_the_format(redis_client)
            client = create_app(app_settings(redis_url)).test_client()  # reads the document
        shop(client)
        names = stored(redis_client)
        kinds = CAPPED if is_legacy else DIFFERENCES
        others = DIFFERENCES if is_legacy else CAPPED
        assert [name for name in names if name.startswith(kinds)]
        assert not [name for name in names if name.startswith(others)]
        found[is_legacy] = results(client)
    assert found[True] == found[False]
    revenue = next(goal for goal in found[False]["goals"] if goal["key"] == "revenue")
    assert revenue["unavailable"] is None
    assert revenue["cap"] == 1000.0


def test_a_new_phase_of_an_experiment_begun_before_the_format_stores_differences(
    redis_url: str, redis_client: redis.Redis
) -> None:
    client = create_app(app_settings(redis_url)).test_client()
    start(client)
    as_before_the_format(redis_client)
    client = create_app(app_settings(redis_url)).test_client()
    enrol(client, "kunde-1")
    assert send(client, order("kunde-1", "o-1", "5000.00")).json["accepted"] == 1
    assert [name for name in stored(redis_client) if name.startswith("cs:")]
    url = "/v1/experiments/checkout-button/new-phase"
    response = client.post(url, json={"confirm": True}, headers=EDITOR)
    assert response.status_code == 200 and response.json["phase"] == 2
    enrol(client, "kunde-2")
    assert send(client, order("kunde-2", "o-2", "5000.00")).json["accepted"] == 1
    names = stored(redis_client, phase=2)
    assert [name for name in names if name.startswith("ds:")]
    assert not [name for name in names if name.startswith(CAPPED)]
    # the refund of the first phase's order still keeps that phase's format
    refund = {"type": "refund", "id": "r-1", "order_id": "o-1", "amount": "4500.00"}
    assert send(client, refund).json["accepted"] == 1
    assert not [name for name in stored(redis_client) if name.startswith(DIFFERENCES)]
    v = next(name for name in stored(redis_client) if name.startswith("e:")).split(":")[1]
    assert stored(redis_client)[f"cs:{v}:revenue"] == 50_000  # 500.00, under the cap again


@pytest.mark.parametrize(
    ("status", "phase", "first"),
    [("draft", 1, 1), ("running", 1, 2), ("paused", 3, 4), ("stopped", 2, 3)],
)
def test_a_document_stored_before_the_format_keeps_the_phase_it_began(
    status: str, phase: int, first: int
) -> None:
    """A phase that has begun keeps the capped sums it was recorded with; a draft has none."""
    experiment = experiment_from_json(
        experiment_to_json(Experiment("e", "E", (Variant("a", 1, 5000), Variant("b", 1, 5000))))
    )
    assert experiment.capped_differences_from == 1  # new experiments: from the first phase
    document = json.loads(experiment_to_json(experiment))
    del document["capped_differences_from"]
    document.update(status=status, phase=phase)
    older = experiment_from_json(json.dumps(document))
    assert older.capped_differences_from == first
    assert older.stores_capped_differences(phase) is (status == "draft")
    assert older.stores_capped_differences(phase + 1)
    assert experiment_from_json(experiment_to_json(older)).capped_differences_from == first
