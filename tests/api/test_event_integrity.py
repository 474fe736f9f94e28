"""POST /v1/events against a hostile sender: money limits, all-or-nothing scripts, idempotency
namespaces, browser values, per-visitor bounds (issue #12)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
import redis

from server.app import create_app
from server.config import DefaultConfig
from server.services.results import capped_from_differences
from server.storage import keys
from tests.api.test_events import INGEST, SHOP, enrol, order, send, start
from tests.dashboard.conftest import sign_in
from tests.helpers import EDITOR, EDITOR_TOKEN, VIEWER, app_settings, record_totals

# every test here runs against one Redis and against the local Redis Cluster
pytestmark = pytest.mark.both_redis


def keyspace(redis_client: redis.Redis) -> dict[Any, tuple[Any, bool]]:
    """A DUMP of every key and whether it expires: equal before and after, nothing was written."""
    return {
        name: (redis_client.dump(name), redis_client.pttl(name) > 0)
        for name in sorted(redis_client.keys("*"))
    }


def conversion(visitor: str, event_id: str, goal: str = "purchase", **extra: Any) -> dict[str, Any]:
    return {"type": "conversion", "id": event_id, "visitor": visitor, "goal": goal, **extra}


@pytest.mark.parametrize(
    "amount", ["1e999999", "\uff11\uff12", "\u0661\u0662\u0663", "1_000", "-0", "1.001", "NaN"]
)
@pytest.mark.parametrize("with_key", [True, False])
def test_malformed_amounts_are_a_422_naming_the_field(
    client: Any, redis_client: redis.Redis, amount: str, with_key: bool
) -> None:
    start(client)
    enrol(client, "kunde-1")
    before = keyspace(redis_client)
    headers = INGEST if with_key else {"Origin": "https://shop.example"}
    for event, field in [
        (conversion("kunde-1", "c-1", value=amount), "value"),
        (order("kunde-1", "o-1", amount), "revenue"),
        (order("kunde-1", "o-2", "10.00", tax=amount), "tax"),
        ({"type": "refund", "id": "r", "order_id": "o", "amount": amount}, "amount"),
    ]:
        response = send(client, event, headers=headers)
        assert response.status_code == 422, (event, response.json)
        assert field in response.json["errors"]["events"]["0"]
    assert keyspace(redis_client) == before


# --- money limits: exact at the documented bounds ---------------------------------------------

COUNTS = keys.counts("checkout-button", 1)
CENT = 100
MILLION = 1_000_000 * CENT  # the largest |visitor total| in cents (README "Limits")
BOUND_VISITORS = 10_000_000  # visitors per variant the counters stay exact for
CAP = round(DefaultConfig.VALUE_CAP * CENT)  # the default value cap in cents (issue 13)


def parts(total: int) -> tuple[int, int]:
    """A square split into the two stored parts (storage/keys.py), computed with Python ints."""
    high, low = divmod(abs(total), 10_000)
    cross = 2 * high * low
    return high * high + cross // 10_000, (cross % 10_000) * 10_000 + low * low


def stored_squares(found: dict[str, int], field: str) -> int:
    """``q:…`` from qh·10^8 + q, ``cq:…`` from cqh·10^8 + cq."""
    return found.get(field.replace("q:", "qh:", 1), 0) * 10**8 + found.get(field, 0)


def capped(total: int, cap: int = CAP) -> int:
    """A visitor's total as the capped sums count it: winsorised to ±cap."""
    return max(-cap, min(cap, total))


def counters(redis_client: redis.Redis) -> dict[str, int]:
    """The stored counters, with the capped sums (cs, cq, cqh) as the results read them from
    the uncapped sums and their stored differences (ds, dq, dqh)."""
    stored = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    return {
        name: value for name, value in capped_from_differences(stored).items() if value is not None
    }


def test_counters_are_exact_for_ten_million_visitors_of_a_million_each(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    real = ["kunde-a", "kunde-b", "kunde-c"]
    variants = {name: enrol(client, name) for name in real}
    # Nobody enrols ten million visitors in a test: the counters of all but the real three are
    # planted as the scripts would have left them, each of those visitors at 999,999.99 (and
    # at the value cap in the capped sums, kept as their differences from the uncapped sums).
    planted = BOUND_VISITORS - len(real)
    others = MILLION - 1
    high, low = parts(others)
    capped_high, capped_low = parts(capped(others))
    for v in (0, 1):
        base = counters(redis_client)
        mapping = {
            f"e:{v}": base.get(f"e:{v}", 0) + planted,
            f"c:{v}:revenue": planted,
            f"n:{v}:revenue": planted,
            f"s:{v}:revenue": planted * others,
            f"qh:{v}:revenue": planted * high,
            f"q:{v}:revenue": planted * low,
            f"ds:{v}:revenue": planted * (capped(others) - others),
            f"dqh:{v}:revenue": planted * (capped_high - high),
            f"dq:{v}:revenue": planted * (capped_low - low),
        }
        redis_client.hset(COUNTS, mapping=mapping)  # type: ignore[arg-type]
    # the real three: exactly a million, 999,999.99 in two orders, and a refunded order
    assert send(client, order("kunde-a", "a-1", "1000000.00")).json["accepted"] == 1
    assert send(client, order("kunde-b", "b-1", "999999.98")).json["accepted"] == 1
    assert send(client, order("kunde-b", "b-2", "0.01")).json["accepted"] == 1
    assert send(client, order("kunde-c", "c-1", "123456.78")).json["accepted"] == 1
    refund = {"type": "refund", "id": "r", "order_id": "c-1", "amount": "0.79"}
    assert send(client, refund).json["accepted"] == 1
    totals = {"kunde-a": MILLION, "kunde-b": MILLION - 1, "kunde-c": 12345678 - 79}

    found = counters(redis_client)
    body = client.get("/v1/experiments/checkout-button/results", headers=VIEWER).json
    report = next(goal for goal in body["goals"] if goal["key"] == "revenue")
    assert report["unavailable"] is None
    for v, variant in enumerate(["control", "green"]):
        mine = [totals[name] for name in real if variants[name] == variant]
        visitors = planted + len(mine)
        total = planted * others + sum(mine)
        squares = planted * others * others + sum(t * t for t in mine)
        assert found[f"s:{v}:revenue"] == total
        assert stored_squares(found, f"q:{v}:revenue") == squares
        assert squares > 2**63  # a single int64 counter would have overflowed long before
        # the capped sums the statistics use: exact too, though their squares pass 2^53
        capped_total = planted * capped(others) + sum(capped(t) for t in mine)
        capped_squares = planted * capped(others) ** 2 + sum(capped(t) ** 2 for t in mine)
        assert found[f"cs:{v}:revenue"] == capped_total
        assert stored_squares(found, f"cq:{v}:revenue") == capped_squares
        assert capped_squares > 2**53
        # what the results API reads agrees with exact arithmetic
        totals_row = report["totals"][v]
        assert totals_row["visitors"] == visitors
        assert Decimal(str(totals_row["value_sum"])) == Decimal(total) / CENT
        mean = Decimal(capped_total) / CENT / visitors  # the statistics count capped totals
        assert abs(Decimal(str(report["result"]["variants"][v]["estimate"])) - mean) < Decimal(
            "1e-6"
        )


def test_capped_sums_are_exact_with_many_visitors_at_the_cap(
    client: Any, redis_client: redis.Redis
) -> None:
    """The value cap (issue 13) and the two-part squares (issue 12) together, at the bounds."""
    start(client)
    # ten million visitors per variant at the cap, planted as the scripts leave them: their
    # capped squares alone are 10^7 × 10^10 = 10^17 cents², far above 2^53 (at the cap, the
    # capped sums equal the uncapped ones: no difference is stored)
    planted = BOUND_VISITORS - 20
    high, low = parts(CAP)
    for v in (0, 1):
        redis_client.hset(  # type: ignore[arg-type]
            COUNTS,
            mapping={
                f"e:{v}": planted,
                f"c:{v}:revenue": planted,
                f"n:{v}:revenue": planted,
                f"s:{v}:revenue": planted * CAP,
                f"qh:{v}:revenue": planted * high,
                f"q:{v}:revenue": planted * low,
            },
        )
    # real visitors around the cap: below, at, just above, far above, back below by a refund,
    # and margins below minus the cap
    amounts = ["999.99", "1000.00", "1000.01", "1000000.00", "123.45", "1500.00", "0.01"]
    expected: dict[int, list[int]] = {0: [], 1: []}
    for number in range(20):
        visitor = f"kunde-{number}"
        v = ["control", "green"].index(enrol(client, visitor))
        amount = amounts[number % len(amounts)]
        cost = "900000.00" if number % 5 == 4 else "0.00"
        sent = send(client, order(visitor, f"o-{number}", amount, cost_of_goods=cost))
        assert sent.json["accepted"] == 1
        total = int(Decimal(amount) * CENT)
        if amount == "1500.00":
            refund = {"type": "refund", "id": "r", "order_id": f"o-{number}", "amount": "600.00"}
            assert send(client, refund).json["accepted"] == 1
            total -= 60_000
        expected[v].append(total)
    found = counters(redis_client)
    enrolments = redis_client.hgetall(keys.enrolments("checkout-button", 1))
    body = client.get("/v1/experiments/checkout-button/results", headers=VIEWER).json
    reports = {report["key"]: report for report in body["goals"]}
    for v in (0, 1):
        # revenue: the capped sums against Python, planted visitors included
        mine = expected[v]
        capped_total = planted * CAP + sum(capped(t) for t in mine)
        capped_squares = planted * CAP**2 + sum(capped(t) ** 2 for t in mine)
        assert found[f"cs:{v}:revenue"] == capped_total
        assert stored_squares(found, f"cq:{v}:revenue") == capped_squares
        assert capped_squares > 2**53
        assert found[f"s:{v}:revenue"] == planted * CAP + sum(mine)  # totals stay uncapped
        visitors = planted + len(mine)
        estimate = Decimal(str(reports["revenue"]["result"]["variants"][v]["estimate"]))
        assert abs(estimate - Decimal(capped_total) / CENT / visitors) < Decimal("1e-9")
        # margin (no planted visitors): every day and segment value against the stored totals
        margins = [
            int(totals["margin"])
            for record, totals in ((raw, record_totals(raw)) for raw in enrolments.values())
            if "margin" in totals and record.split(b"\x1f")[0] == str(v).encode()
        ]
        assert any(margin < -CAP for margin in margins)
        day = time.strftime("%Y-%m-%d", time.gmtime())
        for suffix in ("", f":d:{day}", ":source=facebook"):
            assert found.get(f"cs:{v}:margin{suffix}", 0) == sum(capped(m) for m in margins)
            assert stored_squares(found, f"cq:{v}:margin{suffix}") == sum(
                capped(m) ** 2 for m in margins
            )
        assert reports["revenue"]["unavailable"] is None
        assert reports["margin"]["unavailable"] is None
        assert reports["revenue"]["cap"] == DefaultConfig.VALUE_CAP


def test_a_capped_counter_at_the_exact_bound_refuses_the_event_and_writes_nothing(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    v = ["control", "green"].index(enrol(client, "kunde-1"))
    # an order over the cap lowers each difference of the capped sums from the uncapped ones
    for field in (f"ds:{v}:revenue", f"dqh:{v}:revenue", f"dq:{v}:revenue:source=facebook"):
        redis_client.hset(COUNTS, field, str(-(2**53 - 1)))
        before = keyspace(redis_client)
        response = send(client, order("kunde-1", "o-1", "1500.01"))
        assert response.status_code == 422, field
        assert "goal" in response.json["errors"]["events"]["0"]
        assert keyspace(redis_client) == before
        redis_client.hdel(COUNTS, field)
    assert send(client, order("kunde-1", "o-1", "1500.01")).json["accepted"] == 1


def test_amounts_over_the_limits_are_422_and_write_nothing(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    enrol(client, "a2")
    before = keyspace(redis_client)
    # the request: one browser conversion whose square overflowed the old counters
    browser = send(client, conversion("a2", "p1", value="30370005"), headers={})
    assert browser.status_code == 422
    assert "value" in browser.json["errors"]["events"]["0"]
    too_big = send(client, order("a2", "o-1", "99999999.99"))
    assert too_big.status_code == 422
    assert "revenue" in too_big.json["errors"]["events"]["0"]
    assert keyspace(redis_client) == before
    # a visitor total may reach the limit, not pass it
    assert send(client, order("a2", "o-2", "600000.00")).json["accepted"] == 1
    assert send(client, order("a2", "o-3", "400000.00")).json["accepted"] == 1
    before = keyspace(redis_client)
    over = send(client, order("a2", "o-4", "0.01"))
    assert over.status_code == 422
    assert "revenue" in over.json["errors"]["events"]["0"]
    assert keyspace(redis_client) == before
    # a margin below minus the limit is refused the same way
    enrol(client, "a3")
    before = keyspace(redis_client)
    costly = order("a3", "o-5", "0.00", cost_of_goods="1000000.00", payment_fee="0.01")
    assert send(client, costly).status_code == 422
    assert keyspace(redis_client) == before


# --- all or nothing: a failure inside a script writes nothing ---------------------------------

INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda r: r.set(keys.totals("checkout-button", 1), "x"), id="totals-string"),
        pytest.param(lambda r: r.set(keys.counts("checkout-button", 1), "x"), id="counts-string"),
        pytest.param(lambda r: r.set(keys.orders("checkout-button", 1), "x"), id="orders-string"),
        pytest.param(lambda r: r.rpush(keys.seen("checkout-button", 1), "x"), id="seen-list"),
    ],
)
def test_record_event_with_a_wrong_type_key_writes_nothing(
    client: Any, redis_client: redis.Redis, plant: Any
) -> None:
    start(client)
    enrol(client, "kunde-1")
    # the first event of the batch would count; the script refuses before writing it
    batch = [conversion("kunde-1", "c-1", "add_to_cart"), order("kunde-1", "o-1")]
    plant(redis_client)
    before = keyspace(redis_client)
    response = send(client, *batch)
    assert response.status_code == 503
    assert keyspace(redis_client) == before


@pytest.mark.parametrize(
    "counter",
    [
        "c:{v}:purchase",
        "n:{v}:purchase",
        "s:{v}:revenue",
        "q:{v}:margin:d:{day}",
        "c:{v}:add_to_cart",
        # the capped sums (issue 13), kept as differences, are checked like the others (an
        # order over the cap changes them)
        "ds:{v}:revenue",
        "dqh:{v}:margin:d:{day}",
        "dq:{v}:revenue:source=facebook",
    ],
)
@pytest.mark.parametrize("value", [str(INT64_MAX), "-9007199254740992", "12abc", "1.5"])
def test_record_event_refuses_a_counter_it_cannot_add_to_exactly_and_writes_nothing(
    client: Any, redis_client: redis.Redis, counter: str, value: str
) -> None:
    start(client)
    v = ["control", "green"].index(enrol(client, "kunde-1"))
    day = time.strftime("%Y-%m-%d", time.gmtime())
    redis_client.hset(COUNTS, counter.format(v=v, day=day), value)
    before = keyspace(redis_client)
    event = order("kunde-1", "o-1", "1500.01" if counter.startswith("d") else "119.00")
    if "cart" in counter:
        event = conversion("kunde-1", "c-1", "add_to_cart")
    response = send(client, event)
    assert response.status_code == 422
    assert "goal" in response.json["errors"]["events"]["0"]
    assert keyspace(redis_client) == before


def test_within_a_batch_each_event_is_checked_against_what_the_events_before_it_left(
    client: Any, redis_client: redis.Redis
) -> None:
    """record_event.lua keeps a batch's counters in the script as its events change them: the
    second order would take ``n:…`` past 2^53 - 1 after the first, and is refused alone."""
    start(client)
    v = ["control", "green"].index(enrol(client, "kunde-1"))
    redis_client.hset(COUNTS, f"n:{v}:revenue", str(2**53 - 2))
    response = send(client, order("kunde-1", "o-1"), order("kunde-1", "o-2"))
    assert [result["status"] for result in response.json["results"]] == ["accepted", "rejected"]
    assert "goal" in response.json["results"][1]["errors"]
    found = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    assert found[f"n:{v}:revenue"] == 2**53 - 1
    assert found[f"c:{v}:purchase"] == 1
    assert found[f"s:{v}:revenue"] == 11900  # once
    assert redis_client.hkeys(keys.orders("checkout-button", 1)) == [b"o-1"]


def test_a_batch_counts_exactly_what_its_events_count_sent_one_by_one(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A batch's counters are written at the end of the script, in HSETs of at most 500 fields:
    a batch that changes well over 500 counters leaves the counters its events leave one by
    one."""
    sources = ["facebook", "instagram", "youtube", "newsletter", "search", "direct"]
    visitors = [f"kunde-{n}" for n in range(12)]
    now = time.time()
    # seven orders of 400–620 each: every visitor's total passes the value cap on the way, so
    # the differences of the capped sums change too
    batch = [
        order(visitor, f"o-{n}-{day}", f"{20 * (20 + n)}.{day}9", ts=now - day * 86400)
        for n, visitor in enumerate(visitors)
        for day in range(7)  # ts may lie up to 7 days back
    ] + [conversion(visitor, f"c-{n}", "add_to_cart") for n, visitor in enumerate(visitors)]

    def counted(*, is_batch: bool) -> dict[str, int]:
        redis_client.flushall()
        client = create_app(app_settings(redis_url)).test_client()
        start(client, variants=[{"key": key} for key in ("control", "green", "blue", "red")])
        for n, visitor in enumerate(visitors):
            enrol(client, visitor, source=sources[n % len(sources)])
        for events in [batch] if is_batch else [[event] for event in batch]:
            response = send(client, *events)
            assert response.json["accepted"] == len(events), response.json
        return {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}

    one_by_one = counted(is_batch=False)
    assert len(one_by_one) > 500  # two HSETs
    assert any(name.startswith(("ds:", "dq:", "dqh:")) for name in one_by_one)
    assert counted(is_batch=True) == one_by_one


@pytest.mark.parametrize("counter", ["q:{v}:margin", "dq:{v}:revenue", "dqh:{v}:margin"])
def test_refund_with_an_odd_counter_or_key_writes_nothing(
    client: Any, redis_client: redis.Redis, counter: str
) -> None:
    start(client)
    v = ["control", "green"].index(enrol(client, "kunde-1"))
    # over the cap: the refund changes the differences of the capped sums too
    assert send(client, order("kunde-1", "o-1", "1500.01")).json["accepted"] == 1
    refund = {"type": "refund", "id": "r-1", "order_id": "o-1", "amount": "10.00"}
    redis_client.hset(COUNTS, counter.format(v=v), str(INT64_MAX))
    before = keyspace(redis_client)
    response = send(client, refund)
    assert response.status_code == 422
    assert keyspace(redis_client) == before
    redis_client.hset(COUNTS, counter.format(v=v), "0")
    redis_client.delete(keys.seen("checkout-button", 1))
    redis_client.set(keys.seen("checkout-button", 1), "x")
    before = keyspace(redis_client)
    assert send(client, refund).status_code == 503
    assert keyspace(redis_client) == before


def test_enrolment_with_an_odd_counter_or_key_writes_nothing(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    redis_client.hset(COUNTS, mapping={"e:0": "x", "e:1": "x"})
    before = keyspace(redis_client)
    response = client.post(
        "/v1/assign", json={"visitor": "kunde-1", "attributes": {"source": "facebook"}}
    )
    assert response.status_code == 200  # degraded: decided, not enrolled
    assert response.json["recorded"] is False
    assert keyspace(redis_client) == before
    redis_client.hset(COUNTS, mapping={"e:0": "0", "e:1": "0"})
    redis_client.set(keys.segment_values("checkout-button", 1, "source"), "x")
    before = keyspace(redis_client)
    response = client.post(
        "/v1/assign", json={"visitor": "kunde-2", "attributes": {"source": "facebook"}}
    )
    assert response.json["recorded"] is False
    assert keyspace(redis_client) == before


# --- results never fail on odd counters ------------------------------------------------------


@pytest.mark.parametrize(
    ("odd", "goal"),
    [
        ({"s:1:revenue": 5000, "q:1:revenue": 1}, "revenue"),  # negative variance
        ({"s:0:margin": 2**62, "c:0:margin": 1}, "margin"),  # an overflow of the old script
        ({"q:0:revenue": -4}, "revenue"),
        ({"c:1:add_to_cart": 999}, "add_to_cart"),  # more converted than visitors
        ({"c:0:purchase": -1}, "purchase"),
        ({"s:0:margin": "12abc"}, "margin"),  # not a number at all
        ({"qh:1:revenue:source=facebook": -7}, None),  # a segment only: that table goes
        ({"c:0:purchase:d:2026-01-01": "x"}, "purchase"),
        # capped sums (issue 13), stored as differences from the uncapped ones
        ({"ds:1:revenue": 5000, "dq:1:revenue": 1}, "revenue"),
        ({"dqh:0:margin": -3}, "margin"),
        ({"ds:0:margin": "1.5"}, "margin"),
    ],
)
def test_odd_counters_make_their_goal_unavailable_and_nothing_else(
    app: Any, client: Any, redis_client: redis.Redis, odd: dict[str, Any], goal: str | None
) -> None:
    start(client)
    for index in range(6):
        enrol(client, f"kunde-{index}")
        send(client, order(f"kunde-{index}", f"o-{index}", f"{10 + index}.00"))
    redis_client.hset(COUNTS, mapping=odd)
    response = client.get("/v1/experiments/checkout-button/results", headers=VIEWER)
    assert response.status_code == 200
    reports = {report["key"]: report for report in response.json["goals"]}
    for key, report in reports.items():
        if key == goal:
            assert report["unavailable"], report
            assert "unavailable" in report["summary"]
        else:
            assert report["unavailable"] is None
    assert reports["purchase" if goal != "purchase" else "revenue"]["result"]["variants"]
    if goal is None:
        tables = {(s["attribute"], s["goal"]) for s in response.json["segments"]}
        assert ("source", "revenue") not in tables and ("source", "purchase") in tables
    editor = sign_in(app.test_client(), EDITOR_TOKEN)
    page = editor.get("/dashboard/experiments/checkout-button")
    assert page.status_code == 200
    if goal is not None:
        assert "Results unavailable" in page.get_data(as_text=True)
    assert editor.get("/dashboard/").status_code == 200
    for action, status in (("stop", "stopped"), ("archive", "archived")):
        path = f"/v1/experiments/checkout-button/{action}"
        assert client.post(path, headers=EDITOR).status_code == 200
        listed = editor.get(f"/dashboard/?status={status}")
        assert listed.status_code == 200 and "checkout-button" in listed.get_data(as_text=True)
        assert editor.get("/dashboard/experiments/checkout-button").status_code == 200
        results = client.get("/v1/experiments/checkout-button/results", headers=VIEWER)
        assert results.status_code == 200


# --- money only through the ingest key -------------------------------------------------------

BROWSER = {"Origin": "https://shop.example"}  # no ingest key: what a page's snippet sends


def test_a_browser_conversion_with_a_value_counts_no_money(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    v = ["control", "green"].index(enrol(client, "a2"))
    response = send(client, conversion("a2", "p1", value="999.00"), headers=BROWSER)
    assert response.json["results"][0]["status"] == "accepted"
    found = counters(redis_client)
    assert found[f"c:{v}:purchase"] == 1  # the conversion counts
    assert not [name for name in found if ":revenue" in name or ":margin" in name]
    # the same conversion from the shop's backend carries money
    send(client, conversion("a2", "p2", value="999.00"))
    assert counters(redis_client)[f"s:{v}:revenue"] == 99900


def test_a_value_goal_takes_browser_values_only_when_it_says_so(
    client: Any, redis_client: redis.Redis
) -> None:
    goals = [
        {"key": "purchase", "primary": True},
        {"key": "basket", "kind": "revenue", "event": "purchase", "accept_browser_value": True},
        {"key": "revenue", "kind": "revenue", "event": "purchase"},
    ]
    start(client, goals=goals)
    described = client.get("/v1/experiments/checkout-button", headers=VIEWER).json
    assert [g["accept_browser_value"] for g in described["goals"]] == [False, True, False]
    v = ["control", "green"].index(enrol(client, "a2"))
    send(client, conversion("a2", "p1", value="12.34"), headers=BROWSER)
    found = counters(redis_client)
    assert found[f"s:{v}:basket"] == 1234
    assert f"s:{v}:revenue" not in found


def test_only_value_goals_may_accept_browser_values(client: Any) -> None:
    goals = [{"key": "purchase", "accept_browser_value": True}]
    response = client.post("/v1/experiments", json={**SHOP, "goals": goals}, headers=EDITOR)
    assert response.status_code == 422
    assert "accept_browser_value" in response.json["errors"]["goals"]["0"]


# --- idempotency: namespaces per kind, exact erasure, replays and conflicts ------------------


def test_a_conversion_id_cannot_shadow_an_order(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    v = ["control", "green"].index(enrol(client, "kunde-1"))
    forged = conversion("kunde-1", "order:G-123", "add_to_cart")
    assert send(client, forged, headers=BROWSER).json["results"][0]["status"] == "accepted"
    real = send(client, order("kunde-1", "G-123", "50.00")).json
    assert real["results"][0]["status"] == "accepted"
    assert counters(redis_client)[f"s:{v}:revenue"] == 5000


def test_refund_ids_of_different_orders_never_collide(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    enrol(client, "kunde-1")
    enrol(client, "kunde-2")
    send(client, order("kunde-1", "k", "100.00"), order("kunde-2", "k:r", "100.00"))
    first = {"type": "refund", "id": "r:x", "order_id": "k", "amount": "10.00"}
    second = {"type": "refund", "id": "x", "order_id": "k:r", "amount": "10.00"}
    statuses = [r["status"] for r in send(client, first, second).json["results"]]
    assert statuses == ["accepted", "accepted"]
    seen = keys.seen("checkout-button", 1)
    members = {m.decode() for m in redis_client.zrange(seen, 0, -1)}
    assert {"r:1:k:r:x", "r:3:k:r:x"} <= members
    # erasing the owner of order "k" removes its refund, never the one of order "k:r"
    removed = client.delete("/v1/visitors/kunde-1", headers=EDITOR).json["removed"]
    assert removed["idempotency_keys"] == 2  # the order and its refund
    left = {m.decode() for m in redis_client.zrange(seen, 0, -1)}
    assert left == {"o:k:r", "r:3:k:r:x"}


def test_a_retry_answers_like_the_first_send_and_other_content_is_a_conflict(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    enrol(client, "kunde-1")
    events = [
        conversion("kunde-1", "c-1", value="5.00"),
        order("kunde-1", "o-1", "20.00"),
        {"type": "refund", "id": "r-1", "order_id": "o-1", "amount": "2.00"},
    ]
    first = send(client, *events).json["results"]
    assert [r["status"] for r in first] == ["accepted"] * 3
    before = keyspace(redis_client)
    again = send(client, *events).json["results"]
    assert [r["status"] for r in again] == ["accepted"] * 3
    changed = [
        conversion("kunde-1", "c-1", value="6.00"),
        order("kunde-1", "o-1", "21.00"),
        {"type": "refund", "id": "r-1", "order_id": "o-1", "amount": "3.00"},
    ]
    conflicts = send(client, *changed).json["results"]
    assert [r["status"] for r in conflicts] == ["conflict"] * 3
    assert all("id" in r["errors"] for r in conflicts)
    assert keyspace(redis_client) == before


# --- bounded memory per anonymous client -----------------------------------------------------


def test_a_visitor_adds_at_most_the_daily_number_of_conversion_ids(
    client: Any, redis_client: redis.Redis
) -> None:
    cap = DefaultConfig.CONVERSIONS_PER_VISITOR_DAY
    start(client)
    enrol(client, "a2")
    batch = [conversion("a2", f"c-{i}", "add_to_cart") for i in range(cap)]
    response = send(client, *batch, headers=BROWSER)
    assert response.json["accepted"] == cap
    before = keyspace(redis_client)
    over = send(client, conversion("a2", "one-more", "add_to_cart"), headers=BROWSER)
    assert over.status_code == 422
    assert "id" in over.json["errors"]["events"]["0"]
    assert keyspace(redis_client) == before
    # replays of ids already counted still answer as the first send did
    assert send(client, batch[0], headers=BROWSER).json["results"][0]["status"] == "accepted"
    enrol(client, "a3")  # other visitors are not affected
    assert send(client, conversion("a3", "c-0", "add_to_cart")).json["accepted"] == 1


def test_capped_sums_that_cannot_be_are_named_in_the_reason(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    for index in range(4):
        enrol(client, f"kunde-{index}")
        send(client, order(f"kunde-{index}", f"o-{index}", "50.00"))
    # the uncapped sums stay consistent; only the capped ones the statistics use are odd
    redis_client.hset(COUNTS, mapping={"ds:0:revenue": 900_000, "dq:0:revenue": 1})
    body = client.get("/v1/experiments/checkout-button/results", headers=VIEWER).json
    reports = {report["key"]: report for report in body["goals"]}
    assert "capped sum of squares" in reports["revenue"]["unavailable"]
    assert reports["margin"]["unavailable"] is None


def test_a_record_with_another_number_of_segment_values_still_counts(
    client: Any, redis_client: redis.Redis
) -> None:
    """record_event.lua reads a record's variant and segment values with one pattern for the
    experiment's number of segments (one here); a record with fewer values (the missing one
    counts as "unknown") or more (the extra one is ignored) takes the general loop."""
    start(client)
    enrolments = keys.enrolments("checkout-button", 1)
    for visitor, values, expected in (
        ("kunde-1", b"", "unknown"),
        ("kunde-2", b"\x1fsearch\x1fextra", "search"),
    ):
        known = set(redis_client.hkeys(enrolments))
        v = ["control", "green"].index(enrol(client, visitor, "search"))
        (pseudonym,) = set(redis_client.hkeys(enrolments)) - known
        plain, separator, extras = (redis_client.hget(enrolments, pseudonym) or b"").partition(
            b"\x1e"
        )
        assert plain.split(b"\x1f")[1:] == [b"search"]
        redis_client.hset(
            enrolments, pseudonym, plain.split(b"\x1f")[0] + values + separator + extras
        )
        assert send(client, order(visitor, f"o-{visitor}", "10.00")).json["accepted"] == 1
        assert counters(redis_client)[f"c:{v}:purchase:source={expected}"] >= 1
