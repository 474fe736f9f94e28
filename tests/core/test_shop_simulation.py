"""Seeded shop-like simulations (scripts/simulate_shop.py) hold issue 20's claims, with fewer runs.

The docs' table (docs/statistics.md, "Deciding sooner") runs 2000 runs per row; here 200 runs
check the same claims with the Monte Carlo slack of ``broken_claims``: CUPED removes at least a
fifth of the variance, the median correct decision comes at least 30 % sooner than the mSPRT's,
every method keeps false positives at alpha and its intervals cover 0 in A/A runs.
"""

from __future__ import annotations

import numpy as np

from tests.helpers import load_script

FAST_RUNS = 200


SIMULATION = load_script("simulate_shop")


def test_cuped_on_shop_like_data_decides_sooner_without_more_false_positives() -> None:
    summary = SIMULATION.summarise(FAST_RUNS, SIMULATION.SEED)
    assert SIMULATION.broken_claims(summary, FAST_RUNS) == []
    cuped, plain = SIMULATION.METHODS[2], SIMULATION.METHODS[1]
    # the adjustment finds the effect more often than the same test without it
    assert summary.power[cuped] > summary.power[plain]


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
    assert f"| {matched}, daily looks for 28 days |" in SIMULATION.table(summary, runs, 1)
