"""CUPED end to end: covariates sent with /v1/assign, events through /v1/events, sums kept in
Redis by the Lua scripts, and the results' adjusted uplifts checked against statsmodels' OLS
(ANCOVA y ~ 1 + treated + x) on the same per-visitor data."""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

import numpy as np
import pytest
import redis
import statsmodels.api as sm

from server.core import sequential, stats
from tests.helpers import EDITOR, INGEST_TOKEN, VIEWER

INGEST = {"X-Splitwerk-Ingest-Key": INGEST_TOKEN}
EXPERIMENT: dict[str, Any] = {
    "key": "cuped",
    "name": "CUPED",
    "variants": [{"key": "control"}, {"key": "green"}, {"key": "blue"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "revenue", "kind": "revenue", "event": "purchase"},
        {"key": "margin", "kind": "margin", "event": "purchase"},
    ],
    "segments": ["source"],
    "analysis": "fixed",
}
ENROLMENTS = "sw:{cuped}:p1:enrolments"
COUNTS = "sw:{cuped}:p1:counts"
CAP = 1000.0  # the default value cap: totals above it count as 1,000.00 in the statistics


def start(client: Any, **changes: Any) -> None:
    body = {**EXPERIMENT, **changes}
    assert client.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201
    assert client.post(f"/v1/experiments/{body['key']}/start", headers=EDITOR).status_code == 200


def shop_traffic(client: Any, visitors: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Send a shop's visitors: 70 % with a covariate (past margin), zero-inflated orders that
    grow with it, a few refunds and one order above the value cap. Returns per variant the
    per-visitor x (0 without one) and y of each goal, as the server should count them."""
    rng = np.random.default_rng(seed)
    data: dict[str, dict[str, list[float]]] = {}
    for number in range(visitors):
        visitor = f"v-{number}"
        past = round(float(rng.lognormal(3.0, 1.0)), 2) if rng.random() < 0.7 else None
        body: dict[str, Any] = {"visitor": visitor, "attributes": {"source": "ads"}}
        if past is not None:
            body["covariate"] = past
        variant = client.post("/v1/assign", json=body).json["assignments"]["cuped"]["variant"]
        # a returning visitor's new covariate is ignored: the first one stays
        client.post("/v1/assign", json={**body, "covariate": 12345.67})
        row = data.setdefault(variant, {"x": [], "purchase": [], "revenue": [], "margin": []})
        x = past or 0.0
        revenue = margin = 0.0
        converted = 0.0
        if rng.random() < 0.1 + min(0.3, x / 200.0):
            converted = 1.0
            revenue = round(20.0 + 0.4 * x + float(rng.exponential(15.0)), 2)
            if number == 7:
                revenue = 1500.0  # above the cap
            cost = round(revenue / 2.0, 2)
            events = [
                {"type": "order", "visitor": visitor, "order_id": f"o-{number}",
                 "revenue": f"{revenue:.2f}", "cost_of_goods": f"{cost:.2f}"},
            ]  # fmt: skip
            margin = revenue - cost
            if number % 5 == 0:
                events.append(
                    {"type": "refund", "order_id": f"o-{number}", "id": f"r-{number}",
                     "amount": "10.00"}
                )  # fmt: skip
                revenue -= 10.0
                margin -= 10.0
            answer = client.post("/v1/events", json={"events": events}, headers=INGEST)
            assert answer.status_code == 200, answer.json
            assert answer.json["rejected"] == 0, answer.json
        row["x"].append(x)
        row["purchase"].append(converted)
        row["revenue"].append(min(CAP, revenue))
        row["margin"].append(max(-CAP, min(CAP, margin)))
    return data


def ancova(data: dict[str, dict[str, list[float]]], variant: str, goal: str) -> Any:
    """statsmodels' OLS of y on an intercept, the treatment and x over control and variant."""
    y = np.array(data["control"][goal] + data[variant][goal])
    x = np.array(data["control"]["x"] + data[variant]["x"])
    treated = np.array([0.0] * len(data["control"]["x"]) + [1.0] * len(data[variant]["x"]))
    return sm.OLS(y, np.column_stack([np.ones_like(y), treated, x])).fit()


def test_adjusted_uplifts_and_errors_equal_statsmodels_ancova_end_to_end(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    data = shop_traffic(client, 1200, seed=20)
    body = client.get("/v1/experiments/cuped/results", headers=VIEWER).json
    for report in body["goals"]:
        covariate = report["covariate"]
        assert covariate is not None, report["key"]
        assert covariate["visitors"] == [
            sum(1 for x in data[key]["x"] if x != 0.0) for key in ("control", "green", "blue")
        ]
        for index, key in ((1, "green"), (2, "blue")):
            fit = ancova(data, key, report["key"])
            adjusted = covariate["variants"][index - 1]
            assert adjusted["variant"] == index
            assert adjusted["uplift"] == pytest.approx(fit.params[1], abs=1e-9)
            assert adjusted["standard_error"] == pytest.approx(fit.bse[1], abs=1e-9)
            assert adjusted["slope"] == pytest.approx(fit.params[2], abs=1e-9)
            interval = adjusted["uplift_interval"]
            assert interval["upper"] - interval["lower"] == pytest.approx(
                2 * 1.959963984540054 * fit.bse[1], rel=1e-9
            )
            assert 0.0 < adjusted["variance_ratio"] < 1.0  # the covariate explains something
            # the unadjusted result stands beside it
            assert report["result"]["variants"][index]["uplift"] == pytest.approx(
                np.mean(data[key][report["key"]]) - np.mean(data["control"][report["key"]]),
                abs=1e-9,
            )
    # the covariate is at most one extra per record (beside the visitor's totals, "\x1eg:"),
    # kept for exactly the visitors who sent one
    records = redis_client.hvals(ENROLMENTS)
    assert all(record.count(b"\x1ex:") <= 1 for record in records)
    assert sum(b"\x1ex:" in record for record in records) == sum(
        1 for key in ("control", "green", "blue") for x in data[key]["x"] if x != 0.0
    )


def test_the_csv_export_carries_each_challengers_adjusted_comparison_on_its_all_row(
    client: Any,
) -> None:
    start(client)
    shop_traffic(client, 600, seed=5)
    body = client.get("/v1/experiments/cuped/results", headers=VIEWER).json
    answer = client.get("/v1/experiments/cuped/results?format=csv", headers=VIEWER)
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    keys = [variant["key"] for variant in body["variants"]]
    for report in body["goals"]:
        for adjusted in report["covariate"]["variants"]:
            (row,) = [
                row
                for row in rows
                if row["goal"] == report["key"]
                and row["segment"] == "all"
                and row["variant"] == keys[adjusted["variant"]]
            ]
            assert float(row["cuped_uplift"]) == pytest.approx(adjusted["uplift"], rel=1e-12)
            interval = adjusted["uplift_interval"]
            assert float(row["cuped_uplift_lower"]) == pytest.approx(interval["lower"], rel=1e-12)
            assert float(row["cuped_uplift_upper"]) == pytest.approx(interval["upper"], rel=1e-12)
            assert float(row["cuped_p_value"]) == pytest.approx(adjusted["p_value"], rel=1e-12)
            assert row["cuped_significant"] == str(adjusted["is_significant"])
            assert float(row["variance_ratio"]) == pytest.approx(
                adjusted["variance_ratio"], rel=1e-12
            )
    # the control's rows and every segment's rows leave them empty
    others = [row for row in rows if row["segment"] != "all" or row["variant"] == "control"]
    assert others and all(row["cuped_uplift"] == row["variance_ratio"] == "" for row in others)


def test_results_without_enough_covariates_have_none_and_the_unadjusted_result_decides(
    client: Any,
) -> None:
    start(client)
    for number in range(150):
        body: dict[str, Any] = {"visitor": f"w-{number}"}
        if number < 30:
            body["covariate"] = 10.5
        client.post("/v1/assign", json=body)
    report = client.get("/v1/experiments/cuped/results", headers=VIEWER).json["goals"][0]
    assert report["covariate"] is None


def test_the_default_group_sequential_test_judges_the_adjusted_uplift(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client, analysis="sequential")
    shop_traffic(client, 900, seed=3)
    report = client.get("/v1/experiments/cuped/results", headers=VIEWER).json["goals"][1]
    assert report["result"]["test"] == "group_sequential"
    boundary = report["result"]["boundary"]
    for adjusted in report["covariate"]["variants"]:
        interval = adjusted["uplift_interval"]
        assert interval["upper"] - interval["lower"] == pytest.approx(
            2 * boundary * adjusted["standard_error"], rel=1e-9
        )
        assert 0.0 < adjusted["p_value"] <= 1.0
        assert adjusted["adjusted_p_value"] >= adjusted["p_value"]
    # the daily Σx, Σx² and Σxy of the day add up to the whole phase's
    counts = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    for name in ("xn:0", "xs:1", "xq:2", "xy:1:revenue", "xyh:2:margin"):
        daily = sum(value for key, value in counts.items() if key.startswith(name + ":d:"))
        assert counts.get(name, 0) == daily, name


def test_the_plan_asks_for_cupeds_share_of_the_visitors_and_its_looks_count_so(
    client: Any,
) -> None:
    """With CUPED judging, the power calculation (and so the group sequential plan) asks for the
    unadjusted size times the largest variance ratio: the same power with fewer visitors.
    The margin, which grows with the covariate, is the primary goal here; a large minimum
    effect keeps the plan small enough for today's look to matter."""
    goals = [{**goal, "primary": goal["key"] == "margin"} for goal in EXPERIMENT["goals"]]
    start(client, analysis="sequential", minimum_effect=0.3, goals=goals)
    data = shop_traffic(client, 900, seed=3)
    body = client.get("/v1/experiments/cuped/results", headers=VIEWER).json
    minimum_effect = client.get("/v1/experiments/cuped", headers=EDITOR).json["minimum_effect"]
    report = next(report for report in body["goals"] if report["key"] == "margin")
    control = np.array(data["control"]["margin"])
    plain = stats.visitors_needed_for_value(
        float(control.mean()), float(control.std(ddof=1)), minimum_effect=minimum_effect
    )
    assert plain is not None
    ratio = max(adjusted["variance_ratio"] for adjusted in report["covariate"]["variants"])
    assert 0.0 < ratio < 1.0
    assert report["visitors_needed"] == math.ceil(plain * ratio) < plain
    # one look today, at the slowest variant's share of the adjusted plan: later in the plan
    # than the unadjusted size would put it, so its boundary is lower
    slowest = min(len(data[key]["x"]) for key in ("control", "green", "blue"))
    adjusted_plan = sequential.plan([min(1.0, slowest / report["visitors_needed"])], 0.05, 2)
    unadjusted_plan = sequential.plan([min(1.0, slowest / plain)], 0.05, 2)
    assert report["result"]["boundary"] == pytest.approx(adjusted_plan.boundary(0.05), rel=1e-12)
    assert adjusted_plan.boundary(0.05) < unadjusted_plan.boundary(0.05)


def test_without_covariates_the_plan_is_the_unadjusted_power_calculation(client: Any) -> None:
    start(client, analysis="sequential")
    converted = []
    for number in range(300):
        variant = client.post("/v1/assign", json={"visitor": f"n-{number}"}).json["assignments"][
            "cuped"
        ]["variant"]
        if number % 4 == 0:
            event = {
                "type": "conversion",
                "id": f"c-{number}",
                "visitor": f"n-{number}",
                "goal": "purchase",
            }
            answer = client.post("/v1/events", json={"events": [event]}, headers=INGEST)
            assert answer.json["rejected"] == 0, answer.json
        if variant == "control":
            converted.append(number % 4 == 0)
    minimum_effect = client.get("/v1/experiments/cuped", headers=EDITOR).json["minimum_effect"]
    report = client.get("/v1/experiments/cuped/results", headers=VIEWER).json["goals"][0]
    assert report["covariate"] is None
    assert report["visitors_needed"] == stats.visitors_needed_for_conversion(
        sum(converted) / len(converted), minimum_effect=minimum_effect
    )


@pytest.mark.parametrize(
    ("covariate", "message"),
    [
        ("12", "must be a number"),
        (True, "must be a number"),
        (1000000.01, "within"),
        (-2e6, "within"),
        (10**400, "within"),  # an integer no float can hold
        (0.1 + 0.2, "at most 2 decimals"),
        (1.005, "at most 2 decimals"),
    ],
)
def test_a_bad_covariate_is_a_422_naming_the_field_and_writes_nothing(
    client: Any, redis_client: redis.Redis, covariate: Any, message: str
) -> None:
    start(client)
    answer = client.post("/v1/assign", json={"visitor": "v", "covariate": covariate})
    assert answer.status_code == 422
    assert message in " ".join(answer.json["errors"]["covariate"])
    assert redis_client.hlen(ENROLMENTS) == 0


def test_covariates_at_the_bounds_are_summed_exactly(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    keys = ["control", "green", "blue"]
    hundredths: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for number, covariate in enumerate([1_000_000, -1_000_000, 999_999.99, 0.01, 0] * 3):
        answer = client.post("/v1/assign", json={"visitor": f"b-{number}", "covariate": covariate})
        variant = keys.index(answer.json["assignments"]["cuped"]["variant"])
        hundredths[variant].append(round(covariate * 100))
        if number == 2:
            buyer = variant
    client.post(
        "/v1/events",
        json={"events": [{"type": "order", "visitor": "b-2", "order_id": "big",
                          "revenue": "1000000.00"}]},
        headers=INGEST,
    )  # fmt: skip
    counts = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    for variant, values in hundredths.items():
        assert counts.get(f"xn:{variant}", 0) == len(values)
        assert counts.get(f"xs:{variant}", 0) == sum(values)
        squares = counts.get(f"xqh:{variant}", 0) * 10**8 + counts.get(f"xq:{variant}", 0)
        assert squares == sum(x * x for x in values)
    # y of the revenue goal is the capped total: 1,000.00 = 100,000 cents
    cross = counts.get(f"xyh:{buyer}:revenue", 0) * 10**8 + counts[f"xy:{buyer}:revenue"]
    assert cross == 99_999_999 * 100_000
    assert (
        counts.get(f"xyh:{buyer}:purchase", 0) * 10**8 + counts[f"xy:{buyer}:purchase"]
        == 99_999_999
    )


def keyspace(redis_client: redis.Redis) -> dict[bytes, Any]:
    """Every key with its content, to see that nothing was written."""
    found: dict[bytes, Any] = {}
    for name in redis_client.scan_iter("sw:{cuped}:*"):
        kind = redis_client.type(name)
        found[name] = (
            redis_client.hgetall(name)
            if kind == b"hash"
            else redis_client.zrange(name, 0, -1, withscores=True)
            if kind == b"zset"
            else redis_client.lrange(name, 0, -1)
            if kind == b"list"
            else redis_client.smembers(name)
        )
    return found


@pytest.mark.parametrize("field", ["xs:{v}", "xq:{v}:d:{day}", "xn:{v}"])
def test_an_enrolment_whose_covariate_sums_would_leave_the_exact_range_writes_nothing(
    client: Any, redis_client: redis.Redis, field: str
) -> None:
    start(client)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    for v in range(3):
        redis_client.hset(COUNTS, field.format(v=v, day=day), str(2**53 - 1))
    before = keyspace(redis_client)
    answer = client.post("/v1/assign", json={"visitor": "v-1", "covariate": 10})
    assert answer.status_code == 200 and answer.json["recorded"] is False  # degraded
    assert keyspace(redis_client) == before
    # without a covariate the same visitor is enrolled: those sums are not touched
    assert client.post("/v1/assign", json={"visitor": "v-1"}).json["recorded"] is True


@pytest.mark.parametrize("event", ["order", "refund"])
def test_an_event_whose_cross_sum_would_leave_the_exact_range_writes_nothing(
    client: Any, redis_client: redis.Redis, event: str
) -> None:
    start(client)
    answer = client.post("/v1/assign", json={"visitor": "v-1", "covariate": 1_000_000})
    v = ["control", "green", "blue"].index(answer.json["assignments"]["cuped"]["variant"])
    order = {"type": "order", "visitor": "v-1", "order_id": "o-1", "revenue": "50.00"}
    sent: dict[str, Any] = order
    # an order adds x·y > 0 to Σxy, a refund takes some off: the counter sits at the bound
    # the event would cross
    bound = 2**53 - 1
    if event == "refund":
        accepted = client.post("/v1/events", json={"events": [order]}, headers=INGEST)
        assert accepted.json["accepted"] == 1
        sent = {"type": "refund", "id": "r-1", "order_id": "o-1", "amount": "10.00"}
        bound = -bound
    redis_client.hset(COUNTS, f"xyh:{v}:revenue", str(bound))
    before = keyspace(redis_client)
    response = client.post("/v1/events", json={"events": [sent]}, headers=INGEST)
    assert response.status_code == 422, response.json
    assert keyspace(redis_client) == before


def two_parts(value: int) -> tuple[int, int]:
    """An exact sum as the scripts keep it: high·10^8 + low."""
    return divmod(value, 10**8)


def test_when_cuped_is_reported_it_decides_the_summary_and_the_decision(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client, goals=[{"key": "margin", "kind": "margin", "event": "purchase", "primary": True}])
    rng = np.random.default_rng(8)
    counters: dict[str, int] = {}
    for v in range(3):
        # hundredths and cents: the margin follows the past closely; green and blue earn 0.40
        # more per visitor, invisible in the spread of y, plain in the spread around the fit
        x = np.minimum(np.round(rng.lognormal(3.0, 1.0, 3000) * 100), 50_000).astype(np.int64)
        y = (x * 4 // 5 + np.round(rng.exponential(200, 3000)) + 40 * (v > 0)).astype(np.int64)
        cross, x_squares, y_squares = (
            int((x * y).sum()),
            int((x * x).sum()),
            int((y * y).sum()),
        )
        counters |= {
            f"e:{v}": 3000, f"c:{v}:margin": 3000, f"n:{v}:margin": 3000,
            f"s:{v}:margin": int(y.sum()), f"cs:{v}:margin": int(y.sum()),
            f"xn:{v}": 3000, f"xs:{v}": int(x.sum()),
        }  # fmt: skip
        for name, value in (("q", y_squares), ("cq", y_squares), ("xq", x_squares), ("xy", cross)):
            high, low = two_parts(value)
            suffix = ":margin" if name in ("q", "cq", "xy") else ""
            counters[f"{name}h:{v}{suffix}"] = high
            counters[f"{name}:{v}{suffix}"] = low
    redis_client.hset(COUNTS, mapping=counters)  # type: ignore[arg-type]
    body = client.get("/v1/experiments/cuped/results", headers=VIEWER).json
    report = body["goals"][0]
    assert not any(v["is_significant"] for v in report["result"]["variants"])
    assert all(v["is_significant"] for v in report["covariate"]["variants"])
    assert "clearly better than control" in report["summary"]
    assert body["decision"]["verdict"] == "ship"


def test_get_assign_takes_the_covariate_as_a_query_parameter(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    assert client.get("/v1/assign?visitor=q-1&covariate=12.5").status_code == 200
    for bad in ("abc", "nan", "0.001", "1e7"):
        answer = client.get(f"/v1/assign?visitor=q-2&covariate={bad}")
        assert answer.status_code == 422, bad
        assert "covariate" in answer.json["errors"], bad
    counts = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    assert sum(counts.get(f"xs:{v}", 0) for v in range(3)) == 1250
    assert sum(counts.get(f"e:{v}", 0) for v in range(3)) == 1
