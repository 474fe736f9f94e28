"""Blueprint and request parsing for the public endpoints that browsers call directly."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser


class AnyContentTypeJsonParser(FlaskParser):
    """Reads JSON bodies whatever their Content-Type.

    Browsers send ``text/plain`` to avoid a CORS preflight, and ``navigator.sendBeacon`` cannot
    set ``application/json`` at all.
    """

    def _raw_load_json(self, req: Any) -> Any:
        body = req.get_data(cache=True)
        return core.parse_json(body) if body else core.missing


class PublicBlueprint(Blueprint):  # type: ignore[misc]  # flask-smorest ships no types
    """A blueprint whose JSON arguments may arrive as text/plain."""

    ARGUMENTS_PARSER = AnyContentTypeJsonParser()
