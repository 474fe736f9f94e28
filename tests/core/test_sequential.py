"""Tests of the group sequential design against published boundaries and seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from server.core import sequential

# Lan–DeMets O'Brien–Fleming boundaries for two-sided alpha 0.05 (0.025 per side) at equally
# spaced looks, as published by Jennison & Turnbull (2000, table 7.x) and printed by R's
# gsDesign (sfLDOF) and ldbounds; four decimals.
PUBLISHED = {
    2: (2.9626, 1.9686),
    3: (3.7103, 2.5114, 1.9930),
    4: (4.3326, 2.9631, 2.3590, 2.0141),
    5: (4.8769, 3.3569, 2.6803, 2.2898, 2.0310),
}


@pytest.mark.parametrize("looks", sorted(PUBLISHED))
def test_boundaries_equal_the_published_obrien_fleming_values(looks: int) -> None:
    fractions = [k / looks for k in range(1, looks + 1)]
    computed = sequential.boundaries(fractions, 0.05)
    assert computed == pytest.approx(PUBLISHED[looks], abs=1.5e-4)


def test_the_first_boundary_is_the_spending_functions_own_quantile() -> None:
    # a single look at t spends spent(t) and nothing else: the boundary is its normal quantile
    from scipy import stats

    for fraction in (0.1, 0.3, 1.0):
        expected = stats.norm.isf(sequential.spent(fraction, 0.05) / 2)
        assert sequential.boundaries([fraction], 0.05)[0] == pytest.approx(expected, rel=1e-12)
    assert sequential.spent(1.0, 0.05) == pytest.approx(0.05, rel=1e-12)
    assert sequential.spent(2.0, 0.05) == sequential.spent(1.0, 0.05)  # capped at the plan


@pytest.mark.parametrize("looks", [5, 28, 50])
def test_daily_looks_cross_their_boundaries_in_alpha_of_simulated_null_paths(looks: int) -> None:
    # uneven days: the recursion must hold for the fractions actually seen, not just even ones
    rng = np.random.default_rng(looks)
    steps = rng.uniform(0.5, 1.5, looks)
    fractions = [float(f) for f in np.cumsum(steps) / steps.sum()]
    fractions[-1] = 1.0
    bounds = np.array(sequential.boundaries(fractions, 0.05))
    runs = 200_000
    increments = rng.standard_normal((runs, looks)) * np.sqrt(np.diff([0.0, *fractions]))
    statistics = increments.cumsum(axis=1) / np.sqrt(fractions)
    crossed = (np.abs(statistics) >= bounds).any(axis=1).mean()
    # Monte Carlo standard error at 200 000 runs is 0.05 percentage points
    assert crossed == pytest.approx(0.05, abs=0.0025)


def test_repeated_p_value_is_below_alpha_exactly_when_a_boundary_was_crossed() -> None:
    fractions = [0.2, 0.45, 0.7, 1.0]
    plan = sequential.plan(fractions, 0.05, 3)
    bounds = sequential.boundaries(fractions, 0.05)
    for look, bound in enumerate(bounds):
        just_over = [None] * len(fractions)
        just_over[look] = bound * 1.0001
        just_under = [None] * len(fractions)
        just_under[look] = bound * 0.9999
        assert plan.p_value(just_over) < 0.05 < plan.p_value(just_under)  # type: ignore[operator]
    # the Holm levels are exact too
    holm_bound = sequential.boundaries(fractions, 0.05 / 3)[-1]
    assert plan.p_value([None, None, None, holm_bound * 1.0001]) < 0.05 / 3  # type: ignore[operator]
    assert plan.p_value([None, None, None, holm_bound * 0.9999]) > 0.05 / 3  # type: ignore[operator]


def test_repeated_p_value_is_the_smallest_over_looks_and_stays_in_range() -> None:
    plan = sequential.plan([0.5, 1.0], 0.05, 1)
    assert plan.p_value([0.1, -3.0]) == plan.p_value([None, 3.0])
    assert plan.p_value([0.0, 0.0]) == 1.0
    assert plan.p_value([40.0, None]) == sequential.SMALLEST_P_VALUE
    assert plan.p_value([None, None]) is None
    with pytest.raises(ValueError, match="one statistic per look"):
        plan.p_value([1.0])
    with pytest.raises(ValueError, match="no boundaries"):
        plan.boundary(0.07)


def test_looks_count_when_they_add_two_percent_and_end_at_the_plan() -> None:
    planned = 1000
    progress = [100, 110, 300, 1100, 1500]
    counted = sequential.information_fractions(progress, planned)
    assert counted == [0, 2, 3]  # 110 adds 1 %; 1500 comes after the final look
    assert sequential.fractions_of(progress, planned, counted) == [0.1, 0.3, 1.0]


def test_the_current_look_counts_if_it_adds_anything() -> None:
    assert sequential.information_fractions([500, 505], 1000) == [0, 1]
    assert sequential.information_fractions([500, 500], 1000) == [0]


def test_a_stopped_experiment_spends_what_is_left_at_its_last_look() -> None:
    progress = [200, 400, 600]
    counted = sequential.information_fractions(progress, 1000, is_final=True)
    fractions = sequential.fractions_of(progress, 1000, counted, is_final=True)
    assert fractions == [0.2, 0.4, 1.0]
    final = sequential.boundaries(fractions, 0.05)[-1]
    planned_third = sequential.boundaries([0.2, 0.4, 0.6], 0.05)[-1]
    assert final < planned_third  # the rest of alpha is spent: a lower bar than mid-plan


def test_bad_fractions_are_refused() -> None:
    for fractions in ([], [0.5, 0.5], [0.0, 1.0], [0.5, 1.2]):
        with pytest.raises(ValueError, match=r"look|fractions"):
            sequential.boundaries(fractions, 0.05)
    with pytest.raises(ValueError, match="planned"):
        sequential.information_fractions([1], 0)
    assert math.isfinite(sequential.boundaries([1e-6, 1.0], 0.05)[0])
