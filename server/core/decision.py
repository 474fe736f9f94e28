"""The decision rule: what a shop owner should do now with an experiment, in money where possible.

Pure: a goal's statistics (``server.core.stats.GoalResult``), the sample ratio check, the
experiment's daily traffic and the forecast come in; one ``Decision`` goes out. The verdicts, in
the order they are tried (docs/statistics.md, "The decision"):

1. ``investigate`` — the sample ratio check raised its alarm: no figure can be trusted.
2. ``ship`` — a challenger is conclusively better than the control (its Holm-adjusted p-value
   is below alpha and its uplift positive); of several, the one with the largest uplift. When
   every challenger is conclusively worse, the verdict is ``ship`` the control.
3. ``stop`` — no effect worth waiting for is left: every challenger's interval of the relative
   uplift lies below the experiment's minimum effect, or the forecast needs more than
   ``MAXIMUM_WAIT_DAYS``.
4. ``keep-running`` — otherwise, for about the forecast's number of days (unknown without data).

Every decision carries the figures of the variant it is about (the one to ship, else the
challenger most likely to beat the control): the expected difference per 1,000 visitors and per
month at the current traffic, with the interval, the chance to be better, and the expected loss
per 1,000 visitors if it were shipped now. For a money goal they are in the shop's currency,
for a conversion goal in conversions.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from server.core.stats import GoalResult, Interval, SampleRatioMismatch, VariantResult

PER_VISITORS = 1000  # figures are per 1,000 visitors: a number a shop owner can picture
DAYS_PER_MONTH = 30  # a month of traffic; close enough for a projection with an interval
# Beyond eight weeks of further waiting, seasons and campaigns change the shop more than the
# variant does; an effect that needs longer is not worth waiting for.
MAXIMUM_WAIT_DAYS = 56


class Verdict(enum.StrEnum):
    """What to do now."""

    SHIP = "ship"
    KEEP_RUNNING = "keep-running"
    STOP = "stop"
    INVESTIGATE = "investigate"


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the figures of the variant it is about (None where undefined).

    ``variant`` is the variant to ship (possibly the control) for ``ship``, else the challenger
    most likely to beat the control. Money figures are in the shop's currency when
    ``is_money``, else in conversions.
    """

    verdict: Verdict
    goal: str
    is_money: bool
    variant: str | None
    challenger: str | None
    per_thousand: float | None
    per_thousand_interval: Interval | None
    per_month: float | None
    per_month_interval: Interval | None
    chance_to_be_better: float | None
    expected_loss_per_thousand: float | None
    days_left: int | None
    daily_visitors: float | None


def _scaled(value: float | None, factor: float | None) -> float | None:
    return None if value is None or factor is None else value * factor


def _scaled_interval(interval: Interval | None, factor: float | None) -> Interval | None:
    if interval is None or factor is None:
        return None
    return Interval(interval.lower * factor, interval.upper * factor)


def _is_better(result: VariantResult) -> bool:
    return result.is_significant and result.uplift is not None and result.uplift > 0


def _is_worse(result: VariantResult) -> bool:
    return result.is_significant and result.uplift is not None and result.uplift < 0


def _no_worthwhile_effect(result: VariantResult, minimum_effect: float) -> bool:
    interval = result.relative_uplift_interval
    return interval is not None and interval.upper < minimum_effect


def decide(
    goal: str,
    *,
    is_money: bool,
    result: GoalResult,
    variant_keys: Sequence[str],
    sample_ratio: SampleRatioMismatch,
    daily_visitors: float | None,
    days_left: int | None,
) -> Decision:
    """The verdict for one goal of an experiment (see the module docstring for the rule).

    Args:
        goal: the key of the goal the decision is about.
        is_money: the goal's estimates are money per visitor (revenue or margin).
        result: the goal's statistics, variant 0 being the control.
        variant_keys: the variants' keys in the order of ``result.variants``.
        sample_ratio: the experiment's sample ratio check.
        daily_visitors: visitors the experiment enrols per day lately (None: unknown).
        days_left: days the forecast still needs for the minimum effect (None: unknown).
    """
    challengers = [variant for variant in result.variants[1:] if variant.uplift is not None]
    better = [variant for variant in challengers if _is_better(variant)]
    if better:
        chosen: VariantResult | None = max(better, key=lambda variant: variant.uplift or 0.0)
    else:
        chosen = max(
            challengers, key=lambda variant: variant.chance_to_beat_control or 0.0, default=None
        )
    is_futile = (
        bool(challengers)
        and all(_no_worthwhile_effect(variant, result.minimum_effect) for variant in challengers)
    ) or (days_left is not None and days_left > MAXIMUM_WAIT_DAYS)
    if sample_ratio.is_mismatch:
        verdict, shipped = Verdict.INVESTIGATE, None
    elif better:
        verdict, shipped = Verdict.SHIP, chosen
    elif (
        challengers
        and len(challengers) == len(result.variants) - 1
        and all(_is_worse(variant) for variant in challengers)
    ):
        verdict, shipped = Verdict.SHIP, result.variants[0]
    elif is_futile:
        verdict, shipped = Verdict.STOP, None
    else:
        verdict, shipped = Verdict.KEEP_RUNNING, None
    monthly = None if daily_visitors is None else daily_visitors * DAYS_PER_MONTH
    uplift = None if chosen is None else chosen.uplift
    interval = None if chosen is None else chosen.uplift_interval
    return Decision(
        verdict=verdict,
        goal=goal,
        is_money=is_money,
        variant=None if shipped is None else variant_keys[shipped.variant],
        challenger=None if chosen is None else variant_keys[chosen.variant],
        per_thousand=_scaled(uplift, PER_VISITORS),
        per_thousand_interval=_scaled_interval(interval, PER_VISITORS),
        per_month=_scaled(uplift, monthly),
        per_month_interval=_scaled_interval(interval, monthly),
        chance_to_be_better=None if chosen is None else chosen.chance_to_beat_control,
        expected_loss_per_thousand=_scaled(
            None if chosen is None else chosen.expected_loss, PER_VISITORS
        ),
        days_left=days_left if verdict == Verdict.KEEP_RUNNING else None,
        daily_visitors=daily_visitors,
    )
