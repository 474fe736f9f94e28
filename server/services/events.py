"""Use cases of conversion tracking: record event batches exactly once, and erase a visitor.

An event counts in every running experiment whose goals listen to it and in which the visitor
is enrolled; the shop does not need to know which experiments run. Conversions and orders go
to Redis in one round trip per batch; refunds need a look-up of their order first.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from server.core.errors import InvalidInput
from server.core.models import (
    SECONDS_PER_MINUTE,
    Attribution,
    Experiment,
    Goal,
    GoalKind,
    GoalValue,
    RefundWrite,
    Status,
)
from server.core.money import (
    MAX_VISITOR_TOTAL_CENTS,
    format_cents,
    order_amounts,
    refund_reduction,
)
from server.core.privacy import Pseudonymiser
from server.services.assignments import Assigner, AssignRequest, utc_day
from server.services.experiments import SECONDS_PER_DAY, ExperimentCache, Snapshot
from server.storage import keys
from server.storage.store import Store

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
IGNORED = "ignored"
REJECTED = "rejected"
FUTURE_TOLERANCE = 300  # seconds an event's ts may lie ahead of the server clock (clock skew)
MONEY_EVENTS = frozenset({"order", "refund"})  # need the ingest key: a visitor cannot forge them
DIGEST_MASK = (1 << 24) - 1  # 24 bits of content digest per idempotency entry (storage/keys.py)
MINUTES_PER_DAY = 1440  # windows travel to the Lua scripts in minutes, like enrolment times
_NOT_CONTENT = frozenset({"id", "ts"})  # fields a retry with the "same content" may change
# an event's content fields in sorted order, by its fields in their order (_digest): the fast
# loaders give one order per type, the schemas a few; at most this many are kept
CONTENT_SHAPES = 64
_CONTENT_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}

# Replies of the Lua scripts (storage/lua/*.lua); -1, "not enrolled" or "no such order", and
# anything unknown make an event "ignored"
_COUNTED, _REPLAYED, _DUPLICATE, _OVER_REFUND, _NOT_ENROLLED = 1, 2, 0, -2, -1
_DAILY_LIMIT, _CONFLICT, _TOTAL_LIMIT, _ODD_COUNTER = -3, -4, -5, -6


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What happened to one event of a batch."""

    status: str
    errors: Mapping[str, Any] | None = None


# the outcomes without errors, shared (EventOutcome is immutable): most of a batch's answers
_ACCEPTED_OUTCOME = EventOutcome(ACCEPTED)
_DUPLICATE_OUTCOME = EventOutcome(DUPLICATE)
_IGNORED_OUTCOME = EventOutcome(IGNORED)


def _combine(replies: Sequence[int], money_field: str, daily_conversions: int) -> EventOutcome:
    """An event is accepted if any experiment counted it (now or when first sent with the same
    content), a conflict if its id came before with other content, a duplicate if all had
    seen it; ``money_field`` is the field a refused amount is named by, ``daily_conversions``
    the cap a refused conversion met."""
    if _COUNTED in replies or _REPLAYED in replies:
        return _ACCEPTED_OUTCOME
    if _CONFLICT in replies:
        return EventOutcome(CONFLICT, {"id": ["was sent before with other content; send a new id"]})
    if _DUPLICATE in replies:
        return _DUPLICATE_OUTCOME
    if _OVER_REFUND in replies:
        return EventOutcome(
            REJECTED, {"amount": ["exceeds what is left of the order after earlier refunds"]}
        )
    if _TOTAL_LIMIT in replies:
        limit = format_cents(MAX_VISITOR_TOTAL_CENTS)
        return EventOutcome(
            REJECTED,
            {money_field: [f"takes the visitor's total of a value goal beyond ±{limit}"]},
        )
    if _DAILY_LIMIT in replies:
        return EventOutcome(
            REJECTED,
            {"id": [f"more than {daily_conversions} new conversion ids of this visitor today"]},
        )
    if _ODD_COUNTER in replies:
        return EventOutcome(
            REJECTED, {"goal": ["a stored counter of this goal is inconsistent; not counted"]}
        )
    return _IGNORED_OUTCOME


def _digest(event: Mapping[str, Any]) -> int:
    """24 bits of a checksum of what an event counts: every loaded field but ``id`` (the key of
    conversions and refunds; a fresh one per send of an order by the SDK) and ``ts`` (a
    re-sent order may carry the time of sending).

    CRC-32, not a cryptographic hash: the digest only tells a retry from a different event
    under the same id (a collision, 1 in 16.7 million, answers "accepted" where "conflict" was
    due; it never counts anything twice), and it costs a few microseconds per event.
    """
    shape = tuple(event)
    names = _CONTENT_NAMES.get(shape)
    if names is None:
        names = tuple(name for name in sorted(event) if name not in _NOT_CONTENT)
        if len(_CONTENT_NAMES) < CONTENT_SHAPES:
            _CONTENT_NAMES[shape] = names
    return zlib.crc32(repr([event[name] for name in names]).encode()) & DIGEST_MASK


# event name -> the running experiments whose goals listen to it, with those goals
Listeners = dict[str, list[tuple[Experiment, tuple[Goal, ...]]]]


def _takes_from_browser(goal: Goal) -> bool:
    """Whether an anonymous conversion counts in this goal (its value can be forged)."""
    return goal.kind == GoalKind.CONVERSION or goal.accepts_browser_value


def _counting(
    listening: Sequence[tuple[Experiment, tuple[Goal, ...]]], now: float, *, is_trusted: bool
) -> Sequence[tuple[Experiment, tuple[Goal, ...]]]:
    """The experiments and goals an event may count in, in one pass over its listeners.

    Left out: experiments no longer running whose every window and return period has ended
    (record_event.lua would refuse each visitor's event anyway; this spares the work). A
    conversion sent without the ingest key counts only in conversion goals and in value goals
    that opted in with ``accept_browser_value``: anyone can send it with any value.
    """
    counting = []
    for experiment, goals in listening:
        if experiment.status is not Status.RUNNING and experiment.has_matured(now):
            continue
        taking = goals if is_trusted else tuple(g for g in goals if _takes_from_browser(g))
        if taking:
            counting.append((experiment, taking))
    return counting


def _goal_value(goal: Goal, cents: int) -> GoalValue:
    """What an event adds to one goal, with the goal's window in minutes when it has one."""
    if goal.window_days is None:
        return GoalValue(goal.key, goal.kind, cents)
    return GoalValue(
        goal.key,
        goal.kind,
        cents,
        goal.window_days * MINUTES_PER_DAY,
        goal.settle_days * MINUTES_PER_DAY,
    )


class _Counted(NamedTuple):
    """What one conversion or order brings to every experiment it counts in (``_attribution``);
    a tuple: one is made per event of a batch, and a frozen dataclass's __init__ costs a
    setattr call per field."""

    visitor: str
    member: str
    day: str
    values: Mapping[GoalKind, int]  # cents per goal kind
    order_id: str
    gross: int
    net_revenue: int
    digest: int
    minute: int


def _counted(event: Mapping[str, Any], visitor: str, day: str, moment: float) -> _Counted:
    """An event's part of its attributions, computed once for all its experiments."""
    if event["type"] == "order":
        amounts = order_amounts(
            event["revenue"],
            event["tax"],
            event["shipping"],
            event["cost_of_goods"],
            event["payment_fee"],
        )
        return _Counted(
            visitor,
            keys.order_member(event["order_id"]),
            day,
            {
                GoalKind.CONVERSION: 0,
                GoalKind.REVENUE: amounts.net_revenue,
                GoalKind.MARGIN: amounts.margin,
            },
            event["order_id"],
            amounts.gross,
            amounts.net_revenue,
            _digest(event),
            int(moment // SECONDS_PER_MINUTE),
        )
    value = event["value"]
    return _Counted(
        visitor,
        keys.conversion_member(visitor, event["id"]),
        day,
        {GoalKind.CONVERSION: 0, GoalKind.REVENUE: value, GoalKind.MARGIN: value},
        "",
        0,
        0,
        _digest(event),
        int(moment // SECONDS_PER_MINUTE),
    )


def _attribution(
    counted: _Counted,
    experiment: Experiment,
    goal_values: tuple[GoalValue, ...],
) -> Attribution:
    """An event's attribution to one experiment, with what it adds to each of its goals."""
    return Attribution(
        experiment.key,
        experiment.phase,
        counted.visitor,
        counted.member,
        counted.day,
        experiment.segments,
        goal_values,
        counted.order_id,
        counted.gross,
        counted.net_revenue,
        counted.digest,
        experiment.shards,
        counted.minute,
        experiment.stores_capped_differences(experiment.phase),
    )


class EventRecorder:
    """Records batches of conversion, order, refund and exposure events."""

    def __init__(
        self,
        store: Store,
        cache: ExperimentCache,
        pseudonymiser: Pseudonymiser,
        assigner: Assigner,
        *,
        idempotency_window: int,
        currency: str,
        daily_conversions: int,
    ) -> None:
        self._store = store
        self._cache = cache
        self._pseudonymiser = pseudonymiser
        self._assigner = assigner
        self._window = idempotency_window
        self._currency = currency
        self._daily_conversions = daily_conversions
        self._listeners: tuple[int, Listeners] = (-1, {})

    def _listeners_of(self, snapshot: Snapshot) -> Listeners:
        """Experiments by the event names their goals listen to, once per version: every goal
        of a running experiment, and the windowed goals of the others (issue 21), whose
        visitors' windows go on after a pause or the stop (``_counting``)."""
        version, listeners = self._listeners
        if version != snapshot.version:
            listeners = {}
            for experiment in snapshot.experiments.values():
                if experiment.status == Status.DRAFT:
                    continue
                listening = (
                    experiment.goals
                    if experiment.status == Status.RUNNING
                    else experiment.windowed_goals
                )
                names = dict.fromkeys(goal.event_name for goal in listening)
                for name in names:
                    goals = tuple(g for g in listening if g.event_name == name)
                    listeners.setdefault(name, []).append((experiment, goals))
            self._listeners = (snapshot.version, listeners)
        return listeners

    def check(self, event: Mapping[str, Any], *, may_send_money: bool, now: float) -> None:
        """Refuse what the schema cannot see: money without the ingest key, stale timestamps,
        foreign currencies, impossible amounts.

        Raises:
            InvalidInput: naming the field.
        """
        kind = event["type"]
        if kind in MONEY_EVENTS and not may_send_money:
            raise InvalidInput(
                "money events need the ingest key",
                {"type": [f"{kind} events need the X-Splitwerk-Ingest-Key header"]},
            )
        ts = event["ts"]
        if ts is not None and not now - self._window <= ts <= now + FUTURE_TOLERANCE:
            raise InvalidInput(
                "timestamp out of range",
                {"ts": [f"must lie within the last {self._window // SECONDS_PER_DAY} days"]},
            )
        if kind == "order":
            currency = event["currency"]
            if currency is not None and currency != self._currency:
                raise InvalidInput(
                    "foreign currency", {"currency": [f"this server counts {self._currency}"]}
                )
            if event["tax"] > event["revenue"]:
                raise InvalidInput("invalid order", {"tax": ["cannot exceed revenue"]})

    def record(
        self,
        events: Sequence[Mapping[str, Any] | EventOutcome],
        now: float,
        *,
        is_trusted: bool,
    ) -> list[EventOutcome]:
        """Record loaded events (or keep the given outcomes of rejected ones), in order.

        ``is_trusted``: the batch came with the ingest key (the shop's backend), so the value
        of a conversion may count in revenue and margin goals.
        """
        snapshot = self._cache.get(now)
        listeners = self._listeners_of(snapshot)
        outcomes: list[EventOutcome | None] = [
            event if isinstance(event, EventOutcome) else None for event in events
        ]
        # A batch often holds several events of one visitor: pseudonymise each once.
        pseudonyms: dict[str, str] = {}
        refunds: list[tuple[int, Mapping[str, Any]]] = []
        money_fields: dict[int, str] = {}  # the field a refused amount of an event is named by
        counting: dict[int, Sequence[tuple[Experiment, tuple[Goal, ...]]]] = {}
        # who may count an event depends on its goal only (the batch shares now and the key)
        by_goal: dict[str, Sequence[tuple[Experiment, tuple[Goal, ...]]]] = {}
        loaded: dict[int, Mapping[str, Any]] = {}  # the conversions and orders, by index
        visitors: dict[int, str] = {}  # their visitors' pseudonyms
        for index, event in enumerate(events):
            if isinstance(event, EventOutcome):
                continue
            kind = event["type"]
            if kind == "refund":
                refunds.append((index, event))
            elif kind == "exposure":
                outcomes[index] = self._expose(event, now)
            else:
                visitor = event["visitor"]
                if visitor not in pseudonyms:
                    pseudonyms[visitor] = self._pseudonymiser.pseudonymise(visitor)
                loaded[index], visitors[index] = event, pseudonyms[visitor]
                money_fields[index] = "value" if kind == "conversion" else "revenue"
                goal = event["goal"]
                if goal not in by_goal:
                    by_goal[goal] = _counting(listeners.get(goal, ()), now, is_trusted=is_trusted)
                listening = by_goal[goal]
                if listening:
                    counting[index] = listening
                else:
                    outcomes[index] = _IGNORED_OUTCOME
        replies: dict[int, list[int]] = {}
        if sum(map(len, counting.values())) > len(counting):
            counting = self._enrolled_only(counting, visitors, replies)
        owners: list[int] = []  # the event of each attribution, in the order they are made
        recorded = self._store.record_events(
            self._attributions(counting, loaded, visitors, now, owners),
            now,
            self._window,
            today=utc_day(now),
            daily_conversions=self._daily_conversions,
            total_limit=MAX_VISITOR_TOTAL_CENTS,
        )
        for owner, reply in zip(owners, recorded, strict=True):
            replies.setdefault(owner, []).append(reply)
        for owner, owner_replies in replies.items():
            outcomes[owner] = _combine(owner_replies, money_fields[owner], self._daily_conversions)
        for index, event in refunds:
            outcomes[index] = self._refund(event, snapshot.experiments.values(), now)
        return [outcome or _IGNORED_OUTCOME for outcome in outcomes]

    def _attributions(
        self,
        counting: Mapping[int, Sequence[tuple[Experiment, tuple[Goal, ...]]]],
        loaded: Mapping[int, Mapping[str, Any]],
        visitors: Mapping[int, str],
        now: float,
        owners: list[int],
    ) -> Iterator[list[Attribution]]:
        """The attributions of ``counting`` (events by index, with the experiments and goals
        they count in), one experiment at a time; each event's index goes to ``owners`` as its
        attribution is made.

        A generator: the store sends an experiment's script as soon as its attributions are
        made, so that Redis runs it while the next experiment's are made (Store.record_events).
        """
        by_experiment: dict[str, tuple[Experiment, list[tuple[int, tuple[Goal, ...]]]]] = {}
        for index, listening in counting.items():
            for experiment, goals in listening:
                if experiment.key not in by_experiment:
                    by_experiment[experiment.key] = (experiment, [])
                by_experiment[experiment.key][1].append((index, goals))
        counted: dict[int, _Counted] = {}  # each event's part, made once for all experiments
        days: dict[float, str] = {}  # each day name computed once, as pseudonyms
        # what an event adds to a set of goals depends on its values only: most events of a
        # batch are conversions without a value, which share one tuple per experiment
        goal_values: dict[tuple[int, int, int], tuple[GoalValue, ...]] = {}
        for experiment, members in by_experiment.values():
            group = []
            for index, goals in members:
                if index not in counted:
                    event = loaded[index]
                    moment = event["ts"] if event["ts"] is not None else now
                    if moment not in days:
                        days[moment] = utc_day(moment)
                    counted[index] = _counted(event, visitors[index], days[moment], moment)
                part = counted[index]
                values = part.values
                shape = (id(goals), values[GoalKind.REVENUE], values[GoalKind.MARGIN])
                if shape not in goal_values:
                    goal_values[shape] = tuple(
                        _goal_value(goal, values[goal.kind]) for goal in goals
                    )
                group.append(_attribution(part, experiment, goal_values[shape]))
                owners.append(index)
            yield group

    def _enrolled_only(
        self,
        counting: dict[int, Sequence[tuple[Experiment, tuple[Goal, ...]]]],
        visitors: Mapping[int, str],
        replies: dict[int, list[int]],
    ) -> dict[int, Sequence[tuple[Experiment, tuple[Goal, ...]]]]:
        """Keep only the experiments each event's visitor is enrolled in; the others answer
        "not enrolled" into ``replies`` now.

        Several experiments listen to these events, and a visitor is rarely in all of them.
        One read of the enrolments (a round trip of HMGETs) costs less than building, sending
        and having the script parse an attribution for every listening experiment: with five
        listening experiments and visitors in one of them, a 50-event batch took 11.9 instead
        of 23.7 million instructions in the server and 19.1 instead of 23.4 in Redis
        (callgrind, loadtests/README.md). An enrolment made between this read and the script
        leaves the event uncounted, as if the event had come a moment earlier.
        """
        # each distinct set of listeners (one per goal, shared by its events: by_goal in
        # record) with its events' visitors, then each experiment with its distinct visitors
        by_listeners: dict[
            int, tuple[Sequence[tuple[Experiment, tuple[Goal, ...]]], dict[str, None]]
        ] = {}
        for index, listening in counting.items():
            group = by_listeners.get(id(listening))
            if group is None:
                group = by_listeners[id(listening)] = (listening, {})
            group[1][visitors[index]] = None
        wanted: dict[str, tuple[Experiment, dict[str, None]]] = {}
        for listening, group_visitors in by_listeners.values():
            for experiment, _ in listening:
                if experiment.key not in wanted:
                    wanted[experiment.key] = (experiment, {})
                wanted[experiment.key][1].update(group_visitors)
        found = self._store.enrolled(
            [
                (experiment.key, experiment.phase, experiment.shards, list(experiment_visitors))
                for experiment, experiment_visitors in wanted.values()
            ]
        )
        enrolled_in = dict(zip(wanted, found, strict=True))
        kept: dict[int, Sequence[tuple[Experiment, tuple[Goal, ...]]]] = {}
        for index, listening in counting.items():
            visitor = visitors[index]
            enrolled = [item for item in listening if visitor in enrolled_in[item[0].key]]
            if len(enrolled) < len(listening):
                replies.setdefault(index, []).append(_NOT_ENROLLED)
            if enrolled:
                kept[index] = enrolled
        return kept

    def _refund(
        self, event: Mapping[str, Any], experiments: Collection[Experiment], now: float
    ) -> EventOutcome:
        """Find where the order counted and take the refund off there, in every phase."""
        places = [
            (experiment.key, phase, experiment.shards)
            for experiment in experiments
            if any(goal.kind != GoalKind.CONVERSION for goal in experiment.goals)
            for phase in range(1, experiment.phase + 1)
        ]
        by_key = {experiment.key: experiment for experiment in experiments}
        orders = self._store.find_orders(places, event["order_id"])
        if not orders:
            return _IGNORED_OUTCOME
        day = utc_day(event["ts"] if event["ts"] is not None else now)
        member = keys.refund_member(event["order_id"], event["id"] or "")
        digest = _digest(event)
        writes = [
            RefundWrite(
                order=order,
                order_id=event["order_id"],
                member=member,
                day=day,
                amount=event["amount"],
                reduction=refund_reduction(event["amount"], order.gross, order.net_revenue),
                segments=by_key[order.experiment].segments,
                digest=digest,
                capped_differences=by_key[order.experiment].stores_capped_differences(order.phase),
            )
            for order in orders
        ]
        replies = self._store.refund(writes, now, self._window, total_limit=MAX_VISITOR_TOTAL_CENTS)
        return _combine(replies, "amount", self._daily_conversions)

    def _expose(self, event: Mapping[str, Any], now: float) -> EventOutcome:
        """A local-mode SDK's exposure: the server decides again and enrols once."""
        result = self._assigner.assign(
            AssignRequest(
                visitor=event["visitor"],
                experiments=(event["experiment"],),
                attributes=event["attributes"],
                covariate=event.get("covariate"),
            ),
            now,
        )
        (answer,) = result.assignments
        return _ACCEPTED_OUTCOME if answer.is_enrolled else _IGNORED_OUTCOME


def erase_visitor(
    store: Store, pseudonymiser: Pseudonymiser, visitor: str
) -> tuple[dict[str, int], list[str]]:
    """Delete every per-visitor record of a visitor in every experiment and phase.

    Aggregates stay: they hold no personal data. Returns what was removed and where it looked.
    """
    _, experiments = store.load_experiments()
    places = [
        (experiment.key, phase, experiment.shards)
        for experiment in experiments.values()
        for phase in range(1, experiment.phase + 1)
    ]
    removed = store.erase_visitor(pseudonymiser.pseudonymise(visitor), places)
    return removed, sorted(experiments)
