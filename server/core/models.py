"""Domain values of Splitwerk as frozen dataclasses: experiments, variants, layers, goals."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

BASIS_POINTS = 10_000  # allocations, coverage and layer slots are counted in 1/100 of a percent
# German buyers may send goods back within 14 days of delivery: the default return period a
# windowed revenue or margin goal waits after its window before a visitor's figures are final
DEFAULT_RETURN_DAYS = 14
SECONDS_PER_DAY = 86_400
SECONDS_PER_MINUTE = 60  # enrolment times of windowed goals are kept in unix minutes


class Status(enum.StrEnum):
    """Lifecycle states of an experiment (see ``server.core.lifecycle``)."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ARCHIVED = "archived"


class GoalKind(enum.StrEnum):
    """What a goal measures: reaching it, the net revenue, or the contribution margin."""

    CONVERSION = "conversion"
    REVENUE = "revenue"
    MARGIN = "margin"


class Harm(enum.StrEnum):
    """The direction of a guardrail goal that counts as harm: its figure going up or down."""

    INCREASE = "increase"  # e.g. a return rate or a complaint goal
    DECREASE = "decrease"  # e.g. a margin or a conversion (the default)


class Analysis(enum.StrEnum):
    """How results are judged (docs/statistics.md).

    ``sequential`` (the default) looks every day: a group sequential test over the planned size
    when the power calculation gives one, else the always-valid mSPRT. ``always_valid`` is the
    mSPRT always, for open-ended experiments. ``fixed`` is one test at the planned end.
    """

    SEQUENTIAL = "sequential"
    ALWAYS_VALID = "always_valid"
    FIXED = "fixed"


class Role(enum.StrEnum):
    """Token roles; an editor may do everything a viewer may."""

    VIEWER = "viewer"
    EDITOR = "editor"
    PREVIEW = "preview"  # may force variants on /v1/assign for QA
    INGEST = "ingest"  # may send money-carrying events (orders, refunds)


@dataclass(frozen=True)
class Variant:
    """One version of the page; ``allocation`` is its share in basis points."""

    key: str
    weight: float
    allocation: int
    payload: Any = None


@dataclass(frozen=True)
class Layer:
    """Slots ``[start, end)`` of a named layer that this experiment owns exclusively.

    ``salt`` is the salt of the layer hash, shared by every experiment of the layer; it
    defaults to ``layer:<name>``.
    """

    name: str
    start: int
    end: int
    salt: str = ""

    def __post_init__(self) -> None:
        if not self.salt:
            object.__setattr__(self, "salt", f"layer:{self.name}")


@dataclass(frozen=True)
class Goal:
    """A named outcome; ``event`` is the event goal name it listens to."""

    key: str
    kind: GoalKind = GoalKind.CONVERSION
    is_primary: bool = False
    event: str = ""
    # a revenue or margin goal that takes the value of conversions sent without the ingest key,
    # which anyone can forge (README "Security")
    accepts_browser_value: bool = False
    # a guardrail is watched for harm (server.core.guardrails): a significant change in the
    # ``harm`` direction raises an alarm and may pause the experiment
    is_guardrail: bool = False
    harm: Harm = Harm.DECREASE
    # attribution window (issue 21): count events for this many days after each visitor's
    # enrolment, also after the experiment stopped; None counts while the experiment runs
    window_days: int | None = None
    # days after the window during which refunds still count (None: DEFAULT_RETURN_DAYS for
    # revenue and margin goals, 0 for conversion goals); only with a window
    return_days: int | None = None

    @property
    def event_name(self) -> str:
        """The event goal that feeds this goal (defaults to the goal's own key)."""
        return self.event or self.key

    @property
    def is_windowed(self) -> bool:
        """Whether the goal counts per visitor for a fixed window after enrolment."""
        return self.window_days is not None

    @property
    def return_period_days(self) -> int:
        """Days after the window that refunds (and late sends) still count."""
        if self.return_days is not None:
            return self.return_days
        return 0 if self.kind == GoalKind.CONVERSION else DEFAULT_RETURN_DAYS

    @property
    def settle_days(self) -> int:
        """Days after a visitor's enrolment until their figures of this goal are final."""
        return (self.window_days or 0) + self.return_period_days


@dataclass(frozen=True)
class AuditEntry:
    """Who changed what on an experiment, and when (unix seconds)."""

    at: float
    actor: str
    action: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """An experiment's full configuration, as stored and as assignment reads it."""

    key: str
    name: str
    variants: tuple[Variant, ...]
    hypothesis: str = ""
    coverage: int = BASIS_POINTS
    layer: Layer | None = None
    conditions: Mapping[str, Any] | None = None
    goals: tuple[Goal, ...] = ()
    segments: tuple[str, ...] = ()
    allow_list: Mapping[str, str] = field(default_factory=dict)
    status: Status = Status.DRAFT
    winner: str | None = None
    phase: int = 1
    salt: str = ""
    analysis: Analysis = Analysis.SEQUENTIAL
    minimum_effect: float = 0.05
    pause_on_harm: bool = False  # a guardrail's harm pauses the experiment (not only alarms)
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    stopped_at: float | None = None
    revision: int = 0
    # Sub-shards of the per-visitor data and counters in Redis (README "Redis Cluster"): more
    # than one spreads one experiment over several cluster nodes; fixed once it leaves draft.
    shards: int = 1
    # The first phase whose capped sums are stored as their difference from the uncapped ones
    # (storage/keys.py "ds"); phases before it, recorded by earlier versions, keep cs/cq/cqh.
    capped_differences_from: int = 1

    def stores_capped_differences(self, phase: int) -> bool:
        """Whether the counters of ``phase`` hold the capped sums as differences (ds/dq/dqh)."""
        return phase >= self.capped_differences_from

    @property
    def control(self) -> Variant:
        """The first variant, which every visitor who is not enrolled sees."""
        return self.variants[0]

    @property
    def assignment_salt(self) -> str:
        """The salt of the bucket hash; the spec's default is the experiment key."""
        return self.salt or self.key

    @property
    def primary_goal(self) -> Goal | None:
        """The goal that decides the experiment, if any goal is defined."""
        return next((goal for goal in self.goals if goal.is_primary), None)

    @property
    def guardrails(self) -> tuple[Goal, ...]:
        """The goals watched for harm."""
        return tuple(goal for goal in self.goals if goal.is_guardrail)

    def variant(self, key: str) -> Variant | None:
        """The variant with this key, or None."""
        return next((variant for variant in self.variants if variant.key == key), None)

    @property
    def windowed_goals(self) -> tuple[Goal, ...]:
        """The goals with an attribution window (issue 21)."""
        return tuple(goal for goal in self.goals if goal.is_windowed)

    @property
    def windows_close_at(self) -> float | None:
        """When the last visitor's window (without the return period) closes: the stop plus the
        longest window; None while the experiment may still enrol or has no windowed goal."""
        if self.stopped_at is None or not self.windowed_goals:
            return None
        longest = max(goal.window_days or 0 for goal in self.windowed_goals)
        return self.stopped_at + longest * SECONDS_PER_DAY

    @property
    def matures_at(self) -> float | None:
        """When every visitor's figures are final: the stop plus the longest window and return
        period; None while the experiment may still enrol or has no windowed goal."""
        if self.stopped_at is None or not self.windowed_goals:
            return None
        longest = max(goal.settle_days for goal in self.windowed_goals)
        return self.stopped_at + longest * SECONDS_PER_DAY

    def has_matured(self, now: float) -> bool:
        """Whether every visitor's figures are final at ``now`` (past ``matures_at``); False
        while it may still enrol or has no windowed goal."""
        matures_at = self.matures_at
        return matures_at is not None and now > matures_at

    def figures_change(self, now: float) -> bool:
        """Whether its results can still change at ``now``: it runs or is paused, or it stopped
        but a visitor's attribution window or return period is still open (``matures_at``)."""
        if self.status in (Status.RUNNING, Status.PAUSED):
            return True
        return (
            self.status is Status.STOPPED
            and bool(self.windowed_goals)
            and not self.has_matured(now)
        )


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A request to record a visitor in one experiment phase (or only look the record up).

    ``visitor`` is the pseudonym, never the raw id; ``variant_index`` is None for a look-up;
    ``segment_values`` line up with the experiment's ``segments``; ``covariate`` is recorded
    with a first enrolment only (a returning visitor keeps the first one).
    """

    experiment: str
    phase: int
    visitor: str
    variant_index: int | None
    segments: tuple[str, ...]
    segment_values: tuple[str, ...]
    shards: int = 1  # the experiment's sub-shards (Experiment.shards)
    minute: int | None = None  # unix minute of the enrolment, kept for windowed goals only
    covariate: int | None = None  # CUPED's pre-experiment covariate in hundredths (issue 20)


@dataclass(frozen=True, slots=True)
class EnrolmentOutcome:
    """What Redis holds for a visitor after an enrolment: the variant and if it is new."""

    variant_index: int | None  # None: not enrolled
    is_new: bool


# GoalValue and Attribution are named tuples, not frozen dataclasses: the event intake makes
# one per event, experiment and goal, and a frozen dataclass's __init__ (one object.__setattr__
# per field) costs twice a named tuple's. They stay immutable all the same.
class GoalValue(NamedTuple):
    """What one event adds to one goal of an experiment, in cents (0 for conversion goals)."""

    goal: str
    kind: GoalKind
    cents: int
    window_minutes: int = 0  # a windowed goal's window (issue 21); 0: not windowed
    settle_minutes: int = 0  # the window plus the return period


class Attribution(NamedTuple):
    """One conversion or order, to be counted in one experiment phase if the visitor is in it.

    ``member`` is the idempotency key of the event and ``digest`` 24 bits of a hash of its
    content (a retry with other content is a conflict); ``order_id`` is empty for conversions.
    """

    experiment: str
    phase: int
    visitor: str
    member: str
    day: str
    segments: tuple[str, ...]
    goals: tuple[GoalValue, ...]
    order_id: str = ""
    gross: int = 0
    net_revenue: int = 0
    digest: int = 0
    shards: int = 1  # the experiment's sub-shards (Experiment.shards)
    minute: int = 0  # unix minute of the event (its ts), for windowed goals
    capped_differences: bool = True  # Experiment.stores_capped_differences(phase)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """Where an order was counted: the experiment phase and its gross and net cents."""

    experiment: str
    phase: int
    gross: int
    net_revenue: int
    shard: int = 0  # the sub-shard that holds the order, of
    shards: int = 1  # the experiment's sub-shards


@dataclass(frozen=True, slots=True)
class RefundWrite:
    """A refund to take off an order recorded in one experiment phase."""

    order: OrderRecord
    order_id: str
    member: str
    day: str
    amount: int
    reduction: int
    segments: tuple[str, ...]
    digest: int = 0  # 24 bits of a hash of the refund's content (see Attribution)
    capped_differences: bool = True  # Experiment.stores_capped_differences(order.phase)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook announcement waiting in the outbox: its id, event type, JSON body and the
    attempts made so far."""

    id: str
    type: str
    body: str
    attempts: int = 0
