"""Tests of the statistics engine against independent implementations and seeded simulations."""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as strategy
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from server.core.models import Analysis
from server.core.stats import (
    ConversionCounts,
    GoalResult,
    ValueSums,
    analyse_conversion,
    analyse_conversion_segments,
    analyse_value,
    analyse_value_segments,
    benjamini_hochberg,
    estimate_interval,
    estimated_end_date,
    holm,
    running_minimum,
    sample_ratio_mismatch,
    visitors_needed_for_conversion,
    visitors_needed_for_value,
)

TOLERANCE = 1e-6
FIXED = Analysis.FIXED
SEQUENTIAL = Analysis.SEQUENTIAL


def sums_of(values: Any) -> ValueSums:
    """The ValueSums of an array of per-visitor totals."""
    values = np.asarray(values, dtype=float)
    return ValueSums(len(values), float(values.sum()), float((values**2).sum()))


def numbers_in(result: Any) -> list[Any]:
    """Every leaf value of a (nested) dataclass result."""
    leaves: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        else:
            leaves.append(value)

    walk(dataclasses.asdict(result))
    return leaves


def assert_json_friendly(result: Any) -> None:
    """Only plain ints, finite floats, strings, bools and None, as an API layer can dump."""
    for value in numbers_in(result):
        assert value is None or type(value) in (int, float, str, bool), value
        if isinstance(value, float):
            assert math.isfinite(value)


# --- conversion goals, fixed horizon ------------------------------------------------------------

CONVERSION_CASES = [
    (1000, 50, 1000, 65),
    (5000, 400, 4000, 280),
    (123, 7, 456, 40),
    (100000, 3000, 98000, 3100),
]


@pytest.mark.parametrize(("control_n", "control_c", "variant_n", "variant_c"), CONVERSION_CASES)
def test_fixed_conversion_p_value_matches_statsmodels_proportions_ztest(
    control_n: int, control_c: int, variant_n: int, variant_c: int
) -> None:
    result = analyse_conversion(
        [ConversionCounts(control_n, control_c), ConversionCounts(variant_n, variant_c)],
        method=FIXED,
    )
    _, expected = proportions_ztest([variant_c, control_c], [variant_n, control_n])
    assert result.variants[1].p_value == pytest.approx(expected, abs=TOLERANCE)


def fieller_relative(
    a: float, b: float, var_a: float, var_b: float, k: float
) -> tuple[float, float]:
    """Fieller's interval of b/a - 1: the roots of (b - r a)² = k² (var_b + r² var_a), by numpy."""
    roots = np.roots([a * a - k * k * var_a, -2 * a * b, b * b - k * k * var_b])
    return float(min(roots)) - 1, float(max(roots)) - 1


@pytest.mark.parametrize(("control_n", "control_c", "variant_n", "variant_c"), CONVERSION_CASES)
def test_fixed_conversion_intervals_are_agresti_caffo_and_fieller(
    control_n: int, control_c: int, variant_n: int, variant_c: int
) -> None:
    variant = analyse_conversion(
        [ConversionCounts(control_n, control_c), ConversionCounts(variant_n, variant_c)],
        method=FIXED,
    ).variants[1]
    lower, upper = confint_proportions_2indep(
        variant_c, variant_n, control_c, control_n, method="agresti-caffo"
    )
    assert variant.uplift == pytest.approx(variant_c / variant_n - control_c / control_n)
    assert variant.uplift_interval is not None
    assert variant.uplift_interval.lower == pytest.approx(lower, abs=TOLERANCE)
    assert variant.uplift_interval.upper == pytest.approx(upper, abs=TOLERANCE)
    # Fieller on the same adjusted rates and variances
    a, b = (control_c + 1) / (control_n + 2), (variant_c + 1) / (variant_n + 2)
    var_a, var_b = a * (1 - a) / (control_n + 2), b * (1 - b) / (variant_n + 2)
    expected = fieller_relative(a, b, var_a, var_b, scipy_stats.norm.ppf(0.975))
    assert variant.relative_uplift == pytest.approx(
        (variant_c / variant_n) / (control_c / control_n) - 1, abs=TOLERANCE
    )
    assert variant.relative_uplift_interval is not None
    assert variant.relative_uplift_interval.lower == pytest.approx(expected[0], abs=TOLERANCE)
    assert variant.relative_uplift_interval.upper == pytest.approx(expected[1], abs=TOLERANCE)


def test_alpha_sets_the_interval_level() -> None:
    counts = [ConversionCounts(1000, 50), ConversionCounts(1000, 65)]
    wide = analyse_conversion(counts, method=FIXED, alpha=0.01).variants[1].uplift_interval
    narrow = analyse_conversion(counts, method=FIXED, alpha=0.10).variants[1].uplift_interval
    assert wide is not None and narrow is not None
    ratio = (wide.upper - wide.lower) / (narrow.upper - narrow.lower)
    assert ratio == pytest.approx(scipy_stats.norm.ppf(0.995) / scipy_stats.norm.ppf(0.95))


# --- value goals, fixed horizon -----------------------------------------------------------------


def revenue_samples(seed: int, sizes: tuple[int, int]) -> tuple[Any, Any]:
    """Zero-inflated order values: most visitors buy nothing, buyers spend gamma-distributed."""
    rng = np.random.default_rng(seed)
    samples = []
    for size in sizes:
        bought = rng.random(size) < 0.2
        samples.append(np.where(bought, rng.gamma(2.0, 30.0, size), 0.0))
    return samples[0], samples[1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fixed_value_p_value_matches_scipy_welch_test(seed: int) -> None:
    control, variant = revenue_samples(seed, (800, 650))
    result = analyse_value([sums_of(control), sums_of(variant)], method=FIXED)
    expected = scipy_stats.ttest_ind_from_stats(
        variant.mean(),
        variant.std(ddof=1),
        len(variant),
        control.mean(),
        control.std(ddof=1),
        len(control),
        equal_var=False,
    ).pvalue
    assert result.variants[1].p_value == pytest.approx(expected, abs=TOLERANCE)


@pytest.mark.parametrize("seed", [4, 5])
def test_fixed_value_interval_matches_statsmodels_welch_satterthwaite_interval(seed: int) -> None:
    control, variant = revenue_samples(seed, (300, 500))
    result = analyse_value([sums_of(control), sums_of(variant)], method=FIXED).variants[1]
    lower, upper = CompareMeans(DescrStatsW(variant), DescrStatsW(control)).tconfint_diff(
        usevar="unequal"
    )
    assert result.uplift == pytest.approx(variant.mean() - control.mean(), abs=TOLERANCE)
    assert result.uplift_interval is not None
    assert result.uplift_interval.lower == pytest.approx(lower, abs=TOLERANCE)
    assert result.uplift_interval.upper == pytest.approx(upper, abs=TOLERANCE)


def test_fixed_value_relative_interval_is_fieller_with_the_welch_critical_value() -> None:
    control, variant = revenue_samples(6, (700, 700))
    result = analyse_value([sums_of(control), sums_of(variant)], method=FIXED).variants[1]
    a, b = control.mean(), variant.mean()
    var_a, var_b = control.var(ddof=1) / len(control), variant.var(ddof=1) / len(variant)
    freedom = (var_a + var_b) ** 2 / (var_a**2 / (len(control) - 1) + var_b**2 / (len(variant) - 1))
    expected = fieller_relative(a, b, var_a, var_b, scipy_stats.t.ppf(0.975, freedom))
    assert result.relative_uplift == pytest.approx(b / a - 1, abs=TOLERANCE)
    assert result.relative_uplift_interval is not None
    assert result.relative_uplift_interval.lower == pytest.approx(expected[0], abs=TOLERANCE)
    assert result.relative_uplift_interval.upper == pytest.approx(expected[1], abs=TOLERANCE)


# --- sequential (mSPRT) -------------------------------------------------------------------------


def johari_p_value(difference: float, pair_variance: float, per_arm: int, tau2: float) -> float:
    """min(1, 1/Lambda_n) written exactly as in Johari et al. (2017) for n pairs."""
    v, n = pair_variance, per_arm
    ratio = math.sqrt(v / (v + n * tau2)) * math.exp(
        n**2 * tau2 * difference**2 / (2 * v * (v + n * tau2))
    )
    return min(1.0, 1.0 / ratio)


@pytest.mark.parametrize(("control_c", "variant_c"), [(500, 540), (500, 600), (500, 500)])
def test_sequential_conversion_p_value_is_johari_mixture_ratio_for_equal_variants(
    control_c: int, variant_c: int
) -> None:
    n = 10000
    result = analyse_conversion([ConversionCounts(n, control_c), ConversionCounts(n, variant_c)])
    pooled = (control_c + variant_c) / (2 * n)
    # the test of "no difference" uses the pooled rate for both variances, as the z-test does
    expected = johari_p_value(
        variant_c / n - control_c / n, 2 * pooled * (1 - pooled), n, (0.05 * pooled) ** 2
    )
    assert result.variants[1].p_value == pytest.approx(expected, abs=TOLERANCE)


def test_sequential_value_p_value_is_johari_mixture_ratio_for_equal_variants() -> None:
    control, variant = revenue_samples(7, (5000, 5000))
    result = analyse_value([sums_of(control), sums_of(variant)], minimum_effect=0.1)
    pooled_mean = (control.sum() + variant.sum()) / 10000
    expected = johari_p_value(
        variant.mean() - control.mean(),
        control.var(ddof=1) + variant.var(ddof=1),
        5000,
        (0.1 * pooled_mean) ** 2,
    )
    assert result.variants[1].p_value == pytest.approx(expected, abs=TOLERANCE)


def test_sequential_p_value_for_unequal_variants_is_the_normal_mixture_likelihood_ratio() -> None:
    control, variant = revenue_samples(8, (3000, 9000))
    result = analyse_value([sums_of(control), sums_of(variant)]).variants[1]
    difference = variant.mean() - control.mean()
    variance = control.var(ddof=1) / 3000 + variant.var(ddof=1) / 9000
    tau2 = (0.05 * np.concatenate([control, variant]).mean()) ** 2
    # the estimate is N(theta, s²); mixing theta over N(0, tau²) gives N(0, s² + tau²)
    ratio = scipy_stats.norm.pdf(difference, 0, math.sqrt(variance + tau2)) / scipy_stats.norm.pdf(
        difference, 0, math.sqrt(variance)
    )
    assert result.p_value == pytest.approx(min(1.0, 1 / ratio), abs=TOLERANCE)


@pytest.mark.parametrize(("control_c", "variant_c"), [(900, 1000), (900, 1200)])
def test_confidence_sequence_ends_are_where_the_mixture_ratio_reaches_one_over_alpha(
    control_c: int, variant_c: int
) -> None:
    n = 20000
    variant = analyse_conversion(
        [ConversionCounts(n, control_c), ConversionCounts(n, variant_c)], minimum_effect=0.1
    ).variants[1]
    # intervals use each variant's own rate, Agresti–Caffo adjusted (n + 2 visitors each)
    a, b = (control_c + 1) / (n + 2), (variant_c + 1) / (n + 2)
    pair_variance = a * (1 - a) + b * (1 - b)
    tau2 = (0.1 * (control_c + variant_c) / (2 * n)) ** 2
    assert variant.uplift_interval is not None
    for end in (variant.uplift_interval.lower, variant.uplift_interval.upper):
        # shifting the hypothesis to theta = end: the ratio against it is exactly 1 / alpha
        assert johari_p_value(b - a - end, pair_variance, n + 2, tau2) == pytest.approx(0.05)


def test_confidence_sequence_is_wider_than_the_fixed_horizon_interval() -> None:
    counts = [ConversionCounts(50000, 2500), ConversionCounts(50000, 2650)]
    sequential = analyse_conversion(counts, method=SEQUENTIAL).variants[1]
    fixed = analyse_conversion(counts, method=FIXED).variants[1]
    assert sequential.uplift_interval is not None and fixed.uplift_interval is not None
    assert sequential.uplift_interval.lower < fixed.uplift_interval.lower
    assert sequential.uplift_interval.upper > fixed.uplift_interval.upper
    assert sequential.p_value is not None and fixed.p_value is not None
    assert sequential.p_value > fixed.p_value


def test_a_larger_minimum_effect_makes_the_sequential_test_sharper_on_large_effects() -> None:
    counts = [ConversionCounts(5000, 250), ConversionCounts(5000, 320)]
    small = analyse_conversion(counts, minimum_effect=0.02).variants[1].p_value
    large = analyse_conversion(counts, minimum_effect=0.3).variants[1].p_value
    assert small is not None and large is not None
    assert large < small


def test_running_minimum_makes_p_values_never_increase_and_skips_missing_looks() -> None:
    assert running_minimum([None, 0.8, 0.5, None, 0.7, 0.2, 0.3]) == [
        None,
        0.8,
        0.5,
        0.5,
        0.5,
        0.2,
        0.2,
    ]
    assert running_minimum([]) == []


def a_a_false_positive_rates(
    experiments: int, looks: int, daily: int, rate: float, seed: int, minimum_effect: float
) -> tuple[float, float]:
    """Share of A/A experiments that were ever 'significant' over daily looks, per method."""
    rng = np.random.default_rng(seed)
    conversions = rng.binomial(daily, rate, size=(experiments, looks, 2)).cumsum(axis=1)
    rejected = {SEQUENTIAL: 0, FIXED: 0}
    for experiment in range(experiments):
        for method in (SEQUENTIAL, FIXED):
            p_values = []
            for look in range(looks):
                control, variant = conversions[experiment, look]
                visitors = daily * (look + 1)
                result = analyse_conversion(
                    [
                        ConversionCounts(visitors, int(control)),
                        ConversionCounts(visitors, int(variant)),
                    ],
                    method=method,
                    minimum_effect=minimum_effect,
                )
                p_values.append(result.variants[1].p_value)
            monotone = running_minimum(p_values) if method == SEQUENTIAL else p_values
            rejected[method] += any(p is not None and p < 0.05 for p in monotone)
    return rejected[SEQUENTIAL] / experiments, rejected[FIXED] / experiments


# 0.05 is the default; 0.2 tunes the mixture to these sample sizes, where it is least conservative
@pytest.mark.parametrize("minimum_effect", [0.05, 0.2])
def test_sequential_p_value_keeps_false_positives_below_alpha_under_daily_peeking(
    minimum_effect: float,
) -> None:
    sequential, fixed = a_a_false_positive_rates(
        experiments=300, looks=28, daily=300, rate=0.05, seed=2017, minimum_effect=minimum_effect
    )
    assert sequential <= 0.05
    # peeking every day at the fixed-horizon p-value finds "winners" far more often than 5 %
    assert fixed >= 0.15


def test_sequential_value_p_value_keeps_false_positives_below_alpha_under_daily_peeking() -> None:
    rng = np.random.default_rng(1947)
    experiments, looks, daily = 200, 21, 200
    rejected = {SEQUENTIAL: 0, FIXED: 0}
    for _ in range(experiments):
        bought = rng.random((looks, 2, daily)) < 0.1
        values = np.where(bought, rng.gamma(2.0, 30.0, bought.shape), 0.0)
        sums = values.sum(axis=2).cumsum(axis=0)
        squares = (values**2).sum(axis=2).cumsum(axis=0)
        for method in (SEQUENTIAL, FIXED):
            p_values = [
                analyse_value(
                    [
                        ValueSums(daily * (look + 1), sums[look, arm], squares[look, arm])
                        for arm in (0, 1)
                    ],
                    method=method,
                    minimum_effect=0.2,  # tuned to these sample sizes: the least conservative
                )
                .variants[1]
                .p_value
                for look in range(looks)
            ]
            rejected[method] += any(p is not None and p < 0.05 for p in p_values)
    assert rejected[SEQUENTIAL] / experiments <= 0.05
    assert rejected[FIXED] / experiments >= 0.10


# --- Bayesian -----------------------------------------------------------------------------------

BAYESIAN_CASES = [
    (10, 2, 12, 5),  # tiny: quadrature over skewed posteriors
    (1000, 0, 1000, 3),  # zero conversions in the control
    (200, 30, 5000, 800),  # very different sizes
    (3, 3, 4, 4),  # everyone converted
    (20000, 1000, 20000, 1080),  # large: skew-corrected normal approximation
    (400000, 8000, 100000, 2100),
]


@pytest.mark.parametrize(("control_n", "control_c", "variant_n", "variant_c"), BAYESIAN_CASES)
def test_conversion_chance_to_beat_and_expected_loss_match_monte_carlo(
    control_n: int, control_c: int, variant_n: int, variant_c: int
) -> None:
    variant = analyse_conversion(
        [ConversionCounts(control_n, control_c), ConversionCounts(variant_n, variant_c)],
        minimum_visitors=0,  # the rule off: these check the integrals, small posteriors included
        minimum_conversions=0,
    ).variants[1]
    rng = np.random.default_rng(42)
    a = rng.beta(1 + control_c, 1 + control_n - control_c, 400_000)
    b = rng.beta(1 + variant_c, 1 + variant_n - variant_c, 400_000)
    assert variant.chance_to_beat_control == pytest.approx(np.mean(b > a), abs=1e-2)
    assert variant.expected_loss == pytest.approx(
        np.mean(np.maximum(a - b, 0)), abs=1e-2 * np.std(a - b)
    )


def test_value_chance_to_beat_and_expected_loss_match_monte_carlo_of_normal_posteriors() -> None:
    control, variant = revenue_samples(9, (400, 450))
    result = analyse_value([sums_of(control), sums_of(variant)]).variants[1]
    rng = np.random.default_rng(43)
    a = rng.normal(control.mean(), control.std(ddof=1) / math.sqrt(400), 400_000)
    b = rng.normal(variant.mean(), variant.std(ddof=1) / math.sqrt(450), 400_000)
    assert result.chance_to_beat_control == pytest.approx(np.mean(b > a), abs=1e-2)
    assert result.expected_loss == pytest.approx(
        np.mean(np.maximum(a - b, 0)), abs=1e-2 * np.std(a - b)
    )


def test_identical_variants_have_an_even_chance_to_beat_control() -> None:
    for n, c in ((50, 5), (100000, 5000)):
        counts = [ConversionCounts(n, c), ConversionCounts(n, c)]
        variant = analyse_conversion(counts, minimum_visitors=0, minimum_conversions=0).variants[1]
        assert variant.chance_to_beat_control == pytest.approx(0.5, abs=1e-3)


def test_same_input_gives_the_same_result() -> None:
    counts = [ConversionCounts(57, 4), ConversionCounts(61, 9), ConversionCounts(30000, 1500)]
    assert analyse_conversion(counts) == analyse_conversion(counts)


# --- several variants and segments --------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_holm_and_benjamini_hochberg_match_statsmodels_multipletests(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p_values = list(rng.uniform(0, 0.2, size=12) ** (1 + seed))
    for ours, name in ((holm, "holm"), (benjamini_hochberg, "fdr_bh")):
        _, expected, _, _ = multipletests(p_values, method=name)
        assert ours(p_values) == pytest.approx(list(expected), abs=TOLERANCE)


def test_multiple_comparison_adjustments_skip_missing_p_values() -> None:
    _, expected, _, _ = multipletests([0.01, 0.04, 0.03], method="holm")
    assert holm([0.01, None, 0.04, 0.03]) == pytest.approx(
        [expected[0], None, expected[1], expected[2]]
    )
    assert benjamini_hochberg([None, None]) == [None, None]
    assert holm([]) == []


def test_several_variants_get_holm_adjusted_p_values_that_decide_significance() -> None:
    counts = [ConversionCounts(20000, 1000)] + [
        ConversionCounts(20000, c) for c in (1090, 1120, 1010, 1150)
    ]
    result = analyse_conversion(counts, method=FIXED)
    raw = [variant.p_value for variant in result.variants[1:]]
    _, expected, _, _ = multipletests(raw, method="holm")
    assert [variant.adjusted_p_value for variant in result.variants[1:]] == pytest.approx(
        list(expected)
    )
    assert [variant.is_significant for variant in result.variants[1:]] == [
        p < 0.05 for p in expected
    ]
    assert result.adjustment == "holm"


def test_segments_below_the_minimum_sample_are_reported_but_not_judged() -> None:
    segments = {
        "mobile": [ConversionCounts(5000, 200), ConversionCounts(5000, 330)],
        "tablet": [ConversionCounts(99, 3), ConversionCounts(120, 40)],  # control under 100
        "desktop": [ConversionCounts(400, 4), ConversionCounts(400, 5)],  # 9 conversions only
    }
    results = {segment.segment: segment for segment in analyse_conversion_segments(segments)}
    assert results["mobile"].is_judged
    assert results["mobile"].result.variants[1].is_significant
    for name in ("tablet", "desktop"):
        assert not results[name].is_judged
        variant = results[name].result.variants[1]
        assert variant.p_value is not None and variant.uplift is not None
        assert variant.adjusted_p_value is None and not variant.is_significant
        assert variant.status == "not_enough_data" and variant.reason


def test_segment_p_values_are_benjamini_hochberg_adjusted_over_judged_segments() -> None:
    rng = np.random.default_rng(11)
    segments = {
        f"country-{index}": [
            ConversionCounts(3000, int(rng.binomial(3000, 0.05))),
            ConversionCounts(3000, int(rng.binomial(3000, 0.055))),
            ConversionCounts(3000, int(rng.binomial(3000, 0.06))),
        ]
        for index in range(8)
    }
    segments["tiny"] = [ConversionCounts(10, 1)] * 3
    results = analyse_conversion_segments(segments, method=FIXED)
    judged = [segment for segment in results if segment.is_judged]
    raw = [v.p_value for segment in judged for v in segment.result.variants[1:]]
    _, expected, _, _ = multipletests(raw, method="fdr_bh")
    adjusted = [v.adjusted_p_value for segment in judged for v in segment.result.variants[1:]]
    assert adjusted == pytest.approx(list(expected), abs=TOLERANCE)
    assert len(judged) == 8
    assert all(segment.result.adjustment == "benjamini-hochberg" for segment in results)


def test_value_segments_are_judged_on_visitors_alone() -> None:
    control, variant = revenue_samples(12, (150, 160))
    results = analyse_value_segments(
        {
            "new": [sums_of(control), sums_of(variant)],
            "returning": [sums_of(control[:50]), sums_of(variant[:50])],
        },
        method=FIXED,
    )
    assert [segment.is_judged for segment in results] == [True, False]
    assert results[0].result.variants[1].adjusted_p_value == pytest.approx(
        results[0].result.variants[1].p_value
    )


# --- sample ratio mismatch ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "allocations"),
    [
        ([5000, 5100], [5000, 5000]),
        ([5000, 5400], [5000, 5000]),
        ([1000, 2100, 2950], [2000, 3000, 5000]),
        ([0, 0, 10], [3000, 3000, 4000]),
    ],
)
def test_sample_ratio_mismatch_matches_scipy_chisquare(
    counts: list[int], allocations: list[int]
) -> None:
    result = sample_ratio_mismatch(counts, allocations)
    expected = scipy_stats.chisquare(counts, [sum(counts) * share / 10000 for share in allocations])
    assert result.chi_square == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOLERANCE)
    assert result.is_mismatch == (expected.pvalue < 0.001)


def test_sample_ratio_mismatch_is_flagged_only_below_one_in_a_thousand() -> None:
    assert not sample_ratio_mismatch([5000, 5150], [5000, 5000]).is_mismatch  # p ≈ 0.14
    assert sample_ratio_mismatch([5000, 5400], [5000, 5000]).is_mismatch  # p ≈ 8.7e-5


def test_sample_ratio_mismatch_edge_cases() -> None:
    assert sample_ratio_mismatch([0, 0], [5000, 5000]).p_value == 1.0
    assert sample_ratio_mismatch([10, 0], [10000, 0]).p_value == 1.0  # nothing to compare
    leaking = sample_ratio_mismatch([10, 1], [10000, 0])
    assert leaking.is_mismatch and leaking.p_value == 0.0 and leaking.chi_square is None


@pytest.mark.parametrize(
    ("counts", "allocations"),
    [([1, 2], [5000, 4000]), ([1, 2], [5000]), ([-1, 2], [5000, 5000]), ([1, 2], [-1, 10001])],
)
def test_sample_ratio_mismatch_rejects_impossible_input(
    counts: list[int], allocations: list[int]
) -> None:
    with pytest.raises(ValueError):
        sample_ratio_mismatch(counts, allocations)


# --- power and end date -------------------------------------------------------------------------


def test_conversion_sample_size_gives_80_percent_power_in_simulation() -> None:
    needed = visitors_needed_for_conversion(0.10, minimum_effect=0.10)
    assert needed is not None
    rng = np.random.default_rng(80)
    control = rng.binomial(needed, 0.10, 4000)
    variant = rng.binomial(needed, 0.11, 4000)
    pooled = (control + variant) / (2 * needed)
    z = (variant - control) / needed / np.sqrt(pooled * (1 - pooled) * 2 / needed)
    power = np.mean(2 * scipy_stats.norm.sf(np.abs(z)) < 0.05)
    assert power == pytest.approx(0.80, abs=0.02)


def test_value_sample_size_gives_80_percent_power_in_simulation() -> None:
    needed = visitors_needed_for_value(10.0, 10.0, minimum_effect=0.2)
    assert needed is not None
    rng = np.random.default_rng(81)
    control = rng.normal(10.0, 10.0, (4000, needed))
    variant = rng.normal(12.0, 10.0, (4000, needed))
    p_values = scipy_stats.ttest_ind(variant, control, axis=1, equal_var=False).pvalue
    assert np.mean(p_values < 0.05) == pytest.approx(0.80, abs=0.02)


def test_sample_sizes_follow_the_textbook_formulas() -> None:
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    assert visitors_needed_for_value(50.0, 80.0) == math.ceil(2 * 80.0**2 * z**2 / 2.5**2)
    p1, p2 = 0.03, 0.0315
    average = (p1 + p2) / 2
    expected = (
        scipy_stats.norm.ppf(0.975) * math.sqrt(2 * average * (1 - average))
        + scipy_stats.norm.ppf(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2 / (p2 - p1) ** 2
    assert visitors_needed_for_conversion(0.03) == math.ceil(expected)


@pytest.mark.parametrize("baseline", [0.0, 1.0, 0.96])
def test_no_sample_size_when_no_relative_uplift_is_possible(baseline: float) -> None:
    assert visitors_needed_for_conversion(baseline) is None


def test_value_sample_size_edge_cases() -> None:
    assert visitors_needed_for_value(0.0, 5.0) is None
    assert visitors_needed_for_value(20.0, 0.0) == 2
    assert visitors_needed_for_value(-20.0, 10.0) == visitors_needed_for_value(20.0, 10.0)


TODAY = datetime.date(2025, 3, 1)


@pytest.mark.parametrize(
    ("needed", "so_far", "daily", "expected"),
    [
        (1000, [1000, 1200], [0.0, 0.0], TODAY),  # enough already, traffic does not matter
        (1000, [400, 500], [100.0, 50.0], TODAY + datetime.timedelta(days=10)),  # slowest wins
        (1000, [999, 999], [7.5, 7.5], TODAY + datetime.timedelta(days=1)),
        (1000, [0, 0], [0.0, 10.0], None),  # a variant without traffic never gets there
        (None, [0, 0], [10.0, 10.0], None),
        (10**9, [0], [1.0], None),  # beyond ten years
    ],
)
def test_estimated_end_date(
    needed: int | None, so_far: list[int], daily: list[float], expected: datetime.date | None
) -> None:
    assert estimated_end_date(needed, so_far, daily, TODAY) == expected


# --- edge cases ---------------------------------------------------------------------------------

EDGE_CASES: list[tuple[str, list[Any]]] = [
    ("no visitors anywhere", [ConversionCounts(0, 0), ConversionCounts(0, 0)]),
    ("control without visitors", [ConversionCounts(0, 0), ConversionCounts(50, 5)]),
    ("variant without visitors", [ConversionCounts(50, 5), ConversionCounts(0, 0)]),
    ("no conversions", [ConversionCounts(500, 0), ConversionCounts(500, 0)]),
    ("everyone converted", [ConversionCounts(500, 500), ConversionCounts(500, 500)]),
    ("none against all", [ConversionCounts(5, 0), ConversionCounts(5, 5)]),
    ("single visitors", [ConversionCounts(1, 1), ConversionCounts(1, 0)]),
    ("only the control", [ConversionCounts(10, 1)]),
    ("no value visitors", [ValueSums(0, 0.0, 0.0), ValueSums(0, 0.0, 0.0)]),
    ("value variant without visitors", [ValueSums(10, 50.0, 400.0), ValueSums(0, 0.0, 0.0)]),
    ("single value visitor", [ValueSums(1, 30.0, 900.0), ValueSums(1, 10.0, 100.0)]),
    ("identical constant values", [ValueSums(40, 200.0, 1000.0), ValueSums(40, 200.0, 1000.0)]),
    ("different constant values", [ValueSums(4, 0.0, 0.0), ValueSums(4, 20.0, 100.0)]),
    ("all zero revenue", [ValueSums(300, 0.0, 0.0), ValueSums(300, 0.0, 0.0)]),
    ("negative margins", [ValueSums(100, -50.0, 900.0), ValueSums(100, -20.0, 600.0)]),
    ("zero control mean", [ValueSums(100, 0.0, 900.0), ValueSums(100, 20.0, 600.0)]),
]


def analyse(variants: list[Any], method: Analysis) -> GoalResult:
    if isinstance(variants[0], ConversionCounts):
        return analyse_conversion(variants, method=method)
    return analyse_value(variants, method=method)


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
@pytest.mark.parametrize(("name", "variants"), EDGE_CASES, ids=[case[0] for case in EDGE_CASES])
def test_edge_cases_never_crash_nor_leak_nan_or_infinity(
    name: str, variants: list[Any], method: Analysis
) -> None:
    assert_json_friendly(analyse(variants, method))


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
def test_edge_cases_have_defined_answers(method: Analysis) -> None:
    def variant(name: str) -> Any:
        return analyse(dict(EDGE_CASES)[name], method).variants[-1]

    empty = variant("no visitors anywhere")
    assert empty.estimate is None and empty.p_value is None and empty.uplift is None
    assert variant("control without visitors").estimate == 0.1
    assert variant("control without visitors").chance_to_beat_control is None
    assert variant("variant without visitors").estimate is None
    for name in ("no conversions", "everyone converted", "identical constant values"):
        same = variant(name)
        assert same.p_value == 1.0 and same.uplift == 0.0 and not same.is_significant
    # judged (1000 conversions): an even chance; below the minimum-evidence rule: none at all
    assert variant("everyone converted").chance_to_beat_control == pytest.approx(0.5, abs=1e-3)
    for name in ("no conversions", "identical constant values"):
        assert variant(name).status == "not_enough_data"
        assert variant(name).chance_to_beat_control is None
    assert variant("no conversions").relative_uplift is None  # nothing to be relative to
    assert variant("no conversions").relative_reason
    single = variant("single value visitor")
    assert single.uplift == -20.0 and single.p_value is None and single.uplift_interval is None
    different = variant("different constant values")
    assert different.uplift == 5.0 and different.p_value is None
    assert variant("zero control mean").relative_uplift is None
    # a percentage of a negative baseline reads the wrong way round: not given, with the reason
    negative = variant("negative margins")
    assert negative.relative_uplift is None and negative.relative_uplift_interval is None
    assert "not above zero" in negative.relative_reason
    assert analyse(dict(EDGE_CASES)["only the control"], method).variants[0].estimate == 0.1


@settings(max_examples=200, deadline=None)
@given(
    strategy.lists(
        strategy.tuples(strategy.integers(0, 10**7), strategy.floats(0, 1)),
        min_size=1,
        max_size=4,
    ),
    strategy.sampled_from([SEQUENTIAL, FIXED]),
)
def test_any_possible_conversion_counts_give_finite_results(
    variants: list[tuple[int, float]], method: Analysis
) -> None:
    counts = [ConversionCounts(n, round(n * share)) for n, share in variants]
    assert_json_friendly(analyse_conversion(counts, method=method))


@settings(max_examples=300, deadline=None)
@given(
    strategy.lists(
        strategy.tuples(
            strategy.integers(0, 10**6),
            strategy.floats(-1e150, 1e150),
            strategy.floats(0, 1e150),
        ),
        min_size=1,
        max_size=4,
    ),
    strategy.sampled_from([SEQUENTIAL, FIXED]),
)
# tau² / s² underflowed to 0 in the sequential critical value
@example(
    variants=[(2, 0.0, 0.0), (2, 2.357545610778875e-97, 1.4061950455589473e127)], method=SEQUENTIAL
)
def test_any_possible_value_sums_give_finite_results(
    variants: list[tuple[int, float, float]], method: Analysis
) -> None:
    sums = [
        ValueSums(n, mean * n, (spread + mean * mean) * n) if n else ValueSums(0, 0.0, 0.0)
        for n, mean, spread in variants
    ]
    assume(all(math.isfinite(one.value_sum_squares) for one in sums))
    assert_json_friendly(analyse_value(sums, method=method))


@pytest.mark.parametrize(
    "call",
    [
        lambda: analyse_conversion([]),
        lambda: analyse_conversion([ConversionCounts(5, 6)]),
        lambda: analyse_conversion([ConversionCounts(-1, 0)]),
        lambda: analyse_conversion([ConversionCounts(5, 1)], alpha=1.5),
        lambda: analyse_conversion([ConversionCounts(5, 1)], minimum_effect=0.0),
        lambda: analyse_conversion([ConversionCounts(5, 1)], method="bayesian"),  # type: ignore[arg-type]
        lambda: analyse_value([ValueSums(0, 5.0, 25.0)]),
        lambda: analyse_value([ValueSums(10, 100.0, 10.0)]),  # squares too small for the sum
        lambda: analyse_value([ValueSums(10, math.nan, 10.0)]),
        lambda: analyse_value([ValueSums(10**6, 1e156, 1e305)]),  # the check must not overflow
        lambda: visitors_needed_for_conversion(0.1, minimum_effect=-0.1),
        lambda: estimated_end_date(10, [1, 2], [1.0], TODAY),
    ],
)
def test_impossible_input_is_rejected(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


def test_method_may_be_given_as_its_plain_name() -> None:
    counts = [ConversionCounts(1000, 50), ConversionCounts(1000, 65)]
    by_name = analyse_conversion(counts, method="fixed")  # type: ignore[arg-type]
    assert by_name == analyse_conversion(counts, method=FIXED)
    assert by_name.method == "fixed"


def test_standard_deviation_matches_the_sample_standard_deviation():
    import statistics as reference

    from server.core import stats

    values = [0.0, 0.0, 12.5, 49.9, 0.0, 7.25]
    sums = stats.ValueSums(len(values), sum(values), sum(v * v for v in values))
    assert stats.standard_deviation(sums) == pytest.approx(reference.stdev(values), abs=1e-9)
    assert stats.standard_deviation(stats.ValueSums(1, 3.0, 9.0)) is None
    assert stats.standard_deviation(stats.ValueSums(3, 6.0, 12.0)) == 0.0


# --- results that never mislead (issue 13) ------------------------------------------------------


def margins_sample(seed: int, mean: float, size: int) -> Any:
    """Contribution margins per visitor: negative on average (returns, shipping), some positive."""
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(mean, 20.0, size), 2)


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
def test_relative_uplift_of_a_negative_baseline_is_not_given_with_the_reason(
    method: Analysis,
) -> None:
    # control loses 5.83 € per visitor, b 2.85 €: b is better, yet b / a - 1 reads as -51 %
    control, variant = margins_sample(1, -5.83, 2000), margins_sample(2, -2.85, 2000)
    result = analyse_value([sums_of(control), sums_of(variant)], method=method).variants[1]
    assert result.uplift is not None and result.uplift > 0
    assert result.relative_uplift is None and result.relative_uplift_interval is None
    assert result.relative_reason is not None and "not above zero" in result.relative_reason


def test_a_baseline_not_clearly_above_zero_gets_no_relative_uplift() -> None:
    control, variant = margins_sample(3, 0.3, 400), margins_sample(4, 1.0, 400)
    result = analyse_value([sums_of(control), sums_of(variant)], method=FIXED).variants[1]
    assert control.mean() > 0 and result.relative_uplift is None
    assert result.relative_reason == "the control's mean is not clearly above zero yet"


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
def test_one_visitor_is_never_significant(method: Analysis) -> None:
    result = analyse_conversion([ConversionCounts(300, 34), ConversionCounts(1, 1)], method=method)
    variant = result.variants[1]
    assert variant.status == "not_enough_data" and not variant.is_significant
    assert variant.reason == "fewer than 100 visitors in the control or the variant"
    assert variant.adjusted_p_value is None and variant.chance_to_beat_control is None
    assert variant.expected_loss is None
    assert result.minimum_visitors == 100 and result.minimum_conversions == 10


def test_small_counts_take_fishers_exact_test() -> None:
    for control, variant in (((300, 34), (1, 1)), ((300, 0), (1, 1)), ((400, 1), (380, 6))):
        result = analyse_conversion(
            [ConversionCounts(*control), ConversionCounts(*variant)], method=FIXED
        ).variants[1]
        table = [[variant[1], variant[0] - variant[1]], [control[1], control[0] - control[1]]]
        expected = scipy_stats.fisher_exact(table).pvalue
        assert result.p_value == pytest.approx(expected, abs=TOLERANCE)
    # 34/300 against 1/1: the z-test said 0.0058, Fisher says 0.116
    single = analyse_conversion(
        [ConversionCounts(300, 34), ConversionCounts(1, 1)], method=FIXED
    ).variants[1]
    assert single.p_value == pytest.approx(0.116, abs=1e-3)


def test_one_converting_visitor_against_none_gets_no_certain_interval() -> None:
    # 0/300 against 1/1 gave "+100.00 pp [+100.00, +100.00]"
    variant = analyse_conversion(
        [ConversionCounts(300, 0), ConversionCounts(1, 1)], method=FIXED
    ).variants[1]
    assert variant.uplift_interval is not None
    assert variant.uplift_interval.upper - variant.uplift_interval.lower > 0.5
    assert not variant.is_significant


def test_few_conversions_are_not_enough_even_with_many_visitors() -> None:
    result = analyse_conversion(
        [ConversionCounts(5000, 0), ConversionCounts(5000, 7)], method=FIXED
    ).variants[1]
    assert result.status == "not_enough_data" and not result.is_significant
    assert result.reason == "fewer than 10 conversions in the control and the variant together"


def test_value_goals_need_ten_buyers() -> None:
    # one 1,000,000 € order among 2000 visitors decides nothing
    control = ValueSums(1000, 0.0, 0.0, buyers=0)
    variant = ValueSums(1000, 1e6, 1e12, buyers=1)
    result = analyse_value([control, variant], method=FIXED).variants[1]
    assert result.status == "not_enough_data" and result.chance_to_beat_control is None
    assert result.reason == "fewer than 10 buyers in the control and the variant together"


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
def test_a_variant_without_conversions_gets_an_honest_relative_interval(method: Analysis) -> None:
    # [-100 %, -100 %] claimed certainty from a variance of 0
    variant = analyse_conversion(
        [ConversionCounts(3000, 60), ConversionCounts(3000, 0)], method=method
    ).variants[1]
    interval = variant.relative_uplift_interval
    if interval is not None:
        assert interval.lower == -1.0 and interval.upper > -0.95
    else:
        assert variant.relative_reason


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
def test_a_variant_without_revenue_gets_no_relative_interval_of_certainty(
    method: Analysis,
) -> None:
    control, _ = revenue_samples(21, (2000, 1))
    result = analyse_value(
        [sums_of(control), ValueSums(2000, 0.0, 0.0, buyers=0)], method=method
    ).variants[1]
    assert result.relative_uplift_interval is None
    assert result.relative_reason == "a variant has no spread: every visitor has the same total"


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
@pytest.mark.parametrize(
    ("control", "variant"), [((27, 1), (30, 0)), ((270, 10), (300, 2)), ((120, 3), (130, 9))]
)
def test_rate_differences_stay_within_what_the_rates_allow(
    control: tuple[int, int], variant: tuple[int, int], method: Analysis
) -> None:
    # the sequence at 3.70 % once reached -31.62 pp: lower than minus the control's rate
    result = analyse_conversion(
        [ConversionCounts(*control), ConversionCounts(*variant)], method=method
    ).variants[1]
    interval = result.uplift_interval
    assert interval is not None
    z = 4.0  # the documented bound: Wilson upper bounds at z = 4
    for counts, end in ((control, -interval.lower), (variant, interval.upper)):
        n, rate = counts[0], counts[1] / counts[0]
        spread = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
        wilson = (rate + z * z / (2 * n) + spread) / (1 + z * z / n)
        assert end <= wilson + 1e-12
    assert -1.0 <= interval.lower <= result.uplift <= interval.upper <= 1.0
    relative = result.relative_uplift_interval
    assert relative is None or relative.lower >= -1.0


def test_chart_bands_never_leave_the_possible_range() -> None:
    rate_band = estimate_interval(ConversionCounts(30, 1))
    assert rate_band is not None and rate_band.lower == 0.0
    assert estimate_interval(ConversionCounts(30, 29)).upper == 1.0  # type: ignore[union-attr]
    skewed = sums_of([0.0] * 40 + [500.0])
    assert estimate_interval(skewed).lower < 0  # type: ignore[union-attr]  # margins may go below 0
    revenue = estimate_interval(skewed, is_non_negative=True)
    assert revenue is not None and revenue.lower == 0.0


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
def test_skewed_revenue_relative_interval_is_bounded_below_for_revenue(method: Analysis) -> None:
    control, variant = revenue_samples(22, (300, 300))
    variant[:] = variant * 0.05
    result = analyse_value(
        [sums_of(control), sums_of(variant)], method=method, is_non_negative=True
    ).variants[1]
    assert result.relative_uplift_interval is None or result.relative_uplift_interval.lower >= -1


# equal prices, every visitor a buyer: the means differ only in the last bit
EQUAL_PRICE_CASES = [(44, 2475, 2931), (73054698, 2373, 2443), (8482, 1225, 2838), (76, 193, 106)]


@pytest.mark.parametrize("method", [SEQUENTIAL, FIXED])
@pytest.mark.parametrize(("cents", "control_n", "variant_n"), EQUAL_PRICE_CASES)
def test_everybody_paying_the_same_is_no_difference_in_any_segment(
    cents: int, control_n: int, variant_n: int, method: Analysis
) -> None:
    def sums(n: int) -> ValueSums:
        # as the results service builds them: integer cents divided into euros
        return ValueSums(n, cents * n / 100, cents * cents * n / 10000, buyers=n)

    result = analyse_value([sums(control_n), sums(variant_n)], method=method).variants[1]
    assert result.uplift == 0.0 and result.p_value == 1.0
    assert result.chance_to_beat_control == 0.5 and not result.is_significant


def test_sequential_p_values_are_the_running_minimum_over_looks() -> None:
    looks = [
        [ConversionCounts(2000, 100), ConversionCounts(2000, 140)],
        [ConversionCounts(4000, 200), ConversionCounts(4000, 250)],
        [ConversionCounts(50, 2), ConversionCounts(50, 9)],  # below the rule: does not count
    ]
    now = [ConversionCounts(6000, 300), ConversionCounts(6000, 330)]
    alone = [analyse_conversion(look).variants[1].p_value for look in [*looks[:2], now]]
    shown = analyse_conversion(now, looks=looks).variants[1]
    assert alone[2] is not None and min(alone) < alone[2]  # this look alone would rise
    assert shown.p_value == min(p for p in alone if p is not None)
    assert shown.adjusted_p_value == shown.p_value
    fixed = analyse_conversion(now, method=FIXED, looks=looks).variants[1]
    assert fixed.p_value == analyse_conversion(now, method=FIXED).variants[1].p_value
