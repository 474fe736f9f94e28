"""compute_results on counters as stored: the sentence, the forecast and the daily series."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import numpy as np
import pytest

from server.core import sequential, stats
from server.core.models import Analysis, Experiment, Goal, GoalKind, Status, Variant
from server.services.results import chance_text, compute_results, summarise

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC).timestamp()
TODAY = "2026-11-30"


def experiment(
    variants: int = 2, analysis: Analysis = Analysis.FIXED, **changes: Any
) -> Experiment:
    share = 10000 // variants
    allocations = [share] * (variants - 1) + [10000 - share * (variants - 1)]
    return Experiment(
        key="shipping-note",
        name="Free shipping note",
        variants=tuple(
            Variant(f"v{i}" if i else "control", 1.0, allocation)
            for i, allocation in enumerate(allocations)
        ),
        goals=(
            Goal("purchase", is_primary=True),
            Goal("revenue", GoalKind.REVENUE, event="purchase"),
        ),
        status=Status.RUNNING,
        analysis=analysis,
        **changes,
    )


def test_the_sentence_names_no_winner_without_adjusted_evidence() -> None:
    # ten variants; v3's unadjusted p is 0.04 (chance to beat 98 %), Holm over 9 makes it 0.36
    raw = {"e:0": 10000, "c:0:purchase": 500}
    for i in range(1, 10):
        raw |= {f"e:{i}": 10000, f"c:{i}:purchase": 565 if i == 3 else 500 + i}
    results = compute_results(experiment(10), raw, NOW, "EUR")
    v3 = results.goals[0].result.variants[3]
    assert v3.p_value is not None and v3.p_value < 0.05 and not v3.is_significant
    assert results.summary.startswith("no clear difference yet for purchase: closest is v3")
    assert "chance" not in results.summary


def test_the_sentence_never_rounds_a_chance_to_certainty() -> None:
    raw = {"e:0": 10000, "e:1": 10000, "c:0:purchase": 500, "c:1:purchase": 580}
    results = compute_results(experiment(), raw, NOW, "EUR")
    variant = results.goals[0].result.variants[1]
    assert variant.is_significant and variant.chance_to_beat_control is not None
    assert 0.99 < variant.chance_to_beat_control < 0.9995  # "100%" before
    assert results.summary == (
        "v1 converts +0.80 percentage points purchase rate [+0.17, +1.43], clearly better than "
        "control (adjusted p 0.012, chance to beat control > 99%)"
    )
    assert [chance_text(x) for x in (0.0, 0.004, 0.5, 0.9967, 1.0)] == [
        "< 1%", "< 1%", "50%", "> 99%", "> 99%",
    ]  # fmt: skip


def test_the_sentence_names_no_winner_when_the_interval_crosses_zero() -> None:
    goal = Goal("purchase", is_primary=True)
    raw = {"e:0": 10000, "e:1": 10000, "c:0:purchase": 500, "c:1:purchase": 580}
    result = compute_results(experiment(), raw, NOW, "EUR").goals[0].result
    crossing = dataclasses.replace(
        result.variants[1], uplift_interval=stats.Interval(-0.001, 0.016)
    )
    odd = dataclasses.replace(result, variants=(result.variants[0], crossing))
    sentence = summarise(goal, odd, ["control", "v1"], "EUR")
    assert sentence.startswith("no clear difference yet") and "100%" not in sentence


def test_the_sentence_says_not_enough_data_below_the_minimum_evidence() -> None:
    raw = {"e:0": 300, "e:1": 1, "c:0:purchase": 34, "c:1:purchase": 1}
    results = compute_results(experiment(), raw, NOW, "EUR")
    assert results.summary == (
        "not enough data yet for purchase: fewer than 100 visitors in the control or the variant"
    )
    variant = results.goals[0].result.variants[1]
    assert variant.status == "not_enough_data" and not variant.is_significant


def test_the_end_date_uses_the_days_actually_running() -> None:
    # one day old: 500 visitors per variant today; 7-day averaging made it 71 a day
    raw = {"e:0": 500, "e:1": 500, f"e:0:d:{TODAY}": 500, f"e:1:d:{TODAY}": 500}
    raw |= {"c:0:purchase": 25, "c:1:purchase": 27}
    report = compute_results(experiment(), raw, NOW, "EUR").goals[0]
    assert report.visitors_needed is not None and report.traffic_days == 1
    days = -(-(report.visitors_needed - 500) // 500)
    assert report.estimated_end == dt.date(2026, 11, 30) + dt.timedelta(days=days)


def test_the_end_date_averages_at_most_a_week() -> None:
    raw: dict[str, int] = {"c:0:purchase": 1000, "c:1:purchase": 1000}
    for offset in range(10):
        day = (dt.date(2026, 11, 30) - dt.timedelta(days=offset)).isoformat()
        visitors = 100 if offset < 7 else 1000
        raw |= {f"e:0:d:{day}": visitors, f"e:1:d:{day}": visitors}
    raw |= {"e:0": 3700, "e:1": 3700}
    report = compute_results(experiment(), raw, NOW, "EUR").goals[0]
    assert report.traffic_days == 7
    needed = report.visitors_needed
    assert needed is not None
    assert report.estimated_end == dt.date(2026, 11, 30) + dt.timedelta(
        days=-(-(needed - 3700) // 100)
    )


def test_daily_series_include_days_with_orders_but_no_enrolments() -> None:
    raw = {
        "e:0": 10, "e:1": 10, "e:0:d:2026-11-29": 10, "e:1:d:2026-11-29": 10,
        "c:0:purchase": 1, "c:0:purchase:d:2026-11-28": 1,
        "c:0:revenue": 1, "s:0:revenue": 5000, "q:0:revenue": 25000000,
        "s:0:revenue:d:2026-11-28": 5000, "q:0:revenue:d:2026-11-28": 25000000,
        "c:0:revenue:d:2026-11-28": 1,
    }  # fmt: skip
    results = compute_results(experiment(), raw, NOW, "EUR")
    purchase, revenue = results.daily
    assert [point.day.isoformat() for point in purchase.points] == ["2026-11-28", "2026-11-29"]
    # the order's day: counted, but no visitors yet, so no estimate and no band
    first = revenue.points[0].variants[0]
    assert first.visitors == 0 and first.converted == 1 and first.estimate is None
    assert first.interval is None
    last = revenue.points[1].variants[0]
    assert last.estimate == pytest.approx(5.0)
    assert last.interval is not None and last.interval.lower == 0.0  # revenue is never negative


def test_odd_day_fields_are_ignored() -> None:
    raw = {"e:0": 5, "e:1": 5, "e:0:d:yesterday": 5, "c:0:purchase:d:2026-13-45": 1}
    assert compute_results(experiment(), raw, NOW, "EUR").daily[0].points == ()


def test_always_valid_p_values_shown_never_rise_between_looks() -> None:
    days = ["2026-11-28", "2026-11-29", "2026-11-30"]
    per_day = [(2000, 100, 200), (2000, 100, 80), (2000, 100, 70)]
    raw: dict[str, int] = {}
    looks = []
    total = [0, 0, 0]
    for day, (visitors, control, variant) in zip(days, per_day, strict=True):
        raw |= {f"e:0:d:{day}": visitors, f"e:1:d:{day}": visitors}
        raw |= {f"c:0:purchase:d:{day}": control, f"c:1:purchase:d:{day}": variant}
        total = [total[0] + visitors, total[1] + control, total[2] + variant]
        looks.append(list(total))
    raw |= {"e:0": total[0], "e:1": total[0], "c:0:purchase": total[1], "c:1:purchase": total[2]}
    shown = []
    for count in range(1, 4):
        partial = {k: v for k, v in raw.items() if not any(d in k for d in days[count:])}
        visitors, control, variant = looks[count - 1]
        partial |= {"e:0": visitors, "e:1": visitors}
        partial |= {"c:0:purchase": control, "c:1:purchase": variant}
        result = compute_results(experiment(analysis=Analysis.ALWAYS_VALID), partial, NOW, "EUR")
        shown.append(result.goals[0].result.variants[1].p_value)
    alone = [
        stats.analyse_conversion([stats.ConversionCounts(v, c), stats.ConversionCounts(v, b)])
        .variants[1]
        .p_value
        for v, c, b in looks
    ]
    assert alone[0] < alone[1] < alone[2]  # each look alone rises
    assert shown == [alone[0]] * 3


def test_ten_variant_a_a_experiments_rarely_get_a_winner_in_the_sentence() -> None:
    # the highest unadjusted chance to beat named a "winner" (>= 95 %) in 23 % of such runs
    rng = np.random.default_rng(1979)
    runs, named, lucky = 300, 0, 0
    for _ in range(runs):
        converted = rng.binomial(5000, 0.05, size=10)
        raw = {f"e:{i}": 5000 for i in range(10)} | {
            f"c:{i}:purchase": int(count) for i, count in enumerate(converted)
        }
        results = compute_results(experiment(10), raw, NOW, "EUR")
        named += "clearly" in results.summary
        chances = [v.chance_to_beat_control or 0 for v in results.goals[0].result.variants[1:]]
        lucky += max(chances) >= 0.95
    assert lucky / runs > 0.15  # what the old sentence went by
    # Holm keeps any false verdict at 5 %, up to the Monte Carlo error of 300 runs (2 SE)
    assert named / runs <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)


def planned_counters(days: int, daily: int, control_rate: float, variant_rate: float) -> dict:
    """Daily counters of a two-variant experiment with steady traffic and exact rates."""
    raw: dict[str, int] = {}
    for day in range(days):
        name = f"2026-11-{day + 1:02d}"
        raw |= {f"e:0:d:{name}": daily, f"e:1:d:{name}": daily}
        raw |= {f"c:0:purchase:d:{name}": round(daily * control_rate)}
        raw |= {f"c:1:purchase:d:{name}": round(daily * variant_rate)}
    for i in (0, 1):
        raw[f"e:{i}"] = sum(v for k, v in raw.items() if k.startswith(f"e:{i}:d:"))
        raw[f"c:{i}:purchase"] = sum(
            v for k, v in raw.items() if k.startswith(f"c:{i}:purchase:d:")
        )
    return raw


def test_the_default_analysis_is_group_sequential_over_the_planned_size() -> None:
    # 5 % against 5.5 %: the power calculation asks for 31 234 visitors per variant (+10 %)
    planned = stats.visitors_needed_for_conversion(0.05, minimum_effect=0.1)
    assert planned == 31234
    raw = planned_counters(10, 1500, 0.05, 0.055)  # 15 000 of 31 234: about half the plan
    chosen = experiment(analysis=Analysis.SEQUENTIAL, minimum_effect=0.1)
    result = compute_results(chosen, raw, NOW, "EUR").goals[0].result
    assert result.test == stats.GROUP_SEQUENTIAL and result.method == "sequential"
    assert result.information_fraction == pytest.approx(15000 / 31234)
    # ten daily looks, each adding 4.8 % of the plan: the boundaries of those ten fractions
    fractions = [1500 * (day + 1) / 31234 for day in range(10)]
    assert result.boundary == pytest.approx(sequential.boundaries(fractions, 0.05)[-1])
    variant = result.variants[1]
    assert variant.uplift_interval is not None
    # the interval is the repeated confidence interval: the boundary, not 1.96, standard errors
    half = (variant.uplift_interval.upper - variant.uplift_interval.lower) / 2
    control, treated = (75 * 10 + 1) / (15002), (82 * 10 + 1) / (15002)
    error = math.sqrt(control * (1 - control) / 15002 + treated * (1 - treated) / 15002)
    assert half == pytest.approx(result.boundary * error)
    # the same data in an open-ended experiment: the mSPRT
    open_ended = experiment(analysis=Analysis.ALWAYS_VALID, minimum_effect=0.1)
    assert compute_results(open_ended, raw, NOW, "EUR").goals[0].result.test == "always_valid"


def test_a_true_uplift_is_found_by_the_planned_end_and_the_verdict_is_final_there() -> None:
    # 21 days of 1500 reach the plan on day 21; an exact 5 % against 6 % is clear there
    raw = planned_counters(25, 1500, 0.05, 0.06)
    chosen = experiment(analysis=Analysis.SEQUENTIAL, minimum_effect=0.1)
    result = compute_results(chosen, raw, NOW, "EUR").goals[0].result
    assert result.information_fraction == 1.0
    assert result.variants[1].is_significant
    # looks after the plan was reached are not tested: days 22-25 change nothing
    shorter = compute_results(chosen, planned_counters(21, 1500, 0.05, 0.06), NOW, "EUR")
    assert shorter.goals[0].result.variants[1].p_value == result.variants[1].p_value


def test_a_stopped_experiment_spends_the_rest_of_alpha_at_its_last_look() -> None:
    raw = planned_counters(10, 1500, 0.05, 0.055)
    running = experiment(analysis=Analysis.SEQUENTIAL, minimum_effect=0.1)
    stopped = dataclasses.replace(running, status=Status.STOPPED)
    before = compute_results(running, raw, NOW, "EUR").goals[0].result
    after = compute_results(stopped, raw, NOW, "EUR").goals[0].result
    assert after.information_fraction == 1.0
    assert after.boundary is not None and before.boundary is not None
    assert after.boundary < before.boundary


def test_without_a_planned_size_the_default_falls_back_to_the_msprt() -> None:
    # no conversions in the control yet: the power calculation has no baseline to plan with
    raw = planned_counters(3, 200, 0.0, 0.0)
    result = compute_results(experiment(analysis=Analysis.SEQUENTIAL), raw, NOW, "EUR")
    assert result.goals[0].result.test == "always_valid"


def test_uplifts_are_post_stratified_on_the_enrolment_segments_beside_the_plain_ones() -> None:
    from server.schemas import GoalReportSchema

    # two traffic sources with very different rates, plus 100 visitors per variant without one
    raw = {"e:0": 3100, "e:1": 3100, "c:0:purchase": 252, "c:1:purchase": 281}
    raw |= {"e:0:source=ads": 2000, "e:1:source=ads": 1900}
    raw |= {"c:0:purchase:source=ads": 40, "c:1:purchase:source=ads": 42}
    raw |= {"e:0:source=mail": 1000, "e:1:source=mail": 1100}
    raw |= {"c:0:purchase:source=mail": 200, "c:1:purchase:source=mail": 225}
    chosen = experiment(analysis=Analysis.FIXED, segments=("source",))
    report = compute_results(chosen, raw, NOW, "EUR").goals[0]
    (stratified,) = report.stratified
    assert stratified.attribute == "source" and stratified.strata == 3
    rates = [(2000, 40, 1900, 42), (1000, 200, 1100, 225), (100, 12, 100, 14)]
    total = sum(a + b for a, _, b, _ in rates)
    expected = sum((a + b) / total * (cb / b - ca / a) for a, ca, b, cb in rates)
    variant = stratified.variants[0]
    assert variant is not None and variant.uplift == pytest.approx(expected, abs=1e-12)
    # mail converts at 20 %, ads at 2 %: knowing the source removes much of the noise
    assert variant.variance_ratio is not None and variant.variance_ratio < 0.92
    plain = report.result.variants[1].uplift
    assert plain is not None and plain != pytest.approx(variant.uplift)  # reported beside it
    dumped = GoalReportSchema().dump(report)
    assert dumped["stratified"][0]["variants"][0]["uplift"] == pytest.approx(expected)
    assert set(dumped["stratified"][0]["variants"][0]) == {
        "variant",
        "uplift",
        "standard_error",
        "uplift_interval",
        "variance_ratio",
    }


def test_odd_segment_counters_leave_the_plain_result_alone() -> None:
    raw = {"e:0": 300, "e:1": 300, "c:0:purchase": 20, "c:1:purchase": 20}
    raw |= {"e:0:source=ads": 500, "e:1:source=ads": 100}  # more than the whole: cannot happen
    report = compute_results(experiment(segments=("source",)), raw, NOW, "EUR").goals[0]
    assert report.stratified == ()
    assert report.result.variants[1].uplift == 0.0
