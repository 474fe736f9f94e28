"""CUPED end to end: covariates sent with /v1/assign, events through /v1/events, sums kept in
Redis by the Lua scripts, and the results' adjusted uplifts checked against statsmodels' OLS
(ANCOVA y ~ 1 + treated + x) on the same per-visitor data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import redis
import statsmodels.api as sm

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
    record = redis_client.hget(ENROLMENTS, next(iter(redis_client.hkeys(ENROLMENTS))))
    assert record is not None and (b"\x1ex:" in record) == (record.count(b"\x1e") == 1)


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


@pytest.mark.parametrize(
    ("covariate", "message"),
    [
        ("12", "must be a number"),
        (True, "must be a number"),
        (1000000.01, "within"),
        (-2e6, "within"),
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
