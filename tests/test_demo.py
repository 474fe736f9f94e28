"""The demo experiment tells the money story: more orders, less margin, and an honest verdict."""

from __future__ import annotations

import time
from typing import Any

from server.app import create_app
from server.context import services_of
from server.core.decision import Verdict
from server.core.models import GoalKind
from server.demo import DEMO_DAYS, DEMO_KEY, ensure_demo_experiment, generate_traffic
from server.launcher import DEMO_VISITORS
from server.services.decisions import experiment_decision
from server.services.experiments import SECONDS_PER_DAY, get_experiment
from tests.helpers import app_settings


def test_the_demo_converts_more_with_green_but_earns_more_with_the_control(
    redis_server: Any, redis_client: Any
) -> None:
    app = create_app(app_settings(redis_server.url))
    store = services_of(app).store
    now = time.time()
    ensure_demo_experiment(store, now - DEMO_DAYS * SECONDS_PER_DAY)
    generate_traffic(
        services_of(app), DEMO_VISITORS, now
    )  # exactly what `splitwerk serve --dev` makes
    experiment = get_experiment(store, DEMO_KEY)
    primary = next(goal for goal in experiment.goals if goal.is_primary)
    assert primary.kind == GoalKind.MARGIN

    results = services_of(app).results_reader.results(experiment, now)
    goals = {goal.key: goal for goal in results.goals}
    control, green = goals["purchase"].result.variants
    assert green.estimate > control.estimate  # green converts more often …
    control_margin, green_margin = goals["margin"].result.variants
    assert green_margin.estimate < control_margin.estimate  # … but earns less margin per visitor

    decision = experiment_decision(results)
    assert decision is not None
    assert decision.goal == "margin" and decision.is_money
    assert decision.verdict == Verdict.SHIP
    assert decision.variant == "control"
    assert decision.challenger == "green-note"
    assert decision.per_thousand_interval.upper < 0  # conclusively less money, not a guess
