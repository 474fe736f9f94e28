"""The decision card: a ``Decision`` in words and euros, for the list (compact) and the page.

Pure like ``dashboard.presenters``: the decision, the conversion goal shown beside it, the
translator and the currency come in; a frozen card of formatted strings goes out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dashboard import formatting
from dashboard.i18n import N_, Translator
from server.core.decision import Decision, Verdict
from server.core.models import GoalKind, Status
from server.core.stats import Interval
from server.services.decisions import conversion_goal, decision_goal, experiment_decision
from server.services.overview import ExperimentOverview
from server.services.results import ExperimentResults, GoalReport

TONES = {  # the card's colour: green to act, amber to wait, red to investigate, grey to stop
    Verdict.SHIP: "ship",
    Verdict.KEEP_RUNNING: "wait",
    Verdict.STOP: "stop",
    Verdict.INVESTIGATE: "alarm",
}
FINISHED = (Status.STOPPED, Status.ARCHIVED)  # no more visitors come: waiting cannot help
LABELS = {  # the first figure of the card, by the kind of the goal decided on
    GoalKind.MARGIN: N_("Extra margin per 1,000 visitors with %(variant)s"),
    GoalKind.REVENUE: N_("Extra net revenue per 1,000 visitors with %(variant)s"),
    GoalKind.CONVERSION: N_("Extra conversions per 1,000 visitors with %(variant)s"),
}


@dataclass(frozen=True)
class Fact:
    """One labelled figure of the card."""

    label: str
    value: str


@dataclass(frozen=True)
class DecisionCard:
    """What to do now: a headline, why, the money figures and the conversion rate beside them."""

    verdict: str
    tone: str
    headline: str
    reason: str
    brief: str  # the money in one line, for the experiment list ("" without data)
    facts: tuple[Fact, ...]
    alarm: str = ""  # the guardrail alarm (issue 21), "" when no guardrail is harmed


def _amount(value: float | None, decision: Decision, t: Translator, currency: str) -> str:
    if decision.is_money:
        return formatting.money(value, currency, t.locale, signed=True)
    if value is None:
        return formatting.DASH
    sign = "+" if value >= 0 else "−"
    return t("%(value)s conversions", value=sign + formatting.number(abs(value), t.locale, 1))


def _with_interval(
    value: float | None, interval: Interval | None, decision: Decision, t: Translator, currency: str
) -> str:
    text = _amount(value, decision, t, currency)
    if interval is None or value is None:
        return text
    return t(
        "%(value)s (95 %% interval %(lower)s to %(upper)s)",
        value=text,
        lower=_amount(interval.lower, decision, t, currency),
        upper=_amount(interval.upper, decision, t, currency),
    )


def _headline(decision: Decision, is_finished: bool, t: Translator) -> tuple[str, str]:
    """The verdict as an instruction, and the reason in one sentence."""
    if decision.verdict == Verdict.INVESTIGATE:
        return t("Investigate the sample ratio alarm"), t(
            "The variants did not get the planned shares of visitors, so no figure below can be "
            "trusted until the cause is found."
        )
    if decision.verdict == Verdict.SHIP and decision.variant == decision.challenger:
        return t("Ship %(variant)s", variant=decision.variant), t(
            "%(variant)s is conclusively better than the control on %(goal)s.",
            variant=decision.variant,
            goal=decision.goal,
        )
    if decision.verdict == Verdict.SHIP:
        return t("Keep %(variant)s", variant=decision.variant), t(
            "Every challenger is conclusively worse than the control on %(goal)s.",
            goal=decision.goal,
        )
    if decision.verdict == Verdict.STOP:
        return t("Stop: no effect worth waiting for is left"), t(
            "An effect as large as the minimum effect on %(goal)s is ruled out or would take "
            "months to show; waiting longer is unlikely to pay.",
            goal=decision.goal,
        )
    if is_finished:  # a stopped experiment cannot keep running; say what it left open
        return t("Not conclusive"), t(
            "The experiment stopped before the difference on %(goal)s became conclusive.",
            goal=decision.goal,
        )
    if decision.challenger is None:
        return t("Keep running: no data yet"), t(
            "Nobody has reached %(goal)s yet, so there is nothing to compare.", goal=decision.goal
        )
    if decision.days_left is None:
        return t("Keep running"), t(
            "The difference on %(goal)s is not conclusive yet.", goal=decision.goal
        )
    days = max(decision.days_left, 1)  # less than a day left still reads as one day
    return (
        t.ngettext(
            "Keep running for about %(num)d day", "Keep running for about %(num)d days", days
        )
    ), t(
        "The difference on %(goal)s is not conclusive yet; the forecast needs about that long.",
        goal=decision.goal,
    )


def decision_card(
    decision: Decision,
    kind: GoalKind,
    conversion: GoalReport | None,
    t: Translator,
    currency: str,
    status: Status = Status.RUNNING,
) -> DecisionCard:
    """Format a decision about a goal of ``kind``; ``conversion`` adds the conversion rates.

    ``status`` is the experiment's: a stopped or archived one is not told to keep running.
    """
    locale = t.locale
    headline, reason = _headline(decision, status in FINISHED, t)
    facts = []
    brief = ""
    if decision.challenger is not None:
        label = t(LABELS[kind], variant=decision.challenger)
        per_thousand = _with_interval(
            decision.per_thousand, decision.per_thousand_interval, decision, t, currency
        )
        facts.append(Fact(label, per_thousand))
        if decision.per_month is not None:
            facts.append(
                Fact(
                    t("Per month at the current traffic"),
                    _with_interval(
                        decision.per_month, decision.per_month_interval, decision, t, currency
                    ),
                )
            )
        chance = formatting.percent(decision.chance_to_be_better, locale)
        facts.append(
            Fact(t("Chance that %(variant)s is better", variant=decision.challenger), chance)
        )
        loss = _amount(decision.expected_loss_per_thousand, decision, t, currency).lstrip("+")
        facts.append(
            Fact(
                t(
                    "Expected loss per 1,000 visitors if %(variant)s is shipped now",
                    variant=decision.challenger,
                ),
                loss,
            )
        )
        brief = t(
            "%(amount)s per 1,000 visitors · chance %(chance)s",
            amount=_amount(decision.per_thousand, decision, t, currency),
            chance=chance,
        )
        rates = _rates(conversion, decision.challenger, t)
        if rates is not None:
            facts.append(rates)
    return DecisionCard(
        verdict=decision.verdict.value,
        tone=TONES[decision.verdict],
        headline=headline,
        reason=reason,
        brief=brief,
        facts=tuple(facts),
    )


def _rates(conversion: GoalReport | None, challenger: str, t: Translator) -> Fact | None:
    """The conversion rates of control and challenger: the secondary figure beside the money."""
    if conversion is None:
        return None
    index = next((i for i, row in enumerate(conversion.totals) if row.key == challenger), None)
    if index is None:
        return None
    control = conversion.result.variants[0].estimate
    variant = conversion.result.variants[index].estimate
    return Fact(
        t("Conversion rate (%(goal)s)", goal=conversion.key),
        t(
            "%(control)s control, %(rate)s %(variant)s",
            control=formatting.percent(control, t.locale, 2),
            rate=formatting.percent(variant, t.locale, 2),
            variant=challenger,
        ),
    )


def results_card(results: ExperimentResults, t: Translator, currency: str) -> DecisionCard | None:
    """The card of an experiment's results (None when it has no goal to decide on)."""
    decision = experiment_decision(results)
    goal = decision_goal(results)
    if decision is None or goal is None:
        return None
    card = decision_card(decision, goal.kind, conversion_goal(results), t, currency, results.status)
    harms = [check for check in results.guardrails if check.is_harmful]
    if not harms:
        return card
    alarm = t(
        "Guardrail alarm: %(variant)s significantly harms %(goal)s.",
        variant=", ".join(dict.fromkeys(check.variant for check in harms)),
        goal=", ".join(dict.fromkeys(check.goal for check in harms)),
    )
    return dataclasses.replace(card, alarm=alarm)


def overview_card(item: ExperimentOverview, t: Translator, currency: str) -> DecisionCard | None:
    """The compact card of a row of the experiment list (None for drafts)."""
    if item.decision is None or item.decision_goal is None:
        return None
    return decision_card(
        item.decision,
        item.decision_goal.kind,
        item.conversion,
        t,
        currency,
        item.experiment.status,
    )
