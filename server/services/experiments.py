"""Use cases of experiments: create, change, lifecycle, delete, and the public configuration.

Every function gets the store and the current time (unix seconds) as arguments, so tests
control both.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from server.core import lifecycle
from server.core.conditions import ConditionError, validate_condition
from server.core.errors import Conflict, InvalidInput, NotFound, TransitionRefused
from server.core.models import SECONDS_PER_DAY as SECONDS_PER_DAY  # re-exported for its users
from server.core.models import (
    AuditEntry,
    Experiment,
    Goal,
    Harm,
    Status,
    Variant,
)
from server.storage.errors import NotReady, StorageUnavailable
from server.storage.store import Store

SPEC_VERSION = "assignment v1"  # the contract of spec/ASSIGNMENT.md that /v1/config follows
CONFIG_STATUSES = frozenset({Status.RUNNING, Status.PAUSED, Status.STOPPED})  # what SDKs evaluate


def _variants(items: list[dict[str, Any]]) -> tuple[Variant, ...]:
    allocations = lifecycle.normalise_weights([item["weight"] for item in items])
    return tuple(
        Variant(
            key=item["key"],
            weight=float(item["weight"]),
            allocation=allocation,
            payload=item["payload"],
        )
        for item, allocation in zip(items, allocations, strict=True)
    )


def _goals(items: list[dict[str, Any]]) -> tuple[Goal, ...]:
    return tuple(
        Goal(
            key=item["key"],
            kind=item["kind"],
            is_primary=item["primary"],
            accepts_browser_value=item["accept_browser_value"],
            event=item["event"] or "",
            is_guardrail=item["guardrail"],
            harm=item["harm"] or Harm.DECREASE,
            window_days=item["window_days"],
            return_days=item["return_days"],
        )
        for item in items
    )


def _check_conditions(conditions: Mapping[str, Any] | None) -> None:
    if conditions is None:
        return
    try:
        validate_condition(conditions)
    except ConditionError as error:
        raise InvalidInput("invalid targeting conditions", {"conditions": [str(error)]}) from None


def _model_changes(
    data: Mapping[str, Any], current: Experiment | None, others: Mapping[str, Experiment]
) -> dict[str, Any]:
    """Turn loaded request fields into model field values (weights normalised, layer placed)."""
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name == "variants":
            changes["variants"] = _variants(value)
        elif name == "goals":
            changes["goals"] = _goals(value)
        elif name == "segments":
            changes["segments"] = tuple(value)
        elif name == "conditions":
            _check_conditions(value)
            changes["conditions"] = value or None
        elif name == "layer":
            owner = data.get("key") or (current.key if current else "")
            changes["layer"] = (
                None
                if value is None
                else lifecycle.allocate_layer_slots(
                    value["name"],
                    value["size"],
                    value["start"],
                    value["end"],
                    owner,
                    others.values(),
                )
            )
        elif name != "key":
            changes[name] = value
    variants = changes.get("variants", current.variants if current else ())
    known = {variant.key for variant in variants}
    for visitor, variant in changes.get("allow_list", {}).items():
        if variant not in known:
            raise InvalidInput("unknown variant", {"allow_list": {visitor: [f"no {variant!r}"]}})
    return changes


def create_experiment(store: Store, data: Mapping[str, Any], actor: str, now: float) -> Experiment:
    """Create a draft experiment from loaded ``ExperimentCreateSchema`` data.

    Raises:
        Conflict: the key exists, or the layer range is taken.
        InvalidInput: weights or conditions break a domain rule.
    """
    key = data["key"]

    def change(current: Experiment | None, others: Mapping[str, Experiment]) -> Experiment:
        if current is not None:
            raise Conflict(f"experiment {key!r} exists", {"key": ["already taken"]})
        fields = _model_changes(data, None, others)
        return Experiment(
            key=key,
            salt=key,
            created_at=now,
            updated_at=now,
            **fields,
        )

    audit = AuditEntry(now, actor, "create", {"fields": sorted(data)})
    return store.save_experiment(key, change, audit)


def get_experiment(store: Store, key: str) -> Experiment:
    """One experiment; NotFound if there is none."""
    experiment = store.load_experiment(key)
    if experiment is None:
        raise NotFound(f"no experiment {key!r}")
    return experiment


def list_experiments(
    store: Store, status: Status | None, page: int, page_size: int
) -> tuple[list[Experiment], int]:
    """One page of experiments, newest first, and the total matching the filter."""
    _, experiments = store.load_experiments()
    matching = sorted(
        (e for e in experiments.values() if status is None or e.status == status),
        key=lambda e: (-e.created_at, e.key),
    )
    start = (page - 1) * page_size
    return matching[start : start + page_size], len(matching)


def _existing(current: Experiment | None, key: str) -> Experiment:
    if current is None:
        raise NotFound(f"no experiment {key!r}")
    return current


def update_experiment(
    store: Store, key: str, data: Mapping[str, Any], actor: str, now: float
) -> Experiment:
    """Change the fields that the experiment's status allows (409 for the others)."""

    def change(current: Experiment | None, others: Mapping[str, Experiment]) -> Experiment:
        experiment = _existing(current, key)
        lifecycle.check_editable(experiment, data)
        fields = _model_changes(data, experiment, others)
        lifecycle.check_update(experiment, fields)
        if "winner" in fields:
            lifecycle.check_winner(experiment, fields["winner"])
        return dataclasses.replace(
            experiment, **fields, updated_at=now, revision=experiment.revision + 1
        )

    audit = AuditEntry(now, actor, "update", {"fields": sorted(data)})
    return store.save_experiment(key, change, audit)


def act_on_experiment(
    store: Store,
    key: str,
    action: str,
    actor: str,
    now: float,
    *,
    winner: str | None = None,
    retention_days: int,
) -> Experiment:
    """Apply a lifecycle action: start, pause, resume, stop (with winner) or archive.

    Stopping starts the retention clock: per-visitor records expire ``retention_days`` later,
    or that long after the last attribution window and return period closed (issue 21).
    """

    def change(current: Experiment | None, others: Mapping[str, Experiment]) -> Experiment:
        experiment = _existing(current, key)
        if action == "start" and not experiment.goals:
            raise Conflict(
                "an experiment needs at least one goal before it starts",
                {"goals": ["add a goal and mark it primary"]},
            )
        if action == "stop":
            updated = lifecycle.stop(experiment, winner, now)
        else:
            updated = lifecycle.transition(experiment, action, now)
        return dataclasses.replace(updated, revision=experiment.revision + 1)

    details: dict[str, Any] = {} if winner is None else {"winner": winner}
    updated = store.save_experiment(key, change, AuditEntry(now, actor, action, details))
    if action == "stop":
        settle = max((goal.settle_days for goal in updated.windowed_goals), default=0)
        store.expire_visitor_records(
            key, updated.phase, (settle + retention_days) * SECONDS_PER_DAY, updated.shards
        )
    return updated


GUARDRAIL_ACTOR = "guardrail"  # the audit trail's actor of a pause the evaluator made


def pause_for_harm(
    store: Store, key: str, phase: int, harms: list[dict[str, Any]], now: float
) -> Experiment | None:
    """Pause a running experiment because guardrails show harm, with an audit entry naming them.

    Returns the paused experiment, or None when it is no longer running in that phase (an
    editor paused, stopped or re-phased it meanwhile): then nothing changes.
    """

    def change(current: Experiment | None, others: Mapping[str, Experiment]) -> Experiment:
        experiment = _existing(current, key)
        if experiment.status is not Status.RUNNING or experiment.phase != phase:
            raise TransitionRefused("no longer running in that phase")
        updated = lifecycle.transition(experiment, "pause", now)
        return dataclasses.replace(updated, revision=experiment.revision + 1)

    audit = AuditEntry(now, GUARDRAIL_ACTOR, "pause", {"reason": "guardrail harm", "harms": harms})
    try:
        return store.save_experiment(key, change, audit)
    except (TransitionRefused, NotFound):
        return None


def start_new_phase(
    store: Store,
    key: str,
    data: Mapping[str, Any],
    actor: str,
    now: float,
    *,
    retention_days: int,
) -> Experiment:
    """Re-randomise a live experiment with a new salt; counts of the new phase start at zero.

    The old phase's per-visitor records expire ``retention_days`` later; its counts stay.
    """

    def change(current: Experiment | None, others: Mapping[str, Experiment]) -> Experiment:
        experiment = _existing(current, key)
        fields = _model_changes(
            {name: value for name, value in data.items() if name != "confirm"}, experiment, others
        )
        updated = lifecycle.new_phase(experiment, fields, now)
        return dataclasses.replace(updated, revision=experiment.revision + 1)

    audit = AuditEntry(now, actor, "new-phase", {"fields": sorted(set(data) - {"confirm"})})
    updated = store.save_experiment(key, change, audit)
    store.expire_visitor_records(
        key, updated.phase - 1, retention_days * SECONDS_PER_DAY, updated.shards
    )
    return updated


def delete_experiment(store: Store, key: str, actor: str, now: float) -> None:
    """Delete a draft or archived experiment with all its data; the deletion log records it."""

    def check(current: Experiment | None) -> AuditEntry:
        experiment = _existing(current, key)
        if experiment.status not in lifecycle.DELETABLE:
            raise Conflict(
                f"cannot delete an experiment that is {experiment.status.value}; "
                "only drafts and archived experiments can be deleted"
            )
        return AuditEntry(now, actor, "delete", {"experiment": key, "name": experiment.name})

    store.delete_experiment(key, check)


def deletion_log(store: Store, limit: int) -> list[AuditEntry]:
    """Who deleted which experiment when, newest first."""
    return store.deletion_log(limit)


def audit_trail(store: Store, key: str, limit: int) -> list[AuditEntry]:
    """The newest audit entries of an experiment."""
    get_experiment(store, key)
    return store.audit_trail(key, limit)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The experiments of one configuration version, as a worker holds them."""

    version: int
    experiments: Mapping[str, Experiment]
    fetched_at: float
    erasures: int = 0  # the erasure counter seen with this snapshot (see EnrolmentCache)

    def in_config(self) -> list[Experiment]:
        """Experiments that SDKs and the snippet evaluate, sorted by key."""
        return sorted(
            (e for e in self.experiments.values() if e.status in CONFIG_STATUSES),
            key=lambda e: e.key,
        )


class ExperimentCache:
    """The last known experiment configuration of this worker, refreshed at an interval.

    The hot path reads it instead of Redis; a version check every ``refresh_interval`` seconds
    picks up changes. When Redis is down the last snapshot keeps serving (degraded mode).
    """

    def __init__(self, store: Store, refresh_interval: float) -> None:
        self._store = store
        self._refresh_interval = refresh_interval
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def get(self, now: float) -> Snapshot:
        """A snapshot at most ``refresh_interval`` old, or the last known one if Redis is down.

        Raises:
            StorageUnavailable: Redis is down and no snapshot was ever loaded.
        """
        snapshot = self._snapshot
        if snapshot is not None and now - snapshot.fetched_at < self._refresh_interval:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and now - snapshot.fetched_at < self._refresh_interval:
                return snapshot
            return self._refresh(snapshot, now)

    def _refresh(self, snapshot: Snapshot | None, now: float) -> Snapshot:
        try:
            version, erasures = self._store.versions()
            if snapshot is not None and version == snapshot.version:
                fresh = dataclasses.replace(snapshot, fetched_at=now, erasures=erasures)
            else:
                version, experiments = self._store.load_experiments()
                fresh = Snapshot(version, experiments, now, erasures)
        except StorageUnavailable:
            if snapshot is None:
                raise
            # Degraded: keep serving the old snapshot; try Redis again after one more interval,
            # so that a dead Redis costs one timeout per interval, not one per request.
            fresh = dataclasses.replace(snapshot, fetched_at=now)
        self._snapshot = fresh
        return fresh

    def invalidate(self) -> None:
        """Forget the refresh time, so the next ``get`` checks Redis (after an admin change)."""
        snapshot = self._snapshot
        if snapshot is not None:
            self._snapshot = dataclasses.replace(snapshot, fetched_at=float("-inf"))


def readiness(store: Store, cache: ExperimentCache, now: float, is_strict: bool) -> dict[str, str]:
    """Whether this worker can answer, and the state of Redis, for /readyz.

    Ready while the worker can answer the public API, degraded answers included: Redis takes
    writes, or the worker holds a configuration to answer assigns from. A load balancer that
    dropped every instance whenever Redis stalls would turn degraded answers into no answers.
    ``is_strict`` (deploy gates) also demands that Redis takes writes.

    Raises:
        NotReady: not ready; names the Redis state.
    """
    state = store.redis_state()
    try:
        cache.get(now)
    except StorageUnavailable:
        raise NotReady(state) from None
    if state != "ok" and is_strict:
        raise NotReady(state)
    return {"status": "ok" if state == "ok" else "degraded", "redis": state}


def public_config(snapshot: Snapshot) -> dict[str, Any]:
    """The compact configuration document of /v1/config (dumped by ConfigSchema)."""
    return {
        "spec": SPEC_VERSION,
        "version": str(snapshot.version),
        "experiments": snapshot.in_config(),
    }
