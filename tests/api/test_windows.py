"""Attribution windows (issue 21): goals that count for a fixed time after each enrolment.

Time is controlled the way the demo tests control it: enrolments, events and lifecycle steps go
through the app's own services with a ``now`` in the past, and the HTTP API reads the outcome
at the real time.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
import redis

from server.app import create_app
from server.context import services_of
from server.services import experiments as services
from server.services.assignments import AssignRequest
from tests.helpers import EDITOR, INGEST_TOKEN, VIEWER, app_settings, record_totals

DAY = 86_400
KEY = "loyalty"
COUNTS = f"sw:{{{KEY}}}:p1:counts"
EXPERIMENT: dict[str, Any] = {
    "key": KEY,
    "name": "Loyalty note",
    "variants": [{"key": "control"}, {"key": "note"}],
    "goals": [
        {"key": "purchase", "primary": True, "window_days": 30},
        {"key": "margin", "kind": "margin", "event": "purchase", "window_days": 30},
        {"key": "signup"},
    ],
}


class Shop:
    """Drives one app through its services at chosen moments; reads through HTTP."""

    def __init__(self, redis_url: str, **settings: Any) -> None:
        self.app = create_app(app_settings(redis_url, **settings))
        self.client = self.app.test_client()
        self.store = services_of(self.app).store
        self.cache = services_of(self.app).experiment_cache

    def create(self, **changes: Any) -> None:
        body = {**EXPERIMENT, **changes}
        assert self.client.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201

    def act(self, action: str, at: float) -> None:
        services.act_on_experiment(self.store, KEY, action, "test", at, retention_days=90)
        self.cache.invalidate()

    def enrol(self, visitor: str, at: float, **attributes: Any) -> str:
        assigner = services_of(self.app).assigner
        request = AssignRequest(visitor=visitor, experiments=(KEY,), attributes=attributes)
        (answer,) = assigner.assign(request, at).assignments
        assert answer.is_enrolled
        return str(answer.variant_key)

    def send(self, at: float, *events: dict[str, Any]) -> list[str]:
        self.cache.invalidate()  # the moments jump around; each send reads the configuration
        recorder = services_of(self.app).event_recorder
        return [outcome.status for outcome in recorder.record(events, at, is_trusted=True)]

    def order(self, visitor: str, order_id: str, revenue: int, at: float) -> str:
        event = {"type": "order", "id": None, "visitor": visitor, "order_id": order_id,
                 "goal": "purchase", "revenue": revenue, "tax": 0, "shipping": 0,
                 "discount": 0, "cost_of_goods": revenue // 2, "payment_fee": 0,
                 "currency": None, "ts": at}  # fmt: skip
        (status,) = self.send(at, event)
        return status

    def refund(self, order_id: str, amount: int, at: float, refund_id: str = "r") -> str:
        event = {"type": "refund", "id": refund_id, "order_id": order_id, "amount": amount,
                 "ts": at}  # fmt: skip
        (status,) = self.send(at, event)
        return status

    def experiment(self) -> Any:
        return self.client.get(f"/v1/experiments/{KEY}", headers=VIEWER).json

    def results(self) -> Any:
        return self.client.get(f"/v1/experiments/{KEY}/results", headers=VIEWER).json


@pytest.fixture
def shop(redis_server: Any, redis_client: redis.Redis) -> Shop:
    return Shop(redis_server.url)


def moment(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def counters(redis_client: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}


def test_windowed_goal_counts_after_the_stop_until_each_visitors_window_closes(
    shop: Shop, redis_client: redis.Redis
) -> None:
    start = time.time() - 100 * DAY
    shop.create()
    shop.act("start", start)
    early = shop.enrol("early", start)
    late = shop.enrol("late", start + 11 * DAY)
    assert shop.order("early", "o-1", 5000, start + 10 * DAY) == "accepted"
    shop.act("stop", start + 12 * DAY)
    # after the stop: the windowed goals go on counting for each visitor's 30 days ...
    assert shop.order("early", "o-2", 3000, start + 20 * DAY) == "accepted"
    assert shop.order("late", "o-3", 4000, start + 40 * DAY) == "accepted"
    # ... and not after
    assert shop.order("early", "o-4", 7000, start + 31 * DAY) == "ignored"
    # a goal without a window stops with the experiment
    signup = {"type": "conversion", "id": "s-1", "visitor": "late", "goal": "signup",
              "value": 0, "ts": start + 13 * DAY}  # fmt: skip
    assert shop.send(start + 13 * DAY, signup) == ["ignored"]
    found = counters(redis_client)
    index = {"control": 0, "note": 1}
    events = {early: 0, late: 0}
    events[early] += 2
    events[late] += 1
    for variant, count in events.items():
        assert found.get(f"n:{index[variant]}:purchase", 0) == count
    margins = {early: 0, late: 0}
    margins[early] += 2500 + 1500
    margins[late] += 2000
    for variant, cents in margins.items():
        assert found.get(f"s:{index[variant]}:margin", 0) == cents
    assert not any(name.startswith("c:") and ":signup" in name for name in found)
    body = shop.experiment()
    stopped = moment(body["stopped_at"])
    assert moment(body["windows_close_at"]) == pytest.approx(stopped + 30 * DAY, abs=1)
    assert moment(body["matures_at"]) == pytest.approx(stopped + (30 + 14) * DAY, abs=1)
    assert body["goals"][1]["window_days"] == 30 and body["goals"][1]["return_days"] == 14
    assert body["goals"][0]["return_days"] == 0 and body["goals"][2]["return_days"] is None


def one_buyer(shop: Shop) -> tuple[float, int]:
    """An experiment started 100 days ago with one visitor, "buyer", enrolled at its start:
    the start and the buyer's variant index."""
    start = time.time() - 100 * DAY
    shop.create()
    shop.act("start", start)
    return start, {"control": 0, "note": 1}[shop.enrol("buyer", start)]


def test_refunds_count_until_the_return_period_after_the_window_has_passed(
    shop: Shop, redis_client: redis.Redis
) -> None:
    start, variant = one_buyer(shop)
    assert shop.order("buyer", "o-1", 10000, start + 29 * DAY) == "accepted"
    assert shop.refund("o-1", 2000, start + 40 * DAY, "r-1") == "accepted"  # day 40 < 30 + 14
    assert shop.refund("o-1", 2000, start + 45 * DAY, "r-2") == "ignored"  # after day 44
    found = counters(redis_client)
    assert found[f"s:{variant}:margin"] == 5000 - 2000


def test_a_late_send_counts_within_the_return_period_and_never_after_the_visitor_settled(
    shop: Shop, redis_client: redis.Redis
) -> None:
    start, variant = one_buyer(shop)
    order = {"type": "order", "id": None, "visitor": "buyer", "goal": "purchase", "tax": 0,
             "shipping": 0, "discount": 0, "payment_fee": 0, "currency": None}  # fmt: skip
    # dated on day 29, sent on day 35: inside the margin goal's 14-day return period, after
    # the purchase goal's window (conversion goals have none)
    late = {**order, "order_id": "o-late", "revenue": 4000, "cost_of_goods": 2000,
            "ts": start + 29 * DAY}  # fmt: skip
    assert shop.send(start + 35 * DAY, late) == ["accepted"]
    # dated on day 29, sent on day 45: the visitor's figures settled on day 44
    later = {**late, "order_id": "o-later", "ts": start + 29 * DAY}
    assert shop.send(start + 45 * DAY, later) == ["ignored"]
    # dated on day 31: outside the window, whenever it is sent
    outside = {**late, "order_id": "o-outside", "ts": start + 31 * DAY}
    assert shop.send(start + 32 * DAY, outside) == ["ignored"]
    found = counters(redis_client)
    assert found[f"s:{variant}:margin"] == 2000
    assert f"n:{variant}:purchase" not in found


def test_a_paused_experiment_counts_windowed_goals_only(
    shop: Shop, redis_client: redis.Redis
) -> None:
    start = time.time() - 10 * DAY
    shop.create()
    shop.act("start", start)
    variant = {"control": 0, "note": 1}[shop.enrol("buyer", start)]
    shop.act("pause", start + DAY)
    assert shop.order("buyer", "o-1", 6000, start + 2 * DAY) == "accepted"
    signup = {"type": "conversion", "id": "s-1", "visitor": "buyer", "goal": "signup",
              "value": 0, "ts": start + 2 * DAY}  # fmt: skip
    assert shop.send(start + 2 * DAY, signup) == ["ignored"]
    found = counters(redis_client)
    assert found[f"c:{variant}:purchase"] == 1 and found[f"s:{variant}:margin"] == 3000
    assert shop.experiment()["windows_close_at"] is None  # it may resume and enrol again


def test_running_experiment_shows_no_close_date_and_windows_are_fixed_once_started(
    shop: Shop,
) -> None:
    shop.create()
    body = shop.experiment()
    assert body["windows_close_at"] is None and body["matures_at"] is None
    shop.act("start", time.time())
    goals = [{**goal, "window_days": 60 if goal["key"] == "purchase" else goal.get("window_days")}
             for goal in EXPERIMENT["goals"]]  # fmt: skip
    answer = shop.client.patch(f"/v1/experiments/{KEY}", json={"goals": goals}, headers=EDITOR)
    assert answer.status_code == 409
    assert "window_days" in answer.json["errors"]["goals"]["0"]


@pytest.mark.parametrize(
    ("goal", "field"),
    [
        ({"key": "g", "primary": True, "window_days": 0}, "window_days"),
        ({"key": "g", "primary": True, "window_days": 181}, "window_days"),
        ({"key": "g", "primary": True, "window_days": 1.5}, "window_days"),
        ({"key": "g", "primary": True, "window_days": 30, "return_days": -1}, "return_days"),
        ({"key": "g", "primary": True, "return_days": 14}, "return_days"),
    ],
)
def test_bad_windows_are_refused_naming_the_field(
    client: Any, goal: dict[str, Any], field: str
) -> None:
    body = {**EXPERIMENT, "goals": [goal]}
    answer = client.post("/v1/experiments", json=body, headers=EDITOR)
    assert answer.status_code == 422
    assert field in answer.json["errors"]["goals"]["0"]


def test_results_judge_the_matured_cohorts_and_show_the_provisional_beside(shop: Shop) -> None:
    now = time.time()
    start = now - 100 * DAY
    shop.create()
    shop.act("start", start)
    # three cohorts: 100 days ago (settled for both goals), 40 days ago (purchase's 30-day
    # window closed, margin's 30 + 14 days not yet) and 5 days ago (open for both)
    cohorts = {"old": start, "middle": now - 40 * DAY, "new": now - 5 * DAY}
    buyers: dict[str, dict[str, list[int]]] = {}
    for cohort, enrolled in cohorts.items():
        buyers[cohort] = {"control": [], "note": []}
        for number in range(12):
            visitor = f"{cohort}-{number}"
            variant = shop.enrol(visitor, enrolled)
            margin = 0
            if number % 3 == 0:
                revenue = 2000 + 100 * number
                assert shop.order(visitor, f"o-{visitor}", revenue, enrolled + DAY) == "accepted"
                margin = revenue - revenue // 2
            buyers[cohort][variant].append(margin)
    body = shop.results()
    purchase, margin_goal = body["goals"][0], body["goals"][1]
    assert body["goals"][2]["window"] is None

    def expected(names: list[str]) -> list[tuple[int, int, float]]:
        return [
            (
                sum(len(buyers[c][v]) for c in names),
                sum(1 for c in names for m in buyers[c][v] if m),
                sum(m for c in names for m in buyers[c][v]) / 100,
            )
            for v in ("control", "note")
        ]

    def shown(totals: list[dict[str, Any]]) -> list[tuple[int, int, float]]:
        return [(t["visitors"], t["converted"], t["value_sum"]) for t in totals]

    assert [t[:2] for t in shown(purchase["totals"])] == [
        e[:2] for e in expected(["old", "middle"])
    ]
    assert shown(margin_goal["totals"]) == expected(["old"])
    everybody = expected(["old", "middle", "new"])
    assert shown(margin_goal["window"]["provisional_totals"]) == everybody
    assert [t[:2] for t in shown(purchase["window"]["provisional_totals"])] == [
        e[:2] for e in everybody
    ]
    # the statistics use the matured sample: its visitors, its estimate
    control = margin_goal["result"]["variants"][0]
    old_control = buyers["old"]["control"]
    assert control["visitors"] == len(old_control)
    assert control["estimate"] == pytest.approx(sum(old_control) / 100 / len(old_control))
    provisional = margin_goal["window"]["provisional"]["variants"][0]
    assert provisional["visitors"] == everybody[0][0]
    day = dt.datetime.fromtimestamp
    assert margin_goal["window"]["matured_through"] == str(day(start, dt.UTC).date())
    assert purchase["window"]["matured_through"] == str(day(cohorts["middle"], dt.UTC).date())
    assert margin_goal["window"] | {"provisional": None, "provisional_totals": None} == {
        "window_days": 30, "return_days": 14, "matured_through": str(day(start, dt.UTC).date()),
        "provisional": None, "provisional_totals": None,
    }  # fmt: skip


VISITOR_BYTES = 200  # issue 21: per-visitor storage of a windowed experiment, per visitor


def test_per_visitor_storage_stays_within_200_bytes_and_expires_after_windows_and_retention(
    client: Any, redis_client: redis.Redis
) -> None:
    """A buyer of three windowed goals (a conversion, revenue and margin on one order): their
    enrolment record holds the variant, segment, enrolment time and the three totals."""
    goals = [
        {"key": "purchase", "primary": True, "window_days": 30},
        {"key": "revenue", "kind": "revenue", "event": "purchase", "window_days": 30},
        {"key": "margin", "kind": "margin", "event": "purchase", "window_days": 30},
    ]
    body = {**EXPERIMENT, "goals": goals, "segments": ["customer"]}
    assert client.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201
    assert client.post(f"/v1/experiments/{KEY}/start", headers=EDITOR).status_code == 200
    ingest = {"X-Splitwerk-Ingest-Key": INGEST_TOKEN}
    visitors = 1000  # beyond the small-hash encodings: the size every real shop reaches
    for number in range(visitors):
        visitor = f"visitor-{number:06d}"
        request = {"visitor": visitor, "experiments": [KEY], "attributes": {"customer": "new"}}
        assert client.post("/v1/assign", json=request).json["recorded"] is True
        order = {"type": "order", "visitor": visitor, "order_id": f"order-{number:08d}",
                 "revenue": "49.99", "cost_of_goods": "20.00"}  # fmt: skip
        answer = client.post("/v1/events", json={"events": [order]}, headers=ingest)
        assert answer.json["results"][0]["status"] == "accepted"
    prefix = f"sw:{{{KEY}}}:p1:"
    enrolments, totals = prefix + "enrolments", prefix + "totals"
    record = redis_client.hget(enrolments, next(iter(redis_client.hkeys(enrolments))))
    assert record is not None and b"\x1et:" in record  # the enrolment time is kept
    assert record_totals(record) == {"purchase": "1", "revenue": "4999", "margin": "2999"}
    assert not redis_client.exists(totals)  # the totals hash holds only older versions' data

    def used(name: str) -> float:
        return (redis_client.memory_usage(prefix + name, samples=0) or 0) / visitors

    per_visitor = used("enrolments")
    orders, seen = used("orders"), used("seen")
    print(f"enrolment record with three totals: {per_visitor:.0f} B per buyer; per order: "
          f"{orders:.0f} B order record, {seen:.0f} B idempotency member")  # fmt: skip
    assert per_visitor <= VISITOR_BYTES
    assert client.post(f"/v1/experiments/{KEY}/stop", headers=EDITOR).status_code == 200
    # the records expire RETENTION_DAYS (90 by default) after the last window and return period
    expected = (30 + 14 + 90) * DAY
    for name in (enrolments, prefix + "orders", prefix + "seen"):
        assert expected - 60 < redis_client.ttl(name) <= expected
