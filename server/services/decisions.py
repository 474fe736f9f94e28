"""Use case of the decision: which goal an experiment is judged on, its traffic, and the verdict.

Reads only the output of ``server.services.results`` (no Redis), so the dashboard's list, the
experiment page and the results API all say the same thing. Money comes first: the decision is
about the primary goal when it is money (margin or revenue per visitor), else about the first
margin goal, else the first revenue goal, else the primary conversion goal.
"""

from __future__ import annotations

import datetime as dt

from server.core.decision import Decision, decide
from server.core.models import GoalKind
from server.services.results import DAILY_TRAFFIC_DAYS, ExperimentResults, GoalReport

MONEY_KINDS = (GoalKind.MARGIN, GoalKind.REVENUE)  # in the order the decision prefers them


def decision_goal(results: ExperimentResults) -> GoalReport | None:
    """The goal the decision is about: money first (see the module docstring)."""
    primary = next((goal for goal in results.goals if goal.is_primary), None)
    if primary is not None and primary.kind in MONEY_KINDS:
        return primary
    for kind in MONEY_KINDS:
        found = next((goal for goal in results.goals if goal.kind == kind), None)
        if found is not None:
            return found
    return primary


def conversion_goal(results: ExperimentResults) -> GoalReport | None:
    """The conversion goal shown beside the money: the primary if it is one, else the first."""
    conversions = [goal for goal in results.goals if goal.kind == GoalKind.CONVERSION]
    primary = next((goal for goal in conversions if goal.is_primary), None)
    return primary or next(iter(conversions), None)


def daily_visitors(results: ExperimentResults) -> float | None:
    """Visitors enrolled per day over the last DAILY_TRAFFIC_DAYS days with data (None: none)."""
    if not results.daily or not results.daily[0].points:
        return None
    points = results.daily[0].points
    today = dt.datetime.fromtimestamp(results.generated_at, dt.UTC).date()
    start = today - dt.timedelta(days=DAILY_TRAFFIC_DAYS - 1)
    before = [point for point in points if point.day < start]
    total = sum(variant.visitors for variant in points[-1].variants)
    earlier = sum(variant.visitors for variant in before[-1].variants) if before else 0
    # a young experiment has fewer days than the window: divide by the days it has run
    first = max(points[0].day, start)
    days = max(1, (today - first).days + 1)
    return (total - earlier) / days


def experiment_decision(results: ExperimentResults) -> Decision | None:
    """The verdict for an experiment's current phase, None when it has no goal."""
    goal = decision_goal(results)
    if goal is None:
        return None
    today = dt.datetime.fromtimestamp(results.generated_at, dt.UTC).date()
    days_left = None if goal.estimated_end is None else max(0, (goal.estimated_end - today).days)
    return decide(
        goal.key,
        is_money=goal.kind in MONEY_KINDS,
        result=goal.deciding,  # CUPED's comparisons when it decides (issue 20)
        variant_keys=[variant.key for variant in results.variants],
        sample_ratio=results.sample_ratio,
        daily_visitors=daily_visitors(results),
        days_left=days_left,
    )
