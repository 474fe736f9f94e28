"""POST /v1/events and DELETE /v1/visitors/{id}: attribution, money, exactly once, erasure."""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
import redis

from server.app import create_app
from server.context import services_of
from server.storage import keys
from tests.helpers import EDITOR, INGEST_TOKEN, VIEWER, app_settings, record_totals

# every test here runs against one Redis and against the local Redis Cluster
pytestmark = pytest.mark.both_redis

INGEST = {"X-Splitwerk-Ingest-Key": INGEST_TOKEN}
SHOP: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Checkout button",
    "variants": [{"key": "control"}, {"key": "green"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "revenue", "kind": "revenue", "event": "purchase"},
        {"key": "margin", "kind": "margin", "event": "purchase"},
        {"key": "add_to_cart"},
    ],
    "segments": ["source"],
}


def counts(redis_client: redis.Redis, experiment: str = "checkout-button") -> dict[str, int]:
    raw = redis_client.hgetall(keys.counts(experiment, 1))
    return {k.decode(): int(v) for k, v in raw.items()}


def squares(found: dict[str, int], field: str) -> int:
    """A sum of squares from its two stored parts (storage/keys.py: qh·10^8 + q)."""
    high = found.get(field.replace("q:", "qh:", 1), 0)
    return high * 10**8 + found.get(field, 0)


def start(client: Any, **changes: Any) -> None:
    body = {**SHOP, **changes}
    assert client.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201
    assert client.post(f"/v1/experiments/{body['key']}/start", headers=EDITOR).status_code == 200


def enrol(client: Any, visitor: str, source: str = "facebook", **body: Any) -> str:
    response = client.post(
        "/v1/assign", json={"visitor": visitor, "attributes": {"source": source}, **body}
    )
    answers = response.json["assignments"]
    return str(answers["checkout-button"]["variant"])


def send(client: Any, *events: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/events", json={"events": list(events)}, headers=headers or INGEST)


def order(visitor: str, order_id: str, revenue: str = "119.00", **extra: Any) -> dict[str, Any]:
    return {"type": "order", "visitor": visitor, "order_id": order_id, "revenue": revenue, **extra}


def variant_index(variant: str) -> int:
    return ["control", "green"].index(variant)


def test_order_counts_conversion_net_revenue_and_margin_by_segment(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    v = variant_index(enrol(client, "kunde-1", "instagram"))
    response = send(
        client,
        order(
            "kunde-1",
            "o-1",
            "119.00",
            tax="19.00",
            shipping="4.90",
            cost_of_goods="40.00",
            payment_fee="1.50",
            discount="10.00",
            currency="EUR",
        ),
    )
    assert response.status_code == 200
    assert response.json["accepted"] == 1
    found = counts(redis_client)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    net, margin = 10000, 10000 - 4000 - 150 - 490
    assert found[f"c:{v}:purchase"] == 1
    assert found[f"s:{v}:revenue"] == net
    assert squares(found, f"q:{v}:revenue") == net * net
    assert found[f"s:{v}:margin"] == margin
    assert found[f"s:{v}:margin:source=instagram"] == margin
    assert found[f"c:{v}:purchase:d:{day}"] == 1


def test_event_counts_in_every_experiment_the_visitor_is_in(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    start(client, key="free-shipping", segments=[])
    enrol(client, "kunde-2")
    client.post("/v1/assign", json={"visitor": "kunde-2", "experiments": ["free-shipping"]})
    result = send(
        client, {"type": "conversion", "id": "c-1", "visitor": "kunde-2", "goal": "add_to_cart"}
    )
    assert result.json["accepted"] == 1
    for experiment in ("checkout-button", "free-shipping"):
        assert (
            sum(
                v
                for k, v in counts(redis_client, experiment).items()
                if k.startswith("c:") and k.endswith(":add_to_cart")
            )
            == 1
        )


def test_each_event_of_a_batch_counts_where_its_own_goal_is_listened_to(
    client: Any, redis_client: redis.Redis
) -> None:
    # the recorder looks up who listens once per goal name and batch: events of different
    # goals, interleaved, each go to their own goal's experiments
    start(client)
    start(client, key="newsletter", segments=[], goals=[{"key": "signup", "primary": True}])
    for visitor in ("kunde-1", "kunde-2"):
        enrol(client, visitor)
        client.post("/v1/assign", json={"visitor": visitor, "experiments": ["newsletter"]})

    def conversion(event_id: str, visitor: str, goal: str) -> dict[str, str]:
        return {"type": "conversion", "id": event_id, "visitor": visitor, "goal": goal}

    result = send(
        client,
        conversion("c-1", "kunde-1", "signup"),
        conversion("c-2", "kunde-1", "add_to_cart"),
        conversion("c-3", "kunde-2", "nobody-listens"),
        conversion("c-4", "kunde-2", "add_to_cart"),
        conversion("c-5", "kunde-2", "signup"),
    )
    statuses = [item["status"] for item in result.json["results"]]
    assert statuses == ["accepted", "accepted", "ignored", "accepted", "accepted"]

    def converted(experiment: str, goal: str) -> int:
        found = counts(redis_client, experiment)
        return sum(v for k, v in found.items() if k.startswith("c:") and k.endswith(f":{goal}"))

    assert converted("checkout-button", "add_to_cart") == 2
    assert converted("newsletter", "signup") == 2
    assert converted("checkout-button", "signup") == converted("newsletter", "add_to_cart") == 0


def _nodes(redis_client: Any) -> list[Any]:
    """A client per Redis server of the test's backend (each master of a cluster)."""
    if hasattr(redis_client, "get_primaries"):
        return [redis_client.get_redis_connection(node) for node in redis_client.get_primaries()]
    return [redis_client]


def test_with_several_listening_experiments_only_those_a_visitor_is_in_get_a_script_call(
    client: Any, redis_client: redis.Redis
) -> None:
    # One read of the enrolments first: the record script runs (and counts) only where the
    # visitor is enrolled, and the answers are what the script alone would give.
    others = ("banner", "images", "prices", "widget")
    start(client)
    for key in others:
        start(client, key=key, segments=[])
    enrol(client, "kunde-a", experiments=["checkout-button"])
    client.post("/v1/assign", json={"visitor": "kunde-b", "experiments": ["images", "widget"]})
    nodes = _nodes(redis_client)
    for node in nodes:
        node.config_resetstat()
    result = send(
        client,
        {"type": "conversion", "id": "c-1", "visitor": "kunde-a", "goal": "add_to_cart"},
        {"type": "conversion", "id": "c-2", "visitor": "kunde-b", "goal": "add_to_cart"},
        {"type": "conversion", "id": "c-3", "visitor": "stranger", "goal": "add_to_cart"},
        order("kunde-b", "o-1"),
    )
    statuses = [item["status"] for item in result.json["results"]]
    assert statuses == ["accepted", "accepted", "ignored", "accepted"]
    # (a script call that met a flushed script cache fails, and is sent again once loaded)
    calls = 0
    for node in nodes:
        stats = node.info("commandstats").get("cmdstat_evalsha", {})
        calls += stats.get("calls", 0) - stats.get("failed_calls", 0)
    assert calls == 3  # checkout-button, images and widget; nothing for banner and prices
    for key, goal in (
        ("checkout-button", "add_to_cart"),
        ("images", "add_to_cart"),
        ("widget", "purchase"),
    ):
        found = counts(redis_client, key)
        assert (
            sum(v for k, v in found.items() if k.startswith("n:") and k.endswith(f":{goal}")) == 1
        )
    for key in ("banner", "prices"):
        assert not redis_client.exists(keys.seen(key, 1))


def test_attribution_follows_configuration_changes(client: Any, redis_client: redis.Redis) -> None:
    # the recorder indexes running experiments by event name once per configuration version
    start(client)
    enrol(client, "kunde-3")

    def conversion(event_id: str, goal: str = "add_to_cart") -> str:
        event = {"type": "conversion", "id": event_id, "visitor": "kunde-3", "goal": goal}
        return str(send(client, event).json["results"][0]["status"])

    assert conversion("c-1") == "accepted"
    assert client.post("/v1/experiments/checkout-button/pause", headers=EDITOR).status_code == 200
    assert conversion("c-2") == "ignored"  # paused: nobody listens
    assert client.post("/v1/experiments/checkout-button/resume", headers=EDITOR).status_code == 200
    assert conversion("c-3") == "accepted"
    assert conversion("n-1", "newsletter_signup") == "ignored"  # no goal listens yet
    goals = [*SHOP["goals"], {"key": "newsletter_signup"}]
    response = client.patch(
        "/v1/experiments/checkout-button", json={"goals": goals}, headers=EDITOR
    )
    assert response.status_code == 200
    assert conversion("n-2", "newsletter_signup") == "accepted"
    found = counts(redis_client)
    assert sum(v for k, v in found.items() if k.startswith("n:") and k.count(":") == 2) == 3


def test_events_of_visitors_not_enrolled_are_ignored_without_storing(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    result = send(
        client,
        {"type": "conversion", "id": "c-1", "visitor": "stranger", "goal": "purchase"},
        {"type": "conversion", "id": "c-2", "visitor": "stranger", "goal": "no-experiment-listens"},
    )
    assert [item["status"] for item in result.json["results"]] == ["ignored", "ignored"]
    assert not redis_client.exists(keys.seen("checkout-button", 1))


def test_retried_batch_never_double_counts(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    enrol(client, "kunde-3")
    batch = [
        {"type": "conversion", "id": "c-1", "visitor": "kunde-3", "goal": "add_to_cart"},
        order("kunde-3", "o-3"),
        {"type": "refund", "id": "r-1", "order_id": "o-3", "amount": "19.00"},
    ]
    first = send(client, *batch).json
    assert [item["status"] for item in first["results"]] == ["accepted"] * 3
    before = counts(redis_client)
    again = send(client, *batch).json
    # a retry gets the answer of the first send, and counts nothing again
    assert [item["status"] for item in again["results"]] == ["accepted"] * 3
    other_id = send(client, order("kunde-3", "o-3", id="another-id")).json
    assert other_id["results"][0]["status"] == "accepted"
    assert counts(redis_client) == before


def test_concurrent_retries_count_once(redis_url: str, redis_client: redis.Redis) -> None:
    app = create_app(app_settings(redis_url))
    client = app.test_client()
    start(client)
    enrol(client, "kunde-4")
    batch = [
        order("kunde-4", "o-4"),
        {"type": "conversion", "id": "c-4", "visitor": "kunde-4", "goal": "add_to_cart"},
    ]
    workers = 12
    barrier = threading.Barrier(workers)

    def retry() -> list[str]:
        barrier.wait()
        local = app.test_client()
        return [r["status"] for r in send(local, *batch).json["results"]]

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        statuses = list(pool.map(lambda _: retry(), range(workers)))
    assert [s[0] for s in statuses] == ["accepted"] * workers  # every retry: the first answer
    found = counts(redis_client)
    assert sum(v for k, v in found.items() if k.count(":") == 2 and k.startswith("n:")) == 2 * 2
    assert (
        sum(v for k, v in found.items() if k.count(":") == 2 and k.startswith("s:")) == 2 * 11900
    )  # revenue and margin, no tax or costs


def test_partial_refunds_keep_sums_and_squares_exact(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    rng = random.Random(7)
    totals: dict[tuple[int, str], int] = {}
    for number in range(30):
        visitor = f"kunde-{number}"
        v = variant_index(enrol(client, visitor))
        gross = rng.randint(100, 50_000)
        tax = gross * 19 // 119
        cost = rng.randint(0, gross - tax)
        revenue = Decimal(gross) / 100
        send(
            client,
            order(
                visitor,
                f"o-{number}",
                str(revenue),
                tax=str(Decimal(tax) / 100),
                cost_of_goods=str(Decimal(cost) / 100),
            ),
        )
        net = gross - tax
        margin = net - cost
        left = gross
        for part in range(rng.randint(0, 3)):
            amount = rng.randint(1, max(1, left // 2))
            left -= amount
            send(
                client,
                {
                    "type": "refund",
                    "id": f"r-{number}-{part}",
                    "order_id": f"o-{number}",
                    "amount": str(Decimal(amount) / 100),
                },
            )
            # each gross cent refunded takes net/gross of a cent, of the order as it was sold
            margin -= int((Decimal(amount) * net / gross).quantize(Decimal(1), "ROUND_HALF_UP"))
        totals[(v, visitor)] = margin
    found = counts(redis_client)
    for v in (0, 1):
        visitor_totals = [t for (variant, _), t in totals.items() if variant == v]
        assert found.get(f"s:{v}:margin", 0) == sum(visitor_totals)
        assert squares(found, f"q:{v}:margin") == sum(t * t for t in visitor_totals)


def test_refund_bigger_than_the_order_is_rejected(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    enrol(client, "kunde-5")
    send(client, order("kunde-5", "o-5", "50.00"))
    before = counts(redis_client)
    result = send(client, {"type": "refund", "id": "r-1", "order_id": "o-5", "amount": "50.01"})
    assert result.status_code == 422  # the batch's only event was refused
    assert "amount" in result.json["errors"]["events"]["0"]
    assert counts(redis_client) == before
    full = send(client, {"type": "refund", "id": "r-2", "order_id": "o-5", "amount": "50.00"})
    assert full.json["accepted"] == 1
    assert counts(redis_client)[f"s:{variant_index(enrol(client, 'kunde-5'))}:margin"] == 0


def test_refund_after_the_experiment_stopped_still_counts(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    v = variant_index(enrol(client, "kunde-6"))
    send(client, order("kunde-6", "o-6", "100.00"))
    client.post("/v1/experiments/checkout-button/stop", headers=EDITOR)
    late_order = send(client, order("kunde-6", "o-7", "100.00")).json
    assert late_order["results"][0]["status"] == "ignored"
    refund = send(client, {"type": "refund", "id": "r-6", "order_id": "o-6", "amount": "100.00"})
    assert refund.json["accepted"] == 1
    assert counts(redis_client)[f"s:{v}:revenue"] == 0


def test_browser_cannot_send_orders_or_refunds(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    enrol(client, "kunde-7")
    forged = client.post(
        "/v1/events",
        data='{"events": [{"type": "order", "visitor": "kunde-7", "order_id": "x", '
        '"revenue": "9999.00"}, {"type": "conversion", "id": "c", "visitor": "kunde-7", '
        '"goal": "add_to_cart"}]}',
        content_type="text/plain",
    )
    assert forged.status_code == 200
    assert [r["status"] for r in forged.json["results"]] == ["rejected", "accepted"]
    assert "type" in forged.json["results"][0]["errors"]
    viewer_key = send(client, order("kunde-7", "y"), headers={"X-Splitwerk-Ingest-Key": "nope"})
    assert viewer_key.status_code == 422
    assert not any(k.startswith("s:") for k in counts(redis_client))


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (order("kunde-8", "o", "-1.00"), "revenue"),
        (order("kunde-8", "o", "12.345"), "revenue"),
        (order("kunde-8", "o", "zwölf"), "revenue"),
        (order("kunde-8", "o", "10.00", currency="euro"), "currency"),
        (order("kunde-8", "o", "10.00", currency="USD"), "currency"),
        (order("kunde-8", "o", "10.00", tax="11.00"), "tax"),
        ({"type": "order", "visitor": "kunde-8", "revenue": "1.00"}, "order_id"),
        ({"type": "conversion", "visitor": "kunde-8", "goal": "purchase"}, "id"),
        ({"type": "conversion", "id": "x", "goal": "purchase"}, "visitor"),
        ({"type": "conversion", "id": "x", "visitor": "kunde-8", "goal": "Bad Goal"}, "goal"),
        (
            {"type": "conversion", "id": "x", "visitor": "kunde-8", "goal": "purchase", "ts": 1.0},
            "ts",
        ),
        ({"type": "refund", "id": "r", "order_id": "o", "amount": "0"}, "amount"),
        ({"type": "teleport", "id": "x"}, "type"),
        (
            {"type": "conversion", "id": "x", "visitor": "kunde-8", "goal": "purchase", "extra": 1},
            "extra",
        ),
    ],
)
def test_bad_events_are_rejected_naming_the_field_and_store_nothing(
    client: Any, redis_client: redis.Redis, event: dict[str, Any], field: str
) -> None:
    start(client)
    enrol(client, "kunde-8")
    before = counts(redis_client)
    alone = send(client, event)
    assert alone.status_code == 422
    assert field in alone.json["errors"]["events"]["0"]
    mixed = send(
        client,
        event,
        {"type": "conversion", "id": "ok", "visitor": "kunde-8", "goal": "add_to_cart"},
    )
    assert mixed.status_code == 200
    assert [r["status"] for r in mixed.json["results"]] == ["rejected", "accepted"]
    assert field in mixed.json["results"][0]["errors"]
    after = counts(redis_client)
    assert {k: v for k, v in after.items() if "add_to_cart" not in k} == before


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"events": []}, 422),
        ({"events": [{"type": "conversion"}] * 501}, 422),
        ({"events": "nope"}, 422),
        ({}, 422),
    ],
)
def test_bad_batches_are_refused(client: Any, body: dict[str, Any], status: int) -> None:
    response = client.post("/v1/events", json=body, headers=INGEST)
    assert response.status_code == status
    assert "events" in response.json["errors"]


def test_huge_body_is_refused_with_413(client: Any) -> None:
    response = client.post("/v1/events", data="x" * (3 * 1024 * 1024), content_type="text/plain")
    assert response.status_code == 413
    assert response.json["code"] == 413


def test_exposure_event_enrols_once(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    exposure = {
        "type": "exposure",
        "id": "x-1",
        "visitor": "local-1",
        "experiment": "checkout-button",
        "attributes": {"source": "youtube"},
    }
    assert send(client, exposure, headers={}).json["accepted"] == 1
    assert send(client, exposure, headers={}).json["accepted"] == 1
    enrolled = sum(v for k, v in counts(redis_client).items() if k.count(":") == 1)
    assert enrolled == 1


def test_totals_kept_by_an_earlier_version_count_on_and_move_into_the_record(
    client: Any, redis_client: redis.Redis
) -> None:
    """Versions before kept a visitor's totals as one field per goal in the totals hash; an
    upgrade must neither lose nor double them: the next event or refund reads them, writes
    them into the enrolment record and deletes the old fields."""
    start(client)
    v = variant_index(enrol(client, "kunde-alt"))
    pseudonym = services_of(client.application).pseudonymiser.pseudonymise("kunde-alt")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    totals, enrolments = keys.totals("checkout-button", 1), keys.enrolments("checkout-button", 1)
    older = {"revenue": 5000, "revenue:r": 1000, "purchase": 1, "@day": f"{today}:2"}
    redis_client.hset(totals, mapping={f"{pseudonym}:{name}": v for name, v in older.items()})
    before = counts(redis_client)

    assert send(client, order("kunde-alt", "o-new", "119.00")).json["accepted"] == 1
    found = counts(redis_client)
    # the squares move from the earlier total 5000 to 16900 (+ 11900 net): the old field was read
    assert (
        squares(found, f"q:{v}:revenue") - squares(before, f"q:{v}:revenue") == 16900**2 - 5000**2
    )
    assert found.get(f"c:{v}:purchase", 0) == before.get(f"c:{v}:purchase", 0)  # no new buyer
    assert found[f"rp:{v}:purchase"] == 1  # their second order makes a repeat buyer
    assert found[f"rt:{v}:revenue"] - before.get(f"rt:{v}:revenue", 0) == 1000 * 11900
    record = redis_client.hget(enrolments, pseudonym)
    assert record is not None
    assert record_totals(record) | {"margin": "-"} == {
        "revenue": "16900", "revenue:r": "1000", "purchase": "2", "@day": f"{today}:2",
        "margin": "-",
    }  # fmt: skip
    assert redis_client.exists(totals) == 0  # every older field it read moved into the record
    conversion = {
        "type": "conversion",
        "id": "c-alt",
        "visitor": "kunde-alt",
        "goal": "add_to_cart",
    }
    assert send(client, conversion).json["accepted"] == 1
    assert record_totals(redis_client.hget(enrolments, pseudonym) or b"")["@day"] == f"{today}:3"


def test_a_refund_reads_totals_kept_by_an_earlier_version_and_moves_them(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    enrol(client, "kunde-r")
    assert send(client, order("kunde-r", "o-r", "119.00")).json["accepted"] == 1
    pseudonym = services_of(client.application).pseudonymiser.pseudonymise("kunde-r")
    totals, enrolments = keys.totals("checkout-button", 1), keys.enrolments("checkout-button", 1)
    record = redis_client.hget(enrolments, pseudonym) or b""
    now = record_totals(record)
    # as an earlier version left it: the totals as fields of their own, none in the record
    redis_client.hset(totals, mapping={f"{pseudonym}:{name}": v for name, v in now.items()})
    redis_client.hset(enrolments, pseudonym, record.split(b"\x1eg:")[0])
    refund = {"type": "refund", "id": "r-1", "order_id": "o-r", "amount": "10.00"}
    assert send(client, refund).json["accepted"] == 1
    after = record_totals(redis_client.hget(enrolments, pseudonym) or b"")
    assert after["revenue"] == str(int(now["revenue"]) - 1000)
    assert after["margin"] == str(int(now["margin"]) - 1000)
    assert after["revenue:r"] == "1000"
    # what the refund read moved; the conversion goal's count waits for the visitor's next event
    assert redis_client.hkeys(totals) == [f"{pseudonym}:purchase".encode()]


def test_erasure_removes_per_visitor_records_and_keeps_aggregates(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    enrol(client, "kunde-9")
    enrol(client, "kunde-10")
    send(
        client,
        order("kunde-9", "o-9"),
        order("kunde-10", "o-10"),
        {"type": "conversion", "id": "c-9", "visitor": "kunde-9", "goal": "add_to_cart"},
        {"type": "refund", "id": "r-9", "order_id": "o-9", "amount": "10.00"},
    )
    aggregates = counts(redis_client)
    assert redis_client.hlen(keys.totals("checkout-button", 1)) == 0  # in the records
    assert client.delete("/v1/visitors/kunde-9", headers=VIEWER).status_code == 403
    response = client.delete("/v1/visitors/kunde-9", headers=EDITOR)
    assert response.status_code == 200
    assert response.json["removed"] == {
        "enrolments": 1,
        # purchase, revenue, margin, add_to_cart, the day's conversion count and the refunded
        # revenue are part of the enrolment record; "totals" counts older separate fields
        "totals": 0,
        "orders": 1,
        "idempotency_keys": 3,
    }
    assert counts(redis_client) == aggregates
    assert redis_client.hlen(keys.enrolments("checkout-button", 1)) == 1
    assert redis_client.hlen(keys.orders("checkout-button", 1)) == 1
    again = client.delete("/v1/visitors/kunde-9", headers=EDITOR)
    assert sum(again.json["removed"].values()) == 0
    refund = send(client, {"type": "refund", "id": "r-10", "order_id": "o-9", "amount": "1.00"})
    assert refund.json["results"][0]["status"] == "ignored"


@pytest.mark.parametrize(
    "visitor", ["a/b", "/", "100%", "%2F", "ü ñ 😀", "with space", " ", "a//b/", "?x=1#y"]
)
def test_erasure_by_body_works_for_every_visitor_id_assign_accepts(
    client: Any, redis_client: redis.Redis, visitor: str
) -> None:
    start(client)
    enrol(client, visitor)
    enrol(client, "someone-else")
    send(client, order(visitor, "o-1"))
    enrolments = keys.enrolments("checkout-button", 1)
    assert redis_client.hlen(enrolments) == 2
    denied = client.post("/v1/visitors/erase", json={"visitor": visitor}, headers=VIEWER)
    assert denied.status_code == 403
    response = client.post("/v1/visitors/erase", json={"visitor": visitor}, headers=EDITOR)
    assert response.status_code == 200, response.json
    assert response.json["removed"]["enrolments"] == 1
    assert response.json["removed"]["orders"] == 1
    assert redis_client.hlen(enrolments) == 1
    assert redis_client.hlen(keys.orders("checkout-button", 1)) == 0


@pytest.mark.parametrize("body", [{}, {"visitor": ""}, {"visitor": "v" * 129}, {"visitor": 5}])
def test_erasure_by_body_refuses_what_assign_refuses(client: Any, body: dict[str, Any]) -> None:
    response = client.post("/v1/visitors/erase", json=body, headers=EDITOR)
    assert response.status_code == 422
    assert "visitor" in response.json["errors"]
