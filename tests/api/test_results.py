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
from server.demo import ensure_demo_experiment, generate_traffic
from tests.helpers import EDITOR, INGEST_TOKEN, VIEWER, app_settings

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
COUNTS = "sw:{shipping-note}:p1:counts"


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
    assert "per visitor" in margin_goal["summary"]
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
    assert band["lower"] == pytest.approx(0.1 - 1.959964 * math.sqrt(0.1 * 0.9 / 30), abs=1e-5)


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


def test_results_need_a_viewer_token_and_a_known_experiment(client: Any) -> None:
    assert client.get("/v1/experiments/nope/results").status_code == 401
    assert client.get("/v1/experiments/nope/results", headers=VIEWER).status_code == 404
    start(client)
    bad = client.get("/v1/experiments/shipping-note/results?format=xml", headers=VIEWER)
    assert bad.status_code == 422


def test_results_are_cached_for_the_configured_time(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    cached = create_app(app_settings(redis_server.url, RESULTS_CACHE_TTL=60)).test_client()
    start(cached)
    first = cached.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    redis_client.hset(COUNTS, mapping={"e:0": 7})
    second = cached.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    assert second == first
    fresh = create_app(app_settings(redis_server.url, RESULTS_CACHE_TTL=0)).test_client()
    third = fresh.get("/v1/experiments/shipping-note/results", headers=VIEWER).json
    assert third["variants"][0]["visitors"] == 7


def test_demo_traffic_gives_results_with_segments(redis_server: Any, redis_client: Any) -> None:
    app = create_app(app_settings(redis_server.url))
    now = time.time()
    ensure_demo_experiment(app.extensions["splitwerk.store"], now - 20 * 86400)
    assert generate_traffic(app, 1500, now) > 0
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
