"""Request parsing for the public endpoints that browsers call directly (any Content-Type)."""

from __future__ import annotations

from typing import Any

from flask import request

from server.api.jsonio import parse_body


def json_body() -> Any:
    """The request body as JSON, whatever its Content-Type (text/plain avoids a preflight)."""
    body = request.get_data(cache=False)
    if not body:
        return {}
    return parse_body(body)
