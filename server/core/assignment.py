"""The server's side of spec/ASSIGNMENT.md: an experiment compiled for the SDK's decision.

The procedure itself (status, forcing, bots, targeting, layer, coverage) is written once, in
the SDK's pure ``splitwerk.evaluation``, which the server imports. Here the server's model is
turned into that compiled form, the allow-list (server-only data) is resolved, and the answer
comes back as the server's ``Variant``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from server.core.conditions import compile_condition
from server.core.models import Experiment, Variant
from splitwerk.evaluation import Experiment as Rule
from splitwerk.reasons import Reason

__all__ = ["Compiled", "Decision", "Reason", "compile_experiment", "decide"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The variant a visitor sees, whether they are counted in the experiment, and why."""

    variant: Variant
    is_enrolled: bool
    reason: Reason


@dataclass(frozen=True, slots=True)
class Compiled:
    """An experiment ready for ``decide``: the SDK's compiled rule and the variants by key."""

    rule: Rule
    variants: Mapping[str, Variant]


def compile_experiment(experiment: Experiment) -> Compiled:
    """Compile ``experiment`` once per revision (a 10000-entry table, conditions as closures).

    Raises:
        ConditionError: the experiment's conditions are invalid (refused when it was saved).
    """
    if experiment.conditions:
        compile_condition(experiment.conditions)  # refuse here with the server's error
    layer = experiment.layer
    rule = Rule(
        key=experiment.key,
        salt=experiment.assignment_salt,
        status=experiment.status.value,
        variants=[(v.key, v.allocation, v.payload) for v in experiment.variants],
        coverage=experiment.coverage,
        layer=(layer.salt, layer.start, layer.end) if layer is not None else None,
        winner=experiment.winner,
        condition=experiment.conditions or None,
        segments=frozenset(experiment.segments),
    )
    return Compiled(rule, {variant.key: variant for variant in experiment.variants})


def decide(
    experiment: Experiment,
    visitor: str,
    attributes: Mapping[str, Any],
    *,
    forced: str | None = None,
    is_bot: bool = False,
    compiled: Compiled | None = None,
) -> Decision:
    """Decide a visitor's variant by the spec's procedure, steps 1 to 5 in order.

    Args:
        experiment: the configuration; only fields the spec names are read.
        visitor: the visitor id, already validated (non-empty, at most 128 characters).
        attributes: what targeting conditions test (source, device, country, ...).
        forced: a variant key from a QA force parameter; unknown keys are ignored, so the
            API should refuse them before calling.
        is_bot: whether the request comes from a bot (see ``server.core.bots``).
        compiled: ``compile_experiment(experiment)``, built once per experiment revision;
            without it, the experiment is compiled on every call (fine for tests).

    Raises:
        UnicodeEncodeError: ``visitor`` holds a lone surrogate (see ``splitwerk.bucketing``).
    """
    if compiled is None:
        compiled = compile_experiment(experiment)
    # The force parameter is more specific than the standing allow-list, so it is tried first;
    # keys that name no variant (a stale QA link, a renamed variant) are skipped.
    if forced not in compiled.variants:
        forced = experiment.allow_list.get(visitor) if experiment.allow_list else None
    answer = compiled.rule.evaluate(visitor, attributes, forced=forced, is_bot=is_bot)
    # The rule only answers with keys of the experiment's variants (never None here), and
    # with members of Reason (cast, not Reason(...): the enum call costs ~1 µs per answer).
    variant = compiled.variants[answer.variant or experiment.variants[0].key]
    return Decision(variant, answer.enrolled, cast(Reason, answer.reason))
