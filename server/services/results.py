"""Use case of reading results: counters from Redis → statistics per goal, variant, segment, day.

Everything a shop owner reads comes from the aggregate counters of the experiment's current
phase (see ``server.storage.keys``): enrolled visitors per variant, and per goal the converted
visitors, events, sums and sums of squares of the visitors' totals in cents. The statistics of
value goals use the capped sums (each visitor's total winsorised at the value cap when it was
recorded); the totals shown use the uncapped ones.

Stored counters can be odd (written by hand, by a bug, or by an older version that overflowed):
a goal whose counters cannot be is reported as unavailable with the reason, and the rest of
the experiment is analysed as usual. Reading results never fails because of stored data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from server.core import guardrails, sequential, stats
from server.core.models import Analysis, Experiment, Goal, GoalKind, Status
from server.core.money import CENTS_PER_UNIT
from server.storage.store import Store

log = logging.getLogger(__name__)

DAILY_TRAFFIC_DAYS = 7  # days of enrolments averaged for the end-date forecast: one week's rhythm
SQUARES_HIGH_UNIT = 10**8  # a sum of squares is qh·10^8 + q (storage/keys.py)
COVARIATE_UNIT = 100  # the CUPED covariate is stored in hundredths (storage/keys.py)
Look = tuple[int, int, int, int]  # a variant up to a day: visitors, converted, sum, squares
CURRENCY_SYMBOLS = {"EUR": "€", "CHF": "CHF", "GBP": "£", "USD": "$"}  # for the summary sentence
# A chance is never written as 0 % or 100 %: below 1 % it reads "< 1%", above 99 % "> 99%".
SURE_BELOW = 0.01
SURE_ABOVE = 0.99


@dataclass(frozen=True, slots=True)
class VariantTotals:
    """Raw figures of one variant for one goal (values in the shop's currency)."""

    key: str
    visitors: int
    converted: int
    events: int
    value_sum: float


@dataclass(frozen=True, slots=True)
class StratifiedReport:
    """A goal's uplifts post-stratified on one segment attribute recorded at enrolment."""

    attribute: str
    strata: int  # strata used: values with enough visitors, plus one for the rest
    variants: tuple[stats.StratifiedComparison | None, ...]  # variants 1, 2, …


@dataclass(frozen=True, slots=True)
class CustomerReport:
    """Customer metrics of one goal (issue 21), on the same visitors as the goal's result.

    A conversion goal fed by orders gives the repeat-purchase rate (visitors with two or more
    orders) and orders per visitor; a revenue goal the return rate (refunded net revenue ÷ net
    revenue before refunds).
    """

    repeat: stats.GoalResult | None = None
    per_visitor: stats.GoalResult | None = None
    return_rate: tuple[stats.RatioComparison, ...] = ()


@dataclass(frozen=True, slots=True)
class WindowReport:
    """A windowed goal's attribution window, how far its figures matured, and the provisional
    figures on everybody beside the matured ones that the goal's result is computed on."""

    window_days: int
    return_days: int
    matured_through: dt.date | None  # last enrolment day whose visitors' figures are final
    provisional: stats.GoalResult
    provisional_totals: tuple[VariantTotals, ...]


@dataclass(frozen=True, slots=True)
class CovariateReport:
    """A goal's CUPED-adjusted comparisons (issue 20), beside the unadjusted result.

    Reported when every variant has ``stats.MINIMUM_COVARIATE_VISITORS`` visitors with a
    covariate; then these comparisons decide the goal's verdict (``GoalReport.summary``).
    ``visitors`` counts the visitors with a covariate per variant.
    """

    visitors: tuple[int, ...]
    variants: tuple[stats.CovariateResult | None, ...]  # variants 1, 2, …


@dataclass(frozen=True, slots=True)
class GoalReport:
    """Statistics of one goal, the raw figures, and how much longer the experiment must run."""

    key: str
    kind: GoalKind
    is_primary: bool
    result: stats.GoalResult
    totals: tuple[VariantTotals, ...]
    visitors_needed: int | None
    estimated_end: dt.date | None
    summary: str
    traffic_days: int = 0  # days of enrolments the forecast's daily traffic is averaged over
    value_cap: float | None = None  # a value goal's per-visitor cap the statistics used
    unavailable: str | None = None  # why the counters cannot be analysed; None when they can
    stratified: tuple[StratifiedReport, ...] = ()  # beside the unadjusted result, per attribute
    window: WindowReport | None = None  # windowed goals: result and totals are the matured ones
    customer: CustomerReport | None = None  # repeat buyers, orders per visitor, return rate
    covariate: CovariateReport | None = None  # CUPED, beside the unadjusted result; decides

    @property
    def deciding(self) -> stats.GoalResult:
        """The result that decides (summary, decision): the unadjusted one with CUPED's
        comparisons in place when CUPED is reported (docs/statistics.md, "CUPED")."""
        if self.covariate is None:
            return self.result
        return stats.decided_by_covariate(self.result, self.covariate.variants)


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """One goal broken down by the values of one segment attribute."""

    attribute: str
    goal: str
    segments: tuple[stats.SegmentResult, ...]


@dataclass(frozen=True, slots=True)
class DailyVariant:
    """Cumulative figures of one variant for one goal up to and including a day."""

    visitors: int
    converted: int
    estimate: float | None
    interval: stats.Interval | None


@dataclass(frozen=True, slots=True)
class DailyPoint:
    """One day of the cumulative series of one goal, per variant."""

    day: dt.date
    variants: tuple[DailyVariant, ...]


@dataclass(frozen=True, slots=True)
class DailySeries:
    """A goal's cumulative series over the days of the phase."""

    goal: str
    points: tuple[DailyPoint, ...]


@dataclass(frozen=True, slots=True)
class VariantSummary:
    """A variant with its allocation and enrolled visitors."""

    key: str
    allocation: int
    visitors: int


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    """Everything the results API and the dashboard show for one experiment phase."""

    experiment: str
    name: str
    status: Status
    phase: int
    analysis: str
    generated_at: float
    variants: tuple[VariantSummary, ...]
    sample_ratio: stats.SampleRatioMismatch
    goals: tuple[GoalReport, ...]
    segments: tuple[SegmentReport, ...]
    daily: tuple[DailySeries, ...]
    summary: str
    guardrails: tuple[guardrails.GuardrailCheck, ...] = ()  # every challenger on every guardrail

    @property
    def has_guardrail_alarm(self) -> bool:
        """Whether some challenger significantly harms some guardrail goal."""
        return any(check.is_harmful for check in self.guardrails)


class Counters:
    """The counters of one phase, parsed once into lookup tables.

    ``days`` holds every UTC day with any daily counter (enrolments, conversions or values: an
    order's day comes from its own timestamp and may have no enrolments), ``enrolment_days``
    those with enrolments. ``odd`` names the fields that did not hold an integer (they read as 0
    and make what they belong to unavailable); field names that do not parse are ignored.
    """

    def __init__(self, stored: Mapping[str, int | None]) -> None:
        self.raw = {name: value for name, value in stored.items() if value is not None}
        self.odd = {name for name, value in stored.items() if value is None}
        self.days: set[str] = set()
        self.enrolment_days: set[str] = set()
        self.segment_values: dict[str, set[str]] = defaultdict(set)
        # _cumulative's answers: the statistics, CUPED and the daily series read the same
        self.looks: dict[tuple[str, int, tuple[str, ...], bool], list[list[Look]]] = {}
        # _running_covariates' answers
        self.covariates: dict[tuple[int, tuple[str, ...]], list[list[tuple[int, int, int]]]] = {}
        for name in stored:
            kind, _, rest = name.partition(":")
            _, _, detail = rest.partition(":")  # after the variant
            if kind in ("c", "s", "q", "qh", "cs", "cq", "cqh"):
                _, _, detail = detail.partition(":")  # after the goal
            elif kind != "e":
                continue
            if detail.startswith("d:"):
                day = detail[2:]
                if _is_day(day):
                    self.days.add(day)
                    if kind == "e":
                        self.enrolment_days.add(day)
            elif kind == "e" and "=" in detail:
                attribute, _, value = detail.partition("=")
                self.segment_values[attribute].add(value)

    def get(self, field: str) -> int:
        """One counter, 0 when it was never incremented."""
        return self.raw.get(field, 0)

    def two_part(self, high: str, low: str) -> int:
        """An exact sum stored in two parts, high·10^8 + low (squares, CUPED's Σx² and Σxy)."""
        return self.get(high) * SQUARES_HIGH_UNIT + self.get(low)

    def squares(self, variant: int, goal: str, suffix: str, capped: bool = False) -> int:
        """The exact sum of squares of the visitors' totals (cents²) from its two parts; of the
        capped totals (cqh·10^8 + cq) when ``capped``."""
        prefix = "c" if capped else ""
        high = self.get(f"{prefix}qh:{variant}:{goal}{suffix}")
        return high * SQUARES_HIGH_UNIT + self.get(f"{prefix}q:{variant}:{goal}{suffix}")


# a phase's capped sums stored as differences (storage/keys.py): the uncapped sum and the
# difference of each capped sum, and the capped sum each of those belongs to
_PARTS_OF = {"cs": ("s", "ds"), "cq": ("q", "dq"), "cqh": ("qh", "dqh")}
_CAPPED_OF = {part: capped for capped, parts in _PARTS_OF.items() for part in parts}


def capped_from_differences(stored: Mapping[str, int | None]) -> dict[str, int | None]:
    """The counters of a phase that stores its capped sums as differences from the uncapped
    ones (ds, dq, dqh), with the capped sums (cs, cq, cqh) that the rest of this module reads:
    each uncapped sum plus its difference, in every scope (day, segment value, cohort). A
    difference or sum that is not a number makes the capped sum none (None) either."""
    counters = dict(stored)
    for name in stored:
        kind, _, scope = name.partition(":")
        capped = _CAPPED_OF.get(kind)
        if capped is not None:
            uncapped, difference = _PARTS_OF[capped]
            total = stored.get(f"{uncapped}:{scope}", 0)
            change = stored.get(f"{difference}:{scope}", 0)
            both = None if total is None or change is None else total + change
            counters[f"{capped}:{scope}"] = both
    return counters


def _is_day(text: str) -> bool:
    """Whether a counter's day is a real YYYY-MM-DD date."""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == len("YYYY-MM-DD")


def _is_capped(counters: Counters, goal: str, variants: int) -> bool:
    """Whether a value goal's capped sums are complete: every value recorded since the cap.

    Phases recorded before the cap existed have only the uncapped sums; they keep their
    uncapped statistics rather than losing their values.
    """
    return all(
        f"cq:{i}:{goal}" in counters.raw
        or f"cqh:{i}:{goal}" in counters.raw
        or counters.squares(i, goal, "") == 0
        for i in range(variants)
    )


def _value_sums(
    counters: Counters, variant: int, goal: str, suffix: str, visitors: int, capped: bool = True
) -> stats.ValueSums:
    """Sums of a value goal in currency units (cents → euros), for the statistics."""
    prefix = "c" if capped else ""
    total = counters.get(f"{prefix}s:{variant}:{goal}{suffix}") / CENTS_PER_UNIT
    squares = counters.squares(variant, goal, suffix, capped) / CENTS_PER_UNIT**2
    buyers = min(visitors, counters.get(f"c:{variant}:{goal}{suffix}"))
    return stats.ValueSums(visitors, total, squares, buyers)


def inconsistency(
    goal: Goal, visitors: Sequence[int], counters: Counters, suffix: str = ""
) -> str | None:
    """Why a goal's counters (of one segment with ``suffix``) cannot be, or None if they can.

    Exact integer checks of what every honest history keeps: counts are not negative,
    converted visitors are at most the enrolled ones, and by Cauchy–Schwarz a sum's square
    is at most visitors × the sum of squares, for the uncapped sums and for the capped ones
    (cs and cqh·10^8 + cq) that the statistics use.
    """
    for name in counters.odd:
        parts = name.split(":")
        if parts[0] == "e" or (len(parts) > 2 and parts[2].partition("=")[0] == goal.key):
            return f"the stored counter {name} is not a number"
    for i, enrolled in enumerate(visitors):
        converted = counters.get(f"c:{i}:{goal.key}{suffix}")
        if enrolled < 0 or converted < 0:
            return f"variant {i} has negative counts"
        if converted > enrolled:
            return f"variant {i} has more converted visitors ({converted}) than visitors"
        if goal.kind == GoalKind.CONVERSION:
            continue
        total = counters.get(f"s:{i}:{goal.key}{suffix}")
        squares = counters.squares(i, goal.key, suffix)
        if squares < 0 or total * total > enrolled * squares:
            return f"variant {i} has a sum of squares that cannot belong to its sum"
        capped_total = counters.get(f"cs:{i}:{goal.key}{suffix}")
        capped_squares = counters.squares(i, goal.key, suffix, capped=True)
        if capped_squares < 0 or capped_total * capped_total > enrolled * capped_squares:
            return f"variant {i} has a capped sum of squares that cannot belong to its capped sum"
    return None


@dataclass(frozen=True, slots=True)
class Design:
    """The group sequential design of one experiment phase: its looks and their boundaries.

    ``days`` are the counted looks (ends of days, oldest first); ``planned`` the visitors per
    variant the power calculation asks for.
    """

    planned: int
    days: tuple[str, ...]
    plan: sequential.Plan


def _design(experiment: Experiment, counters: Counters, visitors: Sequence[int]) -> Design | None:
    """The group sequential design, or None when the experiment judges without one.

    Only the default analysis (``sequential``) uses a design, and only when the power
    calculation of the primary goal (the first goal without one) gives a planned size: the
    mSPRT judges the others. Each day is a look; its information fraction is the share of the
    planned size the slowest variant (with an allocation) had reached by its end, capped at 1.
    A stopped or archived experiment's last look is its final one.
    """
    if experiment.analysis is not Analysis.SEQUENTIAL or not experiment.goals:
        return None
    goal = next((goal for goal in experiment.goals if goal.is_primary), experiment.goals[0])
    planned = _visitors_needed(goal, counters, visitors, experiment)
    if planned is None:
        return None
    days = sorted(counters.days)
    active = [i for i, variant in enumerate(experiment.variants) if variant.allocation > 0]
    if not days or not active:
        return None
    running = [0] * len(visitors)
    progress = []
    for day in days:
        running = [total + counters.get(f"e:{i}:d:{day}") for i, total in enumerate(running)]
        progress.append(min(running[i] for i in active))
    is_final = experiment.status in (Status.STOPPED, Status.ARCHIVED)
    counted = sequential.information_fractions(progress, planned, is_final=is_final)
    if not counted:
        return None
    fractions = sequential.fractions_of(progress, planned, counted, is_final=is_final)
    counted = counted[len(counted) - len(fractions) :]
    plan = sequential.plan(fractions, stats.DEFAULT_ALPHA, len(visitors) - 1)
    return Design(planned, tuple(days[index] for index in counted), plan)


def _analyse(
    goal: Goal,
    visitors: Sequence[int],
    counters: Counters,
    suffix: str,
    experiment: Experiment,
    design: Design | None = None,
) -> stats.GoalResult:
    """One goal's statistics; the whole experiment's sequential p-values over the daily looks.

    With a ``design`` the whole experiment is judged by the group sequential test over the
    design's looks; segments (no daily counters) and experiments without one by the mSPRT.
    """
    indexes = range(len(visitors))
    # the end of each day is a look of the sequential test: its p-value shown is the running
    # minimum over them (segments have no daily counters and show this look's value)
    days = sorted(counters.days) if suffix == "" else []
    plan = None
    if design is not None and suffix == "":
        plan = design.plan
        counted = set(design.days)
        days_looks = _cumulative(
            goal, counters, len(visitors), days, _is_capped(counters, goal.key, len(visitors))
        )
        looks = [look for day, look in zip(days, days_looks, strict=True) if day in counted]
    capped = _is_capped(counters, goal.key, len(visitors))
    if plan is not None:
        if goal.kind == GoalKind.CONVERSION:
            return stats.analyse_conversion(
                [
                    stats.ConversionCounts(visitors[i], counters.get(f"c:{i}:{goal.key}"))
                    for i in indexes
                ],
                method=experiment.analysis,
                minimum_effect=experiment.minimum_effect,
                looks=[
                    [stats.ConversionCounts(p[0], min(p[1], p[0])) for p in look] for look in looks
                ],
                plan=plan,
            )
        return stats.analyse_value(
            [_value_sums(counters, i, goal.key, "", visitors[i], capped) for i in indexes],
            method=experiment.analysis,
            minimum_effect=experiment.minimum_effect,
            looks=[
                [
                    stats.ValueSums(
                        n, total / CENTS_PER_UNIT, squares / CENTS_PER_UNIT**2, min(b, n)
                    )
                    for n, b, total, squares in look
                ]
                for look in looks
            ],
            is_non_negative=goal.kind == GoalKind.REVENUE,
            plan=plan,
        )
    if goal.kind == GoalKind.CONVERSION:
        return stats.analyse_conversion(
            [
                stats.ConversionCounts(visitors[i], counters.get(f"c:{i}:{goal.key}{suffix}"))
                for i in indexes
            ],
            method=experiment.analysis,
            minimum_effect=experiment.minimum_effect,
            looks=[
                [stats.ConversionCounts(point[0], point[1]) for point in look]
                for look in _cumulative(goal, counters, len(visitors), days)
            ],
        )
    return stats.analyse_value(
        [_value_sums(counters, i, goal.key, suffix, visitors[i], capped) for i in indexes],
        method=experiment.analysis,
        minimum_effect=experiment.minimum_effect,
        looks=[
            [
                stats.ValueSums(
                    visitors_so_far,
                    total / CENTS_PER_UNIT,
                    squares / CENTS_PER_UNIT**2,
                    min(buyers, visitors_so_far),
                )
                for visitors_so_far, buyers, total, squares in look
            ]
            for look in _cumulative(goal, counters, len(visitors), days, capped)
        ],
        is_non_negative=goal.kind == GoalKind.REVENUE,
    )


def _cumulative(
    goal: Goal, counters: Counters, variant_count: int, days: Sequence[str], capped: bool = False
) -> list[list[Look]]:
    """Per day (in order) and variant: visitors, converted, sum and squares up to that day
    (computed once per goal and read: the lists are shared, never changed)."""
    key = (goal.key, variant_count, tuple(days), capped)
    known = counters.looks.get(key)
    if known is not None:
        return known
    prefix = "c" if capped else ""  # cs instead of s; squares() picks cqh/cq instead of qh/q
    running = [(0, 0, 0, 0)] * variant_count
    looks = []
    for day in days:
        running = [
            (
                visitors + counters.get(f"e:{i}:d:{day}"),
                converted + counters.get(f"c:{i}:{goal.key}:d:{day}"),
                total + counters.get(f"{prefix}s:{i}:{goal.key}:d:{day}"),
                squares + counters.squares(i, goal.key, f":d:{day}", capped),
            )
            for i, (visitors, converted, total, squares) in enumerate(running)
        ]
        looks.append(running)
    counters.looks[key] = looks
    return looks


def _format_amount(value: float, currency: str, signed: bool = True) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    return f"{value:+.2f} {symbol}" if signed else f"{value:.2f} {symbol}"


def chance_text(chance: float) -> str:
    """A probability in whole percent that never reads as certain: "< 1%" and "> 99%" at the ends.

    0.9967 rounds to "100%", which claims a certainty no finite sample gives.
    """
    if chance < SURE_BELOW:
        return "< 1%"
    if chance > SURE_ABOVE:
        return "> 99%"
    return f"{chance:.0%}"


def is_winner(variant: stats.VariantResult) -> bool:
    """Whether a comparison is a verdict: judged, significant after the adjustment for the number
    of comparisons, and its interval on one side of zero."""
    interval = variant.uplift_interval
    return (
        variant.status == stats.JUDGED
        and variant.is_significant
        and interval is not None
        and (interval.lower > 0.0 or interval.upper < 0.0)
    )


def best_challenger(result: stats.GoalResult) -> stats.VariantResult | None:
    """The challenger a sentence or a list row speaks of; None when no comparison is judged.

    The clearest winner (``is_winner``, the largest gain; else the largest loss), otherwise the
    judged challenger with the strongest adjusted evidence. Never the highest unadjusted chance
    to beat: with ten variants one looks 95 % likely better by luck in a quarter of A/A runs.
    """
    judged = [v for v in result.variants[1:] if v.uplift is not None and v.status == stats.JUDGED]
    if not judged:
        return None
    winners = [v for v in judged if is_winner(v)]
    better = [v for v in winners if (v.uplift or 0.0) > 0.0]
    if better:
        return max(better, key=lambda v: v.uplift or 0.0)
    if winners:
        return min(winners, key=lambda v: v.uplift or 0.0)
    return min(judged, key=lambda v: (v.adjusted_p_value is None, v.adjusted_p_value or 1.0))


def summarise(
    goal: Goal, result: stats.GoalResult, variant_keys: Sequence[str], currency: str
) -> str:
    """One plain sentence about a goal that claims no more than the adjusted evidence, e.g.
    "green earns +0.42 € margin per visitor [+0.10, +0.75], clearly better than control
    (adjusted p 0.003, chance to beat control > 99%)".

    A variant is called better or worse only when ``is_winner``; otherwise the sentence says
    that there is no clear difference yet, or not enough data for any judgement.
    """
    best = best_challenger(result)
    if best is None:
        candidates = [v for v in result.variants[1:] if v.uplift is not None]
        reason = next((v.reason for v in candidates if v.reason), None)
        return f"not enough data yet for {goal.key}" + (f": {reason}" if reason else "")
    if not is_winner(best):
        return (
            f"no clear difference yet for {goal.key}: closest is "
            + _effect_text(goal, best, variant_keys, currency)
            + " (the interval includes 0)"
        )
    is_better = (best.uplift or 0.0) > 0.0
    verdict = "clearly better than control" if is_better else "clearly worse than control"
    evidence = (
        ""
        if best.adjusted_p_value is None
        else f"adjusted p {best.adjusted_p_value:.3f}"
        if best.adjusted_p_value >= 0.001
        else "adjusted p < 0.001"
    )
    if best.chance_to_beat_control is not None:
        chance = f"chance to beat control {chance_text(best.chance_to_beat_control)}"
        evidence = f"{evidence}, {chance}" if evidence else chance
    return f"{_effect_text(goal, best, variant_keys, currency)}, {verdict} ({evidence})"


def _effect_text(
    goal: Goal, variant: stats.VariantResult, variant_keys: Sequence[str], currency: str
) -> str:
    """ "green converts +0.52 percentage points purchase rate [+0.10, +0.95]" and the like."""
    name = variant_keys[variant.variant]
    uplift = variant.uplift or 0.0
    interval = variant.uplift_interval
    if goal.kind == GoalKind.CONVERSION:
        bounds = (
            ""
            if interval is None
            else f" [{interval.lower * 100:+.2f}, {interval.upper * 100:+.2f}]"
        )
        return f"{name} converts {uplift * 100:+.2f} percentage points {goal.key} rate{bounds}"
    what = "margin" if goal.kind == GoalKind.MARGIN else "revenue"
    bounds = "" if interval is None else f" [{interval.lower:+.2f}, {interval.upper:+.2f}]"
    return f"{name} earns {_format_amount(uplift, currency)} {what} per visitor{bounds}"


def _forecast(
    goal: Goal,
    result: stats.GoalResult,
    counters: Counters,
    visitors: Sequence[int],
    experiment: Experiment,
    today: dt.date,
) -> tuple[int | None, dt.date | None, int]:
    """Visitors per variant still needed for the minimum effect, when they will be there, and
    over how many days the daily traffic was averaged.

    The traffic is the average over the days the experiment has actually been enrolling, up to
    ``DAILY_TRAFFIC_DAYS``, and at least one day: an experiment one day old has one day of
    traffic, not a seventh of a week's.
    """
    needed = _visitors_needed(goal, counters, visitors, experiment)
    past = [day for day in counters.enrolment_days if day <= today.isoformat()]
    first = dt.date.fromisoformat(min(past)) if past else today
    days = max(1, min(DAILY_TRAFFIC_DAYS, (today - first).days + 1))
    recent = [(today - dt.timedelta(days=offset)).isoformat() for offset in range(days)]
    daily = [
        sum(counters.get(f"e:{i}:d:{day}") for day in recent) / days for i in range(len(visitors))
    ]
    return needed, stats.estimated_end_date(needed, visitors, daily, today), days


def _visitors_needed(
    goal: Goal, counters: Counters, visitors: Sequence[int], experiment: Experiment
) -> int | None:
    """Visitors per variant the power calculation asks for, from the control's figures so far.

    When CUPED judges the goal (enough visitors sent a covariate), the comparison's variance
    is CUPED's, so the plan asks for that share of the visitors: the same power at the planned
    end with fewer visitors (docs/statistics.md, "Planning with a covariate").
    """
    if not visitors or visitors[0] == 0:
        return None
    if goal.kind == GoalKind.CONVERSION:
        rate = min(1.0, counters.get(f"c:0:{goal.key}") / visitors[0])
        needed = stats.visitors_needed_for_conversion(
            rate, minimum_effect=experiment.minimum_effect
        )
    else:
        capped = _is_capped(counters, goal.key, len(visitors))
        sums = _value_sums(counters, 0, goal.key, "", visitors[0], capped)
        try:
            deviation = stats.standard_deviation(sums)
        except ValueError:
            return None  # odd stored sums: no forecast rather than no results
        if deviation is None:
            return None
        needed = stats.visitors_needed_for_value(
            sums.value_sum / sums.visitors, deviation, minimum_effect=experiment.minimum_effect
        )
    ratio = _covariate_variance_ratio(goal, counters, visitors)
    if needed is None or ratio is None:
        return needed
    return max(1, math.ceil(needed * ratio))


def _covariate_sums_now(
    goal: Goal, counters: Counters, visitors: Sequence[int]
) -> tuple[list[list[int]], list[tuple[int, float, float, float, float, float]]] | None:
    """Each variant's exact CUPED counters (``_covariate_parts``) and its row for the
    statistics (``_covariate_row``), or None when CUPED does not judge the goal: a value goal
    of a phase from before the cap (no CUPED sums of capped totals), or too few visitors with
    a covariate."""
    count = len(visitors)
    is_rate = goal.kind == GoalKind.CONVERSION
    capped = not is_rate and _is_capped(counters, goal.key, count)
    if not is_rate and not capped:
        return None
    parts = [_covariate_parts(counters, goal, i, "") for i in range(count)]
    if min(part[0] for part in parts) < stats.MINIMUM_COVARIATE_VISITORS:
        return None

    def y(variant: int) -> tuple[int, int, int]:
        if is_rate:
            converted = min(visitors[variant], counters.get(f"c:{variant}:{goal.key}"))
            return visitors[variant], converted, converted
        return (
            visitors[variant],
            counters.get(f"cs:{variant}:{goal.key}"),
            counters.squares(variant, goal.key, "", capped=True),
        )

    return parts, [_covariate_row(goal, parts[i], y(i)) for i in range(count)]


def _covariate_variance_ratio(
    goal: Goal, counters: Counters, visitors: Sequence[int]
) -> float | None:
    """CUPED's variance over the unadjusted one for the goal, the largest over the variants
    (the plan must serve the least helped comparison), or None when CUPED does not judge it."""
    found = _covariate_sums_now(goal, counters, visitors)
    if found is None:
        return None
    try:
        comparisons = stats.adjust_for_covariate([stats.CovariateSums(*row) for row in found[1]])
    except ValueError:
        return None
    ratios = [item.variance_ratio for item in comparisons if item is not None]
    if not ratios or any(ratio is None for ratio in ratios) or len(ratios) < len(comparisons):
        return None
    return max(ratio for ratio in ratios if ratio is not None)


def _stratified(
    goal: Goal,
    result: stats.GoalResult,
    counters: Counters,
    visitors: Sequence[int],
    experiment: Experiment,
) -> tuple[StratifiedReport, ...]:
    """The goal's uplifts post-stratified on each segment attribute (none without strata).

    The interval uses the goal's own critical value: the group sequential boundary, else the
    fixed test's normal quantile (for an always-valid experiment it is a fixed-horizon interval).
    """
    critical = result.boundary
    if critical is None:
        critical = stats.normal_critical(result.alpha)
    is_rate = goal.kind == GoalKind.CONVERSION
    capped = not is_rate and _is_capped(counters, goal.key, len(visitors))

    def sums(variant: int, suffix: str, count: int) -> stats.ValueSums:
        if is_rate:
            converted = min(count, counters.get(f"c:{variant}:{goal.key}{suffix}"))
            return stats.ValueSums(count, float(converted), float(converted))
        return _value_sums(counters, variant, goal.key, suffix, count, capped)

    reports = []
    totals = [sums(i, "", visitors[i]) for i in range(len(visitors))]
    for attribute in experiment.segments:
        groups = {
            value: [sums(i, suffix, counters.get(f"e:{i}{suffix}")) for i in range(len(visitors))]
            for value in sorted(counters.segment_values.get(attribute, ()))
            for suffix in (f":{attribute}={value}",)
        }
        try:
            strata = stats.strata_of(groups, totals)
            if strata is None:
                continue
            adjusted = stats.post_stratify(strata, critical)
        except ValueError:
            continue  # odd stored sums: the plain result stands alone
        reports.append(StratifiedReport(attribute, len(strata), tuple(adjusted)))
    return tuple(reports)


def _covariate_parts(counters: Counters, goal: Goal, variant: int, suffix: str) -> list[int]:
    """One variant's exact CUPED counters with ``suffix`` ("" for the whole phase, ":d:<day>"
    for a day): visitors with a covariate, Σx, Σx² (hundredths) and Σxy (hundredths × y)."""
    return [
        counters.get(f"xn:{variant}{suffix}"),
        counters.get(f"xs:{variant}{suffix}"),
        counters.two_part(f"xqh:{variant}{suffix}", f"xq:{variant}{suffix}"),
        counters.two_part(f"xyh:{variant}:{goal.key}{suffix}", f"xy:{variant}:{goal.key}{suffix}"),
    ]


def _running_covariates(
    counters: Counters, variant_count: int, days: Sequence[str]
) -> list[list[tuple[int, int, int]]]:
    """Per day and variant: visitors with a covariate, Σx and Σx² up to that day (hundredths).

    They belong to the variants, not the goals: computed once per read (cached in
    ``counters``) and shared by every goal.
    """
    key = (variant_count, tuple(days))
    known = counters.covariates.get(key)
    if known is not None:
        return known
    running = [(0, 0, 0)] * variant_count
    looks = []
    for day in days:
        running = [
            (
                visitors + counters.get(f"xn:{i}:d:{day}"),
                total + counters.get(f"xs:{i}:d:{day}"),
                squares + counters.two_part(f"xqh:{i}:d:{day}", f"xq:{i}:d:{day}"),
            )
            for i, (visitors, total, squares) in enumerate(running)
        ]
        looks.append(running)
    counters.covariates[key] = looks
    return looks


def _covariate_row(
    goal: Goal, parts: Sequence[int], y: tuple[int, int, int]
) -> tuple[int, float, float, float, float, float]:
    """n, Σy, Σy², Σx, Σx², Σxy in the statistics' units (currency, covariate units) from exact
    counters: ``parts`` as ``_covariate_parts`` gives them, ``y`` (visitors, Σy, Σy²) with y in
    cents for a value goal, converted (0/1) for a conversion goal."""
    unit = 1 if goal.kind == GoalKind.CONVERSION else CENTS_PER_UNIT
    visitors, total, squares = y
    return (
        visitors,
        total / unit,
        squares / unit**2,
        parts[1] / COVARIATE_UNIT,
        parts[2] / COVARIATE_UNIT**2,
        parts[3] / (COVARIATE_UNIT * unit),
    )


def _covariate(
    goal: Goal,
    result: stats.GoalResult,
    counters: Counters,
    visitors: Sequence[int],
    design: Design | None,
) -> CovariateReport | None:
    """The goal's CUPED report, or None without enough visitors carrying a covariate.

    Under the group sequential design every counted look's z statistic is CUPED's; a look
    with too few covariates (or too few visitors) does not count, which only lowers the
    chance to cross a boundary. Value goals use the capped totals, as the unadjusted result.
    """
    count = len(visitors)
    is_rate = goal.kind == GoalKind.CONVERSION
    capped = not is_rate and _is_capped(counters, goal.key, count)
    found = _covariate_sums_now(goal, counters, visitors)
    if found is None:
        return None
    parts, rows = found
    current = [stats.CovariateSums(*row) for row in rows]
    with_covariate = tuple(part[0] for part in parts)
    plan = None
    statistics: list[list[float | None]] = []
    if design is not None and result.test == stats.GROUP_SEQUENTIAL:
        plan = design.plan
        days = sorted(counters.days)
        looks = _cumulative(goal, counters, count, days, capped)
        counted = set(design.days)
        shared = _running_covariates(counters, count, days)
        crosses = [0] * count  # Σxy up to each day
        sums, counts = [], []
        for day, look, covariates in zip(days, looks, shared, strict=True):
            crosses = [
                cross
                + counters.two_part(f"xyh:{i}:{goal.key}:d:{day}", f"xy:{i}:{goal.key}:d:{day}")
                for i, cross in enumerate(crosses)
            ]
            if day in counted:
                sums.append(
                    [
                        _covariate_row(
                            goal,
                            (*covariates[i], crosses[i]),
                            (look[i][0], look[i][1], look[i][1])
                            if is_rate
                            else (look[i][0], look[i][2], look[i][3]),
                        )
                        for i in range(count)
                    ]
                )
                counts.append([item[0] for item in covariates])
        if len(plan.fractions) == len(sums) + 1:  # the plan's last look is this one
            sums.append(list(rows))
            counts.append(list(with_covariate))
        statistics = stats.covariate_statistics(sums, counts)
    adjusted = stats.judge_with_covariate(result, current, plan=plan, statistics=statistics)
    return CovariateReport(with_covariate, adjusted)


def _daily(goal: Goal, counters: Counters, variant_count: int) -> DailySeries:
    """Cumulative visitors, conversions and estimate (with a band) per variant and day.

    Every day with any counter is a point. A day whose cumulative figures cannot happen (an
    order dated before its buyer's enrolment day) keeps its counts but shows no estimate band.
    """
    points = []
    is_rate = goal.kind == GoalKind.CONVERSION
    days = sorted(counters.days)
    capped = not is_rate and _is_capped(counters, goal.key, variant_count)
    looks = _cumulative(goal, counters, variant_count, days, capped)
    for day, look in zip(days, looks, strict=True):
        variants = []
        for visitors, converted, total, squares in look:
            data: stats.ConversionCounts | stats.ValueSums
            if is_rate:
                data = stats.ConversionCounts(visitors, min(converted, visitors))
            else:
                data = stats.ValueSums(
                    visitors, total / CENTS_PER_UNIT, squares / CENTS_PER_UNIT**2
                )
            estimate = (
                (converted if is_rate else total / CENTS_PER_UNIT) / visitors if visitors else None
            )
            if is_rate and estimate is not None:
                estimate = min(1.0, estimate)
            try:
                interval = stats.estimate_interval(
                    data, is_non_negative=goal.kind == GoalKind.REVENUE
                )
            except ValueError:
                interval = None
            variants.append(DailyVariant(visitors, converted, estimate, interval))
        points.append(DailyPoint(dt.date.fromisoformat(day), tuple(variants)))
    return DailySeries(goal.key, tuple(points))


def _no_data(goal: Goal, variant_count: int, experiment: Experiment) -> stats.GoalResult:
    """The result of a goal without any data: what an unavailable goal shows."""
    return _analyse(goal, [0] * variant_count, Counters({}), "", experiment)


# kept per cohort (keys.py); the customer metrics' sums too
COHORT_FIGURES = (
    *("c", "n", "s", "q", "qh", "cs", "cq", "cqh"),
    *("rp", "nq", "rf", "rfq", "rfqh", "rt", "rth"),
)
DAILY_FIGURES = frozenset({"c", "s", "q", "qh", "cs", "cq", "cqh"})  # those also kept per day
EPOCH = dt.date(1970, 1, 1)  # cohorts are unix day numbers


def matured_counters(
    goal: Goal, counters: Counters, variant_count: int, now: float
) -> tuple[Counters, dt.date | None]:
    """The counters of a windowed goal's matured sample, and its last enrolment day.

    A cohort (the visitors enrolled on one UTC day) has matured when the window and return
    period of its last visitor have passed, at the end of the day ``settle_days`` after it.
    Its counters never change afterwards (the scripts refuse what comes later), so the
    matured sample as of any past day is exact too: each cohort is counted on the day it
    matured, as a day's enrolments and events, which gives the sequential test its looks.
    """
    derived: dict[str, int | None] = dict.fromkeys(counters.odd)
    closed = []
    for day in sorted(counters.enrolment_days):
        enrolled = dt.date.fromisoformat(day)
        matured = enrolled + dt.timedelta(days=goal.settle_days)
        end = dt.datetime.combine(matured + dt.timedelta(days=1), dt.time(), dt.UTC)
        if end.timestamp() > now:
            break
        closed.append(enrolled)
        cohort, look = (enrolled - EPOCH).days, matured.isoformat()
        for i in range(variant_count):
            size = counters.get(f"e:{i}:d:{day}")
            for name in (f"e:{i}", f"e:{i}:d:{look}"):
                derived[name] = (derived.get(name) or 0) + size
            for figure in COHORT_FIGURES:
                value = counters.get(f"{figure}:{i}:{goal.key}:k:{cohort}")
                names = [f"{figure}:{i}:{goal.key}"]
                if figure in DAILY_FIGURES:
                    names.append(f"{figure}:{i}:{goal.key}:d:{look}")
                for name in names:
                    derived[name] = (derived.get(name) or 0) + value
    return Counters(derived), (closed[-1] if closed else None)


def _goal_report(
    goal: Goal,
    visitors: Sequence[int],
    counters: Counters,
    experiment: Experiment,
    today: dt.date,
    currency: str,
    value_cap: float | None,
    design: Design | None,
    now: float,
) -> GoalReport:
    """One goal's report; a windowed goal's result on its matured sample (issue 21).

    A windowed goal is judged on the visitors whose window and return period have closed; the
    figures on everybody stand beside them as provisional (not judged by the group sequential
    design, which they would spend looks of). Its end date adds the time until the visitors
    needed have settled; its segments and daily series are provisional.
    """
    plain = _judged_report(
        goal,
        visitors,
        counters,
        experiment,
        today,
        currency,
        value_cap,
        None if goal.is_windowed else design,
    )
    if not goal.is_windowed:
        return plain
    matured, through = matured_counters(goal, counters, len(visitors), now)
    matured_visitors = [matured.get(f"e:{i}") for i in range(len(visitors))]
    primary = next((g for g in experiment.goals if g.is_primary), experiment.goals[0])
    try:
        matured_design = (
            _design(experiment, matured, matured_visitors) if primary.key == goal.key else None
        )
    except (ValueError, ArithmeticError):
        matured_design = None
    report = _judged_report(
        goal, matured_visitors, matured, experiment, today, currency, value_cap, matured_design
    )
    end = plain.estimated_end
    return dataclasses.replace(
        report,
        visitors_needed=plain.visitors_needed,
        estimated_end=None if end is None else end + dt.timedelta(days=goal.settle_days),
        traffic_days=plain.traffic_days,
        stratified=(),
        window=WindowReport(
            goal.window_days or 0, goal.return_period_days, through, plain.result, plain.totals
        ),
    )


def _customer(
    goal: Goal, visitors: Sequence[int], counters: Counters, experiment: Experiment
) -> CustomerReport | None:
    """A goal's customer metrics (see CustomerReport); None for margin goals.

    Repeat buyers and events per visitor are judged like the goal (the experiment's method,
    the mSPRT where it would be sequential: it has no daily looks of its own); the return rate
    by the delta method's fixed-horizon test, meant for the matured sample.
    """
    indexes = range(len(visitors))
    method, minimum_effect = experiment.analysis, experiment.minimum_effect
    if goal.kind == GoalKind.CONVERSION:
        repeat = stats.analyse_conversion(
            [
                stats.ConversionCounts(
                    visitors[i], min(visitors[i], counters.get(f"rp:{i}:{goal.key}"))
                )
                for i in indexes
            ],
            method=method,
            minimum_effect=minimum_effect,
        )
        per_visitor = stats.analyse_value(
            [
                stats.ValueSums(
                    visitors[i],
                    float(counters.get(f"n:{i}:{goal.key}")),
                    float(counters.get(f"nq:{i}:{goal.key}")),
                    min(visitors[i], counters.get(f"c:{i}:{goal.key}")),
                )
                for i in indexes
            ],
            is_non_negative=True,
            method=method,
            minimum_effect=minimum_effect,
        )
        return CustomerReport(repeat=repeat, per_visitor=per_visitor)
    if goal.kind != GoalKind.REVENUE:
        return None
    sums = []
    for i in indexes:
        # per visitor: refunded r, total T = net − r; net n = T + r (keys.py), in currency units
        refunded = counters.get(f"rf:{i}:{goal.key}") / CENTS_PER_UNIT
        total = counters.get(f"s:{i}:{goal.key}") / CENTS_PER_UNIT
        unit = CENTS_PER_UNIT**2
        refunded_squares = (
            counters.get(f"rfqh:{i}:{goal.key}") * SQUARES_HIGH_UNIT
            + counters.get(f"rfq:{i}:{goal.key}")
        ) / unit
        cross = (
            counters.get(f"rth:{i}:{goal.key}") * SQUARES_HIGH_UNIT
            + counters.get(f"rt:{i}:{goal.key}")
        ) / unit
        total_squares = counters.squares(i, goal.key, "") / unit
        sums.append(
            stats.RatioSums(
                visitors[i],
                refunded,
                total + refunded,
                refunded_squares,
                total_squares + 2 * cross + refunded_squares,
                cross + refunded_squares,
            )
        )
    return CustomerReport(return_rate=tuple(stats.compare_ratios(sums)))


def _customer_or_none(
    goal: Goal, visitors: Sequence[int], counters: Counters, experiment: Experiment
) -> CustomerReport | None:
    """The customer metrics, or None when their counters cannot be analysed (the goal's own
    result stands)."""
    try:
        return _customer(goal, visitors, counters, experiment)
    except (ValueError, ArithmeticError):
        return None


def _judged_report(
    goal: Goal,
    visitors: Sequence[int],
    counters: Counters,
    experiment: Experiment,
    today: dt.date,
    currency: str,
    value_cap: float | None,
    design: Design | None,
) -> GoalReport:
    """One goal's report, or an unavailable one (with the reason) if its counters are odd.

    ``value_cap`` is shown on a value goal whose statistics use the capped sums.
    """
    keys = [variant.key for variant in experiment.variants]
    is_capped = goal.kind != GoalKind.CONVERSION and _is_capped(counters, goal.key, len(keys))
    cap = value_cap if is_capped else None
    totals = tuple(
        VariantTotals(
            key=keys[i],
            visitors=visitors[i],
            converted=counters.get(f"c:{i}:{goal.key}"),
            events=counters.get(f"n:{i}:{goal.key}"),
            value_sum=counters.get(f"s:{i}:{goal.key}") / CENTS_PER_UNIT,
        )
        for i in range(len(keys))
    )
    reason = inconsistency(goal, visitors, counters)
    if reason is None:
        try:
            result = _analyse(goal, visitors, counters, "", experiment, design)
            needed, end, traffic_days = _forecast(
                goal, result, counters, visitors, experiment, today
            )
            covariate = _covariate(goal, result, counters, visitors, design)
            # CUPED decides when it reports (docs/statistics.md, "CUPED")
            decision = (
                result
                if covariate is None
                else stats.decided_by_covariate(result, covariate.variants)
            )
            summary = summarise(goal, decision, keys, currency)
            return GoalReport(
                goal.key,
                goal.kind,
                goal.is_primary,
                result,
                totals,
                needed,
                end,
                summary,
                traffic_days,
                cap,
                stratified=_stratified(goal, result, counters, visitors, experiment),
                customer=_customer_or_none(goal, visitors, counters, experiment),
                covariate=covariate,
            )
        except (ValueError, ArithmeticError) as error:  # what the checks above missed
            reason = f"the counters cannot be analysed ({error})"
    log.warning("results of %s/%s unavailable: %s", experiment.key, goal.key, reason)
    return GoalReport(
        goal.key,
        goal.kind,
        goal.is_primary,
        _no_data(goal, len(keys), experiment),
        totals,
        None,
        None,
        f"results of {goal.key} unavailable: {reason}",
        0,
        cap,
        reason,
    )


def _segment_report(
    attribute: str, goal: Goal, counters: Counters, experiment: Experiment
) -> SegmentReport | None:
    """One goal by the values of one attribute; None when some value's counters are odd."""
    indexes = range(len(experiment.variants))
    values = sorted(counters.segment_values.get(attribute, ()))
    suffix_of = {value: f":{attribute}={value}" for value in values}
    segment_visitors = {
        value: [counters.get(f"e:{i}{suffix_of[value]}") for i in indexes] for value in values
    }
    if any(
        inconsistency(goal, segment_visitors[value], counters, suffix_of[value]) for value in values
    ):
        return None
    capped = _is_capped(counters, goal.key, len(indexes))
    try:
        if goal.kind == GoalKind.CONVERSION:
            results = stats.analyse_conversion_segments(
                {
                    value: [
                        stats.ConversionCounts(
                            segment_visitors[value][i],
                            counters.get(f"c:{i}:{goal.key}{suffix_of[value]}"),
                        )
                        for i in indexes
                    ]
                    for value in values
                },
                method=experiment.analysis,
                minimum_effect=experiment.minimum_effect,
            )
        else:
            results = stats.analyse_value_segments(
                {
                    value: [
                        _value_sums(
                            counters,
                            i,
                            goal.key,
                            suffix_of[value],
                            segment_visitors[value][i],
                            capped,
                        )
                        for i in indexes
                    ]
                    for value in values
                },
                method=experiment.analysis,
                minimum_effect=experiment.minimum_effect,
                is_non_negative=goal.kind == GoalKind.REVENUE,
            )
    except (ValueError, ArithmeticError):
        return None
    return SegmentReport(attribute, goal.key, results)


def _daily_or_none(goal: Goal, counters: Counters, variant_count: int) -> DailySeries:
    """The goal's daily series, or an empty one when a day's counters cannot be analysed."""
    try:
        return _daily(goal, counters, variant_count)
    except (ValueError, ArithmeticError):
        return DailySeries(goal.key, ())


def _sample_ratio(visitors: Sequence[int], experiment: Experiment) -> stats.SampleRatioMismatch:
    allocations = [variant.allocation for variant in experiment.variants]
    try:
        return stats.sample_ratio_mismatch(visitors, allocations)
    except ValueError:  # negative enrolment counters: every goal reports them
        return stats.SampleRatioMismatch(None, 1.0, False)


def compute_results(
    experiment: Experiment,
    stored: Mapping[str, int | None],
    now: float,
    currency: str,
    value_cap: float | None = None,
) -> ExperimentResults:
    """All results of an experiment's current phase from its counters (pure).

    ``value_cap`` is the per-visitor cap the capped sums were recorded with, for the reader.
    """
    if experiment.stores_capped_differences(experiment.phase):
        stored = capped_from_differences(stored)
    counters = Counters(stored)
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    keys = [variant.key for variant in experiment.variants]
    visitors = [counters.get(f"e:{i}") for i in range(len(keys))]
    try:
        design = _design(experiment, counters, visitors)
    except (ValueError, ArithmeticError):  # odd counters: each goal reports them; mSPRT judges
        design = None
    goals = [
        _goal_report(goal, visitors, counters, experiment, today, currency, value_cap, design, now)
        for goal in experiment.goals
    ]
    available = [
        goal for goal, report in zip(experiment.goals, goals, strict=True) if not report.unavailable
    ]
    segments = [
        report
        for attribute in experiment.segments
        for goal in available
        if (report := _segment_report(attribute, goal, counters, experiment)) is not None
    ]
    primary = next((report for report in goals if report.is_primary), None)
    watched = _guardrail_checks(experiment, goals, visitors, counters)
    return ExperimentResults(
        experiment=experiment.key,
        name=experiment.name,
        status=experiment.status,
        phase=experiment.phase,
        analysis=experiment.analysis.value,
        generated_at=now,
        variants=tuple(
            VariantSummary(variant.key, variant.allocation, visitors[i])
            for i, variant in enumerate(experiment.variants)
        ),
        sample_ratio=_sample_ratio(visitors, experiment),
        goals=tuple(goals),
        segments=tuple(segments),
        daily=tuple(
            _daily_or_none(goal, counters, len(keys))
            if goal in available
            else DailySeries(goal.key, ())
            for goal in experiment.goals
        ),
        summary=primary.summary if primary else "no goal defined",
        guardrails=watched,
    )


def _guardrail_checks(
    experiment: Experiment,
    reports: Sequence[GoalReport],
    visitors: Sequence[int],
    counters: Counters,
) -> tuple[guardrails.GuardrailCheck, ...]:
    """Every guardrail goal judged for harm by the always-valid test (server.core.guardrails).

    The evaluator looks every minute, so a guardrail is judged by the mSPRT whatever the
    experiment's analysis: the group sequential and fixed tests are valid only at their
    planned looks. A goal whose counters are odd is left out (its report says why).
    """
    always_valid = dataclasses.replace(experiment, analysis=Analysis.ALWAYS_VALID)
    watched = []
    for goal, report in zip(experiment.goals, reports, strict=True):
        if not goal.is_guardrail or report.unavailable:
            continue
        result = report.result
        if result.test != stats.ALWAYS_VALID:
            try:
                result = _analyse(goal, visitors, counters, "", always_valid)
            except (ValueError, ArithmeticError):
                continue
        watched.append((goal, result))
    return guardrails.judge(watched, [variant.key for variant in experiment.variants])


class ResultsReader:
    """Reads and analyses results, cached per experiment for a few seconds in this worker."""

    def __init__(
        self, store: Store, cache_ttl: float, currency: str, value_cap: float | None = None
    ) -> None:
        self._store = store
        self._ttl = cache_ttl
        self._currency = currency
        self._value_cap = value_cap
        self._cache: dict[tuple[str, int, int], tuple[float, ExperimentResults]] = {}
        self._lock = threading.Lock()

    def results(self, experiment: Experiment, now: float) -> ExperimentResults:
        """Results of the experiment's current phase, at most ``cache_ttl`` seconds old."""
        key = (experiment.key, experiment.phase, experiment.revision)
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        raw = self._store.read_counts(experiment.key, experiment.phase, experiment.shards)
        fresh = compute_results(experiment, raw, now, self._currency, self._value_cap)
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self._ttl}
            self._cache[key] = (now, fresh)
        return fresh
