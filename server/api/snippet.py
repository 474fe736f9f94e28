"""Serves the snippet at /sdk.js (compressed, versioned URLs cached a year) and its embed code."""

from __future__ import annotations

import functools
from pathlib import Path

import brotli  # type: ignore[import-untyped]  # Brotli ships no type hints
import zopfli.gzip  # type: ignore[import-untyped]  # zopfli ships no type hints
from flask import Response, current_app, request

from server.api.jsonio import Blueprint
from server.services import install

blp = Blueprint("snippet", __name__, description="The JavaScript snippet shop pages load.")

IMMUTABLE_MAX_AGE = 31_536_000  # one year: /sdk.js?v=<version> never changes content
UNVERSIONED_MAX_AGE = 300  # seconds: a plain /sdk.js picks up a new release within minutes
SNIPPET_EXTENSION = "splitwerk.snippet"
# gzip by zopfli: the same format, about 1.5 % smaller than zlib's level 9 (which size.mjs
# measures, an upper bound); compressed once per process (about 0.1 s), so it costs nothing later
ZOPFLI_ITERATIONS = 100
BROTLI_QUALITY = 11  # likewise brotli's best; size.mjs measures the budget with the same


@functools.lru_cache(maxsize=2)
def _compressed(body: bytes) -> tuple[bytes, bytes]:
    """The brotli and gzip forms of ``body``, made once per process and content: every app the
    process creates (the test suite makes one per test) serves the same snippet file, and
    zopfli takes most of the 0.1 s."""
    return (
        brotli.compress(body, quality=BROTLI_QUALITY),
        zopfli.gzip.compress(body, numiterations=ZOPFLI_ITERATIONS),
    )


class Snippet:
    """The snippet's bytes, compressed forms and content version, prepared once at start-up."""

    def __init__(self, path: Path) -> None:
        self.body = path.read_bytes()
        self.version = install.snippet_version(self.body)
        # the same bytes on every start (zopfli writes no time), so caches agree across workers
        brotli_form, gzip_form = _compressed(self.body)
        self.encoded = {"br": brotli_form, "gzip": gzip_form}

    def encoding_for(self, accepted: str) -> str | None:
        """The smallest encoding the client accepts (``Accept-Encoding``), None for plain bytes."""
        offered = {part.split(";")[0].strip().lower(): part for part in accepted.split(",")}
        for name in ("br", "gzip"):
            part = offered.get(name)
            if part is not None and not part.replace(" ", "").endswith(";q=0"):
                return name
        return None


def default_snippet_path() -> Path:
    """Where the repository keeps the built snippet (sdk/js/splitwerk.min.js beside server/)."""
    return install.SNIPPET_FILE


@blp.route("/sdk.js", methods=["GET"])
@blp.response(200, description="JavaScript; cached for a year when ?v= is the current version")
def snippet() -> Response:
    """The snippet; `?v=<version>` (see X-Splitwerk-Snippet-Version) makes it cacheable forever."""
    current: Snippet = current_app.extensions[SNIPPET_EXTENSION]
    encoding = current.encoding_for(request.headers.get("Accept-Encoding", ""))
    # one ETag per representation: a cache must not answer a gzip client with brotli bytes
    etag = f'"{current.version}-{encoding}"' if encoding else f'"{current.version}"'
    if request.args.get("v") == current.version:
        cache = f"public, max-age={IMMUTABLE_MAX_AGE}, immutable"
    else:
        cache = f"public, max-age={UNVERSIONED_MAX_AGE}"
    headers = {
        "ETag": etag,
        "Cache-Control": cache,
        "Vary": "Accept-Encoding",
        "X-Splitwerk-Snippet-Version": current.version,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    if encoding:
        headers["Content-Encoding"] = encoding
        body = current.encoded[encoding]
    else:
        body = current.body
    return Response(body, headers=headers, mimetype="application/javascript")


@blp.route("/v1/snippet/embed", methods=["GET"])
@blp.response(200, description='{"html": the embed code for <head>, "version": of /sdk.js}')
def embed() -> dict[str, str]:
    """The exact embed code for this server's URL, with the current snippet version (public)."""
    return {"html": install.embed_code(request.host_url), "version": install.current_version()}
