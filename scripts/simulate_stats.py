"""Seeded A/A simulations of the statistics engine: false positives and coverage per method.

Every simulated experiment has variants that do not differ at all, so every "significant"
comparison is a false positive and every interval that excludes 0 misses the truth. Each row
runs one goal kind with one method:

- fixed horizon: one look at the planned end (as the method is meant to be used);
- always-valid (mSPRT) and group sequential: a look every day, as a shop owner peeking daily; a
  run counts as a false positive when it was significant at *any* look, and an interval as
  missing when it excluded 0 at any look (confidence sequences and repeated confidence
  intervals promise exactly that).

The group sequential rows are planned by the power calculation for a +10 % uplift on 5 %
(visitors per variant from ``visitors_needed_for_conversion``, spread over 28 daily looks);
their planned size is fixed up front from the true rate, where the server re-estimates it from
the control's rate at every look. Rows with ``uplift`` are not A/A: there the share of
significant runs is the power (promised: at least 75 % at the planned size), intervals miss
when they exclude the true uplift, and the median day of the first significant look over all
runs is shown (runs that never decide count as never).

Value goals draw zero-inflated lognormal revenue: 10 % of visitors buy, their order is
lognormal with log-mean 3.5 and the given sigma (2.5 is an extreme tail: the mean order is
about 20 times the median). ``python scripts/simulate_stats.py`` prints the Markdown table that
docs/statistics.md shows; ``--experiments`` sets runs per row (the docs use 2000), ``--seed`` the
seed, and it exits with an error when a row breaks a promise (``make simulate``).
tests/core/test_stats_simulation.py runs the same code with fewer runs.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.core import sequential
from server.core.models import Analysis
from server.core.stats import (
    ConversionCounts,
    GoalResult,
    ValueSums,
    analyse_conversion,
    analyse_value,
    visitors_needed_for_conversion,
)

SEED = 20261202  # the seed of the table in docs/statistics.md
DOCS_EXPERIMENTS = 2000  # runs per row for the docs' table: Monte Carlo error about ±0.5 points
BUY_RATE = 0.10  # share of visitors with an order in the value simulations
ORDER_LOG_MEAN = 3.5  # log of the median order (about 33 €)
ALPHA = 0.05  # the engine's default: the promised false-positive rate
MINIMUM_COVERAGE = 0.94  # the promised coverage of every interval, skewed revenue included
MINIMUM_POWER = 0.75  # the promised power of the group sequential test at its planned size
PLANNED_EFFECT = 0.10  # the relative uplift the group sequential rows are planned for
PLANNED_RATE = 0.05  # ... on this conversion rate
PLANNED_LOOKS = 28  # ... over four weeks of daily looks
# visitors per variant the power calculation asks for, and per day to reach them in 28 looks
PLANNED_VISITORS = visitors_needed_for_conversion(PLANNED_RATE, minimum_effect=PLANNED_EFFECT) or 1
PLANNED_DAILY = -(-PLANNED_VISITORS // PLANNED_LOOKS)


@dataclass(frozen=True)
class Scenario:
    """One row of the table: a goal kind, a method and the traffic of an A/A experiment."""

    name: str
    kind: str  # "conversion" or "value"
    method: Analysis
    variants: int  # including the control
    looks: int  # days; the fixed method looks once, at the end
    daily: int  # visitors per variant and day
    rate: float = 0.05  # conversion rate
    sigma: float = 1.0  # lognormal sigma of the order values
    uplift: float = 0.0  # the variants' true relative uplift; 0 is an A/A run
    minimum_effect: float = 0.05  # the analysis' minimum effect
    is_planned: bool = False  # judged by the group sequential test over PLANNED_VISITORS


@dataclass(frozen=True)
class Outcome:
    """Shares of the runs of one scenario."""

    scenario: Scenario
    runs: int
    false_positive: float  # runs with some comparison significant (at some look): family-wise
    absolute_missed: float  # comparisons whose uplift interval excluded 0 (at some look)
    relative_missed: float  # comparisons whose relative interval excluded 0 (at some look)
    relative_shown: float  # comparisons with a relative interval at the last look
    # rows with an uplift: median look of the first (correct) significance over all runs, runs
    # that never decide counting as never (inf: more than half never decided)
    median_decision: float | None = None


SCENARIOS = (
    Scenario("conversion 5 %", "conversion", Analysis.FIXED, 2, 28, 200),
    Scenario("conversion 5 %", "conversion", Analysis.ALWAYS_VALID, 2, 28, 200),
    Scenario("conversion 0.5 % (small counts)", "conversion", Analysis.FIXED, 2, 28, 20, 0.005),
    Scenario("conversion 5 %, 10 variants", "conversion", Analysis.FIXED, 10, 28, 200),
    Scenario("conversion 5 %, 10 variants", "conversion", Analysis.ALWAYS_VALID, 10, 28, 200),
    Scenario("revenue, sigma 1.0", "value", Analysis.FIXED, 2, 20, 250, sigma=1.0),
    Scenario("revenue, sigma 1.5", "value", Analysis.FIXED, 2, 20, 250, sigma=1.5),
    Scenario("revenue, sigma 2.5", "value", Analysis.FIXED, 2, 20, 250, sigma=2.5),
    Scenario("revenue, sigma 1.5", "value", Analysis.ALWAYS_VALID, 2, 20, 1000, sigma=1.5),
    Scenario("revenue, sigma 2.5", "value", Analysis.ALWAYS_VALID, 2, 20, 1000, sigma=2.5),
    *(
        Scenario(
            name,
            "conversion",
            method,
            variants,
            PLANNED_LOOKS,
            PLANNED_DAILY,
            PLANNED_RATE,
            uplift=uplift,
            minimum_effect=PLANNED_EFFECT,
            is_planned=method is Analysis.SEQUENTIAL,
        )
        for name, variants, uplift in (
            ("planned: conversion 5 %", 2, 0.0),
            ("planned: conversion 5 %, 10 variants", 10, 0.0),
            ("planned: conversion 5 % with +10 % uplift", 2, PLANNED_EFFECT),
        )
        for method in (Analysis.SEQUENTIAL, Analysis.ALWAYS_VALID)
    ),
)


def _daily_counts(rng: Any, scenario: Scenario) -> list[list[Any]]:
    """Cumulative per-look data of one run: looks × variants of ConversionCounts or ValueSums."""
    shape = (scenario.looks, scenario.variants)
    visitors = np.full(shape, scenario.daily).cumsum(axis=0)
    if scenario.kind == "conversion":
        rates = [scenario.rate] + [scenario.rate * (1.0 + scenario.uplift)] * (shape[1] - 1)
        converted = rng.binomial(scenario.daily, rates, size=shape).cumsum(axis=0)
        return [
            [ConversionCounts(int(visitors[t, v]), int(converted[t, v])) for v in range(shape[1])]
            for t in range(shape[0])
        ]
    bought = rng.random((*shape, scenario.daily)) < BUY_RATE
    orders = rng.lognormal(ORDER_LOG_MEAN, scenario.sigma, bought.shape)
    # whole cents, as stored
    values = np.where(bought, np.round(orders * 100.0) / 100.0, 0.0)
    sums = values.sum(axis=2).cumsum(axis=0)
    squares = (values * values).sum(axis=2).cumsum(axis=0)
    buyers = bought.sum(axis=2).cumsum(axis=0)
    return [
        [
            ValueSums(
                int(visitors[t, v]), float(sums[t, v]), float(squares[t, v]), int(buyers[t, v])
            )
            for v in range(shape[1])
        ]
        for t in range(shape[0])
    ]


def _excludes(interval: Any, truth: float) -> bool:
    return interval is not None and (interval.lower > truth or interval.upper < truth)


def _plans(scenario: Scenario) -> list[sequential.Plan | None]:
    """Per look the group sequential plan the server would use then (None: mSPRT or fixed).

    The fractions of the looks so far; boundaries of a look never depend on later ones, so
    each day's plan extends the one before.
    """
    if not scenario.is_planned:
        return [None] * scenario.looks
    progress = [scenario.daily * (look + 1) for look in range(scenario.looks)]
    plans: list[sequential.Plan | None] = []
    for look in range(scenario.looks):
        counted = sequential.information_fractions(progress[: look + 1], PLANNED_VISITORS)
        fractions = sequential.fractions_of(progress, PLANNED_VISITORS, counted)
        plans.append(sequential.plan(fractions, ALPHA, scenario.variants - 1))
    return plans


def run(scenario: Scenario, experiments: int, seed: int) -> Outcome:
    """Simulate ``experiments`` A/A runs of one scenario."""
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario) if scenario in SCENARIOS else 0])
    analyse: Callable[..., GoalResult] = (
        analyse_conversion if scenario.kind == "conversion" else analyse_value
    )
    false_positive = 0
    comparisons = experiments * (scenario.variants - 1)
    absolute_missed = np.zeros(scenario.variants - 1, dtype=int)
    relative_missed = np.zeros(scenario.variants - 1, dtype=int)
    relative_shown = 0
    decisions: list[int] = []
    plans = _plans(scenario)
    true_uplift = scenario.rate * scenario.uplift if scenario.kind == "conversion" else 0.0
    for _ in range(experiments):
        looks = _daily_counts(rng, scenario)
        if scenario.method is Analysis.FIXED:
            looks = looks[-1:]
        significant = False
        absolute = np.zeros(scenario.variants - 1, dtype=bool)
        relative = np.zeros(scenario.variants - 1, dtype=bool)
        result: GoalResult | None = None
        for index, look in enumerate(looks):
            plan = plans[index]
            result = analyse(
                look,
                method=scenario.method,
                minimum_effect=scenario.minimum_effect,
                plan=plan,
                looks=looks[:index] if plan is not None else (),
            )
            challengers = result.variants[1:]
            if not significant and any(v.is_significant for v in challengers):
                significant = True
                decisions.append(index + 1)
            absolute |= [_excludes(v.uplift_interval, true_uplift) for v in challengers]
            relative |= [
                _excludes(v.relative_uplift_interval, scenario.uplift) for v in challengers
            ]
        false_positive += significant
        absolute_missed += absolute
        relative_missed += relative
        assert result is not None
        relative_shown += sum(1 for v in result.variants[1:] if v.relative_uplift_interval)
    return Outcome(
        scenario,
        experiments,
        false_positive / experiments,
        int(absolute_missed.sum()) / comparisons,
        int(relative_missed.sum()) / comparisons,
        relative_shown / comparisons,
        float(np.median(decisions + [math.inf] * (experiments - len(decisions))))
        if scenario.uplift
        else None,
    )


def monte_carlo_error(share: float, runs: int) -> float:
    """Two standard errors of a simulated share around ``share``."""
    return 2.0 * math.sqrt(share * (1.0 - share) / runs)


def broken_promises(outcome: Outcome) -> list[str]:
    """What an outcome breaks: false positives above alpha or coverage below 94 %.

    A simulated share has Monte Carlo error, so both are checked with two standard errors of
    slack around the promised share (at 200 runs: 8.1 % and 90.6 %; at 2000: 6.0 % and 92.9 %).
    """
    broken = []
    comparisons = outcome.runs * (outcome.scenario.variants - 1)
    if outcome.scenario.uplift == 0.0:
        if outcome.false_positive > ALPHA + monte_carlo_error(ALPHA, outcome.runs):
            broken.append(f"false positives {outcome.false_positive:.1%}")
    elif outcome.scenario.is_planned and outcome.false_positive < MINIMUM_POWER - (
        monte_carlo_error(MINIMUM_POWER, outcome.runs)
    ):
        broken.append(f"power {outcome.false_positive:.1%}")
    for name, missed in (
        ("uplift", outcome.absolute_missed),
        ("relative", outcome.relative_missed),
    ):
        slack = monte_carlo_error(1.0 - MINIMUM_COVERAGE, comparisons)
        if 1.0 - missed < MINIMUM_COVERAGE - slack:
            broken.append(f"{name} interval coverage {1.0 - missed:.1%}")
    return broken


def table(outcomes: Sequence[Outcome], seed: int) -> str:
    """The Markdown table of docs/statistics.md."""
    lines = [
        f"| A/A scenario (seed {seed}, {outcomes[0].runs} runs each) | method | looks × visitors "
        "per variant | significant (false positives; with an uplift: power) | uplift interval "
        "coverage | relative interval coverage | relative shown | median day of a correct "
        "decision |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for outcome in outcomes:
        scenario = outcome.scenario
        looks = 1 if scenario.method is Analysis.FIXED else scenario.looks
        lines.append(
            f"| {scenario.name} | {_method_name(scenario)} | {looks} × "
            f"{scenario.daily * (scenario.looks if looks == 1 else 1)} | "
            f"{outcome.false_positive:.1%} | {1 - outcome.absolute_missed:.1%} | "
            f"{1 - outcome.relative_missed:.1%} | {outcome.relative_shown:.0%} | "
            + (
                "–"
                if outcome.median_decision is None
                else f"> {scenario.looks}"
                if math.isinf(outcome.median_decision)
                else f"{outcome.median_decision:g}"
            )
            + " |"
        )
    return "\n".join(lines)


def _method_name(scenario: Scenario) -> str:
    """The test a row runs: fixed, always-valid (mSPRT) or group sequential."""
    if scenario.is_planned:
        return "group sequential"
    return "always-valid" if scenario.method is Analysis.ALWAYS_VALID else scenario.method.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=DOCS_EXPERIMENTS)
    parser.add_argument("--seed", type=int, default=SEED)
    arguments = parser.parse_args()
    outcomes = [run(scenario, arguments.experiments, arguments.seed) for scenario in SCENARIOS]
    print(table(outcomes, arguments.seed))
    broken = [
        f"{outcome.scenario.name} ({outcome.scenario.method.value}): {problem}"
        for outcome in outcomes
        for problem in broken_promises(outcome)
    ]
    if broken:
        raise SystemExit("broken promises:\n" + "\n".join(broken))


if __name__ == "__main__":
    main()
