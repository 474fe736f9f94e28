"""Guardrail judgement: harm only in the harmful direction, significant after Holm over all."""

from __future__ import annotations

import numpy as np

from server.core.guardrails import judge
from server.core.models import Analysis, Goal, Harm
from server.core.stats import (
    ConversionCounts,
    GoalResult,
    ValueSums,
    analyse_conversion,
    analyse_value,
)

KEYS = ("control", "green", "blue")


def rates(*pairs: tuple[int, int]) -> GoalResult:
    counts = [ConversionCounts(visitors, hits) for visitors, hits in pairs]
    return analyse_conversion(counts, method=Analysis.ALWAYS_VALID)


RETURNS = Goal("returns", is_guardrail=True, harm=Harm.INCREASE)
PURCHASE = Goal("purchase", is_guardrail=True, harm=Harm.DECREASE)


def test_a_significant_rise_of_an_increase_guardrail_is_a_harm() -> None:
    checks = judge([(RETURNS, rates((2000, 100), (2000, 300)))], KEYS)
    (check,) = checks
    assert check.variant == "green" and check.is_harmful
    assert check.adjusted_p_value is not None and check.adjusted_p_value < 0.05


def test_the_same_change_in_the_harmless_direction_is_no_harm() -> None:
    # more purchases are good news: a decrease guardrail does not alarm on a rise
    (check,) = judge([(PURCHASE, rates((2000, 100), (2000, 300)))], KEYS)
    assert check.adjusted_p_value is not None and check.adjusted_p_value < 0.05
    assert not check.is_harmful


def test_below_the_minimum_evidence_nothing_is_harmful() -> None:
    (check,) = judge([(RETURNS, rates((50, 1), (50, 30)))], KEYS)
    assert check.status == "not_enough_data" and check.adjusted_p_value is None
    assert not check.is_harmful


def test_holm_corrects_over_every_guardrail_and_variant() -> None:
    borderline = rates((4000, 400), (4000, 480), (4000, 400))
    alone = judge([(RETURNS, borderline)], KEYS)
    together = judge(
        [(RETURNS, borderline), (PURCHASE, rates((4000, 400), (4000, 400), (4000, 400)))], KEYS
    )
    first = alone[0].adjusted_p_value
    assert first is not None and together[0].adjusted_p_value is not None
    # four comparisons instead of two: the smallest p-value is multiplied by 4, not 2
    assert together[0].adjusted_p_value > first
    assert together[0].p_value == alone[0].p_value


def test_a_a_experiments_with_five_guardrails_rarely_alarm() -> None:
    """The family-wise false-alarm rate stays below alpha over five guardrails and two
    challengers (seeded A/A simulations; the always-valid test is conservative)."""
    generator = np.random.default_rng(21)
    alarms = 0
    runs = 300
    goals = [Goal(f"g{i}", is_guardrail=True, harm=Harm.INCREASE) for i in range(5)]
    for _ in range(runs):
        watched = []
        for goal in goals:
            hits = generator.binomial(800, 0.1, size=len(KEYS))
            watched.append((goal, rates(*((800, int(count)) for count in hits))))
        alarms += any(check.is_harmful for check in judge(watched, KEYS))
    assert alarms / runs < 0.05


def test_value_guardrails_are_judged_like_rates() -> None:
    margin = Goal("margin", is_guardrail=True)  # decrease is the default harm
    result = analyse_value_like(control_mean=10.0, variant_mean=8.0)
    (check,) = judge([(margin, result)], KEYS)
    assert check.harm is Harm.DECREASE and check.is_harmful


def analyse_value_like(control_mean: float, variant_mean: float) -> GoalResult:
    sums = [
        ValueSums(3000, mean * 3000, (4.0**2 + mean**2) * 3000, 3000)
        for mean in (control_mean, variant_mean)
    ]
    return analyse_value(sums, method=Analysis.ALWAYS_VALID)
