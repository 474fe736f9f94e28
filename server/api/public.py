"""Request parsing for the public endpoints that browsers call directly (any Content-Type)."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from server.errors import InvalidJson


def json_body() -> Any:
    """The request body as JSON, whatever its Content-Type (text/plain avoids a preflight)."""
    body = request.get_data(cache=False)
    if not body:
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson() from None
