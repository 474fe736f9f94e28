"""Use case of reading results: counters from Redis → statistics per goal, variant, segment, day.

Everything a shop owner reads comes from the aggregate counters of the experiment's current
phase (see ``server.storage.keys``): enrolled visitors per variant, and per goal the converted
visitors, events, sums and sums of squares of the visitors' totals in cents.

Stored counters can be odd (written by hand, by a bug, or by an older version that overflowed):
a goal whose counters cannot be is reported as unavailable with the reason, and the rest of
the experiment is analysed as usual. Reading results never fails because of stored data.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from server.core import stats
from server.core.models import Experiment, Goal, GoalKind, Status
from server.core.money import CENTS_PER_UNIT
from server.storage.store import Store

log = logging.getLogger(__name__)

DAILY_TRAFFIC_DAYS = 7  # days of enrolments averaged for the end-date forecast: one week's rhythm
SQUARES_HIGH_UNIT = 10**8  # a sum of squares is qh·10^8 + q (storage/keys.py)
CURRENCY_SYMBOLS = {"EUR": "€", "CHF": "CHF", "GBP": "£", "USD": "$"}  # for the summary sentence


@dataclass(frozen=True, slots=True)
class VariantTotals:
    """Raw figures of one variant for one goal (values in the shop's currency)."""

    key: str
    visitors: int
    converted: int
    events: int
    value_sum: float


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
    unavailable: str | None = None  # why the counters cannot be analysed; None when they can


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


class Counters:
    """The counters of one phase, parsed once into lookup tables; ``odd`` names the fields that
    did not hold an integer (they read as 0 and make what they belong to unavailable)."""

    def __init__(self, stored: Mapping[str, int | None]) -> None:
        self.raw = {name: value for name, value in stored.items() if value is not None}
        self.odd = {name for name, value in stored.items() if value is None}
        self.days: set[str] = set()
        self.segment_values: dict[str, set[str]] = defaultdict(set)
        for name in stored:
            kind, _, rest = name.partition(":")
            if kind != "e":
                continue
            _, _, detail = rest.partition(":")
            if detail.startswith("d:"):
                self.days.add(detail[2:])
            elif "=" in detail:
                attribute, _, value = detail.partition("=")
                self.segment_values[attribute].add(value)

    def get(self, field: str) -> int:
        """One counter, 0 when it was never incremented."""
        return self.raw.get(field, 0)

    def squares(self, variant: int, goal: str, suffix: str) -> int:
        """The exact sum of squares of the visitors' totals (cents²) from its two parts."""
        high = self.get(f"qh:{variant}:{goal}{suffix}")
        return high * SQUARES_HIGH_UNIT + self.get(f"q:{variant}:{goal}{suffix}")


def _value_sums(
    counters: Counters, variant: int, goal: str, suffix: str, visitors: int
) -> stats.ValueSums:
    """Sums of a value goal in currency units (cents → euros), for the statistics."""
    total = counters.get(f"s:{variant}:{goal}{suffix}") / CENTS_PER_UNIT
    squares = counters.squares(variant, goal, suffix) / CENTS_PER_UNIT**2
    return stats.ValueSums(visitors, total, squares)


def inconsistency(
    goal: Goal, visitors: Sequence[int], counters: Counters, suffix: str = ""
) -> str | None:
    """Why a goal's counters (of one segment with ``suffix``) cannot be, or None if they can.

    Exact integer checks of what every honest history keeps: counts are not negative,
    converted visitors are at most the enrolled ones, and by Cauchy–Schwarz a sum's square
    is at most visitors × the sum of squares.
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
    return None


def _analyse(
    goal: Goal,
    visitors: Sequence[int],
    counters: Counters,
    suffix: str,
    experiment: Experiment,
) -> stats.GoalResult:
    indexes = range(len(visitors))
    if goal.kind == GoalKind.CONVERSION:
        return stats.analyse_conversion(
            [
                stats.ConversionCounts(visitors[i], counters.get(f"c:{i}:{goal.key}{suffix}"))
                for i in indexes
            ],
            method=experiment.analysis,
            minimum_effect=experiment.minimum_effect,
        )
    return stats.analyse_value(
        [_value_sums(counters, i, goal.key, suffix, visitors[i]) for i in indexes],
        method=experiment.analysis,
        minimum_effect=experiment.minimum_effect,
    )


def _format_amount(value: float, currency: str, signed: bool = True) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    return f"{value:+.2f} {symbol}" if signed else f"{value:.2f} {symbol}"


def summarise(
    goal: Goal, result: stats.GoalResult, variant_keys: Sequence[str], currency: str
) -> str:
    """One plain sentence about the best variant of a goal, e.g. "green earns +0.42 € margin
    per visitor [+0.10, +0.75], chance to beat control 99%"."""
    candidates = [v for v in result.variants[1:] if v.uplift is not None]
    if not candidates:
        return f"not enough data yet for {goal.key}"
    best = max(candidates, key=lambda v: v.chance_to_beat_control or 0.0)
    name = variant_keys[best.variant]
    chance = (
        ""
        if best.chance_to_beat_control is None
        else f", chance to beat control {best.chance_to_beat_control:.0%}"
    )
    interval = best.uplift_interval
    if goal.kind == GoalKind.CONVERSION:
        effect = f"{best.uplift * 100:+.2f} percentage points {goal.key} rate"  # type: ignore[operator]  # checked above
        bounds = (
            ""
            if interval is None
            else f" [{interval.lower * 100:+.2f}, {interval.upper * 100:+.2f}]"
        )
        return f"{name} converts {effect}{bounds}{chance}"
    what = "margin" if goal.kind == GoalKind.MARGIN else "revenue"
    bounds = "" if interval is None else f" [{interval.lower:+.2f}, {interval.upper:+.2f}]"
    amount = _format_amount(best.uplift or 0.0, currency)
    return f"{name} earns {amount} {what} per visitor{bounds}{chance}"


def _forecast(
    goal: Goal,
    result: stats.GoalResult,
    counters: Counters,
    visitors: Sequence[int],
    experiment: Experiment,
    today: dt.date,
) -> tuple[int | None, dt.date | None]:
    """Visitors per variant still needed for the minimum effect, and when they will be there."""
    control = result.variants[0]
    if goal.kind == GoalKind.CONVERSION:
        needed = (
            None
            if control.estimate is None
            else stats.visitors_needed_for_conversion(
                control.estimate, minimum_effect=experiment.minimum_effect
            )
        )
    else:
        deviation = stats.standard_deviation(_value_sums(counters, 0, goal.key, "", visitors[0]))
        needed = (
            None
            if control.estimate is None or deviation is None
            else stats.visitors_needed_for_value(
                control.estimate, deviation, minimum_effect=experiment.minimum_effect
            )
        )
    recent = [
        (today - dt.timedelta(days=offset)).isoformat() for offset in range(DAILY_TRAFFIC_DAYS)
    ]
    daily = [
        sum(counters.get(f"e:{i}:d:{day}") for day in recent) / DAILY_TRAFFIC_DAYS
        for i in range(len(visitors))
    ]
    return needed, stats.estimated_end_date(needed, visitors, daily, today)


def _daily(goal: Goal, counters: Counters, variant_count: int) -> DailySeries:
    """Cumulative visitors, conversions and estimate (with a band) per variant and day."""
    points = []
    running = [[0, 0, 0, 0] for _ in range(variant_count)]  # visitors, converted, sum, squares
    for day in sorted(counters.days):
        variants = []
        for i in range(variant_count):
            figures = running[i]
            figures[0] += counters.get(f"e:{i}:d:{day}")
            figures[1] += counters.get(f"c:{i}:{goal.key}:d:{day}")
            figures[2] += counters.get(f"s:{i}:{goal.key}:d:{day}")
            figures[3] += counters.squares(i, goal.key, f":d:{day}")
            data: stats.ConversionCounts | stats.ValueSums
            if goal.kind == GoalKind.CONVERSION:
                data = stats.ConversionCounts(figures[0], min(figures[1], figures[0]))
                estimate = figures[1] / figures[0] if figures[0] else None
            else:
                data = stats.ValueSums(
                    figures[0], figures[2] / CENTS_PER_UNIT, figures[3] / CENTS_PER_UNIT**2
                )
                estimate = data.value_sum / figures[0] if figures[0] else None
            variants.append(
                DailyVariant(figures[0], figures[1], estimate, stats.estimate_interval(data))
            )
        points.append(DailyPoint(dt.date.fromisoformat(day), tuple(variants)))
    return DailySeries(goal.key, tuple(points))


def _no_data(goal: Goal, variant_count: int, experiment: Experiment) -> stats.GoalResult:
    """The result of a goal without any data: what an unavailable goal shows."""
    return _analyse(goal, [0] * variant_count, Counters({}), "", experiment)


def _goal_report(
    goal: Goal,
    visitors: Sequence[int],
    counters: Counters,
    experiment: Experiment,
    today: dt.date,
    currency: str,
) -> GoalReport:
    """One goal's report, or an unavailable one (with the reason) if its counters are odd."""
    keys = [variant.key for variant in experiment.variants]
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
            result = _analyse(goal, visitors, counters, "", experiment)
            needed, end = _forecast(goal, result, counters, visitors, experiment, today)
            summary = summarise(goal, result, keys, currency)
            return GoalReport(
                goal.key, goal.kind, goal.is_primary, result, totals, needed, end, summary
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
                            counters, i, goal.key, suffix_of[value], segment_visitors[value][i]
                        )
                        for i in indexes
                    ]
                    for value in values
                },
                method=experiment.analysis,
                minimum_effect=experiment.minimum_effect,
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
    experiment: Experiment, stored: Mapping[str, int | None], now: float, currency: str
) -> ExperimentResults:
    """All results of an experiment's current phase from its counters (pure)."""
    counters = Counters(stored)
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    keys = [variant.key for variant in experiment.variants]
    visitors = [counters.get(f"e:{i}") for i in range(len(keys))]
    goals = [
        _goal_report(goal, visitors, counters, experiment, today, currency)
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
    )


class ResultsReader:
    """Reads and analyses results, cached per experiment for a few seconds in this worker."""

    def __init__(self, store: Store, cache_ttl: float, currency: str) -> None:
        self._store = store
        self._ttl = cache_ttl
        self._currency = currency
        self._cache: dict[tuple[str, int, int], tuple[float, ExperimentResults]] = {}
        self._lock = threading.Lock()

    def results(self, experiment: Experiment, now: float) -> ExperimentResults:
        """Results of the experiment's current phase, at most ``cache_ttl`` seconds old."""
        key = (experiment.key, experiment.phase, experiment.revision)
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        raw = self._store.read_counts(experiment.key, experiment.phase)
        fresh = compute_results(experiment, raw, now, self._currency)
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self._ttl}
            self._cache[key] = (now, fresh)
        return fresh
