"""Serves the browser snippet at /sdk.js: long-lived caching for the versioned URL."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Response, current_app, request

from server.api.jsonio import Blueprint

blp = Blueprint("snippet", __name__, description="The JavaScript snippet shop pages load.")

IMMUTABLE_MAX_AGE = 31_536_000  # one year: /sdk.js?v=<version> never changes content
UNVERSIONED_MAX_AGE = 300  # seconds: a plain /sdk.js picks up a new release within minutes
SNIPPET_EXTENSION = "splitwerk.snippet"


class Snippet:
    """The snippet's bytes and their content version, read once at start-up."""

    def __init__(self, path: Path) -> None:
        self.body = path.read_bytes()
        self.version = hashlib.sha256(self.body).hexdigest()[:12]


def default_snippet_path() -> Path:
    """Where the repository keeps the snippet (sdk/js/splitwerk.js beside server/)."""
    return Path(__file__).resolve().parents[2] / "sdk" / "js" / "splitwerk.js"


@blp.route("/sdk.js", methods=["GET"])
@blp.response(200, description="JavaScript; cached for a year when ?v= is the current version")
def snippet() -> Response:
    """The snippet; `?v=<version>` (see X-Splitwerk-Snippet-Version) makes it cacheable forever."""
    current: Snippet = current_app.extensions[SNIPPET_EXTENSION]
    etag = f'"{current.version}"'
    if request.args.get("v") == current.version:
        cache = f"public, max-age={IMMUTABLE_MAX_AGE}, immutable"
    else:
        cache = f"public, max-age={UNVERSIONED_MAX_AGE}"
    headers = {
        "ETag": etag,
        "Cache-Control": cache,
        "X-Splitwerk-Snippet-Version": current.version,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(current.body, headers=headers, mimetype="application/javascript")
