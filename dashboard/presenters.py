"""Turn results and experiments into the texts and numbers the templates show.

Everything here is pure: a service result, the translator and the currency come in; frozen
view rows of formatted strings (and chart data as plain lists) go out. Colour is decided here
too, by one rule: a row gets a tone only when the statistics call the result conclusive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dashboard import formatting, messages
from dashboard.i18n import BROWSER_TAGS, N_, Translator
from server.core.models import BASIS_POINTS, AuditEntry, Experiment, GoalKind, Status
from server.core.stats import (
    MINIMUM_CONVERSIONS,
    MINIMUM_SEGMENT_CONVERSIONS,
    MINIMUM_SEGMENT_VISITORS,
    MINIMUM_VISITORS,
    NOT_ENOUGH_DATA,
    GoalResult,
    Interval,
    SegmentResult,
    VariantResult,
)
from server.services.overview import ExperimentOverview
from server.services.results import (
    DAILY_TRAFFIC_DAYS,
    DailySeries,
    ExperimentResults,
    GoalReport,
    SegmentReport,
    best_challenger,
    is_winner,
)

BETTER = "better"  # tone of a conclusive improvement (green)
WORSE = "worse"  # tone of a conclusive loss (red)
NEUTRAL = ""  # everything that is not conclusive stays uncoloured
EVEN_CHANCE = 0.5  # from here on a variant is more likely better than worse

STATUS_LABELS = {
    Status.DRAFT: N_("Draft"),
    Status.RUNNING: N_("Running"),
    Status.PAUSED: N_("Paused"),
    Status.STOPPED: N_("Stopped"),
    Status.ARCHIVED: N_("Archived"),
}
KIND_LABELS = {
    GoalKind.CONVERSION: N_("Conversion rate"),
    GoalKind.REVENUE: N_("Net revenue per visitor"),
    GoalKind.MARGIN: N_("Margin per visitor"),
}
ACTION_LABELS = {
    "create": N_("created"),
    "update": N_("edited"),
    "start": N_("started"),
    "pause": N_("paused"),
    "resume": N_("resumed"),
    "stop": N_("stopped"),
    "archive": N_("archived"),
    "new-phase": N_("started a new phase"),
}


# The lifecycle actions' texts: the button, its confirmation question, what it does, the yes.
ACTION_TEXTS = {
    "start": (
        N_("Start"),
        N_("Start “%(name)s”?"),
        N_(
            "Visitors start to be enrolled and counted. From then on variant keys and weights "
            "are fixed and coverage can only grow; changing them later needs a new phase."
        ),
        N_("Yes, start"),
    ),
    "pause": (
        N_("Pause"),
        N_("Pause “%(name)s”?"),
        N_(
            "No new visitors are enrolled while the experiment is paused; they see the control. "
            "Resume it to continue where it stopped."
        ),
        N_("Yes, pause"),
    ),
    "resume": (
        N_("Resume"),
        N_("Resume “%(name)s”?"),
        N_("Enrolment continues; the counts of this phase carry on."),
        N_("Yes, resume"),
    ),
    "stop": (
        N_("Stop"),
        N_("Stop “%(name)s”?"),
        N_(
            "Enrolment ends for good. A winner is shown to every visitor from now on; without "
            "one everybody sees the control. Per-visitor records are deleted after the "
            "retention period."
        ),
        N_("Yes, stop"),
    ),
    "new-phase": (
        N_("New phase"),
        N_("Start a new phase of “%(name)s”?"),
        N_(
            "Every visitor is randomised again with a new salt and the counts start at zero. "
            "Use it to change weights or coverage, or after fixing a broken set-up."
        ),
        N_("Yes, start a new phase"),
    ),
    "archive": (
        N_("Archive"),
        N_("Archive “%(name)s”?"),
        N_("The experiment is finished and read only; it can then be deleted."),
        N_("Yes, archive"),
    ),
}


@dataclass(frozen=True)
class ActionText:
    """A lifecycle action in words: its button, the confirmation question, its effect, yes."""

    action: str
    button: str
    question: str
    explanation: str
    confirm: str


def action_text(action: str, experiment_name: str, t: Translator) -> ActionText:
    """The translated texts of ``action`` on the experiment named ``experiment_name``."""
    button, question, explanation, confirm = ACTION_TEXTS[action]
    return ActionText(
        action, t(button), t(question, name=experiment_name), t(explanation), t(confirm)
    )


def status_label(status: Status, t: Translator) -> str:
    """The translated name of a status."""
    return t(STATUS_LABELS[status])


def _tone(result: VariantResult) -> str:
    """Colour only a verdict: judged, significant after adjustment, interval off zero."""
    if not is_winner(result) or result.uplift is None:
        return NEUTRAL
    return BETTER if result.uplift > 0 else WORSE


def _value_word(kind: GoalKind, t: Translator) -> str:
    return t("margin") if kind == GoalKind.MARGIN else t("net revenue")


@dataclass(frozen=True)
class Effect:
    """A challenger's difference to the control, formatted."""

    uplift: str  # absolute: percentage points or money per visitor
    relative: str  # relative to the control, in percent
    relative_note: str  # why there is no relative change, when there is none
    interval: str  # 95 % interval of the absolute uplift, in words
    chance: str  # chance to beat the control
    p_value: str
    adjusted_p_value: str
    tone: str
    sentence: str  # the plain-words reading


def absolute_difference(kind: GoalKind, value: float | None, t: Translator, currency: str) -> str:
    """A difference to the control in the goal's unit: percentage points for a rate, signed
    money for a value goal."""
    if kind == GoalKind.CONVERSION:
        return t("%(value)s pp", value=formatting.points(value, t.locale))
    return formatting.money(value, currency, t.locale, signed=True)


def effect(
    kind: GoalKind,
    variant_key: str,
    result: VariantResult,
    control: VariantResult,
    t: Translator,
    currency: str,
) -> Effect:
    """Format a challenger's comparison and say it in plain words."""
    locale = t.locale
    interval = result.uplift_interval

    def absolute(value: float | None) -> str:
        return absolute_difference(kind, value, t, currency)

    bounds = (
        formatting.DASH
        if interval is None
        else t(
            "%(lower)s to %(upper)s", lower=absolute(interval.lower), upper=absolute(interval.upper)
        )
    )
    return Effect(
        uplift=formatting.DASH if result.uplift is None else absolute(result.uplift),
        relative=formatting.percent(result.relative_uplift, locale, 1, signed=True),
        relative_note=(
            ""
            if result.relative_uplift is not None or result.uplift is None
            else t("No relative change: the control's value is not clearly above zero.")
        ),
        interval=bounds,
        chance=formatting.chance(result.chance_to_beat_control, locale),
        p_value=formatting.p_value(result.p_value, locale),
        adjusted_p_value=formatting.p_value(result.adjusted_p_value, locale),
        tone=_tone(result),
        sentence=_sentence(kind, variant_key, result, control, t, currency),
    )


def _sentence(
    kind: GoalKind,
    variant_key: str,
    result: VariantResult,
    control: VariantResult,
    t: Translator,
    currency: str,
) -> str:
    locale = t.locale
    if result.uplift is None or result.estimate is None:
        return t("No data yet for %(variant)s.", variant=variant_key)
    if kind == GoalKind.CONVERSION:
        template = (
            N_(
                "%(variant)s converts %(points)s percentage points more often "
                "(%(rate)s vs %(control_rate)s)"
            )
            if result.uplift >= 0
            else N_(
                "%(variant)s converts %(points)s percentage points less often "
                "(%(rate)s vs %(control_rate)s)"
            )
        )
        claim = t(
            template,
            variant=variant_key,
            points=formatting.number(abs(result.uplift) * 100, locale, 2),
            rate=formatting.percent(result.estimate, locale, 2),
            control_rate=formatting.percent(control.estimate, locale, 2),
        )
    else:
        claim = t(
            "%(variant)s earns about %(amount)s %(what)s per visitor",
            variant=variant_key,
            amount=formatting.money(result.uplift, currency, locale, signed=True),
            what=_value_word(kind, t),
        )
    chance = result.chance_to_beat_control
    likelihood = ""
    if chance is not None:
        likelihood = (
            t("%(chance)s likely better", chance=formatting.chance(chance, locale))
            if chance >= EVEN_CHANCE
            else t("%(chance)s likely worse", chance=formatting.chance(1 - chance, locale))
        )
    if result.status == NOT_ENOUGH_DATA:
        verdict = not_enough_data_note(t)
    else:
        verdict = t("Conclusive.") if is_winner(result) else t("Not conclusive yet.")
    return f"{claim}; {likelihood}. {verdict}" if likelihood else f"{claim}. {verdict}"


@dataclass(frozen=True)
class VariantRow:
    """One variant's line in a goal's table."""

    key: str
    is_control: bool
    visitors: str
    conversions: str
    rate: str
    value_per_visitor: str
    effect: Effect | None  # None for the control


@dataclass(frozen=True)
class GoalView:
    """A goal's table, headline, method label and chart."""

    key: str
    kind: GoalKind
    kind_label: str
    is_primary: bool
    is_value: bool
    value_heading: str
    p_value_method: str
    adjustment_note: str
    cap_note: str  # value goals: the per-visitor cap the statistics used
    headline: str
    headline_tone: str
    rows: tuple[VariantRow, ...]
    chart: dict[str, Any] | None
    window_note: str = ""  # windowed goals: whose figures are matured, and the provisional ones
    customers: tuple[CustomerRow, ...] = ()  # repeat buyers, orders per visitor, return rate
    covariate_note: str = ""  # CUPED: the adjusted comparisons that decide, when reported
    customer_columns: tuple[str, ...] = ()  # the headings of the customer figures shown


@dataclass(frozen=True)
class CustomerRow:
    """One variant's customer figures (issue 21): each cell the variant's figure and, for a
    challenger, its difference to the control with the 95 % interval."""

    key: str
    cells: tuple[str, ...]
    conclusive: bool  # some difference in the row is significant (after Holm)


def p_value_method(result: GoalResult, t: Translator) -> str:
    """The test behind a p-value column, for its heading."""
    if result.method == "fixed":
        return t("fixed horizon")
    if result.test == "group_sequential":
        return t("group sequential, over the planned size")
    return t("sequential, always valid")


def not_enough_data_note(t: Translator) -> str:
    """The minimum-evidence rule in words."""
    return t(
        "Not enough data yet: a verdict needs %(visitors)s visitors in each variant and "
        "%(conversions)s conversions in both together.",
        visitors=MINIMUM_VISITORS,
        conversions=MINIMUM_CONVERSIONS,
    )


def goal_view(
    report: GoalReport,
    keys: Sequence[str],
    daily: DailySeries | None,
    t: Translator,
    currency: str,
    *,
    is_fed_by_orders: bool = False,
) -> GoalView:
    """Everything one goal section of the experiment page shows."""
    locale = t.locale
    result = report.result
    control = result.variants[0]
    is_value = report.kind != GoalKind.CONVERSION
    rows = []
    for variant, totals in zip(result.variants, report.totals, strict=True):
        # a value goal's rate is the share of visitors with any value (buyers)
        rate = totals.converted / totals.visitors if totals.visitors else None
        if not is_value:
            rate = variant.estimate
        rows.append(
            VariantRow(
                key=keys[variant.variant],
                is_control=variant.variant == 0,
                visitors=formatting.number(totals.visitors, locale),
                conversions=formatting.number(totals.converted, locale),
                rate=formatting.percent(rate, locale, 2),
                value_per_visitor=(
                    formatting.money(variant.estimate, currency, locale)
                    if is_value
                    else formatting.DASH
                ),
                effect=(
                    None
                    if variant.variant == 0
                    else effect(report.kind, keys[variant.variant], variant, control, t, currency)
                ),
            )
        )
    challengers = len(result.variants) - 1
    best = best_challenger(result)
    if report.unavailable:
        headline = t("Results unavailable: %(reason)s", reason=report.unavailable)
    else:
        headline = _headline(report.kind, result, keys, t, currency)
    return GoalView(
        key=report.key,
        kind=report.kind,
        kind_label=t(KIND_LABELS[report.kind]),
        is_primary=report.is_primary,
        is_value=is_value,
        value_heading=t("Margin / visitor")
        if report.kind == GoalKind.MARGIN
        else t("Revenue / visitor"),
        p_value_method=p_value_method(result, t),
        adjustment_note=(
            t("p-values adjusted for %(count)s comparisons (Holm).", count=challengers)
            if challengers > 1
            else ""
        ),
        cap_note=(
            ""
            if report.value_cap is None
            else t(
                "Each visitor's total counts at most %(cap)s in these statistics, so that one "
                "huge order cannot decide; the totals are not capped.",
                cap=formatting.money(report.value_cap, currency, locale),
            )
        ),
        headline=headline,
        headline_tone=NEUTRAL if best is None else _tone(best),
        rows=tuple(rows),
        chart=None if daily is None else estimate_chart(report.kind, daily, keys, t, currency),
        window_note=_window_note(report, keys, t, currency),
        **_customers(report, keys, t, is_fed_by_orders),
        covariate_note=_covariate_note(report, keys, t, currency),
    )


def _covariate_note(report: GoalReport, keys: Sequence[str], t: Translator, currency: str) -> str:
    """The CUPED-adjusted comparisons (results' ``covariate``) in one line: per challenger the
    adjusted uplift, its 95 % interval and the variance saved; empty when none is reported."""
    covariate = report.covariate
    if covariate is None:
        return ""
    locale = t.locale

    def absolute(value: float) -> str:
        return absolute_difference(report.kind, value, t, currency)

    parts = []
    for result in covariate.variants:
        if result is None:
            continue
        interval = result.uplift_interval
        said = t(
            "%(variant)s %(uplift)s (%(lower)s to %(upper)s)",
            variant=keys[result.variant],
            uplift=absolute(result.uplift),
            lower=formatting.DASH if interval is None else absolute(interval.lower),
            upper=formatting.DASH if interval is None else absolute(interval.upper),
        )
        if result.variance_ratio is not None:
            said += ", " + t(
                "variance %(change)s",
                change=formatting.percent(result.variance_ratio - 1.0, locale, 0, signed=True),
            )
        if result.is_significant:
            said += ", " + t("conclusive")
        parts.append(said)
    if not parts:
        return ""
    return t(
        "Adjusted for the visitors' pre-experiment value (CUPED, %(visitors)s visitors sent "
        "one); these comparisons decide: %(comparisons)s.",
        visitors=formatting.number(sum(covariate.visitors), locale),
        comparisons="; ".join(parts),
    )


class _Compared(Protocol):
    """A variant's figure and its comparison with the control: ``VariantResult`` (repeat
    buyers, orders per visitor) and ``RatioComparison`` (return rate) both have these."""

    @property
    def variant(self) -> int: ...
    @property
    def estimate(self) -> float | None: ...
    @property
    def uplift(self) -> float | None: ...
    @property
    def uplift_interval(self) -> Interval | None: ...
    @property
    def is_significant(self) -> bool: ...


def _customer_column(
    items: Sequence[_Compared], is_count: bool, t: Translator
) -> tuple[list[str], list[bool]]:
    """One customer figure per variant (a rate in percent, or a count per visitor), each
    challenger with its difference to the control and that difference's 95 % interval; and
    which differences are significant."""
    locale = t.locale

    def bound(value: float | None) -> str:
        if is_count:
            return formatting.number(value, locale, 2, signed=True)
        return formatting.points(value, locale)

    cells, significant = [], []
    for item in items:
        if is_count:
            figure = formatting.number(item.estimate, locale, 2)
            uplift = bound(item.uplift)
        else:
            figure = formatting.percent(item.estimate, locale, 1)
            uplift = t("%(value)s pp", value=bound(item.uplift))
        interval = item.uplift_interval
        if item.variant == 0 or item.uplift is None:
            cells.append(figure)
        elif interval is None:
            cells.append(t("%(figure)s (%(uplift)s)", figure=figure, uplift=uplift))
        else:
            cells.append(
                t(
                    "%(figure)s (%(uplift)s; %(lower)s to %(upper)s)",
                    figure=figure,
                    uplift=uplift,
                    lower=bound(interval.lower),
                    upper=bound(interval.upper),
                )
            )
        significant.append(item.is_significant)
    return cells, significant


def _customers(
    report: GoalReport, keys: Sequence[str], t: Translator, is_fed_by_orders: bool
) -> dict[str, Any]:
    """The customer figures of a goal (results' ``customer``), as GoalView fields: per variant
    the share of visitors with two or more events and the events per visitor (conversion
    goals: repeat buyers and orders per visitor where orders feed the goal) or the return rate
    (revenue goals), with the differences to the control."""
    customer = report.customer
    if customer is None:
        return {}
    repeat, per_visitor = (
        (t("Repeat buyers"), t("Orders per visitor"))
        if is_fed_by_orders
        else (t("Converted twice or more"), t("Conversions per visitor"))
    )
    figures: list[tuple[str, Sequence[_Compared], bool]] = []
    if customer.repeat is not None:
        figures.append((repeat, customer.repeat.variants, False))
    if customer.per_visitor is not None:
        figures.append((per_visitor, customer.per_visitor.variants, True))
    if customer.return_rate:
        figures.append((t("Return rate"), customer.return_rate, False))
    if not figures:
        return {}
    columns = [_customer_column(items, is_count, t) for _, items, is_count in figures]
    rows = tuple(
        CustomerRow(
            key=keys[index],
            cells=tuple(cells[index] for cells, _ in columns),
            conclusive=any(flags[index] for _, flags in columns),
        )
        for index in range(len(columns[0][0]))
    )
    return {"customers": rows, "customer_columns": tuple(heading for heading, _, _ in figures)}


def _headline(
    kind: GoalKind, result: GoalResult, keys: Sequence[str], t: Translator, currency: str
) -> str:
    """The sentence about a goal's clearest challenger, or why there is none yet."""
    best = best_challenger(result)
    if best is not None:
        return _sentence(kind, keys[best.variant], best, result.variants[0], t, currency)
    has_data = any(v.uplift is not None for v in result.variants[1:])
    return not_enough_data_note(t) if has_data else t("Not enough data yet.")


def _window_note(report: GoalReport, keys: Sequence[str], t: Translator, currency: str) -> str:
    """A windowed goal's line under its table: the matured sample the table shows, and the
    provisional sentence on every visitor so far (issue 21)."""
    window = report.window
    if window is None:
        return ""
    through = (
        formatting.DASH
        if window.matured_through is None
        else formatting.date(window.matured_through, t.locale)
    )
    return t(
        "Matured figures: visitors enrolled up to %(date)s, after their %(days)s-day window "
        "and return period. Provisional, on all %(visitors)s visitors so far: %(sentence)s",
        date=through,
        days=window.window_days + window.return_days,
        visitors=formatting.number(sum(v.visitors for v in window.provisional_totals), t.locale),
        sentence=_headline(report.kind, window.provisional, keys, t, currency),
    )


def _rounded(values: Sequence[float | None]) -> list[float | None]:
    return [None if value is None else round(value, 6) for value in values]


def estimate_chart(
    kind: GoalKind, daily: DailySeries, keys: Sequence[str], t: Translator, currency: str
) -> dict[str, Any]:
    """Cumulative rate or value per visitor per variant and day, with the 95 % band."""
    is_rate = kind == GoalKind.CONVERSION
    series = []
    for index, key in enumerate(keys):
        points = [point.variants[index] for point in daily.points]
        series.append(
            {
                "label": key,
                "values": _rounded([p.estimate for p in points]),
                "lower": _rounded([p.interval.lower if p.interval else None for p in points]),
                "upper": _rounded([p.interval.upper if p.interval else None for p in points]),
            }
        )
    label = t(KIND_LABELS[kind])
    return _chart(
        daily,
        series,
        t,
        unit="percent" if is_rate else "currency",
        currency=currency,
        title=t("%(what)s, cumulative, with 95%% interval", what=label),
    )


def visitors_chart(daily: DailySeries, keys: Sequence[str], t: Translator) -> dict[str, Any]:
    """Cumulative enrolled visitors per variant and day."""
    series = [
        {
            "label": key,
            "values": [point.variants[index].visitors for point in daily.points],
        }
        for index, key in enumerate(keys)
    ]
    return _chart(daily, series, t, unit="count", currency="", title=t("Visitors, cumulative"))


def _chart(
    daily: DailySeries,
    series: list[dict[str, Any]],
    t: Translator,
    *,
    unit: str,
    currency: str,
    title: str,
) -> dict[str, Any]:
    """Chart data for dashboard.js, and the same numbers as text for the table alternative."""
    locale = t.locale
    days = [point.day for point in daily.points]

    def text(value: float | None) -> str:
        if unit == "percent":
            return formatting.percent(value, locale, 2)
        if unit == "currency":
            return formatting.money(value, currency, locale)
        return formatting.number(value, locale)

    last = ", ".join(
        f"{item['label']} {text(item['values'][-1])}" for item in series if item["values"]
    )
    return {
        "title": title,
        "unit": unit,
        "currency": currency,
        "locale": BROWSER_TAGS[locale],
        "labels": [formatting.short_date(day, locale) for day in days],
        "series": series,
        "description": t(
            "%(title)s over %(days)s days; latest: %(last)s.",
            title=title,
            days=len(days),
            last=last,
        )
        if days
        else t("No data yet."),
        "table": [
            [formatting.date(day, locale), *[text(item["values"][i]) for item in series]]
            for i, day in enumerate(days)
        ],
    }


@dataclass(frozen=True)
class SegmentRow:
    """One segment value × challenger line of a "Who responds?" table."""

    value: str
    variant: str
    visitors: str
    control_estimate: str
    estimate: str
    effect: Effect
    is_judged: bool


@dataclass(frozen=True)
class SegmentTable:
    """One segment attribute broken down for one goal."""

    attribute: str
    goal: str
    is_primary: bool
    is_value: bool
    rows: tuple[SegmentRow, ...]
    judged: int
    unjudged: int


def _estimate_text(kind: GoalKind, value: float | None, t: Translator, currency: str) -> str:
    if kind == GoalKind.CONVERSION:
        return formatting.percent(value, t.locale, 2)
    return formatting.money(value, currency, t.locale)


def segment_table(
    report: SegmentReport, goal: GoalReport, keys: Sequence[str], t: Translator, currency: str
) -> SegmentTable:
    """The rows of one attribute for one goal, with the BH-adjusted p and the judged flag."""
    rows = []
    segment: SegmentResult
    for segment in report.segments:
        control = segment.result.variants[0]
        for variant in segment.result.variants[1:]:
            rows.append(
                SegmentRow(
                    value=segment.segment,
                    variant=keys[variant.variant],
                    visitors=t(
                        "%(variant)s / %(control)s",
                        variant=formatting.number(variant.visitors, t.locale),
                        control=formatting.number(control.visitors, t.locale),
                    ),
                    control_estimate=_estimate_text(goal.kind, control.estimate, t, currency),
                    estimate=_estimate_text(goal.kind, variant.estimate, t, currency),
                    effect=effect(goal.kind, keys[variant.variant], variant, control, t, currency),
                    is_judged=segment.is_judged,
                )
            )
    judged = sum(1 for segment in report.segments if segment.is_judged)
    return SegmentTable(
        attribute=report.attribute,
        goal=report.goal,
        is_primary=goal.is_primary,
        is_value=goal.kind != GoalKind.CONVERSION,
        rows=tuple(rows),
        judged=judged,
        unjudged=len(report.segments) - judged,
    )


def unjudged_note(t: Translator) -> str:
    """Why some segments carry no verdict."""
    return t(
        "Too small to judge: fewer than %(visitors)s visitors in a variant "
        "or %(conversions)s conversions.",
        visitors=MINIMUM_SEGMENT_VISITORS,
        conversions=MINIMUM_SEGMENT_CONVERSIONS,
    )


@dataclass(frozen=True)
class Progress:
    """How far the primary goal is from a reliable answer."""

    goal: str
    share: int  # 0..100: the slowest variant's visitors of the visitors needed
    needed_per_variant: str
    still_needed: str
    end_date: str
    sentence: str


def progress(report: GoalReport, minimum_effect: float, t: Translator) -> Progress:
    """Visitors still needed for the minimum effect and the estimated end date, in words."""
    locale = t.locale
    visitors = [totals.visitors for totals in report.totals]
    needed = report.visitors_needed
    effect_text = formatting.percent(minimum_effect, locale, 1)
    if needed is None:
        return Progress(
            report.key,
            0,
            formatting.DASH,
            formatting.DASH,
            formatting.DASH,
            t(
                "The control has no data for %(goal)s yet, so the sample size is unknown.",
                goal=report.key,
            ),
        )
    missing = sum(max(0, needed - count) for count in visitors)
    share = min(100, int(100 * min(visitors) / needed)) if needed else 100
    end = formatting.date(report.estimated_end, locale)
    if missing == 0:
        sentence = t(
            "Enough visitors to detect a change of %(effect)s in %(goal)s.",
            effect=effect_text,
            goal=report.key,
        )
    elif report.estimated_end is None:
        sentence = t(
            "About %(missing)s more visitors are needed to detect a change of %(effect)s in "
            "%(goal)s; at the current traffic no end date can be estimated.",
            missing=formatting.number(missing, locale),
            effect=effect_text,
            goal=report.key,
        )
    elif report.traffic_days == 1:
        sentence = t(
            "About %(missing)s more visitors are needed to detect a change of %(effect)s in "
            "%(goal)s; at the traffic of the first day that is around %(date)s.",
            missing=formatting.number(missing, locale),
            effect=effect_text,
            goal=report.key,
            date=end,
        )
    else:
        sentence = t(
            "About %(missing)s more visitors are needed to detect a change of %(effect)s in "
            "%(goal)s; at the traffic of the last %(days)s days that is around %(date)s.",
            missing=formatting.number(missing, locale),
            effect=effect_text,
            goal=report.key,
            days=report.traffic_days or DAILY_TRAFFIC_DAYS,
            date=end,
        )
    ratios = [
        item.variance_ratio
        for item in (report.covariate.variants if report.covariate else ())
        if item is not None and item.variance_ratio is not None
    ]
    if ratios and max(ratios) < 1.0:
        # the results plan for CUPED's variance (docs/statistics.md, "Planning with a covariate")
        sentence += " " + t(
            "The pre-experiment values your shop sends make that %(saved)s fewer visitors "
            "than without them (CUPED).",
            saved=formatting.percent(1.0 - max(ratios), locale),
        )
    return Progress(
        report.key,
        share,
        formatting.number(needed, locale),
        formatting.number(missing, locale),
        end,
        sentence,
    )


@dataclass(frozen=True)
class SplitRow:
    """A variant's planned and actual share of the enrolled visitors."""

    key: str
    visitors: str
    planned: str
    actual: str


@dataclass(frozen=True)
class SampleRatio:
    """The sample ratio check in words."""

    is_mismatch: bool
    sentence: str
    rows: tuple[SplitRow, ...]


def sample_ratio(results: ExperimentResults, t: Translator) -> SampleRatio:
    """Explain the sample ratio check: what it compares and what a mismatch means."""
    locale = t.locale
    total = sum(variant.visitors for variant in results.variants)
    rows = tuple(
        SplitRow(
            key=variant.key,
            visitors=formatting.number(variant.visitors, locale),
            planned=formatting.percent(variant.allocation / BASIS_POINTS, locale, 1),
            actual=formatting.percent(variant.visitors / total if total else None, locale, 1),
        )
        for variant in results.variants
    )
    check = results.sample_ratio
    if check.is_mismatch:
        sentence = t(
            "The variants did not get the share of visitors they were planned for "
            "(p = %(p)s). A gap this large happens by chance less than once in a thousand "
            "experiments, so something in the set-up loses or adds visitors in one variant: "
            "a redirect, a caching layer, a script error, or bots. Do not trust these results "
            "until the cause is found.",
            p=formatting.p_value(check.p_value, locale),
        )
    elif total == 0:
        sentence = t("No data yet: the split is checked once visitors are enrolled.")
    else:
        sentence = t(
            "The split of visitors matches the plan (sample ratio check passed, p = %(p)s).",
            p=formatting.p_value(check.p_value, locale),
        )
    return SampleRatio(check.is_mismatch, sentence, rows)


@dataclass(frozen=True)
class AuditRow:
    """One line of the audit trail."""

    at: str
    actor: str
    action: str
    details: str


def audit_rows(entries: Sequence[AuditEntry], t: Translator) -> tuple[AuditRow, ...]:
    """The audit trail in words: when, who, what, and which fields or winner."""
    rows = []
    for entry in entries:
        details = []
        fields = entry.details.get("fields")
        if isinstance(fields, list) and fields:
            named = ", ".join(messages.field_label(str(name), t) for name in fields)
            details.append(t("fields: %(fields)s", fields=named))
        winner = entry.details.get("winner")
        if isinstance(winner, str):
            details.append(t("winner: %(winner)s", winner=winner))
        rows.append(
            AuditRow(
                at=formatting.timestamp(entry.at, t.locale),
                actor=entry.actor,
                action=t(ACTION_LABELS[entry.action])
                if entry.action in ACTION_LABELS
                else entry.action,
                details="; ".join(details),
            )
        )
    return tuple(rows)


@dataclass(frozen=True)
class ListRow:
    """One experiment in the list."""

    key: str
    name: str
    status: Status
    status_label: str
    days: str
    visitors: str
    leader: str
    challenger: str
    effect: str
    chance: str
    tone: str
    is_sample_ratio_mismatch: bool
    has_guardrail_alarm: bool = False


def list_row(item: ExperimentOverview, t: Translator, currency: str) -> ListRow:
    """Format an overview row: who leads the primary goal, by how much, how likely."""
    locale = t.locale
    experiment = item.experiment
    uplift = chance = formatting.DASH
    tone = NEUTRAL
    if item.challenger_result is not None and item.primary is not None:
        found = effect(
            item.primary.kind,
            item.challenger or "",
            item.challenger_result,
            item.primary.result.variants[0],
            t,
            currency,
        )
        uplift, chance, tone = found.uplift, found.chance, found.tone
    return ListRow(
        key=experiment.key,
        name=experiment.name,
        status=experiment.status,
        status_label=status_label(experiment.status, t),
        days=formatting.DASH
        if item.days_running is None
        else formatting.number(item.days_running, locale),
        visitors=formatting.number(item.visitors, locale)
        if experiment.status != Status.DRAFT
        else formatting.DASH,
        leader=item.leader or formatting.DASH,
        challenger=item.challenger or "",
        effect=uplift,
        chance=chance,
        tone=tone,
        is_sample_ratio_mismatch=item.is_sample_ratio_mismatch,
        has_guardrail_alarm=item.has_guardrail_alarm,
    )


def started_text(experiment: Experiment, t: Translator) -> str:
    """When the experiment started (and stopped), in words."""
    if experiment.started_at is None:
        return t("Not started yet")
    started = formatting.date(
        dt.datetime.fromtimestamp(experiment.started_at, dt.UTC).date(), t.locale
    )
    if experiment.stopped_at is None:
        return t("Started %(date)s", date=started)
    stopped = formatting.date(
        dt.datetime.fromtimestamp(experiment.stopped_at, dt.UTC).date(), t.locale
    )
    ran = t("Ran from %(start)s to %(end)s", start=started, end=stopped)
    if experiment.matures_at is None or experiment.windows_close_at is None:
        return ran
    # windowed goals go on counting after the stop (issue 21)
    close, final = (
        formatting.date(dt.datetime.fromtimestamp(moment, dt.UTC).date(), t.locale)
        for moment in (experiment.windows_close_at, experiment.matures_at)
    )
    return (
        ran + " · " + t("windows close %(date)s, figures final %(final)s", date=close, final=final)
    )
