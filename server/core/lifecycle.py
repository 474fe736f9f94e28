"""Pure rules of an experiment's life: weights, status transitions, allowed edits, layer slots."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from server.core.errors import Conflict, InvalidInput, TransitionRefused
from server.core.models import BASIS_POINTS, Experiment, Goal, Layer, Status

# action name → (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "start": (frozenset({Status.DRAFT}), Status.RUNNING),
    "pause": (frozenset({Status.RUNNING}), Status.PAUSED),
    "resume": (frozenset({Status.PAUSED}), Status.RUNNING),
    "stop": (frozenset({Status.RUNNING, Status.PAUSED}), Status.STOPPED),
    "archive": (frozenset({Status.STOPPED}), Status.ARCHIVED),
}

# A new phase re-randomises a live experiment; a stopped one is finished and gets a new experiment.
NEW_PHASE_FROM = frozenset({Status.RUNNING, Status.PAUSED})

# Statuses whose experiments hold their layer slots; stopped ones no longer enrol anybody.
HOLDS_LAYER_SLOTS = frozenset({Status.DRAFT, Status.RUNNING, Status.PAUSED})

# Only drafts (never ran) and archived experiments (finished, read) may be deleted.
DELETABLE = frozenset({Status.DRAFT, Status.ARCHIVED})

# Fields that each status allows to change; "variants" while live allows payload edits only
# and "coverage" only growth (spec/ASSIGNMENT.md: neither moves an enrolled visitor).
EDITABLE: dict[Status, frozenset[str]] = {
    Status.DRAFT: frozenset(
        {
            "name",
            "hypothesis",
            "variants",
            "coverage",
            "layer",
            "conditions",
            "goals",
            "segments",
            "allow_list",
            "analysis",
            "minimum_effect",
            "pause_on_harm",
            "shards",  # the sub-shards hold the data: fixed once visitors are enrolled
        }
    ),
    Status.RUNNING: frozenset(
        {
            "name",
            "hypothesis",
            "variants",
            "coverage",
            "conditions",
            "goals",
            "allow_list",
            "analysis",
            "minimum_effect",
            "pause_on_harm",
        }
    ),
    Status.STOPPED: frozenset({"name", "hypothesis", "winner", "analysis", "minimum_effect"}),
    Status.ARCHIVED: frozenset(),  # read only: an archive is the record of what ran
}
EDITABLE[Status.PAUSED] = EDITABLE[Status.RUNNING]


def normalise_weights(weights: Sequence[float]) -> list[int]:
    """Turn positive weights into basis points that sum to exactly 10000.

    Each variant gets the floor of its exact share; the points left over go one each to the
    variants with the largest remainders, earlier variants first on ties (spec/ASSIGNMENT.md).
    Fractions keep it exact, so every implementation gets the same answer.

    Raises:
        InvalidInput: a weight is not positive, or too small to get a single basis point.
    """
    exact = [Fraction(weight) for weight in weights]
    for index, weight in enumerate(exact):
        if weight <= 0:
            raise InvalidInput(
                "weights must be positive", {"variants": {str(index): {"weight": ["must be > 0"]}}}
            )
    total = sum(exact)
    shares = [weight * BASIS_POINTS / total for weight in exact]
    allocations = [int(share) for share in shares]
    left_over = BASIS_POINTS - sum(allocations)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - allocations[i]), i))
    for index in by_remainder[:left_over]:
        allocations[index] += 1
    for index, allocation in enumerate(allocations):
        if allocation == 0:
            raise InvalidInput(
                "a weight is too small to receive one basis point (0.01%)",
                {"variants": {str(index): {"weight": ["too small relative to the others"]}}},
            )
    return allocations


def transition(experiment: Experiment, action: str, now: float) -> Experiment:
    """Apply a lifecycle action, or raise TransitionRefused naming the allowed statuses."""
    sources, target = TRANSITIONS[action]
    if experiment.status not in sources:
        allowed = ", ".join(sorted(status.value for status in sources))
        raise TransitionRefused(
            f"cannot {action} an experiment that is {experiment.status.value} "
            f"(allowed from: {allowed})"
        )
    changes: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "start":
        changes["started_at"] = now
    if action == "stop":
        changes["stopped_at"] = now
    return dataclasses.replace(experiment, **changes)


def stop(experiment: Experiment, winner: str | None, now: float) -> Experiment:
    """Stop the experiment; ``winner`` (a variant key) is what everybody sees from now on."""
    check_winner(experiment, winner)
    return dataclasses.replace(transition(experiment, "stop", now), winner=winner)


def new_phase(experiment: Experiment, changes: Mapping[str, Any], now: float) -> Experiment:
    """Start a new phase: a new salt re-randomises everybody, counts start afresh.

    ``changes`` may carry new ``variants`` and ``coverage``: a new phase is the only way to
    change allocations or lower coverage of a live experiment.
    """
    if experiment.status not in NEW_PHASE_FROM:
        raise TransitionRefused(
            f"cannot start a new phase of an experiment that is {experiment.status.value} "
            "(allowed from: paused, running)"
        )
    phase = experiment.phase + 1
    return dataclasses.replace(
        experiment,
        **changes,
        phase=phase,
        salt=f"{experiment.key}:phase-{phase}",
        started_at=now,
        updated_at=now,
    )


def check_editable(experiment: Experiment, names: Iterable[str]) -> None:
    """Refuse fields the experiment's status does not allow to change (409 naming them)."""
    allowed = EDITABLE[experiment.status]
    refused = sorted(name for name in names if name not in allowed)
    if refused:
        raise Conflict(
            f"cannot change {', '.join(refused)} of an experiment that is "
            f"{experiment.status.value}",
            {name: [f"not editable while {experiment.status.value}"] for name in refused},
        )


def check_update(experiment: Experiment, changes: Mapping[str, Any]) -> None:
    """Refuse model changes that would move enrolled visitors of a live experiment (409)."""
    check_editable(experiment, changes)
    if experiment.status not in (Status.RUNNING, Status.PAUSED):
        return
    coverage = changes.get("coverage", experiment.coverage)
    if coverage < experiment.coverage:
        raise Conflict(
            "coverage of a live experiment can only grow; start a new phase to lower it",
            {"coverage": [f"must be at least {experiment.coverage}"]},
        )
    if "goals" in changes:
        _check_windows(experiment, changes["goals"])
    if "variants" in changes:
        before = [(variant.key, variant.allocation) for variant in experiment.variants]
        after = [(variant.key, variant.allocation) for variant in changes["variants"]]
        if before != after:
            raise Conflict(
                "variant keys and weights of a live experiment are fixed; "
                "start a new phase to change them",
                {"variants": ["only payloads may change while the experiment is live"]},
            )


def _check_windows(experiment: Experiment, goals: Sequence[Goal]) -> None:
    """Refuse a new or changed attribution window on a live experiment (409).

    Enrolment times are kept only while an experiment has a windowed goal, and a window that
    changed halfway would mix visitors counted under two windows in one matured figure.
    """
    before = {goal.key: (goal.window_days, goal.return_days) for goal in experiment.goals}
    for index, goal in enumerate(goals):
        window = (goal.window_days, goal.return_days)
        if before.get(goal.key, (None, None)) != window:
            raise Conflict(
                "attribution windows of a live experiment are fixed; "
                "start a new experiment to change them",
                {"goals": {str(index): {"window_days": ["fixed once the experiment started"]}}},
            )


def check_winner(experiment: Experiment, winner: str | None) -> None:
    """Refuse a winner that is not one of the experiment's variants."""
    if winner is not None and experiment.variant(winner) is None:
        raise InvalidInput("unknown winner", {"winner": [f"no variant {winner!r}"]})


def allocate_layer_slots(
    name: str,
    size: int | None,
    start: int | None,
    end: int | None,
    owner: str,
    others: Iterable[Experiment],
) -> Layer:
    """Find the slot range of a layer for ``owner``: the one asked for, or the first free gap.

    Raises:
        Conflict: the range overlaps another experiment of the layer, or no gap is big enough.
        InvalidInput: the range is empty or outside 0..10000.
    """
    taken = sorted(
        (other.layer.start, other.layer.end, other.key)
        for other in others
        if other.layer is not None
        and other.layer.name == name
        and other.key != owner
        and other.status in HOLDS_LAYER_SLOTS
    )
    if start is not None or end is not None:
        if start is None or end is None or not 0 <= start < end <= BASIS_POINTS:
            raise InvalidInput(
                "layer range must satisfy 0 <= start < end <= 10000",
                {"layer": ["start and end must both be given, 0 <= start < end <= 10000"]},
            )
        for other_start, other_end, other_key in taken:
            if start < other_end and other_start < end:
                raise Conflict(
                    f"layer {name!r} slots {start}-{end} overlap experiment {other_key!r} "
                    f"({other_start}-{other_end})",
                    {"layer": [f"overlaps {other_key}"]},
                )
        return Layer(name=name, start=start, end=end)
    wanted = BASIS_POINTS if size is None else size
    cursor = 0
    for other_start, other_end, _ in [*taken, (BASIS_POINTS, BASIS_POINTS, "")]:
        if other_start - cursor >= wanted:
            return Layer(name=name, start=cursor, end=cursor + wanted)
        cursor = max(cursor, other_end)
    free = BASIS_POINTS - sum(other_end - other_start for other_start, other_end, _ in taken)
    raise Conflict(
        f"layer {name!r} has no free range of {wanted} slots ({free} free in all)",
        {"layer": [f"no free range of {wanted} slots"]},
    )
