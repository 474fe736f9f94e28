"""The demo experiment tells the money story: the first order won, the 30-day margin lost after
returns and fewer repeat orders, and an honest verdict."""

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
from server.services.results import is_winner
from tests.helpers import app_settings


def test_the_demo_wins_the_first_order_with_green_but_loses_the_30_day_margin_after_returns(
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
    assert primary.kind == GoalKind.MARGIN and primary.window_days == 30

    results = services_of(app).results_reader.results(experiment, now)
    goals = {goal.key: goal for goal in results.goals}
    control, green = goals["purchase"].result.variants
    assert green.estimate > control.estimate and is_winner(green)  # green wins the first order …
    margin = goals["margin"]
    control_margin, green_margin = margin.result.variants
    assert green_margin.estimate < control_margin.estimate  # … but earns less margin per visitor
    assert is_winner(green_margin)  # conclusively, over the 30 days after each first visit …
    # … judged on the visitors whose window and return period closed, not on everybody
    assert margin.window is not None and margin.window.matured_through is not None
    matured = sum(v.visitors for v in margin.totals)
    assert 0 < matured < sum(v.visitors for v in margin.window.provisional_totals)
    # why: green's goods come back more often, and its buyers come back less often
    revenue = goals["revenue"].customer
    assert revenue is not None
    control_returns, green_returns = revenue.return_rate
    assert green_returns.is_significant and green_returns.estimate > control_returns.estimate
    repeat = goals["purchase"].customer
    assert repeat is not None and repeat.repeat is not None
    control_repeat, green_repeat = repeat.repeat.variants
    assert green_repeat.estimate < control_repeat.estimate

    decision = experiment_decision(results)
    assert decision is not None
    assert decision.goal == "margin" and decision.is_money
    assert decision.verdict == Verdict.SHIP
    assert decision.variant == "control"
    assert decision.challenger == "green-note"
    assert decision.per_thousand_interval.upper < 0  # conclusively less money, not a guess
