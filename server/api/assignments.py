"""Public assignment endpoint: POST (JSON or text/plain) and GET /v1/assign."""

from __future__ import annotations

import time
from typing import Any

from flask import Response, request
from marshmallow import ValidationError
from werkzeug.exceptions import Forbidden

from server import schemas
from server.api import fastschemas, links
from server.api.auth import actor_for, presented_token
from server.api.jsonio import Blueprint
from server.api.public import json_body
from server.context import current_services
from server.core import strict_json
from server.core.errors import InvalidInput
from server.core.models import Role
from server.services.assignments import AssignRequest, AssignResult

blp = Blueprint(
    "assignments", __name__, description="Which variants a visitor sees (public, hot path)."
)

# "true", "false" when nothing was recorded (degraded mode), "unknown" when Redis got the
# enrolment but did not answer in time
RECORDED_HEADER = "X-Splitwerk-Recorded"
ATTRIBUTE_PREFIX = "attr."  # GET /v1/assign?attr.source=facebook
# Schema instances built once: passing classes to blp.arguments builds one per request.
QUERY = schemas.AssignQuerySchema()


def _may_force() -> bool:
    token = presented_token()
    if actor_for(Role.PREVIEW, token) or actor_for(Role.EDITOR, token):
        return True
    return current_services().settings.DEV


def request_of(data: dict[str, Any], is_bot: bool) -> AssignRequest:
    """The use case's request from a loaded body (shared with the WSGI fast path)."""
    experiments = data["experiments"]
    return AssignRequest(
        visitor=data["visitor"],
        experiments=None if experiments is None else tuple(experiments),
        attributes=data["attributes"],
        has_consent=data["consent"],
        forced=data["force"],
        is_bot=is_bot,
        covariate=data.get("covariate"),
    )


def answer_of(result: AssignResult) -> tuple[bytes, list[tuple[str, str]]]:
    """The answer's body and headers (shared with the WSGI fast path)."""
    body = strict_json.dumps(fastschemas.dump_assign_result(result)).encode()
    return body, [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        (RECORDED_HEADER, str(schemas.recorded_value(result.is_recorded)).lower()),
        ("Cache-Control", "no-store"),
    ]


def _assign(data: dict[str, Any], user_agent: str | None) -> Response:
    if data["force"] and not _may_force():
        raise Forbidden("force needs a preview or editor token (or dev mode)")
    agent = user_agent if user_agent is not None else request.headers.get("User-Agent")
    wired = current_services()
    result = wired.assigner.assign(request_of(data, wired.bot_detector.is_bot(agent)), time.time())
    body, headers = answer_of(result)
    return Response(body, headers=headers)


@blp.route("/v1/assign", methods=["POST"])
@blp.doc(
    responses={200: {"links": links.ASSIGNED}},
    requestBody={
        "required": True,
        "content": {
            "application/json": {"schema": "AssignRequest"},
            "text/plain": {"schema": "AssignRequest"},
        },
    },
)
@blp.response(200, schemas.AssignResponseSchema)
def assign() -> Response:
    """Variants for one visitor: the experiments named, or every running one that matches."""
    # The hot path parses its body itself: webargs' per-request machinery cost more than the
    # assignment (fastschemas.load_assign_request keeps the schema's rules and errors).
    try:
        data = fastschemas.load_assign_request(json_body())
    except ValidationError as error:
        raise InvalidInput("invalid input", dict(error.messages)) from None  # type: ignore[arg-type]  # messages of a dict body are a dict
    return _assign(data, data["user_agent"])


@blp.route("/v1/assign", methods=["GET"])
@blp.arguments(QUERY, location="query")
@blp.response(200, schemas.AssignResponseSchema)
def assign_by_query(query: dict[str, Any]) -> Response:
    """The same for simple clients: ``?visitor=v&experiments=a,b&attr.source=facebook``."""
    experiments = query["experiments"]
    names = None if experiments is None else [k for k in experiments.split(",") if k]
    force = None
    if query["force"]:
        pairs = [item.partition(":") for item in query["force"].split(",") if item]
        if not all(separator for _, separator, _ in pairs):
            raise InvalidInput(
                "invalid input: force", {"force": ["must be experiment:variant pairs"]}
            )
        force = {experiment: variant for experiment, _, variant in pairs}
    covariate: float | None = None
    if query["covariate"] is not None:
        try:
            covariate = float(query["covariate"])
        except ValueError:
            raise InvalidInput(
                "invalid input: covariate", {"covariate": ["must be a number"]}
            ) from None
    try:
        loaded = schemas.ASSIGN_REQUEST.load(
            {
                "visitor": query["visitor"],
                "experiments": names,
                "attributes": {
                    name[len(ATTRIBUTE_PREFIX) :]: value
                    for name, value in request.args.items()
                    if name.startswith(ATTRIBUTE_PREFIX)
                },
                "consent": query["consent"],
                "force": force,
                **({} if covariate is None else {"covariate": covariate}),
            }
        )
    except ValidationError as error:
        # the query's names: attributes are the attr.* parameters
        raise InvalidInput(
            "invalid input: " + ", ".join(sorted(map(str, error.messages))),
            dict(error.messages),  # type: ignore[arg-type]  # messages of a dict are a dict
        ) from None
    return _assign(loaded, None)
