"""Guardrails: which watched goals show a significant harm, corrected over all of them (pure).

A guardrail is a goal an experiment must not make worse (margin, return rate, complaints). Its
comparisons come in as ``GoalResult``s of the always-valid test (the mSPRT of
``server.core.stats``), so that the evaluator may look every minute without raising the
false-alarm rate: the always-valid p-value stays valid at any number of looks. All comparisons
of all guardrails form one family whose p-values are Holm-adjusted together, so that the chance
of any false alarm stays at alpha however many guardrails and variants are watched. A comparison
is a harm when its adjusted p-value is below alpha, it meets the minimum-evidence rule, and its
uplift points in the goal's harm direction (docs/statistics.md, "Guardrails").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.core.models import Goal, Harm
from server.core.stats import DEFAULT_ALPHA, JUDGED, GoalResult, Interval, holm


@dataclass(frozen=True, slots=True)
class GuardrailCheck:
    """One challenger on one guardrail goal: its change, evidence, and whether it is a harm.

    ``p_value`` is the always-valid p-value of "no difference"; ``adjusted_p_value`` the Holm
    adjustment over every guardrail comparison of the experiment (None below the
    minimum-evidence rule, where ``status`` is ``not_enough_data``).
    """

    goal: str
    harm: Harm
    variant: str
    uplift: float | None
    uplift_interval: Interval | None
    p_value: float | None
    adjusted_p_value: float | None
    is_harmful: bool
    status: str


def _points_to_harm(uplift: float | None, harm: Harm) -> bool:
    if uplift is None:
        return False
    return uplift > 0.0 if harm is Harm.INCREASE else uplift < 0.0


def judge(
    watched: Sequence[tuple[Goal, GoalResult]],
    variant_keys: Sequence[str],
    alpha: float = DEFAULT_ALPHA,
) -> tuple[GuardrailCheck, ...]:
    """Judge every challenger of every guardrail goal against the control.

    Args:
        watched: the guardrail goals with their always-valid results (variant 0 the control).
        variant_keys: the variants' keys in the order of the results' variants.
        alpha: the family-wise false-alarm rate over all guardrail comparisons.
    """
    comparisons = [(goal, variant) for goal, result in watched for variant in result.variants[1:]]
    # every p-value takes part in the family, also those below the minimum-evidence rule, so
    # that the others are never adjusted for fewer comparisons than were made
    adjusted = holm([variant.p_value for _, variant in comparisons])
    checks = []
    for (goal, variant), corrected in zip(comparisons, adjusted, strict=True):
        is_judged = variant.status == JUDGED
        corrected = corrected if is_judged else None
        checks.append(
            GuardrailCheck(
                goal=goal.key,
                harm=goal.harm,
                variant=variant_keys[variant.variant],
                uplift=variant.uplift,
                uplift_interval=variant.uplift_interval,
                p_value=variant.p_value,
                adjusted_p_value=corrected,
                is_harmful=corrected is not None
                and corrected < alpha
                and _points_to_harm(variant.uplift, goal.harm),
                status=variant.status,
            )
        )
    return tuple(checks)
