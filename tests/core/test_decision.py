"""The decision rule: one verdict per situation, with its figures per 1,000 visitors and month."""

from __future__ import annotations

import pytest

from server.core.decision import (
    DAYS_PER_MONTH,
    MAXIMUM_WAIT_DAYS,
    PER_VISITORS,
    Decision,
    Verdict,
    decide,
)
from server.core.stats import (
    ConversionCounts,
    GoalResult,
    SampleRatioMismatch,
    ValueSums,
    analyse_conversion,
    analyse_value,
)

BALANCED = SampleRatioMismatch(chi_square=0.1, p_value=0.75, is_mismatch=False)
ALARM = SampleRatioMismatch(chi_square=40.0, p_value=1e-9, is_mismatch=True)
KEYS = ("control", "green", "blue")


def conversions(*pairs: tuple[int, int]) -> GoalResult:
    return analyse_conversion([ConversionCounts(visitors, hits) for visitors, hits in pairs])


def margins(*variants: tuple[int, float, float]) -> GoalResult:
    """Value goal of visitors with a given mean and standard deviation per visitor."""
    return analyse_value(
        [
            ValueSums(n, mean * n, (sd**2 + mean**2) * n)  # sum of squares of n visitors
            for n, mean, sd in variants
        ]
    )


def judge(result: GoalResult, **overrides: object) -> Decision:
    arguments: dict[str, object] = {
        "is_money": True,
        "result": result,
        "variant_keys": KEYS[: len(result.variants)],
        "sample_ratio": BALANCED,
        "daily_visitors": 1000.0,
        "days_left": 10,
    }
    arguments.update(overrides)
    return decide("margin", **arguments)  # type: ignore[arg-type]


def test_a_conclusively_better_variant_is_shipped_with_its_money_figures() -> None:
    result = margins((20_000, 1.00, 8.0), (20_000, 1.60, 8.0))
    decision = judge(result)
    green = result.variants[1]
    assert decision.verdict == Verdict.SHIP
    assert decision.variant == decision.challenger == "green"
    assert decision.per_thousand == pytest.approx(green.uplift * PER_VISITORS)
    assert decision.per_thousand == pytest.approx(600, rel=0.01)
    assert decision.per_month == pytest.approx(green.uplift * 1000 * DAYS_PER_MONTH)
    assert decision.per_thousand_interval.lower == pytest.approx(
        green.uplift_interval.lower * PER_VISITORS
    )
    assert decision.per_month_interval.upper == pytest.approx(
        green.uplift_interval.upper * 1000 * DAYS_PER_MONTH
    )
    assert decision.chance_to_be_better == green.chance_to_beat_control > 0.99
    assert decision.expected_loss_per_thousand == pytest.approx(green.expected_loss * PER_VISITORS)
    assert decision.days_left is None


def test_of_two_better_variants_the_one_earning_more_is_shipped() -> None:
    result = margins((30_000, 1.00, 8.0), (30_000, 1.50, 8.0), (30_000, 1.90, 8.0))
    assert judge(result).variant == "blue"


def test_when_every_challenger_is_conclusively_worse_the_control_is_kept() -> None:
    result = margins((20_000, 1.60, 8.0), (20_000, 1.00, 8.0))
    decision = judge(result)
    assert decision.verdict == Verdict.SHIP
    assert decision.variant == "control"
    assert decision.challenger == "green"
    assert decision.per_thousand < 0


def test_a_sample_ratio_alarm_overrides_even_a_clear_winner() -> None:
    result = margins((20_000, 1.00, 8.0), (20_000, 1.60, 8.0))
    decision = judge(result, sample_ratio=ALARM)
    assert decision.verdict == Verdict.INVESTIGATE
    assert decision.variant is None
    assert decision.challenger == "green"  # the figures are still there, marked untrustworthy


def test_an_inconclusive_difference_keeps_running_for_the_forecast_days() -> None:
    result = conversions((2_000, 100), (2_000, 110))
    decision = judge(result, is_money=False, days_left=12)
    assert decision.verdict == Verdict.KEEP_RUNNING
    assert decision.days_left == 12
    assert decision.variant is None
    assert decision.challenger == "green"
    assert 0.5 < decision.chance_to_be_better < 0.95


def test_without_data_it_keeps_running_without_figures() -> None:
    result = conversions((0, 0), (0, 0))
    decision = judge(result, days_left=None, daily_visitors=None)
    assert decision.verdict == Verdict.KEEP_RUNNING
    assert decision.challenger is None
    assert decision.per_thousand is None and decision.per_month is None


def test_a_ruled_out_worthwhile_effect_says_stop() -> None:
    # two million visitors at 5 %: the interval of the relative uplift is a few percent wide,
    # well under the minimum effect of 5 %
    result = conversions((2_000_000, 100_000), (2_000_000, 100_100))
    assert result.variants[1].relative_uplift_interval.upper < result.minimum_effect
    decision = judge(result, is_money=False, days_left=0)
    assert decision.verdict == Verdict.STOP
    assert decision.variant is None


def test_a_forecast_beyond_the_longest_wait_says_stop() -> None:
    result = conversions((2_000, 100), (2_000, 104))
    assert judge(result, days_left=MAXIMUM_WAIT_DAYS).verdict == Verdict.KEEP_RUNNING
    assert judge(result, days_left=MAXIMUM_WAIT_DAYS + 1).verdict == Verdict.STOP


def test_per_month_is_unknown_without_traffic() -> None:
    result = margins((20_000, 1.00, 8.0), (20_000, 1.60, 8.0))
    decision = judge(result, daily_visitors=None)
    assert decision.per_month is None and decision.per_month_interval is None
    assert decision.per_thousand is not None
