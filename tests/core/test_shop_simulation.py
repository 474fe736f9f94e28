"""Seeded shop-like simulations (scripts/simulate_shop.py) hold issue 20's claims, with fewer runs.

The docs' table (docs/statistics.md, "Deciding sooner") runs 2000 runs per row; here 200 runs
check the same claims with the Monte Carlo slack of ``broken_claims``: CUPED removes at least a
fifth of the variance, the median correct decision comes at least 30 % sooner than the mSPRT's,
also at alpha 1.5 % with no more false positives than the mSPRT measures, every method keeps
false positives at alpha and its intervals cover 0 in A/A runs.
"""

from __future__ import annotations

import numpy as np

from tests.helpers import load_script

FAST_RUNS = 200


SIMULATION = load_script("simulate_shop")


def test_cuped_on_shop_like_data_decides_sooner_without_more_false_positives() -> None:
    summary = SIMULATION.summarise(FAST_RUNS, SIMULATION.SEED, matched=True)
    assert SIMULATION.broken_claims(summary, FAST_RUNS) == []
    cuped, plain = SIMULATION.METHODS[2], SIMULATION.METHODS[1]
    # planned for CUPED's variance, it keeps the planned power (75 % ± Monte Carlo error)
    # and spends what the covariate saves on time
    assert summary.power[cuped] >= summary.power[plain] - 2 * SIMULATION.monte_carlo_error(
        0.25, FAST_RUNS
    )
    assert summary.median[cuped] < summary.median[plain]


def test_the_cuped_plan_asks_for_fewer_visitors_by_the_variance_cuped_removes() -> None:
    plain = SIMULATION.planned_visitors()
    cuped = SIMULATION.planned_visitors(with_covariate=True)
    assert 0.6 * plain < cuped < 0.8 * plain  # about 1 - 0.57² of it
    # the plans end on the day the slowest variant reaches them, at full information
    for with_covariate, planned in ((False, plain), (True, cuped)):
        plans = SIMULATION.plans(with_covariate=with_covariate)
        assert plans[-1].fractions[-1] == 1.0
        assert len(plans) == -(-planned // SIMULATION.daily_traffic())


def test_the_covariate_of_the_shop_model_is_sent_by_returning_customers_only() -> None:
    x, has_x, y = SIMULATION.visitors(np.random.default_rng(1), 50_000)
    assert (x[~has_x] == 0).all()
    assert 0.25 < has_x.mean() < 0.5
    assert 0.05 < (y > 0).mean() < 0.15  # zero-inflated: most visitors order nothing
    assert np.corrcoef(x, y)[0, 1] > 0.45  # what makes a fifth of the variance go


def test_a_stricter_alpha_never_decides_sooner_nor_errs_more_on_the_same_data() -> None:
    """The docs' matched-rate row (CUPED at MATCHED_ALPHA) judges the same runs: its boundary
    lies above the 5 % one, so it can only decide later and falsely reject less often."""
    runs = 40
    summary = SIMULATION.summarise(runs, SIMULATION.SEED, matched=True)
    cuped, matched = SIMULATION.METHODS[2], SIMULATION.MATCHED
    assert summary.false_positive[matched] <= summary.false_positive[cuped]
    assert summary.median[matched] >= summary.median[cuped]
    assert summary.power[matched] <= summary.power[cuped]
    days = len(SIMULATION.plans(SIMULATION.MATCHED_ALPHA, with_covariate=True))
    assert f"| {matched}, daily looks for {days} days |" in SIMULATION.table(summary, runs, 1)
