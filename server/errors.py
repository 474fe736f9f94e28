"""The map from exceptions to HTTP statuses, and the handlers that answer every error as JSON.

Every error, unknown routes and methods included, gets one body::

    {"code": 422, "status": "Unprocessable Entity", "message": "...", "errors": {"field": [...]}}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import BadRequest, HTTPException

from server.core import strict_json
from server.core.errors import Conflict, DomainError, InvalidInput, NotFound
from server.storage.errors import NotReady, OutcomeUnknown, StorageUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5  # what a 503 asks clients to wait; Redis reconnects within that
# One answer to a body that is not JSON (or not UTF-8), whichever route reads it.
INVALID_JSON_MESSAGE = "The request body is not valid JSON."
INVALID_JSON_REASON = "Not valid JSON (UTF-8)."  # listed under errors.body when no finer reason
# How webargs (the admin routes' parser) reports such a body.
WEBARGS_INVALID_JSON = {"json": ["Invalid JSON body."]}


class InvalidJson(BadRequest):
    """A request body that is not acceptable JSON: not UTF-8, not JSON, too deep, NaN inside."""

    description = INVALID_JSON_MESSAGE

    def __init__(self, reason: str | None = None) -> None:
        super().__init__()
        self.reason = reason or INVALID_JSON_REASON


# Domain exception → HTTP status; the most specific class listed first wins.
STATUS_OF: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (DomainError, 400),
)


def error_response(
    code: int,
    message: str | None = None,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build the one JSON error body.

    Written without an app context (the bytes ``jsonify`` writes: sorted keys, compact, one
    newline), so that the assign fast path below Flask answers its errors with it too.
    """
    status = HTTPStatus(code)
    body = {
        "code": code,
        "status": status.phrase,
        "message": message or status.description,
        "errors": dict(errors or {}),
    }
    return Response(
        strict_json.dumps(body, sort_keys=True) + "\n",
        status=code,
        mimetype="application/json",
        headers=dict(headers or {}),
    )


def _flatten_locations(errors: Mapping[str, Any]) -> Mapping[str, Any]:
    """webargs nests field errors under their location ("json", "query"); one location is
    what every request here has, so the field names are lifted to the top."""
    if len(errors) == 1:
        location, inner = next(iter(errors.items()))
        if location in {"json", "query", "path", "form", "headers"} and isinstance(inner, dict):
            return inner
    return errors


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug's errors (404, 405, 400 bad JSON, webargs' 422) in the common shape."""
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    if isinstance(error, InvalidJson):
        return error_response(400, INVALID_JSON_MESSAGE, {"body": [error.reason]})
    if data.get("messages") == WEBARGS_INVALID_JSON:
        return error_response(400, INVALID_JSON_MESSAGE, {"body": [INVALID_JSON_REASON]})
    errors = _flatten_locations(data.get("messages", {}) or data.get("errors", {}))
    message = data.get("message") or error.description
    if code == 422 and errors:
        message = "invalid input: " + ", ".join(sorted(str(name) for name in errors))
    response = error_response(code, message, errors)
    if code == 405 and error.valid_methods:  # type: ignore[attr-defined]  # MethodNotAllowed
        response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    return response


def handle_domain_error(error: DomainError) -> Response:
    """A refusal of the domain: status from STATUS_OF."""
    code = next(status for kind, status in STATUS_OF if isinstance(error, kind))
    return error_response(code, error.message, error.errors)


def handle_storage_unavailable(error: StorageUnavailable) -> Response:
    """Redis is down or slow: 503 and a hint when to come back."""
    if isinstance(error, NotReady):
        return error_response(
            503,
            str(error),
            {"redis": [error.redis_state]},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    message = "storage unavailable, try again shortly"
    if isinstance(error, OutcomeUnknown):
        message = (
            "storage did not answer in time; the request may have been stored: send it again "
            "(stored events then answer duplicate)"
        )
    return error_response(503, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def handle_unexpected(error: Exception) -> Response:
    """Last resort: log the bug with its traceback, answer a 500 without details."""
    log.exception("unhandled error: %s", error.__class__.__name__)
    return error_response(500, "internal error")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers; the only place that maps exceptions to HTTP."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(StorageUnavailable, handle_storage_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
