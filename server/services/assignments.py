"""Use case of the hot path: which variants a visitor sees, and their first enrolments counted.

Per request: one look at this worker's experiment cache (no Redis unless the refresh interval
has passed), the pure procedure of spec/ASSIGNMENT.md per experiment, and one Redis round trip
that records new enrolments and reads existing ones (stickiness). When Redis fails, the
answers still come from the last known configuration, unrecorded.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.core.assignment import Compiled, Decision, Reason, compile_experiment, decide
from server.core.errors import InvalidInput
from server.core.models import SECONDS_PER_MINUTE, Enrolment, Experiment, Status, Variant
from server.core.privacy import Pseudonymiser
from server.services.experiments import SECONDS_PER_DAY, ExperimentCache, Snapshot
from server.storage.errors import OutcomeUnknown, StorageUnavailable
from server.storage.store import Store

UNKNOWN_EXPERIMENT = Reason.UNKNOWN_EXPERIMENT  # a named experiment that does not exist
NO_CONSENT = Reason.NO_CONSENT  # the visitor did not consent to being counted
MISSING_SEGMENT_VALUE = "unknown"  # segment value of a visitor without that attribute
SEGMENT_VALUE_LENGTH = 64  # characters of a segment value kept; longer ones are cut


@dataclass(frozen=True, slots=True)
class AssignRequest:
    """One visitor, the experiments they asked about (None: all running), and context."""

    visitor: str
    experiments: tuple[str, ...] | None
    attributes: Mapping[str, Any]
    has_consent: bool = True
    forced: Mapping[str, str] | None = None
    is_bot: bool = False
    covariate: int | None = None  # CUPED's covariate in hundredths, recorded at first enrolment


@dataclass(frozen=True, slots=True)
class Assignment:
    """The answer for one experiment; ``variant`` is None only for unknown experiments."""

    experiment: str
    variant: Variant | None
    is_enrolled: bool
    reason: str

    @property
    def variant_key(self) -> str | None:
        """The key of the variant, if any."""
        return None if self.variant is None else self.variant.key

    @property
    def payload(self) -> Any:
        """The payload of the variant, if any."""
        return None if self.variant is None else self.variant.payload


@dataclass(frozen=True, slots=True)
class AssignResult:
    """All answers of one request, and whether Redis recorded them."""

    visitor: str
    assignments: tuple[Assignment, ...]
    # True: Redis acknowledged every enrolment; False: nothing was written; None: unknown
    # (the enrolment was sent, its answer never came: it may have been recorded).
    is_recorded: bool | None


def segment_value(value: Any) -> str:
    """A visitor attribute as the string counted under a segment (JSON-ish, capped, no controls)."""
    if value is None:
        return MISSING_SEGMENT_VALUE
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float | str):
        text = str(value)
    else:
        return "other"
    # control characters would break the record format and make unreadable dashboard rows
    head = text[:SEGMENT_VALUE_LENGTH]
    cleaned = head if head.isprintable() else "".join(ch for ch in head if ch.isprintable())
    return cleaned or MISSING_SEGMENT_VALUE


def utc_day(now: float) -> str:
    """The UTC calendar day of a unix time, as the day counters name it."""
    return _day_name(int(now // SECONDS_PER_DAY))  # unix time has no leap seconds


@functools.lru_cache(maxsize=64)
def _day_name(day_number: int) -> str:
    """YYYY-MM-DD of a day counted from 1970-01-01 (cached: the hot paths ask every request)."""
    return time.strftime("%Y-%m-%d", time.gmtime(day_number * SECONDS_PER_DAY))


def _check_forced(snapshot: Snapshot, forced: Mapping[str, str]) -> None:
    """Refuse a force parameter that names no experiment or no variant of it.

    A misspelt QA link must not fall back to ordinary bucketing, which would enrol and count
    the tester (core.assignment.decide ignores unknown keys and leaves the refusal to us).

    Raises:
        InvalidInput: naming each bad pair under ``force``.
    """
    problems: dict[str, list[str]] = {}
    for key, variant in forced.items():
        experiment = snapshot.experiments.get(key)
        if experiment is None:
            problems[key] = [f"no experiment {key!r}"]
        elif experiment.variant(variant) is None:
            known = ", ".join(v.key for v in experiment.variants)
            problems[key] = [f"no variant {variant!r} (variants: {known})"]
    if problems:
        raise InvalidInput("forced variant does not exist", {"force": problems})


class EnrolmentCache:
    """Enrolments this worker has seen, so that returning visitors need no Redis round trip.

    An enrolment never changes within a phase (the key holds the phase), so a cached one stays
    right until the visitor is erased: every erasure bumps a counter that workers read with
    each configuration refresh, and a changed counter empties the cache. Bounded: the least
    recently used entries go first.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, int, str], int] = OrderedDict()
        self._erasures = 0
        self._lock = threading.Lock()

    def sync(self, erasures: int) -> None:
        """Forget everything when visitors were erased since the last look."""
        if erasures != self._erasures:
            with self._lock:
                self._entries.clear()
                self._erasures = erasures

    def get(self, key: tuple[str, int, str]) -> int | None:
        """The cached variant index of (experiment, phase, pseudonym), if any."""
        with self._lock:
            index = self._entries.get(key)
            if index is not None:
                self._entries.move_to_end(key)
            return index

    def put(self, key: tuple[str, int, str], index: int) -> None:
        """Remember an enrolment."""
        with self._lock:
            self._entries[key] = index
            self._entries.move_to_end(key)
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


class Assigner:
    """Assigns visitors with cached configuration, compiled conditions and one Redis trip."""

    def __init__(
        self,
        store: Store,
        cache: ExperimentCache,
        pseudonymiser: Pseudonymiser,
        segment_value_limit: int,
        experiments_limit: int,
        enrolment_cache_size: int,
    ) -> None:
        self._store = store
        self._experiments_limit = experiments_limit
        self._known = EnrolmentCache(enrolment_cache_size)
        self._cache = cache
        self._pseudonymiser = pseudonymiser
        self._segment_value_limit = segment_value_limit
        self._compiled: tuple[int, dict[str, Compiled]] = (-1, {})

    def _compile(self, snapshot: Snapshot, experiment: Experiment) -> Compiled:
        """An experiment compiled for deciding, built once per configuration version."""
        version, compiled = self._compiled
        if version != snapshot.version:
            compiled = {}
            self._compiled = (snapshot.version, compiled)
        if experiment.key not in compiled:
            compiled[experiment.key] = compile_experiment(experiment)
        return compiled[experiment.key]

    def assign(self, request: AssignRequest, now: float) -> AssignResult:
        """Answer every experiment of the request; record first enrolments exactly once.

        Raises:
            InvalidInput: more experiments named than MAX_EXPERIMENTS_PER_REQUEST, or a forced
                variant that does not exist (nothing is recorded then).
            StorageUnavailable: Redis is down and this worker never loaded the configuration.
        """
        if request.experiments is not None and len(request.experiments) > self._experiments_limit:
            raise InvalidInput(
                "too many experiments in one request",
                {"experiments": [f"at most {self._experiments_limit} per request"]},
            )
        snapshot = self._cache.get(now)
        if request.forced:
            _check_forced(snapshot, request.forced)
        self._known.sync(snapshot.erasures)
        if request.experiments is None:
            targets: Sequence[Experiment | str] = [
                e for e in snapshot.in_config() if e.status == Status.RUNNING
            ]
        else:
            targets = [snapshot.experiments.get(key) or key for key in request.experiments]
        forced = request.forced or {}
        answers: list[Assignment] = []
        pending: list[tuple[int, Experiment, Decision]] = []
        for target in targets:
            if isinstance(target, str):
                answers.append(Assignment(target, None, False, UNKNOWN_EXPERIMENT))
                continue
            decision = decide(
                target,
                request.visitor,
                request.attributes,
                forced=forced.get(target.key),
                is_bot=request.is_bot,
                compiled=self._compile(snapshot, target),
            )
            # Nobody counts as enrolled until Redis has recorded it (see _record).
            reason = NO_CONSENT if decision.is_enrolled and not request.has_consent else None
            answers.append(
                Assignment(target.key, decision.variant, False, reason or decision.reason)
            )
            if request.has_consent and _needs_record(target, decision):
                pending.append((len(answers) - 1, target, decision))
        # Without consent nothing is recorded, so the answer must not say it was; with it,
        # _record says true, false or None (unknown: Redis may have written it).
        is_recorded: bool | None = request.has_consent
        if pending:
            is_recorded = self._record(request, pending, answers, now)
        if request.experiments is None:
            answers = [a for a in answers if a.reason != Reason.NOT_TARGETED]
        return AssignResult(request.visitor, tuple(answers), is_recorded)

    def _record(
        self,
        request: AssignRequest,
        pending: list[tuple[int, Experiment, Decision]],
        answers: list[Assignment],
        now: float,
    ) -> bool | None:
        """Enrol and look up in one round trip; apply stored variants (stickiness).

        Enrolments this worker already knows are answered without Redis. Returns whether
        Redis recorded them (None: unknown, see AssignResult).
        """
        pseudonym = self._pseudonymiser.pseudonymise(request.visitor)
        unknown: list[tuple[int, Experiment, Decision]] = []
        for position, experiment, decision in pending:
            index = self._known.get((experiment.key, experiment.phase, pseudonym))
            if index is None:
                unknown.append((position, experiment, decision))
            else:
                answers[position] = self._enrolled(experiment, index)
        if not unknown:
            return True
        enrolments = [
            Enrolment(
                experiment=experiment.key,
                phase=experiment.phase,
                visitor=pseudonym,
                variant_index=experiment.variants.index(decision.variant)
                if decision.is_enrolled
                else None,
                segments=experiment.segments,
                segment_values=tuple(
                    segment_value(request.attributes.get(name)) for name in experiment.segments
                ),
                shards=experiment.shards,
                # windowed goals count from each visitor's enrolment: keep its time, else not
                minute=int(now // SECONDS_PER_MINUTE) if experiment.windowed_goals else None,
                covariate=request.covariate,
            )
            for _, experiment, decision in unknown
        ]
        try:
            outcomes = self._store.enrol(enrolments, utc_day(now), self._segment_value_limit)
        except OutcomeUnknown:
            return None  # degraded as below, but the enrolment may have been recorded
        except StorageUnavailable:
            # Degraded: the answers stand as decided, none of them enrolled or sticky.
            return False
        for (position, experiment, _), outcome in zip(unknown, outcomes, strict=True):
            index = outcome.variant_index
            if index is None or index >= len(experiment.variants):
                continue  # not enrolled (a phase's variants never shrink; guards stale data)
            self._known.put((experiment.key, experiment.phase, pseudonym), index)
            answers[position] = self._enrolled(experiment, index)
        return True

    @staticmethod
    def _enrolled(experiment: Experiment, index: int) -> Assignment:
        return Assignment(experiment.key, experiment.variants[index], True, Reason.RUNNING)


# Decisions that need Redis: enrolling, or finding an earlier enrolment of a visitor whose
# attributes or the experiment's targeting changed since (stickiness). Visitors outside the
# layer range or the coverage never were enrolled in this phase (layer and allocations are fixed
# and coverage only grows while it runs); bots and forced variants are never counted.
NEEDS_RECORD = frozenset({Reason.RUNNING, Reason.NOT_TARGETED})


def _needs_record(experiment: Experiment, decision: Decision) -> bool:
    """Whether this decision must be recorded or checked against a stored enrolment."""
    return experiment.status == Status.RUNNING and decision.reason in NEEDS_RECORD
