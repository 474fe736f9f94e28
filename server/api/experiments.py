"""Admin API for experiments: create, read, update, lifecycle actions, audit trail."""

from __future__ import annotations

import time
from typing import Any

from flask import g

from server import schemas
from server.api import links
from server.api.auth import require
from server.api.jsonio import Blueprint
from server.context import current_services
from server.core.models import AuditEntry, Experiment, Role
from server.services import experiments as services

blp = Blueprint(
    "experiments",
    __name__,
    url_prefix="/v1/experiments",
    description="Experiments and their lifecycle (admin tokens).",
)

EDITOR_DOC: dict[str, Any] = {
    "security": [{"bearerAuth": []}]
}  # OpenAPI: these routes need a token


def _retention_days() -> int:
    return current_services().settings.RETENTION_DAYS


def _changed(experiment: Experiment) -> Experiment:
    """Make this worker's next assignment see the change at once."""
    current_services().experiment_cache.invalidate()
    return experiment


@blp.route("", methods=["GET"])
@require(Role.VIEWER)
@blp.arguments(schemas.ExperimentListQuerySchema, location="query")
@blp.response(200, schemas.ExperimentPageSchema)
@blp.doc(**EDITOR_DOC)
def list_experiments(query: dict[str, Any]) -> dict[str, Any]:
    """List experiments, newest first, optionally filtered by status."""
    items, total = services.list_experiments(
        current_services().store, query["status"], query["page"], query["page_size"]
    )
    return {"items": items, "page": query["page"], "page_size": query["page_size"], "total": total}


@blp.route("", methods=["POST"])
@require(Role.EDITOR)
@blp.arguments(schemas.ExperimentCreateSchema)
@blp.response(201, schemas.ExperimentSchema)
@blp.doc(**EDITOR_DOC, responses={201: {"links": links.CREATED}})
def create_experiment(data: dict[str, Any]) -> Experiment:
    """Create a draft experiment; weights are normalised to basis points."""
    return _changed(
        services.create_experiment(current_services().store, data, g.actor, time.time())
    )


@blp.route("/<key:key>", methods=["GET"])
@require(Role.VIEWER)
@blp.response(200, schemas.ExperimentSchema)
@blp.doc(**EDITOR_DOC)
def get_experiment(key: str) -> Experiment:
    """One experiment."""
    return services.get_experiment(current_services().store, key)


@blp.route("/<key:key>", methods=["PATCH"])
@require(Role.EDITOR)
@blp.arguments(schemas.ExperimentUpdateSchema)
@blp.response(200, schemas.ExperimentSchema)
@blp.doc(**EDITOR_DOC)
def update_experiment(data: dict[str, Any], key: str) -> Experiment:
    """Change the fields the experiment's status allows; others are refused with 409."""
    return _changed(
        services.update_experiment(current_services().store, key, data, g.actor, time.time())
    )


@blp.route("/<key:key>", methods=["DELETE"])
@require(Role.EDITOR)
@blp.response(204)
@blp.doc(**EDITOR_DOC)
def delete_experiment(key: str) -> None:
    """Delete a draft or archived experiment and all its data."""
    services.delete_experiment(current_services().store, key, g.actor, time.time())
    current_services().experiment_cache.invalidate()


def _action(action: str) -> Any:
    def view(key: str) -> Experiment:
        return _changed(
            services.act_on_experiment(
                current_services().store,
                key,
                action,
                g.actor,
                time.time(),
                retention_days=_retention_days(),
            )
        )

    view.__name__ = f"{action}_experiment"
    view.__doc__ = f"Lifecycle action: {action} (409 if the status does not allow it)."
    return view


for _name in ("start", "pause", "resume", "archive"):
    _links = {"responses": {200: {"links": links.AFTER_ACTION[_name]}}}
    blp.route(f"/<key:key>/{_name}", methods=["POST"])(
        require(Role.EDITOR)(
            blp.response(200, schemas.ExperimentSchema)(
                blp.doc(**EDITOR_DOC, **_links)(_action(_name))
            )
        )
    )


@blp.route("/<key:key>/stop", methods=["POST"])
@require(Role.EDITOR)
@blp.arguments(schemas.StopSchema)
@blp.response(200, schemas.ExperimentSchema)
@blp.doc(**EDITOR_DOC, responses={200: {"links": links.AFTER_ACTION["stop"]}})
def stop_experiment(data: dict[str, Any], key: str) -> Experiment:
    """Stop the experiment; an optional winner is what everybody sees from now on."""
    return _changed(
        services.act_on_experiment(
            current_services().store,
            key,
            "stop",
            g.actor,
            time.time(),
            winner=data["winner"],
            retention_days=_retention_days(),
        )
    )


@blp.route("/<key:key>/new-phase", methods=["POST"])
@require(Role.EDITOR)
@blp.arguments(schemas.NewPhaseSchema)
@blp.response(200, schemas.ExperimentSchema)
@blp.doc(**EDITOR_DOC)
def new_phase(data: dict[str, Any], key: str) -> Experiment:
    """Re-randomise with a new salt and fresh counts; may change weights and coverage."""
    return _changed(
        services.start_new_phase(
            current_services().store,
            key,
            data,
            g.actor,
            time.time(),
            retention_days=_retention_days(),
        )
    )


@blp.route("/<key:key>/audit", methods=["GET"])
@require(Role.VIEWER)
@blp.arguments(schemas.AuditQuerySchema, location="query")
@blp.response(200, schemas.AuditEntrySchema(many=True))
@blp.doc(**EDITOR_DOC)
def audit_trail(query: dict[str, Any], key: str) -> list[AuditEntry]:
    """Who changed what and when, newest first."""
    return services.audit_trail(current_services().store, key, query["limit"])
