"""Public event intake (POST /v1/events) and the GDPR erasure of a visitor (editor token)."""

from __future__ import annotations

import time
from typing import Any

from flask import Response
from marshmallow import ValidationError

from server import schemas
from server.api import fastschemas
from server.api.auth import actor_for, presented_token, require
from server.api.jsonio import Blueprint
from server.api.public import json_body
from server.context import current_services
from server.core.errors import InvalidInput
from server.core.models import Role
from server.services import events as services
from server.services.events import EventOutcome

blp = Blueprint(
    "events",
    __name__,
    description="Conversions, orders, refunds and exposures; erasure of a visitor's records.",
)

INGEST_HEADER = "X-Splitwerk-Ingest-Key"  # server-side key that may send orders and refunds


@blp.route("/v1/events", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "application/json": {"schema": "EventBatch"},
            "text/plain": {"schema": "EventBatch"},
        },
    }
)
@blp.response(200, schemas.EventBatchResultSchema)
def record_events() -> Response:
    """Record a batch of events; each is accepted, duplicate, ignored or rejected on its own."""
    # Like /v1/assign, this hot path reads its body itself (fastschemas.load_event_batch keeps the
    # schema's rules and errors): webargs' list handling cost more than a tenth of a batch.
    try:
        events = fastschemas.load_event_batch(json_body())
    except ValidationError as error:
        raise InvalidInput("invalid input", _messages(error)) from None
    may_send_money = actor_for(Role.INGEST, presented_token(INGEST_HEADER)) is not None
    now = time.time()
    recorder = current_services().event_recorder
    loaded: list[dict[str, Any] | EventOutcome] = []
    for raw in events:
        try:
            event = fastschemas.load_event(raw)
            recorder.check(event, may_send_money=may_send_money, now=now)
            loaded.append(event)
        except ValidationError as error:
            loaded.append(EventOutcome(services.REJECTED, _messages(error)))
        except InvalidInput as error:
            loaded.append(EventOutcome(services.REJECTED, dict(error.errors)))
    rejections = {
        str(index): dict(event.errors or {})
        for index, event in enumerate(loaded)
        if isinstance(event, EventOutcome)
    }
    if len(rejections) == len(loaded):
        # Nothing valid at all: the whole request is bad input, which clients must not retry.
        raise InvalidInput("every event of the batch was rejected", {"events": rejections})
    outcomes = recorder.record(loaded, now, is_trusted=may_send_money)
    if all(outcome.status == services.REJECTED for outcome in outcomes):
        # refused while recording (an amount beyond a visitor limit, say), written nowhere
        rejected = {str(i): dict(outcome.errors or {}) for i, outcome in enumerate(outcomes)}
        raise InvalidInput("every event of the batch was rejected", {"events": rejected})
    return Response(fastschemas.encode_event_results(outcomes), mimetype="application/json")


def _messages(error: ValidationError) -> dict[str, Any]:
    messages = error.messages
    return messages if isinstance(messages, dict) else {"_event": messages}


@blp.route("/v1/visitors/<string:visitor>", methods=["DELETE"])
@require(Role.EDITOR)
@blp.response(200, schemas.ErasureSchema)
@blp.doc(security=[{"bearerAuth": []}])
def erase_visitor(visitor: str) -> dict[str, Any]:
    """Erase every per-visitor record (enrolments, order attributions, idempotency keys).

    A visitor id with a '/' cannot travel in a URL path: use POST /v1/visitors/erase.
    """
    if not 0 < len(visitor) <= schemas.VISITOR_MAX_LENGTH:
        raise InvalidInput("invalid visitor id", {"visitor": ["must be 1..128 characters"]})
    return _erase(visitor)


@blp.route("/v1/visitors/erase", methods=["POST"])
@require(Role.EDITOR)
@blp.arguments(schemas.ErasureRequestSchema)
@blp.response(200, schemas.ErasureSchema)
@blp.doc(security=[{"bearerAuth": []}])
def erase_visitor_by_body(data: dict[str, Any]) -> dict[str, Any]:
    """The same erasure for any visitor id, given in the body: ``{"visitor": "a/b"}``."""
    return _erase(data["visitor"])


def _erase(visitor: str) -> dict[str, Any]:
    wired = current_services()
    removed, experiments = services.erase_visitor(wired.store, wired.pseudonymiser, visitor)
    return {"removed": removed, "experiments": experiments}
