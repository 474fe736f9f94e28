"""Customer metrics (issue 21): repeat buyers, orders per visitor, return rate, new/returning.

Checked against independent computations on the per-visitor figures the test itself made.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import numpy as np
import pytest
import redis
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import ttest_ind

from tests.api.test_windows import COUNTS, DAY, KEY, Shop
from tests.helpers import EDITOR

GOALS = [
    {"key": "purchase", "primary": True, "window_days": 30},
    {"key": "revenue", "kind": "revenue", "event": "purchase", "window_days": 30},
]


@pytest.fixture
def shop(redis_server: Any, redis_client: redis.Redis) -> Shop:
    return Shop(redis_server.url)


def test_repeat_rate_orders_per_visitor_and_return_rate_match_independent_figures(
    shop: Shop,
) -> None:
    start = time.time() - 90 * DAY  # every window and return period has closed
    shop.create(goals=GOALS, segments=["customer"], analysis="fixed")
    shop.act("start", start)
    rng = random.Random(7)
    figures: dict[str, list[tuple[int, int, int]]] = {"control": [], "note": []}
    customers: dict[str, dict[str, int]] = {"control": {}, "note": {}}
    for number in range(260):
        visitor = f"v-{number}"
        customer = "returning" if number % 4 == 0 else "new"
        variant = shop.enrol(visitor, start + number * 60, customer=customer)
        customers[variant][customer] = customers[variant].get(customer, 0) + 1
        orders = rng.choice([0, 0, 1, 1, 2, 3]) + (1 if variant == "note" and number % 5 else 0)
        net = refunded = 0
        for order in range(orders):
            revenue = rng.randrange(1000, 9000)
            at = start + number * 60 + (order + 1) * 3 * DAY
            assert shop.order(visitor, f"o-{number}-{order}", revenue, at) == "accepted"
            net += revenue
            if rng.random() < (0.5 if variant == "note" else 0.15):
                amount = rng.randrange(1, revenue + 1)
                assert shop.refund(f"o-{number}-{order}", amount, at + 5 * DAY) == "accepted"
                refunded += amount
        figures[variant].append((orders, net, refunded))
    body = shop.results()
    purchase, revenue = body["goals"]
    control, note = figures["control"], figures["note"]
    # repeat-purchase rate: visitors with two or more orders
    repeaters = [sum(1 for f in side if f[0] >= 2) for side in (control, note)]
    sizes = [len(control), len(note)]
    repeat = purchase["customer"]["repeat"]["variants"]
    assert [v["visitors"] for v in repeat] == sizes
    assert [v["converted"] for v in repeat] == repeaters
    _, p_value = proportions_ztest(repeaters[::-1], sizes[::-1])
    assert repeat[1]["p_value"] == pytest.approx(p_value, abs=1e-6)
    # orders per visitor
    per_visitor = purchase["customer"]["per_visitor"]["variants"]
    counts = [[float(f[0]) for f in side] for side in (control, note)]
    assert per_visitor[0]["estimate"] == pytest.approx(np.mean(counts[0]), abs=1e-9)
    assert per_visitor[1]["uplift"] == pytest.approx(
        np.mean(counts[1]) - np.mean(counts[0]), abs=1e-9
    )
    _, welch_p, _ = ttest_ind(counts[1], counts[0], usevar="unequal")
    assert per_visitor[1]["p_value"] == pytest.approx(welch_p, abs=1e-6)
    # return rate: refunded net revenue ÷ net revenue, delta method on per-visitor values
    rates = revenue["customer"]["return_rate"]
    variances = []
    for side, shown in zip((control, note), rates, strict=True):
        nets = np.array([f[1] for f in side], dtype=float)
        returns = np.array([f[2] for f in side], dtype=float)
        ratio = returns.sum() / nets.sum()
        assert shown["estimate"] == pytest.approx(ratio, abs=1e-12)
        influence = (returns - ratio * nets) / nets.mean()
        variances.append(influence.var() / len(side))
    difference = rates[1]["estimate"] - rates[0]["estimate"]
    assert rates[1]["uplift"] == pytest.approx(difference, abs=1e-12)
    z = difference / math.sqrt(sum(variances))
    assert rates[1]["p_value"] == pytest.approx(2 * scipy_stats.norm.sf(abs(z)), rel=1e-6)
    assert rates[1]["significant"] is True and difference > 0  # the note's goods come back
    assert purchase["customer"]["return_rate"] == [] and revenue["customer"]["repeat"] is None
    # new versus returning customers, as a segment of every goal
    segments = {
        (report["goal"], item["value"]): item["result"]["variants"]
        for report in body["segments"]
        for item in report["segments"]
        if report["attribute"] == "customer"
    }
    for value in ("new", "returning"):
        shown_visitors = [v["visitors"] for v in segments[("purchase", value)]]
        assert shown_visitors == [customers["control"][value], customers["note"][value]]


def test_customer_attribute_takes_new_or_returning_only(shop: Shop) -> None:
    shop.create(goals=GOALS, segments=["customer"])
    shop.act("start", time.time())
    bad = {"visitor": "v", "experiments": [KEY], "attributes": {"customer": "maybe"}}
    answer = shop.client.post("/v1/assign", json=bad)
    assert answer.status_code == 422
    assert "customer" in answer.json["errors"]["attributes"]
    good = {**bad, "attributes": {"customer": "returning"}}
    assert shop.client.post("/v1/assign", json=good, headers=EDITOR).status_code == 200


def test_return_rate_sums_stay_exact_for_large_amounts(
    shop: Shop, redis_client: redis.Redis
) -> None:
    start = time.time() - 5 * DAY
    shop.create(goals=GOALS)
    shop.act("start", start)
    variant = {"control": 0, "note": 1}[shop.enrol("whale", start)]
    # amounts far above 10^4 cents, so that both parts of every two-part sum are used
    assert shop.order("whale", "o-1", 87_654_321, start + DAY) == "accepted"
    assert shop.refund("o-1", 12_345_678, start + 2 * DAY) == "accepted"
    assert shop.order("whale", "o-2", 5_555_555, start + 3 * DAY) == "accepted"
    refunded, total = 12_345_678, 87_654_321 - 12_345_678 + 5_555_555
    found = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    for suffix in ("", f":k:{int(start // DAY)}"):  # the whole phase and the whale's cohort
        base = f"{variant}:revenue{suffix}"
        assert found[f"rf:{base}"] == refunded
        assert found.get(f"rfqh:{base}", 0) * 10**8 + found[f"rfq:{base}"] == refunded**2
        assert found.get(f"rth:{base}", 0) * 10**8 + found[f"rt:{base}"] == refunded * total
        assert found[f"s:{base}"] == total
