"""The assignment procedure of spec/ASSIGNMENT.md: which variant a visitor sees, and why."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.core.bucketing import bucket_of
from server.core.conditions import Matcher, compile_condition
from server.core.models import BASIS_POINTS, Experiment, Status, Variant


class Reason(enum.StrEnum):
    """Why a visitor got their variant; only ``running`` means enrolled."""

    RUNNING = "running"  # in the experiment, counted from now on
    NOT_RUNNING = "not_running"  # draft or archived: control
    PAUSED = "paused"  # control until resumed
    STOPPED = "stopped"  # stopped without a winner: control
    WINNER = "winner"  # stopped with a winner: everyone sees it
    FORCED = "forced"  # QA: allow-list or force parameter
    BOT = "bot"  # crawlers see control and are never counted
    NOT_TARGETED = "not_targeted"  # attributes fail the experiment's conditions
    LAYER = "layer"  # the visitor's layer slot belongs to another experiment
    OUTSIDE_COVERAGE = "outside_coverage"  # in no variant's range at the current coverage


@dataclass(frozen=True, slots=True)
class Decision:
    """The variant a visitor sees, whether they are counted in the experiment, and why."""

    variant: Variant
    is_enrolled: bool
    reason: Reason


def decide(
    experiment: Experiment,
    visitor: str,
    attributes: Mapping[str, Any],
    *,
    forced: str | None = None,
    is_bot: bool = False,
    matches: Matcher | None = None,
) -> Decision:
    """Decide a visitor's variant by the spec's procedure, steps 1 to 5 in order.

    Args:
        experiment: the configuration; only fields the spec names are read.
        visitor: the visitor id, already validated (non-empty, at most 128 characters).
        attributes: what targeting conditions test (source, device, country, ...).
        forced: a variant key from a QA force parameter; unknown keys are ignored, so the
            API should refuse them before calling.
        is_bot: whether the request comes from a bot (see ``server.core.bots``).
        matches: ``compile_condition(experiment.conditions)``, built once per experiment
            revision; without it, conditions are compiled on every call (fine for tests).

    Raises:
        UnicodeEncodeError: ``visitor`` holds a lone surrogate (see ``bucket_of``).
    """
    control = experiment.variants[0]
    if experiment.status != Status.RUNNING:
        return _not_running(experiment, control)

    # Step 2: a QA request wins over everything but the status.
    if forced is not None or experiment.allow_list:
        variant = _forced_variant(experiment, visitor, forced)
        if variant is not None:
            return Decision(variant, False, Reason.FORCED)
    if is_bot:
        return Decision(control, False, Reason.BOT)

    # Step 3: targeting.
    if matches is None and experiment.conditions:
        matches = compile_condition(experiment.conditions)
    if matches is not None and not matches(attributes):
        return Decision(control, False, Reason.NOT_TARGETED)

    # Step 4: the experiment's slots in its layer.
    layer = experiment.layer
    if layer is not None and not layer.start <= bucket_of(visitor, layer.salt) < layer.end:
        return Decision(control, False, Reason.LAYER)

    # Step 5: each variant owns [cum, cum + width) with width scaled by coverage, while cum
    # advances by the full allocation; so raising coverage only widens ranges in place.
    bucket = bucket_of(visitor, experiment.assignment_salt)
    coverage = experiment.coverage
    start = 0
    for variant in experiment.variants:
        if start <= bucket < start + variant.allocation * coverage // BASIS_POINTS:
            return Decision(variant, True, Reason.RUNNING)
        start += variant.allocation
    return Decision(control, False, Reason.OUTSIDE_COVERAGE)


def _forced_variant(experiment: Experiment, visitor: str, forced: str | None) -> Variant | None:
    """The variant QA asked for: this request's force parameter, else the allow-list's entry."""
    # The force parameter is more specific than the standing allow-list, so it is tried first;
    # keys that name no variant (a stale QA link, a renamed variant) are skipped.
    for key in (forced, experiment.allow_list.get(visitor)):
        if key is not None:
            variant = experiment.variant(key)
            if variant is not None:
                return variant
    return None


def _not_running(experiment: Experiment, control: Variant) -> Decision:
    """Step 1: everybody sees the winner of a stopped experiment, or else the control."""
    if experiment.status == Status.STOPPED:
        winner = experiment.variant(experiment.winner) if experiment.winner is not None else None
        if winner is not None:
            return Decision(winner, False, Reason.WINNER)
        return Decision(control, False, Reason.STOPPED)
    if experiment.status == Status.PAUSED:
        return Decision(control, False, Reason.PAUSED)
    return Decision(control, False, Reason.NOT_RUNNING)
