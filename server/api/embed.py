"""The snippet's embed code for shop pages, as JSON: GET /v1/snippet/embed."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint

from server.context import snippet_version
from server.services.install import embed_code

blp = Blueprint("embed", __name__, description="The script tag that loads the snippet.")


@blp.route("/v1/snippet/embed", methods=["GET"])
@blp.response(200, description='{"html": "<script …>", "version": "<snippet version>"}')
def embed() -> dict[str, Any]:
    """The script tag for a shop page, pointing at this server's current /sdk.js version."""
    version = snippet_version()
    return {"html": embed_code(request.url_root, version=version), "version": version}
