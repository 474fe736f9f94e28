"""Group sequential design: Lan–DeMets alpha spending with O'Brien–Fleming shape, without I/O.

An experiment with a planned size (the power calculation's visitors per variant) is looked at
once a day. Each look k has an information fraction t_k: the share of the planned visitors the
slowest variant has reached, capped at 1. The spending function says how much of the
false-positive rate alpha may be used up to t (Lan & DeMets 1983, O'Brien–Fleming shape; per
side alpha/2 as in gsDesign's ``sfLDOF`` and R's ``ldbounds``)::

    spent(t) = 2 * 2 (1 - Phi(z_{1 - alpha/4} / sqrt(t)))

The critical values follow from the joint distribution of the looks' z statistics (a Brownian
motion in t): each look's boundary c_k is the one at which "crossing first at look k" has
probability spent(t_k) - spent(t_{k-1}) when there is no difference, computed by recursive
numerical integration of the density of the statistics that have not crossed yet (Armitage,
McPherson & Rowe 1969; Jennison & Turnbull 2000, chapter 19).

Rules when traffic deviates from the plan (docs/statistics.md, "Group sequential test"):

- boundaries are always computed on the fractions actually observed, so more or fewer looks
  than planned, and uneven days, are exact;
- a look counts only when it adds at least ``MINIMUM_INCREMENT`` of the plan;
- the fraction is capped at 1: the first look that reaches the plan is the final look and
  spends all of alpha that is left; later looks are not tested (the verdict is final);
- when an experiment is stopped short of its plan, its last look is treated as the final one
  (fraction 1): the alpha it did not use is spent there.

``Plan.p_value`` turns a comparison's z statistics into the repeated p-value: the smallest
level alpha' whose boundaries the statistics have crossed at some look so far, interpolated in
log alpha' between the levels of ``LEVELS`` (exact at each of them, so the decisions at alpha
and at the Holm levels alpha / j are exact).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

# A day adds a look only when it brings at least 2 % of the plan's information: at most 50
# looks, and no look so close to the last that the recursion's kernel gets narrower than its
# grid (days with next to no traffic would otherwise each cost a look for nothing).
MINIMUM_INCREMENT = 0.02
# Simpson points per look across the continuation region. 61 points reproduce the published
# O'Brien–Fleming boundaries to 1e-3 and the spending to 1e-4 relative
# (tests/core/test_sequential.py), at about 0.1 ms per look.
GRID_POINTS = 61
# Newton steps (on the log of the crossing chance) for each boundary, started at the
# unconditional boundary; six keep the simulated size of 5 to 50 looks at 5.0 % ± 0.1 %.
NEWTON_STEPS = 6
# Below this probability an increment spends nothing usable: the boundary would be infinite,
# and 1e-12 puts it near 7 standard deviations, where nothing crosses.
SMALLEST_INCREMENT = 1e-12
# The levels at which boundaries are computed for the repeated p-value, besides alpha and the
# Holm levels alpha / j: every level costs about 1 ms of a 28-look experiment's results, so
# few, spaced evenly in log; p-values below 1e-4 are reported as 1e-4 (no decision hinges on
# the digits below that), and between levels the p-value is interpolated in log level.
LEVELS = (1e-4, 1e-3, 0.01, 0.05, 0.2, 1.0)
SMALLEST_P_VALUE = LEVELS[0]


def spent(fraction: float, alpha: float) -> float:
    """The two-sided alpha spent up to information fraction t (O'Brien–Fleming shape)."""
    if fraction <= 0.0:
        return 0.0
    side = float(special.ndtri(1.0 - alpha / 4.0))
    return 4.0 * float(special.ndtr(-side / math.sqrt(min(fraction, 1.0))))


def boundaries(fractions: Sequence[float], alpha: float) -> tuple[float, ...]:
    """Two-sided critical values |z| of each look at level alpha (fractions increasing, ≤ 1).

    Raises:
        ValueError: fractions not strictly increasing within (0, 1], or alpha not in (0, 1].
    """
    _check_fractions(fractions)
    if not 0.0 < alpha <= 1.0:
        raise ValueError("alpha must lie in (0, 1]")
    return tuple(float(value) for value in _boundaries(tuple(fractions), (alpha,))[0])


@dataclass(frozen=True)
class Plan:
    """Boundaries of every level of the grid at the looks of one experiment.

    ``fractions`` are the looks' information fractions (oldest first, the current look last);
    ``levels`` ascend and include alpha and the Holm levels; ``critical[i][k]`` is the boundary
    of look k at ``levels[i]``.
    """

    fractions: tuple[float, ...]
    levels: tuple[float, ...]
    critical: tuple[tuple[float, ...], ...]

    def boundary(self, alpha: float) -> float:
        """The last look's critical value at level alpha.

        Raises:
            ValueError: alpha is not one of ``levels``.
        """
        if alpha not in self.levels:
            raise ValueError("the plan has no boundaries at this alpha")
        return self.critical[self.levels.index(alpha)][-1]

    def p_value(self, statistics: Sequence[float | None]) -> float | None:
        """The repeated p-value of one comparison: one z statistic per look (None: not counted).

        The smallest level at which some look's |z| reaches that look's boundary, interpolated
        in log level between the grid's levels; at most 1, at least ``SMALLEST_P_VALUE``.
        """
        if len(statistics) != len(self.fractions):
            raise ValueError("one statistic per look is needed")
        best: float | None = None
        log_levels = [math.log(level) for level in self.levels]
        for look, statistic in enumerate(statistics):
            if statistic is None or not math.isfinite(statistic):
                continue
            # boundaries fall as the level rises: interpolate on the reversed, rising sequence
            column = [row[look] for row in self.critical][::-1]
            size = abs(statistic)
            if size >= column[-1]:
                level = self.levels[0]
            elif size < column[0]:
                level = 1.0
            else:
                level = math.exp(float(np.interp(size, column, log_levels[::-1])))
            best = level if best is None else min(best, level)
        return best


def plan(fractions: Sequence[float], alpha: float, comparisons: int) -> Plan:
    """The boundaries of ``LEVELS``, alpha and the Holm levels alpha / 2 … alpha / comparisons.

    Raises:
        ValueError: as ``boundaries``.
    """
    _check_fractions(fractions)
    levels = sorted({*LEVELS, *(alpha / j for j in range(1, max(1, comparisons) + 1))})
    table = _boundaries(tuple(fractions), tuple(levels))
    return Plan(
        tuple(fractions),
        tuple(levels),
        tuple(tuple(float(value) for value in row) for row in table),
    )


def information_fractions(
    progress: Sequence[int], planned: int, *, is_final: bool = False
) -> list[int]:
    """Which looks count, as indexes into ``progress`` (visitors of the slowest variant per look).

    A look counts when it adds ``MINIMUM_INCREMENT`` of ``planned`` to the last counted one;
    the first look that reaches the plan is the last to count. The last look always counts
    when it adds anything at all (it is the current state). ``is_final``: the experiment has
    stopped, so its last look becomes the final one (see ``fractions_of``).
    """
    if planned <= 0:
        raise ValueError("the planned size must be positive")
    counted: list[int] = []
    last = 0.0
    for index, visitors in enumerate(progress):
        fraction = min(1.0, visitors / planned)
        is_current = index == len(progress) - 1
        step = fraction - last
        if step >= MINIMUM_INCREMENT or (step > 0.0 and (is_current or fraction == 1.0)):
            counted.append(index)
            last = fraction
        if last >= 1.0:
            break
    if counted and counted[-1] != len(progress) - 1 and is_final and last < 1.0:
        counted.append(len(progress) - 1)
    return counted


def fractions_of(
    progress: Sequence[int], planned: int, counted: Sequence[int], *, is_final: bool = False
) -> list[float]:
    """The information fractions of the counted looks; with ``is_final`` the last is 1."""
    fractions = [min(1.0, progress[index] / planned) for index in counted]
    if is_final and fractions:
        fractions[-1] = 1.0
        # a counted look at the same fraction as the final one cannot precede it
        while len(fractions) > 1 and fractions[-2] >= 1.0:
            del fractions[-2]
    return fractions


def _check_fractions(fractions: Sequence[float]) -> None:
    """Raise ValueError unless the fractions rise strictly within (0, 1]."""
    if not fractions:
        raise ValueError("at least one look is needed")
    previous = 0.0
    for fraction in fractions:
        if not previous < fraction <= 1.0:
            raise ValueError("information fractions must rise strictly within (0, 1]")
        previous = fraction


def _boundaries(fractions: tuple[float, ...], levels: tuple[float, ...]) -> np.ndarray:
    """Critical values |z| per level (rows) and look (columns), vectorised over the levels."""
    return np.column_stack(
        [_look(fractions[: look + 1], levels).bounds for look in range(len(fractions))]
    )


@dataclass(frozen=True)
class _State:
    """The recursion after one look: its boundaries, and the density of the paths that have not
    crossed yet on its Simpson grid (nodes, and density times weight)."""

    bounds: np.ndarray  # |z| per level
    nodes: np.ndarray  # levels × GRID_POINTS, on the Brownian scale
    mass: np.ndarray  # levels × GRID_POINTS
    spent: np.ndarray  # levels × 1: alpha spent so far


# States of the recursion kept: a look's state depends only on the looks up to it, so a read
# whose only new look is today's (which grows with every visitor) computes one look, not all.
# 512 states of about 15 kB each: a few MB per worker.
STATE_CACHE_SIZE = 512


@functools.lru_cache(maxsize=STATE_CACHE_SIZE)
def _look(fractions: tuple[float, ...], levels: tuple[float, ...]) -> _State:
    """The recursion's state after the last of ``fractions``, from the state before it.

    On the Brownian scale B_k = Z_k sqrt(t_k) the increments are independent N(0, t_k -
    t_{k-1}). The density of B_k on the paths that have not crossed yet lives on a Simpson
    grid over (-b_k, b_k); the probability of crossing at the next look, and that look's
    density, are sums over it with the increment's normal kernel.
    """
    alphas = np.asarray(levels, dtype=float)[:, None]
    side = special.ndtri(1.0 - alphas / 4.0)
    fraction = fractions[-1]
    previous = _look(fractions[:-1], levels) if len(fractions) > 1 else None
    previous_fraction = fractions[-2] if len(fractions) > 1 else 0.0
    previous_spent = np.zeros_like(alphas) if previous is None else previous.spent
    now_spent = 4.0 * special.ndtr(-side / math.sqrt(fraction))
    increment = np.maximum(now_spent - previous_spent, SMALLEST_INCREMENT)
    root = math.sqrt(fraction)
    spread = math.sqrt(fraction - previous_fraction)
    # the unconditional boundary: paths that crossed earlier only lower the crossing chance,
    # so the true boundary lies below it (Newton then runs from the safe side)
    bound = -root * special.ndtri(increment / 2.0)  # not ndtri(1 - p): p may be tiny
    if previous is not None:
        nodes, mass = previous.nodes, previous.mass
        for _ in range(NEWTON_STEPS):
            upper = (bound - nodes) / spread
            lower = (bound + nodes) / spread
            crossing = (mass * (special.ndtr(-upper) + special.ndtr(-lower))).sum(
                axis=1, keepdims=True
            )
            slope = (
                -(mass * (_density(upper) + _density(lower))).sum(axis=1, keepdims=True) / spread
            )
            # Newton on the logarithm: a normal tail's log is nearly a parabola in b, where
            # plain Newton crawls
            step = (np.log(crossing) - np.log(increment)) * crossing / slope
            bound = np.maximum(bound - step, 0.0)
    simpson = np.ones(GRID_POINTS)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    new_nodes = np.linspace(-1.0, 1.0, GRID_POINTS)[None, :] * bound
    weights = simpson[None, :] * bound * 2.0 / (GRID_POINTS - 1) / 3.0
    if previous is None:
        density = _density(new_nodes / root) / root
    else:
        kernel = _density((new_nodes[:, None, :] - nodes[:, :, None]) / spread) / spread
        density = np.einsum("ai,aij->aj", mass, kernel)
    return _State(bound[:, 0] / root, new_nodes, weights * density, now_spent)


def _density(values: np.ndarray) -> np.ndarray:
    """The standard normal density, elementwise."""
    density: np.ndarray = np.exp(-0.5 * values * values) / math.sqrt(2.0 * math.pi)
    return density
