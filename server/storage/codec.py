"""Conversion between stored JSON documents and the core models."""

from __future__ import annotations

import json
from typing import Any

from server.core.models import (
    Analysis,
    AuditEntry,
    Delivery,
    Experiment,
    Goal,
    GoalKind,
    Harm,
    Layer,
    Status,
    Variant,
)


def experiment_to_json(experiment: Experiment) -> str:
    """Serialise an experiment for the ``sw:experiments`` hash."""
    document: dict[str, Any] = {
        "key": experiment.key,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "variants": [
            {
                "key": variant.key,
                "weight": variant.weight,
                "allocation": variant.allocation,
                "payload": variant.payload,
            }
            for variant in experiment.variants
        ],
        "coverage": experiment.coverage,
        "layer": None
        if experiment.layer is None
        else {
            "name": experiment.layer.name,
            "start": experiment.layer.start,
            "end": experiment.layer.end,
            "salt": experiment.layer.salt,
        },
        "conditions": experiment.conditions,
        "goals": [
            {
                "key": goal.key,
                "kind": goal.kind.value,
                "is_primary": goal.is_primary,
                "accepts_browser_value": goal.accepts_browser_value,
                "event": goal.event,
                "is_guardrail": goal.is_guardrail,
                "harm": goal.harm.value,
                "window_days": goal.window_days,
                "return_days": goal.return_days,
            }
            for goal in experiment.goals
        ],
        "segments": list(experiment.segments),
        "allow_list": dict(experiment.allow_list),
        "status": experiment.status.value,
        "winner": experiment.winner,
        "phase": experiment.phase,
        "salt": experiment.salt,
        "analysis": experiment.analysis.value,
        "minimum_effect": experiment.minimum_effect,
        "pause_on_harm": experiment.pause_on_harm,
        "created_at": experiment.created_at,
        "updated_at": experiment.updated_at,
        "started_at": experiment.started_at,
        "stopped_at": experiment.stopped_at,
        "revision": experiment.revision,
        "shards": experiment.shards,
        "capped_differences_from": experiment.capped_differences_from,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def experiment_from_json(raw: str | bytes) -> Experiment:
    """Rebuild an experiment from its stored document."""
    document = json.loads(raw)
    layer = document["layer"]
    return Experiment(
        key=document["key"],
        name=document["name"],
        hypothesis=document["hypothesis"],
        variants=tuple(
            Variant(
                key=variant["key"],
                weight=variant["weight"],
                allocation=variant["allocation"],
                payload=variant["payload"],
            )
            for variant in document["variants"]
        ),
        coverage=document["coverage"],
        layer=None
        if layer is None
        else Layer(layer["name"], layer["start"], layer["end"], layer["salt"]),
        conditions=document["conditions"],
        goals=tuple(
            Goal(
                key=goal["key"],
                kind=GoalKind(goal["kind"]),
                is_primary=goal["is_primary"],
                accepts_browser_value=goal.get("accepts_browser_value", False),
                event=goal["event"],
                # documents stored before guardrails (#21) have no such fields
                is_guardrail=goal.get("is_guardrail", False),
                harm=Harm(goal.get("harm", Harm.DECREASE.value)),
                window_days=goal.get("window_days"),
                return_days=goal.get("return_days"),
            )
            for goal in document["goals"]
        ),
        segments=tuple(document["segments"]),
        allow_list=document["allow_list"],
        status=Status(document["status"]),
        winner=document["winner"],
        phase=document["phase"],
        salt=document["salt"],
        analysis=Analysis(document["analysis"]),
        minimum_effect=document["minimum_effect"],
        pause_on_harm=document.get("pause_on_harm", False),
        created_at=document["created_at"],
        updated_at=document["updated_at"],
        started_at=document["started_at"],
        stopped_at=document["stopped_at"],
        revision=document["revision"],
        shards=document.get("shards", 1),  # documents of versions before sub-shards have none
        capped_differences_from=document.get(
            "capped_differences_from", _legacy_capped_differences_from(document)
        ),
    )


def _legacy_capped_differences_from(document: dict[str, Any]) -> int:
    """The first phase with capped sums stored as differences, for a document stored before
    that format: a phase that has begun keeps the capped sums it was recorded with (cs/cq/cqh),
    later phases take the differences; a draft has recorded nothing yet."""
    phase: int = document["phase"]
    return phase if document["status"] == Status.DRAFT.value else phase + 1


def audit_to_json(entry: AuditEntry) -> str:
    """Serialise an audit entry for an experiment's audit list."""
    return json.dumps(
        {"at": entry.at, "actor": entry.actor, "action": entry.action, "details": entry.details},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def audit_from_json(raw: str | bytes) -> AuditEntry:
    """Rebuild an audit entry."""
    document = json.loads(raw)
    return AuditEntry(
        at=document["at"],
        actor=document["actor"],
        action=document["action"],
        details=document["details"],
    )


def delivery_to_json(delivery: Delivery) -> str:
    """Serialise a webhook delivery for the deliveries hash (its id is the field)."""
    document = {"type": delivery.type, "body": delivery.body, "attempts": delivery.attempts}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def delivery_from_json(delivery_id: str, raw: str | bytes) -> Delivery:
    """Rebuild a webhook delivery."""
    document = json.loads(raw)
    return Delivery(delivery_id, document["type"], document["body"], document["attempts"])
