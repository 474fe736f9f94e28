"""Statistics engine: judges each variant of a goal against the control, without I/O or a clock.

Two kinds of goal come in as counts and sums, one frozen dataclass per variant, variant 0 being
the control:

- a conversion goal as ``ConversionCounts`` (visitors enrolled, visitors converted);
- a value goal (revenue or contribution margin per visitor, zeros included) as ``ValueSums``
  (visitors, sum of the visitors' totals, sum of their squares).

``analyse_conversion`` and ``analyse_value`` return a ``GoalResult``: per variant the estimate,
the absolute and relative uplift against the control with an interval, a p-value (always-valid
mSPRT by default, or fixed-horizon), Holm-adjusted p-values over the variants, and the Bayesian
chance to beat the control with its expected loss. Around them: ``sample_ratio_mismatch``,
``holm``, ``benjamini_hochberg``, ``running_minimum`` (monotone sequential p-values over looks),
``analyse_conversion_segments`` / ``analyse_value_segments`` (per segment value, with
Benjamini–Hochberg and a minimum sample), ``visitors_needed_for_conversion``,
``visitors_needed_for_value`` and ``estimated_end_date``.

Every undefined number is ``None``; no NaN or infinity leaves this module. Counts that cannot
happen (negative visitors, more conversions than visitors, allocations not summing to 10 000)
raise ``ValueError``: they are a bug upstream, not a statistical edge case. The methods, their
formulas and their sources are written up for shop owners in ``docs/statistics.md``.
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import special

from server.core.models import BASIS_POINTS, Analysis

DEFAULT_ALPHA = 0.05  # the conventional 5 % false-positive rate; two-sided everywhere
DEFAULT_POWER = 0.8  # the conventional 80 %: one real effect in five of minimum size is missed
# The smallest relative uplift worth finding; the same default as Experiment.minimum_effect. It
# sizes the power calculation and the sequential test's mixing distribution (see _mixture_variance).
DEFAULT_MINIMUM_EFFECT = 0.05
# Kohavi et al. flag a sample ratio mismatch only at p < 0.001: the check runs on every look of
# every experiment, and a false alarm makes people distrust a sound experiment.
SAMPLE_RATIO_MISMATCH_THRESHOLD = 0.001
# Below 100 visitors in some variant, a segment's normal approximations are too rough to judge.
MINIMUM_SEGMENT_VISITORS = 100
# A conversion segment needs 10 conversions over all its variants before it is judged (the
# "at least 5 expected per cell" rule of thumb for two cells); counted over all variants so that
# a variant that stopped converting entirely in one segment is still caught.
MINIMUM_SEGMENT_CONVERSIONS = 10
# Gauss–Legendre nodes for the Beta-posterior integrals; 32 nodes over ±12 standard deviations
# agree with adaptive quadrature to about 3e-5 over posteriors from 1 to 10⁶ visitors, far below
# what a decision needs, at a third less time than 48 nodes (which reach 2e-6).
QUADRATURE_NODES = 32
QUADRATURE_SPAN = 12.0  # standard deviations either side of the posterior mean
# From 100 conversions and 100 non-conversions in both variants on, the skew-corrected normal
# approximation of the Beta posteriors is within 6e-4 of the quadrature (chance to beat) and
# about 10 times cheaper; below that the posteriors are too skewed for it.
EDGEWORTH_MINIMUM_SHAPE = 100.0
# Forecasts beyond ten years are meaningless and would overflow ``datetime.date`` near year 9999.
MAXIMUM_FORECAST_DAYS = 3650

HOLM = "holm"  # GoalResult.adjustment of whole-experiment results
BENJAMINI_HOCHBERG = "benjamini-hochberg"  # GoalResult.adjustment of segment results
CONVERSION = "conversion"  # GoalResult.kind
VALUE = "value"  # GoalResult.kind

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class ConversionCounts:
    """Enrolled visitors of one variant and how many of them converted at least once."""

    visitors: int
    converted: int


@dataclass(frozen=True)
class ValueSums:
    """Enrolled visitors of one variant with the sum and sum of squares of their totals in euros."""

    visitors: int
    value_sum: float
    value_sum_squares: float


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[lower, upper]`` in the unit of the number it brackets."""

    lower: float
    upper: float


@dataclass(frozen=True)
class VariantResult:
    """One variant's numbers; every comparison field is None for the control and without data.

    ``estimate`` is the conversion rate or the mean value per visitor. ``uplift`` is the estimate
    minus the control's, ``relative_uplift`` that divided by the control's estimate (0.05 = +5 %).
    ``p_value`` is this look's p-value of "no difference"; ``adjusted_p_value`` corrects it for
    the number of comparisons (see ``GoalResult.adjustment``) and decides ``is_significant``.
    ``expected_loss`` is what choosing this variant over the control costs on average, in the
    estimate's unit, when the variant is in fact worse.
    """

    variant: int
    visitors: int
    converted: int | None
    estimate: float | None
    uplift: float | None
    uplift_interval: Interval | None
    relative_uplift: float | None
    relative_uplift_interval: Interval | None
    p_value: float | None
    adjusted_p_value: float | None
    is_significant: bool
    chance_to_beat_control: float | None
    expected_loss: float | None


@dataclass(frozen=True)
class GoalResult:
    """All variants of one goal, judged against variant 0 with the settings used."""

    kind: str  # "conversion" or "value"
    method: str  # "sequential" or "fixed"
    alpha: float
    minimum_effect: float
    adjustment: str  # "holm" over variants, "benjamini-hochberg" over segments
    variants: tuple[VariantResult, ...]


@dataclass(frozen=True)
class SampleRatioMismatch:
    """Chi-square goodness of fit of enrolments against allocations.

    ``chi_square`` is None when visitors reached a variant with zero allocation, which is a
    mismatch beyond any test (p-value 0).
    """

    chi_square: float | None
    p_value: float
    is_mismatch: bool


@dataclass(frozen=True)
class SegmentResult:
    """One segment value's goal result, corrected over all segments; unjudged ones claim nothing."""

    segment: str
    is_judged: bool
    result: GoalResult


@dataclass(frozen=True)
class _Comparison:
    """A variant against the control, before the multiple-comparison adjustment."""

    uplift: float | None = None
    uplift_interval: Interval | None = None
    relative_uplift: float | None = None
    relative_uplift_interval: Interval | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class _Moments:
    """Visitors, mean and sample variance of one variant's values (None where undefined)."""

    visitors: int
    mean: float | None
    variance: float | None


@dataclass(frozen=True)
class _GoalParts:
    """Everything of one goal's analysis that comes before adjusting the p-values."""

    kind: str
    method: Analysis
    alpha: float
    minimum_effect: float
    visitors: list[int]
    converted: list[int | None]
    estimates: list[float | None]
    comparisons: list[_Comparison]  # variants 1, 2, … against the control
    bayesian: list[tuple[float, float] | None]  # (chance to beat control, expected loss)

    def p_values(self) -> list[float | None]:
        """The unadjusted p-values of variants 1, 2, …"""
        return [comparison.p_value for comparison in self.comparisons]


def analyse_conversion(
    variants: Sequence[ConversionCounts],
    *,
    method: Analysis = Analysis.SEQUENTIAL,
    alpha: float = DEFAULT_ALPHA,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
) -> GoalResult:
    """Compare every variant's conversion rate with the control's (variant 0).

    Fixed horizon: pooled two-proportion z-test, unpooled Wald interval for the uplift and a
    delta-method interval for the relative uplift. Sequential: the mSPRT always-valid p-value
    and confidence sequences of the same quantities. Both: Beta(1 + converted, 1 + visitors -
    converted) posteriors for the chance to beat the control and the expected loss. The
    p-values are Holm-adjusted over the variants.

    Raises:
        ValueError: no variants, counts that cannot happen, or alpha / minimum_effect out of
            range.
    """
    method = _check_settings(variants, method, alpha, minimum_effect)
    _check_conversion_counts(variants)
    bayesian = _beta_chances_and_losses([(variants[0], variant) for variant in variants[1:]])
    parts = _conversion_parts(variants, method, alpha, minimum_effect, bayesian)
    return _goal_result(parts, holm(parts.p_values()), HOLM)


def analyse_value(
    variants: Sequence[ValueSums],
    *,
    method: Analysis = Analysis.SEQUENTIAL,
    alpha: float = DEFAULT_ALPHA,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
) -> GoalResult:
    """Compare every variant's mean value per visitor with the control's (variant 0).

    Fixed horizon: Welch's t-test with a Welch–Satterthwaite interval for the difference and a
    delta-method interval for the relative difference. Sequential: the mSPRT always-valid p-value
    and confidence sequences. Both: normal posteriors of the means for the chance to beat the
    control and the expected loss. The p-values are Holm-adjusted over the variants. A variant
    needs two visitors before anything but its mean is reported, because a variance needs two.

    Raises:
        ValueError: no variants, sums that cannot happen, or alpha / minimum_effect out of range.
    """
    method = _check_settings(variants, method, alpha, minimum_effect)
    parts = _value_parts(variants, method, alpha, minimum_effect)
    return _goal_result(parts, holm(parts.p_values()), HOLM)


def analyse_conversion_segments(
    segments: Mapping[str, Sequence[ConversionCounts]],
    *,
    method: Analysis = Analysis.SEQUENTIAL,
    alpha: float = DEFAULT_ALPHA,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
) -> tuple[SegmentResult, ...]:
    """Analyse a conversion goal per segment value, as ``analyse_conversion`` does for the whole.

    The p-values of all judged (segment, variant) comparisons form one Benjamini–Hochberg
    family. A segment is judged when every variant has at least ``MINIMUM_SEGMENT_VISITORS``
    visitors and all variants together ``MINIMUM_SEGMENT_CONVERSIONS`` conversions; otherwise it
    is reported with ``is_judged=False``, no adjusted p-values and nothing significant.

    Raises:
        ValueError: as ``analyse_conversion``, for any segment.
    """
    for variants in segments.values():
        method = _check_settings(variants, method, alpha, minimum_effect)
        _check_conversion_counts(variants)
    # one Bayesian batch for all segments: the quadrature's cost is mostly per call
    bayesian = iter(
        _beta_chances_and_losses(
            [(variants[0], variant) for variants in segments.values() for variant in variants[1:]]
        )
    )
    parts = {
        segment: _conversion_parts(
            variants,
            method,
            alpha,
            minimum_effect,
            [next(bayesian) for _ in variants[1:]],
        )
        for segment, variants in segments.items()
    }
    return _segment_results(parts)


def analyse_value_segments(
    segments: Mapping[str, Sequence[ValueSums]],
    *,
    method: Analysis = Analysis.SEQUENTIAL,
    alpha: float = DEFAULT_ALPHA,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
) -> tuple[SegmentResult, ...]:
    """Analyse a value goal per segment value, as ``analyse_value`` does for the whole.

    As ``analyse_conversion_segments``; a segment is judged when every variant has at least
    ``MINIMUM_SEGMENT_VISITORS`` visitors.

    Raises:
        ValueError: as ``analyse_value``, for any segment.
    """
    parts = {}
    for segment, variants in segments.items():
        method = _check_settings(variants, method, alpha, minimum_effect)
        parts[segment] = _value_parts(variants, method, alpha, minimum_effect)
    return _segment_results(parts)


def standard_deviation(sums: ValueSums) -> float | None:
    """The sample standard deviation of the visitors' values; None below two visitors."""
    variance = _moments(sums).variance
    return None if variance is None else math.sqrt(variance)


def estimate_interval(
    data: ConversionCounts | ValueSums, alpha: float = DEFAULT_ALPHA
) -> Interval | None:
    """Normal-approximation interval of one variant's rate or mean, for chart bands.

    Decisions use the comparisons of ``analyse_*``; this only shows how settled a line is.
    """
    if isinstance(data, ConversionCounts):
        rate = _rate(data)
        if rate is None:
            return None
        spread = math.sqrt(rate * (1.0 - rate) / data.visitors)
        return _finite_interval(_interval(rate, _normal_quantile(alpha) * spread))
    moments = _moments(data)
    if moments.mean is None or moments.variance is None:
        return None
    spread = math.sqrt(moments.variance / moments.visitors)
    return _finite_interval(_interval(moments.mean, _normal_quantile(alpha) * spread))


def sample_ratio_mismatch(counts: Sequence[int], allocations: Sequence[int]) -> SampleRatioMismatch:
    """Test whether enrolments per variant fit the allocations (basis points summing to 10 000).

    Pearson's chi-square goodness of fit, as ``scipy.stats.chisquare``; a mismatch is flagged at
    p < ``SAMPLE_RATIO_MISMATCH_THRESHOLD``. Variants with zero allocation and zero visitors take
    no part; visitors in a zero-allocation variant are a mismatch outright.

    Raises:
        ValueError: lengths differ, a count or allocation is negative, or allocations do not sum
            to 10 000.
    """
    if len(counts) != len(allocations):
        raise ValueError("one allocation per variant is needed")
    if any(count < 0 for count in counts) or any(share < 0 for share in allocations):
        raise ValueError("counts and allocations must not be negative")
    if sum(allocations) != BASIS_POINTS:
        raise ValueError(f"allocations must sum to {BASIS_POINTS}")
    if any(count > 0 and share == 0 for count, share in zip(counts, allocations, strict=True)):
        return SampleRatioMismatch(chi_square=None, p_value=0.0, is_mismatch=True)
    total = sum(counts)
    cells = [(count, share) for count, share in zip(counts, allocations, strict=True) if share > 0]
    if total == 0 or len(cells) < 2:
        return SampleRatioMismatch(chi_square=0.0, p_value=1.0, is_mismatch=False)
    chi_square = 0.0
    for count, share in cells:
        expected = total * share / BASIS_POINTS
        chi_square += (count - expected) * (count - expected) / expected
    p_value = float(special.chdtrc(len(cells) - 1, chi_square))
    return SampleRatioMismatch(
        chi_square=chi_square,
        p_value=p_value,
        is_mismatch=p_value < SAMPLE_RATIO_MISMATCH_THRESHOLD,
    )


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values in input order; None entries are not tested.

    Controls the family-wise error rate (Holm 1979): the chance of any false winner stays at
    alpha however many variants are compared with the control.
    """
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    count = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p_value, index) in enumerate(tested):
        # step-down: each adjusted value is at least the previous one, so order is kept
        running = max(running, min(1.0, (count - rank) * p_value))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values in input order; None entries are not tested.

    Controls the false discovery rate (Benjamini & Hochberg 1995): among the segments flagged,
    at most alpha are flukes on average. Looser than Holm, which suits exploring segments.
    """
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    count = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(count - 1, -1, -1):
        p_value, index = tested[rank]
        # step-up: each adjusted value is at most the next larger one, so order is kept
        running = min(running, count * p_value / (rank + 1))
        adjusted[index] = running
    return adjusted


def running_minimum(p_values: Iterable[float | None]) -> list[float | None]:
    """Make one comparison's sequential p-values over successive looks never increase.

    Johari et al. define the always-valid p-value as the running minimum of 1 / Lambda over
    looks; a look without a p-value (None) keeps the minimum so far.
    """
    minimum: float | None = None
    result: list[float | None] = []
    for p_value in p_values:
        if p_value is not None:
            minimum = p_value if minimum is None else min(minimum, p_value)
        result.append(minimum)
    return result


def visitors_needed_for_conversion(
    baseline_rate: float,
    *,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> int | None:
    """Visitors per variant for the two-proportion z-test to find a relative uplift.

    The classic normal-approximation formula for the pooled test (Fleiss, without continuity
    correction) with p1 = baseline and p2 = baseline * (1 + minimum_effect). None when the
    baseline is 0 or 1 or the uplifted rate would exceed 1: no relative uplift is findable.
    """
    _check_power_settings(minimum_effect, alpha, power)
    rate, uplifted = baseline_rate, baseline_rate * (1.0 + minimum_effect)
    # rate < uplifted also catches rates so small that the uplift vanishes in rounding
    if not 0.0 < rate < uplifted < 1.0:
        return None
    average = (rate + uplifted) / 2.0
    numerator = _normal_quantile(alpha) * math.sqrt(2.0 * average * (1.0 - average)) + float(
        special.ndtri(power)
    ) * math.sqrt(rate * (1.0 - rate) + uplifted * (1.0 - uplifted))
    root = numerator / (uplifted - rate)
    needed = root * root  # x * x, not x ** 2: float powers raise on overflow instead of giving inf
    return math.ceil(needed) if math.isfinite(needed) else None


def visitors_needed_for_value(
    baseline_mean: float,
    baseline_standard_deviation: float,
    *,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> int | None:
    """Visitors per variant for a two-sample test of means to find a relative uplift.

    n = 2 sd² (z_{1-alpha/2} + z_power)² / (minimum_effect * mean)², at least 2 (a variance needs
    two visitors). None when the baseline mean is 0: a relative uplift of nothing is nothing.
    """
    _check_power_settings(minimum_effect, alpha, power)
    if baseline_standard_deviation < 0.0 or not math.isfinite(baseline_standard_deviation):
        raise ValueError("the standard deviation must be finite and not negative")
    difference = minimum_effect * abs(baseline_mean)
    if difference == 0.0 or not math.isfinite(difference):
        return None
    quantiles = _normal_quantile(alpha) + float(special.ndtri(power))
    root = baseline_standard_deviation * quantiles / difference
    needed = 2.0 * root * root
    return max(2, math.ceil(needed)) if math.isfinite(needed) else None


def estimated_end_date(
    visitors_needed: int | None,
    visitors_so_far: Sequence[int],
    daily_visitors: Sequence[float],
    today: datetime.date,
) -> datetime.date | None:
    """The day the slowest variant reaches ``visitors_needed`` at its current daily traffic.

    Today when every variant already has enough visitors. None when no sample size is known
    (``visitors_needed`` is None), when a variant still short of visitors gets no traffic, or
    when the date lies more than ``MAXIMUM_FORECAST_DAYS`` ahead.

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(visitors_so_far) != len(daily_visitors):
        raise ValueError("one daily traffic figure per variant is needed")
    if visitors_needed is None:
        return None
    days = 0
    for visitors, traffic in zip(visitors_so_far, daily_visitors, strict=True):
        remaining = visitors_needed - visitors
        if remaining <= 0:
            continue
        if not traffic > 0.0:
            return None
        needed_days = remaining / traffic
        if needed_days > MAXIMUM_FORECAST_DAYS:
            return None
        days = max(days, math.ceil(needed_days))
    return today + datetime.timedelta(days=days)


def _check_settings(
    variants: Sequence[Any], method: Analysis, alpha: float, minimum_effect: float
) -> Analysis:
    """Validate the common arguments of the analyses and return the method as an ``Analysis``."""
    if not variants:
        raise ValueError("at least the control is needed")
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie between 0 and 1")
    if not minimum_effect > 0.0 or not math.isfinite(minimum_effect):
        raise ValueError("minimum_effect must be a positive number")
    # Analysis() also accepts the plain strings "sequential" and "fixed" and rejects the rest
    return Analysis(method)


def _check_power_settings(minimum_effect: float, alpha: float, power: float) -> None:
    """Validate the arguments shared by the two sample-size functions."""
    if not minimum_effect > 0.0 or not math.isfinite(minimum_effect):
        raise ValueError("minimum_effect must be a positive number")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("alpha and power must lie between 0 and 1")


def _check_conversion_counts(variants: Sequence[ConversionCounts]) -> None:
    """Raise ValueError for counts that cannot happen."""
    for counts in variants:
        if counts.visitors < 0 or not 0 <= counts.converted <= counts.visitors:
            raise ValueError(f"impossible conversion counts: {counts}")


def _conversion_parts(
    variants: Sequence[ConversionCounts],
    method: Analysis,
    alpha: float,
    minimum_effect: float,
    bayesian: list[tuple[float, float] | None],
) -> _GoalParts:
    """Every number of a conversion goal except the adjusted p-values."""
    control = variants[0]
    critical = _normal_quantile(alpha)
    return _GoalParts(
        kind=CONVERSION,
        method=method,
        alpha=alpha,
        minimum_effect=minimum_effect,
        visitors=[counts.visitors for counts in variants],
        converted=[counts.converted for counts in variants],
        estimates=[_rate(counts) for counts in variants],
        comparisons=[
            _compare_conversion(control, variant, method, alpha, critical, minimum_effect)
            for variant in variants[1:]
        ],
        bayesian=bayesian,
    )


def _value_parts(
    variants: Sequence[ValueSums], method: Analysis, alpha: float, minimum_effect: float
) -> _GoalParts:
    """Every number of a value goal except the adjusted p-values."""
    moments = [_moments(sums) for sums in variants]
    control = moments[0]
    return _GoalParts(
        kind=VALUE,
        method=method,
        alpha=alpha,
        minimum_effect=minimum_effect,
        visitors=[sums.visitors for sums in variants],
        converted=[None for _ in variants],
        estimates=[variant.mean for variant in moments],
        comparisons=[
            _compare_value(control, variant, method, alpha, minimum_effect)
            for variant in moments[1:]
        ],
        bayesian=[_normal_chance_and_loss(control, variant) for variant in moments[1:]],
    )


def _segment_results(parts: Mapping[str, _GoalParts]) -> tuple[SegmentResult, ...]:
    """Judge segments by size and adjust the judged ones' p-values together (Benjamini–Hochberg)."""
    judged = {segment: _is_judgeable(goal) for segment, goal in parts.items()}
    family = [p for segment, goal in parts.items() if judged[segment] for p in goal.p_values()]
    adjusted = iter(benjamini_hochberg(family))
    results = []
    for segment, goal in parts.items():
        corrected = [next(adjusted) if judged[segment] else None for _ in goal.comparisons]
        results.append(
            SegmentResult(
                segment, judged[segment], _goal_result(goal, corrected, BENJAMINI_HOCHBERG)
            )
        )
    return tuple(results)


def _is_judgeable(goal: _GoalParts) -> bool:
    """Whether a segment has enough visitors (and conversions) for its comparisons to count."""
    if min(goal.visitors) < MINIMUM_SEGMENT_VISITORS:
        return False
    if goal.kind == CONVERSION:
        return sum(count or 0 for count in goal.converted) >= MINIMUM_SEGMENT_CONVERSIONS
    return True


def _goal_result(
    parts: _GoalParts, adjusted: Sequence[float | None], adjustment: str
) -> GoalResult:
    """Assemble the variants' results with the adjusted p-values of variants 1, 2, …"""
    alpha = parts.alpha
    results = [
        VariantResult(
            variant=0,
            visitors=parts.visitors[0],
            converted=parts.converted[0],
            estimate=_finite(parts.estimates[0]),
            uplift=None,
            uplift_interval=None,
            relative_uplift=None,
            relative_uplift_interval=None,
            p_value=None,
            adjusted_p_value=None,
            is_significant=False,
            chance_to_beat_control=None,
            expected_loss=None,
        )
    ]
    for index, comparison in enumerate(parts.comparisons, start=1):
        corrected = _finite(adjusted[index - 1])
        chance, loss = parts.bayesian[index - 1] or (None, None)
        results.append(
            VariantResult(
                variant=index,
                visitors=parts.visitors[index],
                converted=parts.converted[index],
                estimate=_finite(parts.estimates[index]),
                uplift=_finite(comparison.uplift),
                uplift_interval=_finite_interval(comparison.uplift_interval),
                relative_uplift=_finite(comparison.relative_uplift),
                relative_uplift_interval=_finite_interval(comparison.relative_uplift_interval),
                p_value=_finite(comparison.p_value),
                adjusted_p_value=corrected,
                is_significant=corrected is not None and corrected < alpha,
                chance_to_beat_control=_finite(chance),
                expected_loss=_finite(loss),
            )
        )
    return GoalResult(
        kind=parts.kind,
        method=parts.method.value,
        alpha=alpha,
        minimum_effect=parts.minimum_effect,
        adjustment=adjustment,
        variants=tuple(results),
    )


def _rate(counts: ConversionCounts) -> float | None:
    """The conversion rate, None without visitors."""
    return counts.converted / counts.visitors if counts.visitors else None


def _compare_conversion(
    control: ConversionCounts,
    variant: ConversionCounts,
    method: Analysis,
    alpha: float,
    critical: float,
    minimum_effect: float,
) -> _Comparison:
    """Uplift, intervals and p-value of one variant's conversion rate against the control's."""
    if control.visitors == 0 or variant.visitors == 0:
        return _Comparison()
    control_rate = control.converted / control.visitors
    variant_rate = variant.converted / variant.visitors
    uplift = variant_rate - control_rate
    control_variance = control_rate * (1.0 - control_rate) / control.visitors
    variant_variance = variant_rate * (1.0 - variant_rate) / variant.visitors
    # the test of "no difference" uses the variance under that hypothesis, as proportions_ztest
    pooled = (control.converted + variant.converted) / (control.visitors + variant.visitors)
    null_variance = pooled * (1.0 - pooled) * (1.0 / control.visitors + 1.0 / variant.visitors)
    # intervals cannot assume "no difference", so they use each variant's own rate (Wald)
    variance = control_variance + variant_variance
    relative, relative_variance = _relative(
        uplift, control_rate, variant_rate, control_variance, variant_variance
    )
    if method is Analysis.SEQUENTIAL:
        mixture = _mixture_variance(minimum_effect, pooled)
        return _Comparison(
            uplift=uplift,
            uplift_interval=_mixture_interval(uplift, variance, mixture, alpha),
            relative_uplift=relative,
            relative_uplift_interval=_relative_mixture_interval(
                relative, relative_variance, mixture, control_rate, alpha
            ),
            # pooled variance is zero only when both rates are 0 or both are 1, i.e. no uplift
            p_value=_mixture_p_value(uplift, null_variance, mixture),
        )
    p_value = math.erfc(abs(uplift) / math.sqrt(null_variance) / _SQRT_2) if null_variance else 1.0
    return _Comparison(
        uplift=uplift,
        uplift_interval=_interval(uplift, critical * math.sqrt(variance)),
        relative_uplift=relative,
        relative_uplift_interval=(
            None
            if relative is None or relative_variance is None
            else _interval(relative, critical * math.sqrt(relative_variance))
        ),
        p_value=p_value,
    )


def _moments(sums: ValueSums) -> _Moments:
    """Mean and sample variance from the sums; raises ValueError for impossible sums."""
    visitors, total, squares = sums.visitors, sums.value_sum, sums.value_sum_squares
    if visitors < 0 or squares < 0.0 or not (math.isfinite(total) and math.isfinite(squares)):
        raise ValueError(f"impossible value sums: {sums}")
    if visitors == 0:
        if total != 0.0 or squares != 0.0:
            raise ValueError(f"value sums without visitors: {sums}")
        return _Moments(visitors, None, None)
    mean = total / visitors
    # Cauchy–Schwarz: total * mean <= squares; the slack allows float rounding of stored sums
    if total * mean > squares * (1.0 + 1e-9) + 1e-9:
        raise ValueError(f"sum of squares too small for the sum: {sums}")
    if visitors == 1:
        return _Moments(visitors, mean, None)
    # max(0, …): rounding can push the variance of identical values slightly below zero
    variance = max(0.0, (squares - total * mean) / (visitors - 1))
    return _Moments(visitors, mean, variance)


def _compare_value(
    control: _Moments,
    variant: _Moments,
    method: Analysis,
    alpha: float,
    minimum_effect: float,
) -> _Comparison:
    """Difference, intervals and p-value of one variant's mean value against the control's."""
    if control.mean is None or variant.mean is None:
        return _Comparison()
    uplift = variant.mean - control.mean
    relative = uplift / control.mean if control.mean else None
    if control.variance is None or variant.variance is None:
        return _Comparison(uplift=uplift, relative_uplift=relative)
    control_variance = control.variance / control.visitors
    variant_variance = variant.variance / variant.visitors
    variance = control_variance + variant_variance
    relative, relative_variance = _relative(
        uplift, control.mean, variant.mean, control_variance, variant_variance
    )
    if method is Analysis.SEQUENTIAL:
        pooled_mean = (control.mean * control.visitors + variant.mean * variant.visitors) / (
            control.visitors + variant.visitors
        )
        mixture = _mixture_variance(minimum_effect, pooled_mean)
        return _Comparison(
            uplift=uplift,
            uplift_interval=_mixture_interval(uplift, variance, mixture, alpha),
            relative_uplift=relative,
            relative_uplift_interval=_relative_mixture_interval(
                relative, relative_variance, mixture, control.mean, alpha
            ),
            p_value=_mixture_p_value(uplift, variance, mixture),
        )
    if variance == 0.0:
        # identical values within each variant: no evidence either way if the means agree,
        # and a p-value without meaning if they do not
        relative_interval = None if relative is None else Interval(relative, relative)
        return _Comparison(
            uplift=uplift,
            uplift_interval=Interval(uplift, uplift),
            relative_uplift=relative,
            relative_uplift_interval=relative_interval,
            p_value=1.0 if uplift == 0.0 else None,
        )
    # Welch–Satterthwaite degrees of freedom, written with shares of the variance so that tiny
    # variances cannot underflow when squared
    control_share = control_variance / variance
    variant_share = variant_variance / variance
    freedom = 1.0 / (
        control_share * control_share / (control.visitors - 1)
        + variant_share * variant_share / (variant.visitors - 1)
    )
    t_value = uplift / math.sqrt(variance)
    critical = float(special.stdtrit(freedom, 1.0 - alpha / 2.0))
    # the relative interval uses the same critical value, so that it reads as the absolute
    # interval scaled by the control's mean, widened for that mean's own uncertainty
    relative_interval = (
        None
        if relative is None or relative_variance is None
        else _interval(relative, critical * math.sqrt(relative_variance))
    )
    return _Comparison(
        uplift=uplift,
        uplift_interval=_interval(uplift, critical * math.sqrt(variance)),
        relative_uplift=relative,
        relative_uplift_interval=relative_interval,
        p_value=2.0 * float(special.stdtr(freedom, -abs(t_value))),
    )


def _relative(
    uplift: float,
    control_estimate: float,
    variant_estimate: float,
    control_variance: float,
    variant_variance: float,
) -> tuple[float | None, float | None]:
    """Relative uplift and its delta-method variance; both None when the control is zero.

    Var(B/A) ≈ Var(B)/A² + B² Var(A)/A⁴ for independent estimates A and B: the first-order
    Taylor expansion of the ratio around the two means. It is computed from standard errors
    relative to A, so that A² and A⁴ cannot underflow to zero.
    """
    if control_estimate == 0.0:
        return None, None
    scale = abs(control_estimate)
    variant_part = math.sqrt(variant_variance) / scale
    control_part = variant_estimate / control_estimate * math.sqrt(control_variance) / scale
    return uplift / control_estimate, variant_part * variant_part + control_part * control_part


def _mixture_variance(minimum_effect: float, baseline: float) -> float:
    """Variance tau² of the normal mixing distribution over the true uplift.

    tau = minimum_effect * |baseline|, the baseline being the pooled estimate of control and
    variant. The mSPRT's confidence sequence is narrowest where tau² is about 8.2 times the
    estimate's variance (for alpha = 0.05); a fixed-horizon test sized for the minimum effect
    stops where that variance is (effect / 2.8)², so tau = effect makes the sequential test
    sharpest right around the sample size the power calculation asks for.
    """
    deviation = minimum_effect * baseline
    return deviation * deviation


def _mixture_p_value(estimate: float, variance: float, mixture: float) -> float | None:
    """This look's always-valid p-value min(1, 1/Lambda) of "the true uplift is 0".

    Lambda is the mSPRT statistic of Johari et al. (2017) with a N(0, tau²) mixture:
    Lambda = sqrt(V / (V + n tau²)) * exp(n² tau² d² / (2 V (V + n tau²))). Dividing V by the
    visitors per variant n gives it in terms of s² = V / n, the variance of the estimate d:
    Lambda = sqrt(s² / (s² + tau²)) * exp(tau² d² / (2 s² (s² + tau²))). Written like that it
    also covers unequal variants, with s² = var_control / n_control + var_variant / n_variant.
    """
    if mixture == 0.0:
        return 1.0  # a mixture on 0 alone cannot tell any uplift from none
    if variance == 0.0:
        return 1.0 if estimate == 0.0 else None
    # log Lambda = -log(1 + tau²/s²) / 2 + z² tau² / (2 (s² + tau²)), with z = d / s; in this
    # form no intermediate product can underflow to a zero divisor
    standardised = estimate / math.sqrt(variance)
    log_ratio = 0.5 * (
        standardised * standardised * (mixture / (variance + mixture))
        - math.log1p(mixture / variance)
    )
    # -log_ratio <= log(1 + tau²/s²) / 2 < 355, so exp() cannot overflow
    return min(1.0, math.exp(-log_ratio))


def _mixture_interval(
    estimate: float, variance: float, mixture: float, alpha: float
) -> Interval | None:
    """This look's confidence sequence: every true value whose always-valid p-value exceeds alpha.

    Solving Lambda(theta) < 1/alpha for theta gives estimate ± sqrt(s² (s² + tau²) / tau² *
    (log((s² + tau²) / s²) - 2 log alpha)). None when tau is 0: the interval is unbounded.
    """
    if mixture == 0.0:
        return None
    if variance == 0.0:
        return Interval(estimate, estimate)
    squared = (
        variance
        * (variance + mixture)
        / mixture
        * (math.log1p(mixture / variance) - 2.0 * math.log(alpha))
    )
    return _interval(estimate, math.sqrt(squared))


def _relative_mixture_interval(
    relative: float | None,
    relative_variance: float | None,
    mixture: float,
    control_estimate: float,
    alpha: float,
) -> Interval | None:
    """Confidence sequence of the relative uplift, mixing over tau relative to the control."""
    if relative is None or relative_variance is None:
        return None
    relative_deviation = math.sqrt(mixture) / abs(control_estimate)
    return _mixture_interval(
        relative, relative_variance, relative_deviation * relative_deviation, alpha
    )


def _beta_chances_and_losses(
    pairs: Sequence[tuple[ConversionCounts, ConversionCounts]],
) -> list[tuple[float, float] | None]:
    """Chance to beat the control and expected loss for (control, variant) pairs, Beta posteriors.

    With A the control's and B the variant's rate, chance = P(B > A) and loss = E[max(A - B, 0)].
    Large posteriors take the skew-corrected normal approximation (``_edgeworth_comparison``);
    the others are integrated numerically (``_integrated_comparisons``) in one batch.
    """
    results: list[tuple[float, float] | None] = [None] * len(pairs)
    small: list[int] = []
    shapes: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for index, (control, variant) in enumerate(pairs):
        if control.visitors == 0 or variant.visitors == 0:
            continue
        control_shape, variant_shape = _beta_shape(control), _beta_shape(variant)
        if min(*control_shape, *variant_shape) >= EDGEWORTH_MINIMUM_SHAPE:
            results[index] = _edgeworth_comparison(control_shape, variant_shape)
        else:
            small.append(index)
            shapes.append((control_shape, variant_shape))
    if small:
        for index, result in zip(small, _integrated_comparisons(shapes), strict=True):
            results[index] = result
    return results


def _edgeworth_comparison(
    control_shape: tuple[float, float], variant_shape: tuple[float, float]
) -> tuple[float, float]:
    """Chance to beat and expected loss from the first three cumulants of D = B - A.

    The one-term Edgeworth expansion F(x) ≈ Phi(z) - phi(z) (skew / 6) (z² - 1) corrects the
    normal approximation for the Beta posteriors' skew; integrating it gives the loss
    E[max(A - B, 0)] ≈ -d Phi(-z) + s phi(z) - (k3 / (6 s²)) z phi(z) with z = d / s.
    """
    control_mean, control_variance, control_third = _beta_cumulants(*control_shape)
    variant_mean, variant_variance, variant_third = _beta_cumulants(*variant_shape)
    difference = variant_mean - control_mean
    spread = math.sqrt(control_variance + variant_variance)
    third = variant_third - control_third
    standardised = difference / spread
    density = math.exp(-0.5 * standardised * standardised) / _SQRT_2_PI
    skew = third / (spread * spread * spread)
    chance = 0.5 * math.erfc(-standardised / _SQRT_2) + density * skew / 6.0 * (
        standardised * standardised - 1.0
    )
    loss = (
        -difference * 0.5 * math.erfc(standardised / _SQRT_2)
        + spread * density
        - third / (6.0 * spread * spread) * standardised * density
    )
    # the expansion can step a hair outside the possible range far in the tails
    return min(1.0, max(0.0, chance)), max(0.0, loss)


def _beta_cumulants(a: float, b: float) -> tuple[float, float, float]:
    """Mean, variance and third cumulant of Beta(a, b)."""
    total = a + b
    return (
        a / total,
        a * b / (total * total * (total + 1.0)),
        2.0 * a * b * (b - a) / (total * total * total * (total + 1.0) * (total + 2.0)),
    )


def _integrated_comparisons(
    shapes: Sequence[tuple[tuple[float, float], tuple[float, float]]],
) -> list[tuple[float, float]]:
    """Chance to beat and expected loss by quadrature, vectorised over the variants.

    Each is a one-dimensional integral over the narrower posterior's density with the wider
    posterior's CDF inside (which is smooth on that scale). Gauss–Legendre quadrature on a fixed
    grid keeps them exact to about 3e-5 and deterministic. The loss uses
    E[X 1{X < x}] = mean * F⁺(x), F⁺ being the CDF of Beta(a + 1, b).
    """
    # per comparison: (inner shape, outer shape, is the variant the inner one)
    rows = []
    for control_shape, variant_shape in shapes:
        if _beta_deviation(*variant_shape) <= _beta_deviation(*control_shape):
            rows.append((variant_shape, control_shape, True))
        else:
            rows.append((control_shape, variant_shape, False))
    nodes, weights = _legendre_rule()
    lowers, widths = [], []
    for (a, b), _, _ in rows:
        mean = a / (a + b)
        spread = QUADRATURE_SPAN * _beta_deviation(a, b)
        lower, upper = max(0.0, mean - spread), min(1.0, mean + spread)
        lowers.append([lower])
        widths.append([upper - lower])
    # arrays of shape (comparisons, nodes); the nested lists broadcast as columns
    points = (nodes + 1.0) / 2.0 * widths + lowers
    inner_a = [[inner[0] - 1.0] for inner, _, _ in rows]
    inner_b = [[inner[1] - 1.0] for inner, _, _ in rows]
    log_density = special.xlogy(inner_a, points) + special.xlog1py(inner_b, -points)
    # shifting by the row maximum keeps exp() in range; the normalisation then cancels the Beta
    # function and the tails cut off alike (scipy.special has expm1 but no plain exp)
    shifted = log_density - log_density.max(axis=1)[:, None]
    density = weights * widths * (1.0 + special.expm1(shifted))
    density = density / density.sum(axis=1)[:, None]
    outer_a = [[outer[0]] for _, outer, _ in rows]
    outer_b = [[outer[1]] for _, outer, _ in rows]
    below = special.betainc(outer_a, outer_b, points)
    # I_x(a + 1, b) = I_x(a, b) - x^a (1 - x)^b / (a B(a, b)) (DLMF 8.17.20) spares a second,
    # expensive betainc call
    log_norm = [[math.log(outer[0]) + float(special.betaln(*outer))] for _, outer, _ in rows]
    log_step = special.xlogy(outer_a, points) + special.xlog1py(outer_b, -points) - log_norm
    below_shifted = below - (1.0 + special.expm1(log_step))
    mass_below = (density * below).sum(axis=1).tolist()
    mass_below_shifted = (density * below_shifted).sum(axis=1).tolist()
    point_below = (density * points * below).sum(axis=1).tolist()
    point_mean = (density * points).sum(axis=1).tolist()
    results = []
    for row_number, (_, (a, b), is_variant_inner) in enumerate(rows):
        outer_mean = a / (a + b)
        if is_variant_inner:
            # integrate over B: P(A < B) and E[(A - B)+] = E[A 1{A > B}] - E[B 1{A > B}]
            chance = mass_below[row_number]
            loss = outer_mean * (1.0 - mass_below_shifted[row_number]) - (
                point_mean[row_number] - point_below[row_number]
            )
        else:
            # integrate over A: P(B > A) and E[(A - B)+] = E[A 1{B < A}] - E[B 1{B < A}]
            chance = 1.0 - mass_below[row_number]
            loss = point_below[row_number] - outer_mean * mass_below_shifted[row_number]
        # quadrature rounding may step a hair outside the possible range
        results.append((min(1.0, max(0.0, chance)), max(0.0, loss)))
    return results


def _beta_shape(counts: ConversionCounts) -> tuple[float, float]:
    """Posterior Beta(1 + converted, 1 + not converted) under the uniform prior."""
    return 1.0 + counts.converted, 1.0 + counts.visitors - counts.converted


def _beta_deviation(a: float, b: float) -> float:
    """Standard deviation of Beta(a, b)."""
    total = a + b
    return math.sqrt(a * b / (total * total * (total + 1.0)))


@functools.cache
def _legendre_rule() -> tuple[Any, Any]:
    """Gauss–Legendre nodes on [-1, 1] and weights halved for the map onto [0, 1]."""
    nodes, weights = special.roots_legendre(QUADRATURE_NODES)
    return nodes, weights / 2.0


def _normal_chance_and_loss(control: _Moments, variant: _Moments) -> tuple[float, float] | None:
    """Chance to beat the control and expected loss under normal posteriors of the two means.

    With flat priors each mean is N(sample mean, variance / visitors); their difference D = B - A
    is normal too, so P(D > 0) = Phi(d / s) and E[max(-D, 0)] = m Phi(m / s) + s phi(m / s) with
    m = -d.
    """
    if control.mean is None or variant.mean is None:
        return None
    if control.variance is None or variant.variance is None:
        return None
    difference = variant.mean - control.mean
    spread = math.sqrt(control.variance / control.visitors + variant.variance / variant.visitors)
    if spread == 0.0:
        return (0.5, 0.0) if difference == 0.0 else None
    standardised = difference / spread
    chance = 0.5 * math.erfc(-standardised / _SQRT_2)
    loss = (
        -difference * 0.5 * math.erfc(standardised / _SQRT_2)
        + spread * math.exp(-0.5 * standardised * standardised) / _SQRT_2_PI
    )
    return chance, max(0.0, loss)


def _normal_quantile(alpha: float) -> float:
    """The two-sided critical value z_{1 - alpha/2} of the standard normal distribution."""
    return float(special.ndtri(1.0 - alpha / 2.0))


def _interval(center: float, half_width: float) -> Interval:
    """The interval ``center ± half_width``."""
    return Interval(center - half_width, center + half_width)


def _finite(value: float | None) -> float | None:
    """The value as a plain float, or None when it is undefined or not finite."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _finite_interval(interval: Interval | None) -> Interval | None:
    """The interval, or None when either end is not finite."""
    if interval is None or not (math.isfinite(interval.lower) and math.isfinite(interval.upper)):
        return None
    return interval
