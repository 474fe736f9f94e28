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

Every comparison must meet a minimum-evidence rule (``MINIMUM_VISITORS`` per side,
``MINIMUM_CONVERSIONS`` together) before it can be significant or carry a chance to beat; below
it the result is ``"not_enough_data"`` with the reason. Rate intervals and chart bands never
leave what is possible.

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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

from server.core.models import BASIS_POINTS, Analysis
from server.core.sequential import Plan

DEFAULT_ALPHA = 0.05  # the conventional 5 % false-positive rate; two-sided everywhere
DEFAULT_POWER = 0.8  # the conventional 80 %: one real effect in five of minimum size is missed
# The smallest relative uplift worth finding; the same default as Experiment.minimum_effect. It
# sizes the power calculation and the sequential test's mixing distribution (see _mixture_variance).
DEFAULT_MINIMUM_EFFECT = 0.05
# Kohavi et al. flag a sample ratio mismatch only at p < 0.001: the check runs on every look of
# every experiment, and a false alarm makes people distrust a sound experiment.
SAMPLE_RATIO_MISMATCH_THRESHOLD = 0.001
# The minimum-evidence rule of every judgement (whole experiment and segments alike): below 100
# visitors in the control or the variant, the normal approximations behind the tests, intervals
# and chances are too rough, and one visitor can swing a rate by a whole percentage point.
MINIMUM_VISITORS = 100
# ... and 10 conversions (or, for a value goal, 10 buyers) in the control and the variant
# together: the "at least 5 expected per cell" rule of thumb for two cells. Counted together so
# that a variant that stopped converting entirely is still caught.
MINIMUM_CONVERSIONS = 10
# A segment is judged at all only when every variant meets the rule; the same numbers.
MINIMUM_SEGMENT_VISITORS = MINIMUM_VISITORS
MINIMUM_SEGMENT_CONVERSIONS = MINIMUM_CONVERSIONS
# The reason given for every comparison of a segment that is too small to be judged at all.
_SEGMENT_GAP = (
    f"fewer than {MINIMUM_SEGMENT_VISITORS} visitors in some variant of the segment, "
    f"or fewer than {MINIMUM_SEGMENT_CONVERSIONS} conversions in all of them together"
)
# Below 5 expected conversions or non-conversions in a cell of the 2×2 table the z-test's normal
# approximation is off by up to a factor of 20 (34/300 against 1/1: 0.0058 against Fisher's
# 0.116); there the fixed-horizon p-value is Fisher's exact test.
EXACT_TEST_MINIMUM_EXPECTED = 5.0
# A rate difference cannot be below minus the control's rate nor above the variant's rate. The
# uplift interval is clipped at those rates' Wilson upper bounds at z = 4 (one-sided 3e-5), so
# that clipping costs no visible coverage, and never reaches beyond ±100 percentage points.
RATE_BOUND_QUANTILE = 4.0
# Gauss–Legendre nodes for the Beta-posterior integrals; 32 nodes over ±12 standard deviations
# agree with adaptive quadrature to about 3e-5 over posteriors from 1 to 10⁶ visitors, far below
# what a decision needs, at a third less time than 48 nodes (which reach 2e-6).
QUADRATURE_NODES = 32
QUADRATURE_SPAN = 12.0  # standard deviations either side of the posterior mean
# From 100 conversions and 100 non-conversions in both variants on, the skew-corrected normal
# approximation of the Beta posteriors is within 6e-4 of the quadrature (chance to beat) and
# about 10 times cheaper; below that the posteriors are too skewed for it.
EDGEWORTH_MINIMUM_SHAPE = 100.0
# Relative size of float rounding in squares - total * mean and in the difference of two means
# of identical values: a few ulps (2.2e-16 each) of sums over up to 10⁹ visitors; real spreads
# of money in cents are many orders of magnitude larger.
VARIANCE_ROUNDING = 1e-12
# A segment value becomes a stratum of its own for post-stratification only with at least 20
# visitors in every variant; smaller ones share one "rest" stratum with the visitors that have
# no value. Below that a stratum's variance is too unsteady to weigh (and with fewer than 2 it
# does not exist).
MINIMUM_STRATUM_VISITORS = 20
# Forecasts beyond ten years are meaningless and would overflow ``datetime.date`` near year 9999.
MAXIMUM_FORECAST_DAYS = 3650

JUDGED = "judged"  # VariantResult.status: enough evidence for the comparison to count
NOT_ENOUGH_DATA = "not_enough_data"  # VariantResult.status: below the minimum-evidence rule
CONTROL = "control"  # VariantResult.status of variant 0, which is not compared
HOLM = "holm"  # GoalResult.adjustment of whole-experiment results
BENJAMINI_HOCHBERG = "benjamini-hochberg"  # GoalResult.adjustment of segment results
GROUP_SEQUENTIAL = "group_sequential"  # GoalResult.test: spending boundaries over a plan
ALWAYS_VALID = "always_valid"  # GoalResult.test: the mSPRT
FIXED = "fixed"  # GoalResult.test: one look at the planned end
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
    """Enrolled visitors of one variant with the sum and sum of squares of their totals in euros.

    ``buyers`` is how many of them have any value at all; None when unknown, in which case the
    minimum-evidence rule checks visitors only.
    """

    visitors: int
    value_sum: float
    value_sum_squares: float
    buyers: int | None = None


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

    ``status`` is ``"judged"``, ``"not_enough_data"`` (below the minimum-evidence rule, then
    ``reason`` says why: nothing is significant and no chance to beat or loss is given) or
    ``"control"``. ``relative_reason`` says why the relative uplift is None, when it is.
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
    status: str = JUDGED
    reason: str | None = None
    relative_reason: str | None = None


@dataclass(frozen=True)
class GoalResult:
    """All variants of one goal, judged against variant 0 with the settings used."""

    kind: str  # "conversion" or "value"
    method: str  # "sequential" or "fixed"
    alpha: float
    minimum_effect: float
    adjustment: str  # "holm" over variants, "benjamini-hochberg" over segments
    variants: tuple[VariantResult, ...]
    minimum_visitors: int = MINIMUM_VISITORS  # the minimum-evidence rule applied
    minimum_conversions: int = MINIMUM_CONVERSIONS
    # the test actually run: "group_sequential", "always_valid" (mSPRT) or "fixed"
    test: str = ALWAYS_VALID
    # group sequential only: the current look's information fraction and critical |z|
    information_fraction: float | None = None
    boundary: float | None = None


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
    relative_reason: str | None = None


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
    gaps: list[str | None]  # per comparison: why it is below the minimum-evidence rule, or None
    minimum_visitors: int
    minimum_conversions: int
    test: str = ALWAYS_VALID
    information_fraction: float | None = None
    boundary: float | None = None

    def p_values(self) -> list[float | None]:
        """The unadjusted p-values of variants 1, 2, …"""
        return [comparison.p_value for comparison in self.comparisons]


def analyse_conversion(
    variants: Sequence[ConversionCounts],
    *,
    method: Analysis = Analysis.SEQUENTIAL,
    alpha: float = DEFAULT_ALPHA,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
    looks: Sequence[Sequence[ConversionCounts]] = (),
    minimum_visitors: int = MINIMUM_VISITORS,
    minimum_conversions: int = MINIMUM_CONVERSIONS,
    plan: Plan | None = None,
) -> GoalResult:
    """Compare every variant's conversion rate with the control's (variant 0).

    Fixed horizon: pooled two-proportion z-test (Fisher's exact test when a cell of the 2×2
    table expects fewer than ``EXACT_TEST_MINIMUM_EXPECTED``), Agresti–Caffo interval for the
    uplift and Fieller's interval for the relative uplift. Sequential: the mSPRT always-valid
    p-value, the running minimum over ``looks`` (earlier cumulative counts, oldest first) and
    this one, and confidence sequences of the same quantities. Both: Beta(1 + converted, 1 +
    visitors - converted) posteriors for the chance to beat the control and the expected loss.
    The p-values are Holm-adjusted over the variants. A comparison below the minimum-evidence
    rule (``minimum_visitors`` in each of the two, ``minimum_conversions`` in both together) is
    "not_enough_data": never significant, without chance to beat or loss.

    Raises:
        ValueError: no variants, counts that cannot happen, or alpha / minimum_effect out of
            range.
    """
    method = _check_settings(variants, method, alpha, minimum_effect)
    _check_conversion_counts(variants)
    rule = (minimum_visitors, minimum_conversions)
    if plan is not None and method is Analysis.SEQUENTIAL:
        critical = plan.boundary(alpha)
        parts = _conversion_parts(variants, Analysis.FIXED, alpha, minimum_effect, rule, critical)
        parts = _with_chances([(variants, parts)])[0]
        statistics = [
            _conversion_statistics(look, parts) for look in _plan_looks(plan, looks, variants)
        ]
        parts = _planned(parts, plan, statistics)
        return _goal_result(parts, holm(parts.p_values()), HOLM)
    parts = _conversion_parts(variants, method, alpha, minimum_effect, rule)
    parts = _with_chances([(variants, parts)])[0]
    if method is not Analysis.FIXED and looks:
        parts = _with_earlier_looks(parts, [_conversion_look(look, parts) for look in looks])
    return _goal_result(parts, holm(parts.p_values()), HOLM)


def analyse_value(
    variants: Sequence[ValueSums],
    *,
    method: Analysis = Analysis.SEQUENTIAL,
    alpha: float = DEFAULT_ALPHA,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
    looks: Sequence[Sequence[ValueSums]] = (),
    minimum_visitors: int = MINIMUM_VISITORS,
    minimum_conversions: int = MINIMUM_CONVERSIONS,
    is_non_negative: bool = False,
    plan: Plan | None = None,
) -> GoalResult:
    """Compare every variant's mean value per visitor with the control's (variant 0).

    Fixed horizon: Welch's t-test with a Welch–Satterthwaite interval for the difference and
    Fieller's interval for the relative difference. Sequential: the mSPRT always-valid p-value
    (running minimum over ``looks`` and this one, as ``analyse_conversion``) and confidence
    sequences. Both: normal posteriors of the means for the chance to beat the control and the
    expected loss. The p-values are Holm-adjusted over the variants. A variant needs two
    visitors before anything but its mean is reported, because a variance needs two; the
    minimum-evidence rule counts buyers as conversions. ``is_non_negative`` (revenue) keeps the
    relative interval at or above -100 %.

    Raises:
        ValueError: no variants, sums that cannot happen, or alpha / minimum_effect out of range.
    """
    method = _check_settings(variants, method, alpha, minimum_effect)
    rule = (minimum_visitors, minimum_conversions)
    if plan is not None and method is Analysis.SEQUENTIAL:
        critical = plan.boundary(alpha)
        parts = _value_parts(
            variants, Analysis.FIXED, alpha, minimum_effect, rule, is_non_negative, critical
        )
        statistics = [_value_statistics(look, parts) for look in _plan_looks(plan, looks, variants)]
        parts = _planned(parts, plan, statistics)
        return _goal_result(parts, holm(parts.p_values()), HOLM)
    parts = _value_parts(variants, method, alpha, minimum_effect, rule, is_non_negative)
    if method is not Analysis.FIXED and looks:
        parts = _with_earlier_looks(parts, [_value_look(look, parts) for look in looks])
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
    is reported with ``is_judged=False``, no adjusted p-values and nothing significant. Within a
    judged segment each comparison still has to meet the minimum-evidence rule.

    Raises:
        ValueError: as ``analyse_conversion``, for any segment.
    """
    for variants in segments.values():
        method = _check_settings(variants, method, alpha, minimum_effect)
        _check_conversion_counts(variants)
    rule = (MINIMUM_VISITORS, MINIMUM_CONVERSIONS)
    parts = {
        segment: _conversion_parts(variants, method, alpha, minimum_effect, rule)
        for segment, variants in segments.items()
    }
    # one Bayesian batch for all judged segments: the quadrature's cost is mostly per call
    judged = [segment for segment, goal in parts.items() if _is_judgeable(goal)]
    chances = _with_chances([(segments[segment], parts[segment]) for segment in judged])
    parts.update(zip(judged, chances, strict=True))
    return _segment_results(parts)


def analyse_value_segments(
    segments: Mapping[str, Sequence[ValueSums]],
    *,
    method: Analysis = Analysis.SEQUENTIAL,
    alpha: float = DEFAULT_ALPHA,
    minimum_effect: float = DEFAULT_MINIMUM_EFFECT,
    is_non_negative: bool = False,
) -> tuple[SegmentResult, ...]:
    """Analyse a value goal per segment value, as ``analyse_value`` does for the whole.

    As ``analyse_conversion_segments``; a segment is judged when every variant has at least
    ``MINIMUM_SEGMENT_VISITORS`` visitors.

    Raises:
        ValueError: as ``analyse_value``, for any segment.
    """
    parts = {}
    rule = (MINIMUM_VISITORS, MINIMUM_CONVERSIONS)
    for segment, variants in segments.items():
        method = _check_settings(variants, method, alpha, minimum_effect)
        parts[segment] = _value_parts(
            variants, method, alpha, minimum_effect, rule, is_non_negative
        )
    return _segment_results(parts)


def standard_deviation(sums: ValueSums) -> float | None:
    """The sample standard deviation of the visitors' values; None below two visitors."""
    variance = _moments(sums).variance
    return None if variance is None else math.sqrt(variance)


def estimate_interval(
    data: ConversionCounts | ValueSums,
    alpha: float = DEFAULT_ALPHA,
    *,
    is_non_negative: bool = False,
) -> Interval | None:
    """Normal-approximation interval of one variant's rate or mean, for chart bands.

    Decisions use the comparisons of ``analyse_*``; this only shows how settled a line is. A
    rate's band stays within [0, 1] and, with ``is_non_negative`` (revenue), a mean's at or
    above 0: a chart never draws a value that cannot happen.
    """
    if isinstance(data, ConversionCounts):
        rate = _rate(data)
        if rate is None:
            return None
        spread = math.sqrt(rate * (1.0 - rate) / data.visitors)
        band = _finite_interval(_interval(rate, _normal_quantile(alpha) * spread))
        return None if band is None else _clip(band, 0.0, 1.0)
    moments = _moments(data)
    if moments.mean is None or moments.variance is None:
        return None
    spread = math.sqrt(moments.variance / moments.visitors)
    band = _finite_interval(_interval(moments.mean, _normal_quantile(alpha) * spread))
    if band is None or not is_non_negative:
        return band
    return _clip(band, 0.0, math.inf)


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
    rule: tuple[int, int],
    critical: float | None = None,
) -> _GoalParts:
    """Every number of a conversion goal except the adjusted p-values and the Bayesian chances
    and losses (``_with_chances`` adds those).

    ``critical`` replaces the fixed test's normal quantile in the intervals (group sequential).
    """
    control = variants[0]
    return _GoalParts(
        kind=CONVERSION,
        method=method,
        alpha=alpha,
        minimum_effect=minimum_effect,
        visitors=[counts.visitors for counts in variants],
        converted=[counts.converted for counts in variants],
        estimates=[_rate(counts) for counts in variants],
        comparisons=[
            _compare_conversion(control, variant, method, alpha, minimum_effect, critical)
            for variant in variants[1:]
        ],
        bayesian=[None for _ in variants[1:]],
        gaps=[
            _evidence_gap(
                control.visitors, variant.visitors, control.converted + variant.converted, rule
            )
            for variant in variants[1:]
        ],
        minimum_visitors=rule[0],
        minimum_conversions=rule[1],
        test=FIXED if method is Analysis.FIXED else ALWAYS_VALID,
    )


def _value_parts(
    variants: Sequence[ValueSums],
    method: Analysis,
    alpha: float,
    minimum_effect: float,
    rule: tuple[int, int],
    is_non_negative: bool,
    critical: float | None = None,
) -> _GoalParts:
    """Every number of a value goal except the adjusted p-values (``critical``: as above)."""
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
            _compare_value(
                control, variant, method, alpha, minimum_effect, is_non_negative, critical
            )
            for variant in moments[1:]
        ],
        bayesian=[_normal_chance_and_loss(control, variant) for variant in moments[1:]],
        gaps=[
            _evidence_gap(
                variants[0].visitors,
                variant.visitors,
                None
                if variants[0].buyers is None or variant.buyers is None
                else variants[0].buyers + variant.buyers,
                rule,
                unit="buyers",
            )
            for variant in variants[1:]
        ],
        minimum_visitors=rule[0],
        minimum_conversions=rule[1],
        test=FIXED if method is Analysis.FIXED else ALWAYS_VALID,
    )


def _evidence_gap(
    control_visitors: int,
    variant_visitors: int,
    conversions: int | None,
    rule: tuple[int, int],
    unit: str = "conversions",
) -> str | None:
    """Why a comparison is below the minimum-evidence rule, or None when it meets it."""
    minimum_visitors, minimum_conversions = rule
    if min(control_visitors, variant_visitors) < minimum_visitors:
        return f"fewer than {minimum_visitors} visitors in the control or the variant"
    if conversions is not None and conversions < minimum_conversions:
        return f"fewer than {minimum_conversions} {unit} in the control and the variant together"
    return None


def _conversion_look(look: Sequence[ConversionCounts], parts: _GoalParts) -> list[float | None]:
    """The sequential p-values of an earlier look; None where it cannot count.

    A look counts for a comparison when its counts can happen and meet the minimum-evidence
    rule: the normal approximation behind the mSPRT is too rough for a handful of visitors.
    """
    rule = (parts.minimum_visitors, parts.minimum_conversions)
    if len(look) != len(parts.visitors) or any(
        counts.visitors < 0 or not 0 <= counts.converted <= counts.visitors for counts in look
    ):
        return [None] * len(parts.comparisons)
    control = look[0]
    return [
        None
        if _evidence_gap(
            control.visitors, variant.visitors, control.converted + variant.converted, rule
        )
        else _sequential_conversion_p_value(control, variant, parts.minimum_effect)
        for variant in look[1:]
    ]


def _sequential_conversion_p_value(
    control: ConversionCounts, variant: ConversionCounts, minimum_effect: float
) -> float | None:
    """The mSPRT p-value of ``_compare_conversion`` alone: an earlier look needs nothing else."""
    pooled = (control.converted + variant.converted) / (control.visitors + variant.visitors)
    null_variance = pooled * (1.0 - pooled) * (1.0 / control.visitors + 1.0 / variant.visitors)
    uplift = variant.converted / variant.visitors - control.converted / control.visitors
    return _mixture_p_value(uplift, null_variance, _mixture_variance(minimum_effect, pooled))


def _value_look(look: Sequence[ValueSums], parts: _GoalParts) -> list[float | None]:
    """The sequential p-values of an earlier look of a value goal, as ``_conversion_look``."""
    rule = (parts.minimum_visitors, parts.minimum_conversions)
    if len(look) != len(parts.visitors):
        return [None] * len(parts.comparisons)
    try:
        moments = [_moments(sums) for sums in look]
    except ValueError:
        return [None] * len(parts.comparisons)  # odd stored sums of a day: that look is skipped
    control = look[0]
    return [
        None
        if _evidence_gap(
            control.visitors,
            variant.visitors,
            None
            if control.buyers is None or variant.buyers is None
            else control.buyers + variant.buyers,
            rule,
        )
        else _sequential_value_p_value(moments[0], moment, parts.minimum_effect)
        for variant, moment in zip(look[1:], moments[1:], strict=True)
    ]


def _sequential_value_p_value(
    control: _Moments, variant: _Moments, minimum_effect: float
) -> float | None:
    """The mSPRT p-value of ``_compare_value`` alone, for an earlier look."""
    if control.mean is None or variant.mean is None:
        return None
    if control.variance is None or variant.variance is None:
        return None
    uplift = _difference(control.mean, variant.mean)
    variance = control.variance / control.visitors + variant.variance / variant.visitors
    if variance == 0.0:
        return 1.0 if uplift == 0.0 else None
    pooled_mean = (control.mean * control.visitors + variant.mean * variant.visitors) / (
        control.visitors + variant.visitors
    )
    return _mixture_p_value(uplift, variance, _mixture_variance(minimum_effect, pooled_mean))


def _conversion_statistics(
    look: Sequence[ConversionCounts], parts: _GoalParts
) -> list[float | None]:
    """The pooled z statistics of one look (the fixed test's); None where the look cannot count.

    As ``_conversion_look``: counts that cannot happen, or below the minimum-evidence rule,
    take no part (a look left out only lowers the chance to cross a boundary).
    """
    rule = (parts.minimum_visitors, parts.minimum_conversions)
    if len(look) != len(parts.visitors) or any(
        counts.visitors < 0 or not 0 <= counts.converted <= counts.visitors for counts in look
    ):
        return [None] * len(parts.comparisons)
    control = look[0]
    statistics: list[float | None] = []
    for variant in look[1:]:
        if _evidence_gap(
            control.visitors, variant.visitors, control.converted + variant.converted, rule
        ):
            statistics.append(None)
            continue
        pooled = (control.converted + variant.converted) / (control.visitors + variant.visitors)
        null_variance = pooled * (1.0 - pooled) * (1.0 / control.visitors + 1.0 / variant.visitors)
        uplift = variant.converted / variant.visitors - control.converted / control.visitors
        # no variance: both rates 0 % or both 100 %, no difference to see
        statistics.append(uplift / math.sqrt(null_variance) if null_variance > 0.0 else 0.0)
    return statistics


def _value_statistics(look: Sequence[ValueSums], parts: _GoalParts) -> list[float | None]:
    """The z statistics (difference over its unpooled standard error) of one look of a value
    goal; None where the look cannot count, as ``_conversion_statistics``."""
    rule = (parts.minimum_visitors, parts.minimum_conversions)
    if len(look) != len(parts.visitors):
        return [None] * len(parts.comparisons)
    try:
        moments = [_moments(sums) for sums in look]
    except ValueError:
        return [None] * len(parts.comparisons)
    control = moments[0]
    statistics: list[float | None] = []
    for sums, variant in zip(look[1:], moments[1:], strict=True):
        buyers = (
            None if look[0].buyers is None or sums.buyers is None else look[0].buyers + sums.buyers
        )
        if (
            _evidence_gap(look[0].visitors, sums.visitors, buyers, rule)
            or control.mean is None
            or variant.mean is None
            or control.variance is None
            or variant.variance is None
        ):
            statistics.append(None)
            continue
        variance = control.variance / control.visitors + variant.variance / variant.visitors
        uplift = _difference(control.mean, variant.mean)
        statistics.append(uplift / math.sqrt(variance) if variance > 0.0 else None)
    return statistics


def _plan_looks(plan: Plan, looks: Sequence[Sequence[Any]], current: Sequence[Any]) -> list[Any]:
    """The looks a plan judges: ``looks`` and the current one, or ``looks`` alone when the plan
    has one fraction per look (the test closed at the last of them; see server.core.sequential).
    """
    if len(plan.fractions) == len(looks):
        return list(looks)
    if len(plan.fractions) == len(looks) + 1:
        return [*looks, current]
    raise ValueError("the plan needs one information fraction per look")


def _planned(parts: _GoalParts, plan: Plan, statistics: Sequence[list[float | None]]) -> _GoalParts:
    """The parts judged by the group sequential plan: each p-value the repeated p-value over
    the plan's looks (``statistics``: one list per look, the current one last)."""
    if len(statistics) != len(plan.fractions):
        raise ValueError("the plan needs one information fraction per look")
    comparisons = [
        replace(comparison, p_value=plan.p_value([look[index] for look in statistics]))
        for index, comparison in enumerate(parts.comparisons)
    ]
    return replace(
        parts,
        method=Analysis.SEQUENTIAL,
        comparisons=comparisons,
        test=GROUP_SEQUENTIAL,
        information_fraction=plan.fractions[-1],
        boundary=plan.boundary(parts.alpha),
    )


def _with_earlier_looks(parts: _GoalParts, looks: Sequence[list[float | None]]) -> _GoalParts:
    """The parts with each sequential p-value replaced by its running minimum over the looks.

    Johari et al.'s always-valid p-value is the running minimum of 1 / Lambda over looks; the
    shown p-value therefore never rises from one look to the next.
    """
    comparisons = []
    for index, comparison in enumerate(parts.comparisons):
        series = [look[index] for look in looks] + [comparison.p_value]
        comparisons.append(replace(comparison, p_value=running_minimum(series)[-1]))
    return replace(parts, comparisons=comparisons)


def _segment_results(parts: Mapping[str, _GoalParts]) -> tuple[SegmentResult, ...]:
    """Judge segments by size and adjust the judged ones' p-values together (Benjamini–Hochberg)."""
    judged = {segment: _is_judgeable(goal) for segment, goal in parts.items()}
    family = [p for segment, goal in parts.items() if judged[segment] for p in goal.p_values()]
    adjusted = iter(benjamini_hochberg(family))
    results = []
    for segment, goal in parts.items():
        corrected = [next(adjusted) if judged[segment] else None for _ in goal.comparisons]
        if not judged[segment]:
            goal = replace(
                goal,
                gaps=[gap or _SEGMENT_GAP for gap in goal.gaps],
            )
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


def _with_chances(
    goals: Sequence[tuple[Sequence[ConversionCounts], _GoalParts]],
) -> list[_GoalParts]:
    """Conversion goals' parts (with their counts) with the Beta chances and losses of the
    comparisons that show them, computed in one batch.

    A comparison with a gap (below the minimum-evidence rule) shows no chance to beat or loss
    (``_goal_result``): its quadrature would be thrown away, so it keeps None. Callers leave out
    segments too small to be judged for the same reason.
    """
    pairs, places = [], []
    for number, (variants, parts) in enumerate(goals):
        for index, gap in enumerate(parts.gaps):
            if gap is None:
                pairs.append((variants[0], variants[index + 1]))
                places.append((number, index))
    bayesian = [list(parts.bayesian) for _, parts in goals]
    for (number, index), result in zip(places, _beta_chances_and_losses(pairs), strict=True):
        bayesian[number][index] = result
    return [
        replace(parts, bayesian=chances)
        for (_, parts), chances in zip(goals, bayesian, strict=True)
    ]


def _goal_result(
    parts: _GoalParts, adjusted: Sequence[float | None], adjustment: str
) -> GoalResult:
    """Assemble the variants' results with the adjusted p-values of variants 1, 2, …

    A comparison below the minimum-evidence rule keeps its descriptive numbers and p-value
    (which took part in the adjustment, so the others are not adjusted for fewer comparisons
    than were made) but loses everything that reads as a verdict.
    """
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
            status=CONTROL,
        )
    ]
    for index, comparison in enumerate(parts.comparisons, start=1):
        gap = parts.gaps[index - 1]
        corrected = None if gap else _finite(adjusted[index - 1])
        chance, loss = (None, None) if gap else parts.bayesian[index - 1] or (None, None)
        relative = _finite(comparison.relative_uplift)
        relative_interval = _finite_interval(comparison.relative_uplift_interval)
        relative_reason = comparison.relative_reason
        if relative is None or relative_interval is None:
            relative, relative_interval = None, None
            relative_reason = relative_reason or "no data to compare with"
        results.append(
            VariantResult(
                variant=index,
                visitors=parts.visitors[index],
                converted=parts.converted[index],
                estimate=_finite(parts.estimates[index]),
                uplift=_finite(comparison.uplift),
                uplift_interval=_finite_interval(comparison.uplift_interval),
                relative_uplift=relative,
                relative_uplift_interval=relative_interval,
                p_value=_finite(comparison.p_value),
                adjusted_p_value=corrected,
                is_significant=corrected is not None and corrected < alpha,
                chance_to_beat_control=_finite(chance),
                expected_loss=_finite(loss),
                status=NOT_ENOUGH_DATA if gap else JUDGED,
                reason=gap,
                relative_reason=relative_reason,
            )
        )
    return GoalResult(
        kind=parts.kind,
        method=parts.method.value,
        alpha=alpha,
        minimum_effect=parts.minimum_effect,
        adjustment=adjustment,
        variants=tuple(results),
        minimum_visitors=parts.minimum_visitors,
        minimum_conversions=parts.minimum_conversions,
        test=parts.test,
        information_fraction=parts.information_fraction,
        boundary=parts.boundary,
    )


def _rate(counts: ConversionCounts) -> float | None:
    """The conversion rate, None without visitors."""
    return counts.converted / counts.visitors if counts.visitors else None


def _adjusted_rate(counts: ConversionCounts) -> tuple[float, float]:
    """Agresti–Caffo: the rate and its variance with one conversion and one non-conversion added.

    Intervals built on it never collapse to a point at 0 or 100 % (0/300 against 1/1 gave
    "+100.00 pp [+100.00, +100.00]" with the plain Wald variance) and keep their level for small
    samples (Agresti & Caffo 2000).
    """
    rate = (counts.converted + 1.0) / (counts.visitors + 2.0)
    return rate, rate * (1.0 - rate) / (counts.visitors + 2.0)


def _rate_upper_bound(counts: ConversionCounts) -> float:
    """Wilson score upper bound of a rate at z = ``RATE_BOUND_QUANTILE``."""
    n, rate, z = counts.visitors, counts.converted / counts.visitors, RATE_BOUND_QUANTILE
    square = z * z / n
    center = rate + square / 2.0
    spread = z * math.sqrt(rate * (1.0 - rate) / n + square / (4.0 * n))
    bound = (center + spread) / (1.0 + square)
    return bound if bound < 1.0 else 1.0


def _possible_difference(
    interval: Interval, control: ConversionCounts, variant: ConversionCounts
) -> Interval:
    """The uplift interval clipped to what two rates allow: minus the control's rate up to the
    variant's, each at its Wilson upper bound (``RATE_BOUND_QUANTILE``)."""
    # the bounds are at least the observed rates: inside those nothing needs cutting (the rule)
    if -interval.lower <= control.converted / control.visitors and (
        interval.upper <= variant.converted / variant.visitors
    ):
        return interval
    return _clip(interval, -_rate_upper_bound(control), _rate_upper_bound(variant))


def _fixed_conversion_p_value(control: ConversionCounts, variant: ConversionCounts) -> float:
    """Pooled two-proportion z-test, or Fisher's exact test when a cell expects fewer than 5."""
    total = control.visitors + variant.visitors
    converted = control.converted + variant.converted
    smallest_cell = min(converted, total - converted) * min(control.visitors, variant.visitors)
    if smallest_cell < EXACT_TEST_MINIMUM_EXPECTED * total:
        table = [
            [variant.converted, variant.visitors - variant.converted],
            [control.converted, control.visitors - control.converted],
        ]
        return float(scipy_stats.fisher_exact(table).pvalue)
    pooled = converted / total
    null_variance = pooled * (1.0 - pooled) * (1.0 / control.visitors + 1.0 / variant.visitors)
    uplift = variant.converted / variant.visitors - control.converted / control.visitors
    return math.erfc(abs(uplift) / math.sqrt(null_variance) / _SQRT_2)


def _compare_conversion(
    control: ConversionCounts,
    variant: ConversionCounts,
    method: Analysis,
    alpha: float,
    minimum_effect: float,
    critical_value: float | None = None,
) -> _Comparison:
    """Uplift, intervals and p-value of one variant's conversion rate against the control's.

    ``critical_value`` (group sequential: the look's boundary) replaces the fixed test's
    normal quantile in the intervals.
    """
    if control.visitors == 0 or variant.visitors == 0:
        return _Comparison()
    control_rate = control.converted / control.visitors
    variant_rate = variant.converted / variant.visitors
    uplift = variant_rate - control_rate
    # intervals cannot assume "no difference", so they use each variant's own (adjusted) rate
    control_adjusted, control_variance = _adjusted_rate(control)
    variant_adjusted, variant_variance = _adjusted_rate(variant)
    adjusted_uplift = variant_adjusted - control_adjusted
    variance = control_variance + variant_variance
    if method is not Analysis.FIXED:
        # the test of "no difference" uses the variance under that hypothesis, as the z-test
        pooled = (control.converted + variant.converted) / (control.visitors + variant.visitors)
        null_variance = pooled * (1.0 - pooled) * (1.0 / control.visitors + 1.0 / variant.visitors)
        mixture = _mixture_variance(minimum_effect, pooled)
        interval = _mixture_interval(adjusted_uplift, variance, mixture, alpha)
        critical = _mixture_critical(variance, mixture, alpha)
        # pooled variance is zero only when both rates are 0 or both are 1, i.e. no uplift
        p_value = _mixture_p_value(uplift, null_variance, mixture)
    else:
        critical = _normal_quantile(alpha) if critical_value is None else critical_value
        interval = _interval(adjusted_uplift, critical * math.sqrt(variance))
        p_value = _fixed_conversion_p_value(control, variant)
    relative_interval, reason = _fieller(
        control_adjusted, variant_adjusted, control_variance, variant_variance, critical
    )
    return _Comparison(
        uplift=uplift,
        uplift_interval=None
        if interval is None
        else _possible_difference(interval, control, variant),
        relative_uplift=None if relative_interval is None else variant_rate / control_rate - 1.0,
        relative_uplift_interval=(
            None if relative_interval is None else _clip(relative_interval, -1.0, math.inf)
        ),
        p_value=p_value,
        relative_reason=reason,
    )


def _moments(sums: ValueSums) -> _Moments:
    """Mean and sample variance from the sums; raises ValueError for impossible sums."""
    visitors, total, squares = sums.visitors, sums.value_sum, sums.value_sum_squares
    if visitors < 0 or squares < 0.0 or not (math.isfinite(total) and math.isfinite(squares)):
        raise ValueError(f"impossible value sums: {sums}")
    if sums.buyers is not None and not 0 <= sums.buyers <= visitors:
        raise ValueError(f"impossible number of buyers: {sums}")
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
    deviations = squares - total * mean
    # Identical values (every buyer paid the same, or all nothing) leave only the rounding of
    # squares - total * mean, a few ulps of the squares: that is a variance of exactly 0, not a
    # tiny positive one that would turn a rounding difference of the means into p = 0.
    if deviations <= VARIANCE_ROUNDING * squares:
        return _Moments(visitors, mean, 0.0)
    return _Moments(visitors, mean, deviations / (visitors - 1))


def _compare_value(
    control: _Moments,
    variant: _Moments,
    method: Analysis,
    alpha: float,
    minimum_effect: float,
    is_non_negative: bool,
    critical_value: float | None = None,
) -> _Comparison:
    """Difference, intervals and p-value of one variant's mean value against the control's.

    ``critical_value``: as in ``_compare_conversion`` (then on the normal, not Welch's t scale).
    """
    if control.mean is None or variant.mean is None:
        return _Comparison()
    uplift = _difference(control.mean, variant.mean)
    if control.variance is None or variant.variance is None:
        return _Comparison(uplift=uplift, relative_reason="a variant has a single visitor")
    control_variance = control.variance / control.visitors
    variant_variance = variant.variance / variant.visitors
    variance = control_variance + variant_variance
    if variance == 0.0:
        # identical values within each variant: no evidence either way if the means agree,
        # and a p-value without meaning if they do not
        return _Comparison(
            uplift=uplift,
            uplift_interval=Interval(uplift, uplift),
            p_value=1.0 if uplift == 0.0 else None,
            relative_reason="every visitor has the same total",
        )
    if method is not Analysis.FIXED:
        pooled_mean = (control.mean * control.visitors + variant.mean * variant.visitors) / (
            control.visitors + variant.visitors
        )
        mixture = _mixture_variance(minimum_effect, pooled_mean)
        interval = _mixture_interval(uplift, variance, mixture, alpha)
        critical = _mixture_critical(variance, mixture, alpha)
        p_value = _mixture_p_value(uplift, variance, mixture)
    else:
        # Welch–Satterthwaite degrees of freedom, written with shares of the variance so that
        # tiny variances cannot underflow when squared
        control_share = control_variance / variance
        variant_share = variant_variance / variance
        freedom = 1.0 / (
            control_share * control_share / (control.visitors - 1)
            + variant_share * variant_share / (variant.visitors - 1)
        )
        critical = (
            float(special.stdtrit(freedom, 1.0 - alpha / 2.0))
            if critical_value is None
            else critical_value
        )
        interval = _interval(uplift, critical * math.sqrt(variance))
        p_value = 2.0 * float(special.stdtr(freedom, -abs(uplift) / math.sqrt(variance)))
    relative_interval: Interval | None = None
    reason: str | None = "a variant has no spread: every visitor has the same total"
    if control.variance > 0.0 and variant.variance > 0.0:
        relative_interval, reason = _fieller(
            control.mean, variant.mean, control_variance, variant_variance, critical
        )
    if relative_interval is not None and is_non_negative:
        relative_interval = _clip(relative_interval, -1.0, math.inf)
    return _Comparison(
        uplift=uplift,
        uplift_interval=interval,
        relative_uplift=None if relative_interval is None else uplift / control.mean,
        relative_uplift_interval=relative_interval,
        p_value=p_value,
        relative_reason=reason,
    )


def _fieller(
    control_mean: float,
    variant_mean: float,
    control_variance: float,
    variant_variance: float,
    critical: float | None,
) -> tuple[Interval | None, str | None]:
    """Fieller's interval of the relative uplift B / A - 1, or None with the reason.

    All ratios rho with (B - rho A)² <= k² (Var B + rho² Var A) (Fieller 1954), k being the
    critical value of the absolute comparison: at rho = 1 this is exactly "the absolute interval
    contains 0", so the relative interval excludes 0 exactly when the uplift interval does,
    however skewed the values are (the delta method, which ignores that a
    high mean comes with a high variance, excluded it in 19 % of A/A runs at lognormal sigma 2.5).
    The set is a bounded interval only when A is clearly above zero (A² > k² Var A); otherwise no
    relative uplift is given: a percentage of a baseline that may be zero or negative misleads.
    Computed relative to A, so that A² cannot underflow.
    """
    if critical is None:
        return None, "the sequential test has no interval yet"
    if not control_mean > 0.0:
        return None, "the control's mean is not above zero, so a percentage of it would mislead"
    square = critical * critical
    control_error = math.sqrt(control_variance) / control_mean
    leading = 1.0 - square * control_error * control_error
    if not leading > 0.0:
        return None, "the control's mean is not clearly above zero yet"
    ratio = variant_mean / control_mean
    variant_error = math.sqrt(variant_variance) / control_mean
    control_part, variant_part = control_error * control_error, variant_error * variant_error
    root = math.sqrt(square * (control_part * ratio * ratio + variant_part * leading))
    return Interval((ratio - root) / leading - 1.0, (ratio + root) / leading - 1.0), None


def _clip(interval: Interval, lowest: float, highest: float) -> Interval:
    """The interval cut to [lowest, highest] (both ends stay inside, in order)."""
    lower, upper = interval.lower, interval.upper
    if lowest <= lower and upper <= highest:
        return interval  # the common case: nothing to cut
    # conditional expressions rather than min()/max(): this runs for every comparison
    lower = lowest if lower < lowest else highest if lower > highest else lower
    upper = highest if upper > highest else lowest if upper < lowest else upper
    return Interval(lower, upper if upper > lower else lower)


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


def _mixture_critical(variance: float, mixture: float, alpha: float) -> float | None:
    """The confidence sequence's half-width in standard errors: sqrt((1 + u) / u (log(1 + u) -
    2 log alpha)) with u = tau² / s²; None when either is 0 (no finite sequence).

    Fieller's relative sequence uses it with the mixture scaled like the ratio's standard error
    (tau_rho² = tau² Var(B - rho A) / Var(B - A)), which keeps u, and so this value, the same for
    every rho: that sequence excludes rho = 1 exactly when the absolute one excludes 0.
    """
    if mixture == 0.0 or variance == 0.0:
        return None
    share = mixture / variance
    if not 0.0 < share < math.inf:
        return None  # one of the two is negligible against the other: no usable sequence
    return _finite(math.sqrt((1.0 + share) / share * (math.log1p(share) - 2.0 * math.log(alpha))))


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
    difference = _difference(control.mean, variant.mean)
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


def _difference(control_mean: float, variant_mean: float) -> float:
    """The variant's mean minus the control's; 0 when they differ only by rounding.

    Equal totals divided by different visitor counts can differ in the last bit; with no spread
    that difference would be "infinitely significant" (p = 0) in one segment and undefined in
    the next.
    """
    difference = variant_mean - control_mean
    if abs(difference) <= VARIANCE_ROUNDING * max(abs(control_mean), abs(variant_mean)):
        return 0.0
    return difference


def normal_critical(alpha: float) -> float:
    """The fixed test's two-sided critical value z_{1 - alpha/2}."""
    return _normal_quantile(alpha)


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


@dataclass(frozen=True)
class StratifiedComparison:
    """One variant's post-stratified uplift against the control.

    ``variance_ratio`` is the adjusted variance over the unadjusted one (0.8: 20 % less).
    """

    variant: int
    uplift: float
    standard_error: float
    uplift_interval: Interval
    variance_ratio: float | None


def post_stratify(
    strata: Sequence[Sequence[ValueSums]], critical: float
) -> list[StratifiedComparison | None]:
    """Post-stratified uplifts of variants 1, 2, … against the control, one list per stratum.

    Every stratum h holds one ``ValueSums`` per variant (a conversion goal passes converted
    visitors as both sum and sum of squares, its values being 0 or 1). With the pooled stratum
    shares w_h = N_h / N as weights (Miratrix, Sekhon & Yu 2013):

        uplift = Σ_h w_h (ȳ_hB − ȳ_hA)       Var = Σ_h w_h² (s²_hB / n_hB + s²_hA / n_hA)

    which is the treatment coefficient of OLS with stratum dummies and their centred
    interactions with the treatment, and its HC2 variance (Lin 2013; tests check both against
    statsmodels). The interval is uplift ± critical · standard error. A variant is None when a
    stratum has fewer than two of its or the control's visitors (no variance there): callers
    merge small strata first (``MINIMUM_STRATUM_VISITORS``).

    Raises:
        ValueError: no strata, strata of different lengths, or sums that cannot happen.
    """
    if not strata or len({len(stratum) for stratum in strata}) != 1:
        raise ValueError("every stratum needs one entry per variant")
    moments = [[_moments(sums) for sums in stratum] for stratum in strata]
    sizes = [sum(sums.visitors for sums in stratum) for stratum in strata]
    total = sum(sizes)
    variant_count = len(strata[0])
    results: list[StratifiedComparison | None] = []
    for variant in range(1, variant_count):
        uplift, variance, is_defined = 0.0, 0.0, total > 0
        for size, stratum in zip(sizes, moments, strict=True):
            control, treated = stratum[0], stratum[variant]
            if control.variance is None or treated.variance is None:
                is_defined = False
                break
            weight = size / total
            uplift += weight * (_value_or_zero(treated.mean) - _value_or_zero(control.mean))
            variance += (
                weight
                * weight
                * (treated.variance / treated.visitors + control.variance / control.visitors)
            )
        if not is_defined:
            results.append(None)
            continue
        plain = _moments(_merged([stratum[0] for stratum in strata]))
        other = _moments(_merged([stratum[variant] for stratum in strata]))
        unadjusted = (
            None
            if plain.variance is None or other.variance is None
            else plain.variance / plain.visitors + other.variance / other.visitors
        )
        error = math.sqrt(variance)
        results.append(
            StratifiedComparison(
                variant,
                uplift,
                error,
                _interval(uplift, critical * error),
                None if not unadjusted else variance / unadjusted,
            )
        )
    return results


def _merged(sums: Sequence[ValueSums]) -> ValueSums:
    """The sums of several groups of visitors as one group."""
    return ValueSums(
        sum(item.visitors for item in sums),
        sum(item.value_sum for item in sums),
        sum(item.value_sum_squares for item in sums),
    )


def _value_or_zero(value: float | None) -> float:
    """A mean that is defined whenever its variance is (two visitors or more)."""
    return 0.0 if value is None else value


def strata_of(
    groups: Mapping[str, Sequence[ValueSums]], totals: Sequence[ValueSums]
) -> list[list[ValueSums]] | None:
    """Strata for ``post_stratify`` from one segment attribute's groups and the variants' totals.

    Each value with ``MINIMUM_STRATUM_VISITORS`` in every variant is a stratum; the other
    values and the visitors without a value (totals minus all groups) form one more. None when
    the groups do not fit in the totals (odd stored counters) or fewer than two strata remain:
    then there is nothing to adjust for.
    """
    strata = []
    rest = list(totals)
    for sums in groups.values():
        if len(sums) != len(totals):
            return None
        rest = [
            ValueSums(
                whole.visitors - part.visitors,
                whole.value_sum - part.value_sum,
                whole.value_sum_squares - part.value_sum_squares,
            )
            for whole, part in zip(rest, sums, strict=True)
        ]
        if min(item.visitors for item in sums) >= MINIMUM_STRATUM_VISITORS:
            strata.append(list(sums))
        else:
            rest = [_merged([a, b]) for a, b in zip(rest, sums, strict=True)]
    if any(item.visitors < 0 or item.value_sum_squares < -VARIANCE_ROUNDING for item in rest):
        return None
    if any(item.visitors > 0 for item in rest):
        if min(item.visitors for item in rest) < MINIMUM_STRATUM_VISITORS:
            if not strata:
                return None
            # too few to stand alone: the rest joins the largest stratum
            largest = max(range(len(strata)), key=lambda h: sum(s.visitors for s in strata[h]))
            strata[largest] = [_merged([a, b]) for a, b in zip(strata[largest], rest, strict=True)]
        else:
            strata.append(
                [
                    ValueSums(item.visitors, item.value_sum, max(0.0, item.value_sum_squares))
                    for item in rest
                ]
            )
    return strata if len(strata) >= 2 else None


@dataclass(frozen=True)
class CovariateSums:
    """One variant's streaming sums of a goal's value y and a pre-experiment covariate x.

    Σy and Σy² as in ``ValueSums``; Σx, Σx² and Σxy over the same visitors (x is 0 for a
    visitor without one, so a shop that sends it for some customers only still gets sums).
    """

    visitors: int
    value_sum: float
    value_sum_squares: float
    covariate_sum: float
    covariate_sum_squares: float
    cross_sum: float


@dataclass(frozen=True)
class CovariateComparison:
    """One variant's CUPED-adjusted uplift against the control, with its standard error.

    ``slope`` is the pooled within-variant regression slope of y on x used for the adjustment;
    ``variance_ratio`` the adjusted variance over the unadjusted (Welch) one.
    """

    variant: int
    uplift: float
    standard_error: float
    slope: float
    variance_ratio: float | None


def adjust_for_covariate(variants: Sequence[CovariateSums]) -> list[CovariateComparison | None]:
    """CUPED (Deng, Xu, Kohavi & Walker 2013) from sums alone, variants 1, 2, … against 0.

    For each pair (control A, variant B) this is the analysis of covariance y ~ 1 + T + x by
    ordinary least squares, solved from the sums: with within-variant sums of squares and
    products S_xx = Σ_g (Σx² − (Σx)²/n)_g and S_xy, S_yy alike, the slope is b = S_xy / S_xx,

        uplift = (ȳ_B − ȳ_A) − b (x̄_B − x̄_A)
        Var    = σ² (1/n_A + 1/n_B + (x̄_B − x̄_A)² / S_xx),  σ² = (S_yy − b S_xy) / (n_A + n_B − 3)

    equal to statsmodels' OLS estimate and standard error (tests check 1e-9). A variant is None
    when that fit is undefined: fewer than 4 visitors in the pair, fewer than 2 in one variant,
    or a covariate without spread.

    Raises:
        ValueError: sums that cannot happen (negative visitors or sums of squares, non-finite).
    """
    for sums in variants:
        numbers = (
            sums.value_sum,
            sums.value_sum_squares,
            sums.covariate_sum,
            sums.covariate_sum_squares,
            sums.cross_sum,
        )
        if sums.visitors < 0 or not all(math.isfinite(number) for number in numbers):
            raise ValueError(f"impossible covariate sums: {sums}")
        if sums.value_sum_squares < 0.0 or sums.covariate_sum_squares < 0.0:
            raise ValueError(f"impossible covariate sums: {sums}")
    if not variants:
        raise ValueError("at least the control is needed")
    control = variants[0]
    return [
        _covariate_comparison(control, variant, index)
        for index, variant in enumerate(variants[1:], start=1)
    ]


def _covariate_comparison(
    control: CovariateSums, variant: CovariateSums, index: int
) -> CovariateComparison | None:
    """The ANCOVA of one pair from its sums (see ``adjust_for_covariate``)."""
    if min(control.visitors, variant.visitors) < 2 or control.visitors + variant.visitors < 4:
        return None
    xx = xy = yy = 0.0
    for sums in (control, variant):
        n = sums.visitors
        xx += sums.covariate_sum_squares - sums.covariate_sum * sums.covariate_sum / n
        xy += sums.cross_sum - sums.covariate_sum * sums.value_sum / n
        yy += sums.value_sum_squares - sums.value_sum * sums.value_sum / n
    if not xx > VARIANCE_ROUNDING * max(
        control.covariate_sum_squares, variant.covariate_sum_squares
    ):
        return None  # the covariate has no spread within the variants: nothing to adjust with
    slope = xy / xx
    covariate_gap = (
        variant.covariate_sum / variant.visitors - control.covariate_sum / control.visitors
    )
    plain = variant.value_sum / variant.visitors - control.value_sum / control.visitors
    uplift = plain - slope * covariate_gap
    residual = max(0.0, yy - slope * xy) / (control.visitors + variant.visitors - 3)
    variance = residual * (
        1.0 / control.visitors + 1.0 / variant.visitors + covariate_gap * covariate_gap / xx
    )
    # Welch's variance of the plain difference, for the ratio (written out: this runs for
    # every look of every goal)
    unadjusted = sum(
        max(0.0, sums.value_sum_squares - sums.value_sum * sums.value_sum / sums.visitors)
        / ((sums.visitors - 1) * sums.visitors)
        for sums in (control, variant)
    )
    return CovariateComparison(
        index,
        uplift,
        math.sqrt(variance),
        slope,
        variance / unadjusted if unadjusted else None,
    )


# --- ratio metrics (issue 21): the return rate, refunded ÷ net revenue -------------------------


@dataclass(frozen=True, slots=True)
class RatioSums:
    """Per-visitor sums of a ratio of two sums, Σa ÷ Σb, over one variant's visitors.

    ``numerator_squares``, ``denominator_squares`` and ``cross`` are Σa², Σb² and Σab.
    """

    visitors: int
    numerator: float
    denominator: float
    numerator_squares: float
    denominator_squares: float
    cross: float


@dataclass(frozen=True, slots=True)
class RatioComparison:
    """One variant's ratio and, for challengers, its difference to the control's.

    ``p_value`` is the fixed-horizon z-test of the difference, ``adjusted_p_value`` Holm's over
    the challengers; the interval is Bonferroni's (alpha split over the challengers), so a
    significant difference's interval excludes zero. None where there is no judgement.
    """

    variant: int
    estimate: float | None
    uplift: float | None = None
    uplift_interval: Interval | None = None
    p_value: float | None = None
    adjusted_p_value: float | None = None
    is_significant: bool = False


def _ratio_moments(sums: RatioSums) -> tuple[float, float] | None:
    """The ratio and the delta method's variance of it, or None without a denominator.

    Var(Σa/Σb) ≈ (Var(a) − 2R·Cov(a, b) + R²·Var(b)) / (n·b̄²) for per-visitor a and b with
    R = ā/b̄ (the linearisation of a ratio of means; e.g. Deng et al. 2018, "Applying the
    delta method in metric analytics").
    """
    n = sums.visitors
    if n < 2 or sums.denominator <= 0:
        return None
    mean_a, mean_b = sums.numerator / n, sums.denominator / n
    ratio = mean_a / mean_b
    var_a = sums.numerator_squares / n - mean_a * mean_a
    var_b = sums.denominator_squares / n - mean_b * mean_b
    covariance = sums.cross / n - mean_a * mean_b
    variance = (var_a - 2 * ratio * covariance + ratio * ratio * var_b) / (n * mean_b * mean_b)
    return ratio, max(variance, 0.0)


def compare_ratios(
    variants: Sequence[RatioSums], alpha: float = DEFAULT_ALPHA
) -> list[RatioComparison]:
    """Each variant's ratio; each challenger's difference to the control (variant 0).

    A comparison needs MINIMUM_VISITORS on each side and a variance: below that it reports the
    ratios only, like the goals' minimum-evidence rule.
    """
    moments = [_ratio_moments(sums) for sums in variants]
    estimates = [None if m is None else m[0] for m in moments]
    control = moments[0]
    differences: list[tuple[float, float] | None] = [None]
    for sums, moment in zip(variants[1:], moments[1:], strict=True):
        if (
            control is None
            or moment is None
            or min(variants[0].visitors, sums.visitors) < MINIMUM_VISITORS
            or control[1] + moment[1] <= 0
        ):
            differences.append(None)
            continue
        differences.append((moment[0] - control[0], math.sqrt(control[1] + moment[1])))
    p_values: list[float | None] = [
        None
        if difference is None
        else float(2 * scipy_stats.norm.sf(abs(difference[0]) / difference[1]))
        for difference in differences
    ]
    adjusted = holm(p_values)
    challengers = max(1, sum(p is not None for p in p_values))
    critical = _normal_quantile(alpha / challengers)
    results = [RatioComparison(0, _finite(estimates[0]))]
    for index in range(1, len(variants)):
        difference = differences[index]
        if difference is None:
            results.append(RatioComparison(index, _finite(estimates[index])))
            continue
        adjusted_p = adjusted[index]
        results.append(
            RatioComparison(
                index,
                _finite(estimates[index]),
                difference[0],
                _interval(difference[0], critical * difference[1]),
                p_values[index],
                adjusted_p,
                adjusted_p is not None and adjusted_p < alpha,
            )
        )
    return results


# CUPED judges a goal only with at least 100 visitors carrying a covariate in every variant:
# the minimum-evidence rule's number, below which the slope is too unsteady to trust.
MINIMUM_COVARIATE_VISITORS = MINIMUM_VISITORS


@dataclass(frozen=True)
class CovariateResult:
    """One variant's CUPED-adjusted comparison with the control, judged like the unadjusted one.

    ``p_value`` is this comparison's p-value under the goal's test (the group sequential
    repeated p-value, the mSPRT's, or the fixed test's); ``adjusted_p_value`` its Holm
    adjustment over the variants, which decides ``is_significant``; ``chance_to_beat_control``
    and ``expected_loss`` come from the normal posterior of the adjusted uplift.
    """

    variant: int
    uplift: float
    standard_error: float
    uplift_interval: Interval | None
    slope: float
    variance_ratio: float | None
    p_value: float | None
    adjusted_p_value: float | None
    is_significant: bool
    chance_to_beat_control: float | None
    expected_loss: float | None


def covariate_statistics(sums: Any, covariate_visitors: Any) -> list[list[float | None]]:
    """CUPED's z statistics of variants 1, 2, … at each of several looks, vectorised.

    ``sums`` is an array (looks × variants × 6) of n, Σy, Σy², Σx, Σx², Σxy per look and
    variant (as ``CovariateSums``), ``covariate_visitors`` (looks × variants) the visitors with
    a covariate. Each z is ``adjust_for_covariate``'s uplift over its standard error (the
    same formulas, over all looks at once: the results compute one per daily look of every
    goal). A look without ``MINIMUM_COVARIATE_VISITORS`` in some variant gives None for all
    its comparisons; a comparison below ``MINIMUM_VISITORS`` per side, or undefined, None.
    """
    data = np.asarray(sums, dtype=float)
    counts = np.asarray(covariate_visitors, dtype=float)
    n, y, yy, x, xx, xy = (data[:, :, k] for k in range(6))
    with np.errstate(divide="ignore", invalid="ignore"):
        # within-variant sums of squares and products, then each pair's pooled ones
        within_x = xx - x * x / n
        within_xy = xy - x * y / n
        within_y = yy - y * y / n
        pair_x = within_x[:, :1] + within_x[:, 1:]
        pair_xy = within_xy[:, :1] + within_xy[:, 1:]
        pair_y = within_y[:, :1] + within_y[:, 1:]
        slope = pair_xy / pair_x
        gap = x[:, 1:] / n[:, 1:] - x[:, :1] / n[:, :1]
        uplift = y[:, 1:] / n[:, 1:] - y[:, :1] / n[:, :1] - slope * gap
        residual = np.maximum(0.0, pair_y - slope * pair_xy) / (n[:, :1] + n[:, 1:] - 3.0)
        variance = residual * (1.0 / n[:, :1] + 1.0 / n[:, 1:] + gap * gap / pair_x)
        z = uplift / np.sqrt(variance)
    spread = np.maximum(xx[:, :1], xx[:, 1:]) * VARIANCE_ROUNDING
    valid = (
        (np.minimum(n[:, :1], n[:, 1:]) >= MINIMUM_VISITORS)
        & (pair_x > spread)
        & (variance > 0.0)
        & np.isfinite(z)
        & (counts.min(axis=1, keepdims=True) >= MINIMUM_COVARIATE_VISITORS)
    )
    return [
        [float(value) if ok else None for value, ok in zip(row, mask, strict=True)]
        for row, mask in zip(z, valid, strict=True)
    ]


def judge_with_covariate(
    result: GoalResult,
    variants: Sequence[CovariateSums],
    *,
    plan: Plan | None = None,
    statistics: Sequence[Sequence[float | None]] = (),
) -> tuple[CovariateResult | None, ...]:
    """CUPED comparisons of variants 1, 2, … judged by the test ``result`` was judged by.

    ``result`` is the goal's unadjusted result: its test, alpha, minimum effect and the
    minimum-evidence rule carry over (a comparison it finds "not_enough_data" is never
    significant here either). Group sequential (``plan``): ``statistics`` holds one list of z
    statistics per look of the plan, the current look's last (CUPED's where a look had enough
    covariates, else the unadjusted ones); the interval is uplift ± the plan's boundary times
    the standard error (``covariate_statistics`` gives them). Fixed: the normal test and
    interval. Always valid: the mSPRT p-value
    and confidence sequence of the adjusted uplift (its mixing distribution centred on the
    control's mean, as the unadjusted one), as this look's value.

    Raises:
        ValueError: as ``adjust_for_covariate``, or statistics that do not fit the plan.
    """
    comparisons = adjust_for_covariate(variants)
    baseline = variants[0].value_sum / variants[0].visitors if variants[0].visitors else 0.0
    mixture = _mixture_variance(result.minimum_effect, baseline)
    critical = normal_critical(result.alpha) if plan is None else plan.boundary(result.alpha)
    if plan is not None and len(statistics) != len(plan.fractions):
        raise ValueError("the plan needs one list of statistics per look")
    p_values: list[float | None] = []
    intervals: list[Interval | None] = []
    for index, comparison in enumerate(comparisons):
        if comparison is None:
            p_values.append(None)
            intervals.append(None)
            continue
        error = comparison.standard_error
        z = comparison.uplift / error if error > 0.0 else 0.0
        if plan is not None:
            p_values.append(plan.p_value([look[index] for look in statistics]))
            intervals.append(_interval(comparison.uplift, critical * error))
        elif result.test == ALWAYS_VALID:
            p_values.append(_mixture_p_value(comparison.uplift, error * error, mixture))
            intervals.append(
                _mixture_interval(comparison.uplift, error * error, mixture, result.alpha)
            )
        else:
            p_values.append(2.0 * float(special.ndtr(-abs(z))))
            intervals.append(_interval(comparison.uplift, critical * error))
    adjusted = holm(p_values)
    results: list[CovariateResult | None] = []
    for index, comparison in enumerate(comparisons):
        if comparison is None:
            results.append(None)
            continue
        is_judged = result.variants[index + 1].status == JUDGED
        error = comparison.standard_error
        corrected = _finite(adjusted[index]) if is_judged else None
        chance = loss = None
        if is_judged and error > 0.0:
            z = comparison.uplift / error
            chance = float(special.ndtr(z))
            # E[max(0, -D)] for D ~ N(uplift, error²): what choosing the variant costs when worse
            loss = error * math.exp(-0.5 * z * z) / _SQRT_2_PI - comparison.uplift * float(
                special.ndtr(-z)
            )
        results.append(
            CovariateResult(
                comparison.variant,
                comparison.uplift,
                error,
                _finite_interval(intervals[index]),
                comparison.slope,
                comparison.variance_ratio,
                _finite(p_values[index]),
                corrected,
                corrected is not None and corrected < result.alpha,
                chance,
                None if loss is None else max(0.0, loss),
            )
        )
    return tuple(results)


def decided_by_covariate(
    result: GoalResult, adjusted: Sequence[CovariateResult | None]
) -> GoalResult:
    """The goal's result with each comparison that CUPED judged replaced by the adjusted one
    (uplift, interval, p-values, significance, chance and loss); the rest as they were."""
    variants = list(result.variants)
    for item in adjusted:
        if item is None:
            continue
        variants[item.variant] = replace(
            variants[item.variant],
            uplift=item.uplift,
            uplift_interval=item.uplift_interval,
            p_value=item.p_value,
            adjusted_p_value=item.adjusted_p_value,
            is_significant=item.is_significant,
            chance_to_beat_control=item.chance_to_beat_control,
            expected_loss=item.expected_loss,
        )
    return replace(result, variants=tuple(variants))
