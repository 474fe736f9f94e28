"""The embed code a shop pastes into its pages: an inline loader stub for the versioned /sdk.js.

The embed is a ``<style>`` that hides elements marked ``data-splitwerk-hide`` while ``<html>``
has the class ``splitwerk-loading``, and an inline ``<script>`` (sdk/js/stub.js) that:

- defines ``window.splitwerk`` as a command queue, so that ``splitwerk('track', 'x')`` and
  ``splitwerk.track('x')`` never throw, before or without the snippet (promises of such calls
  settle once the snippet runs them; with undefined when it cannot load);
- adds the class and removes it after ``REVEAL_TIMEOUT_MS`` at the latest, also when the
  snippet never arrives (the snippet removes it as soon as its variants are applied);
- loads ``/sdk.js?v=<version>`` asynchronously, so it never blocks parsing or painting.

Its size is budgeted (``EMBED_BUDGET_BYTES``) and tested in tests/services/test_install.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

SNIPPET_DIRECTORY = Path(__file__).resolve().parents[2] / "sdk" / "js"
SNIPPET_FILE = SNIPPET_DIRECTORY / "splitwerk.min.js"  # built by sdk/js/build.mjs, committed
STUB_FILE = SNIPPET_DIRECTORY / "stub.js"
VERSION_LENGTH = 12  # hex digits of the content hash in ?v=: 48 bits, no collision between releases
# Hard cap in ms on hiding the marked elements: under a second, so that a slow or dead
# Splitwerk costs a shop at most that, whatever happens to the snippet; as long as the
# snippet's own wait for /v1/assign (800 ms), which a cached /sdk.js leaves time for.
REVEAL_TIMEOUT_MS = 800
EMBED_BUDGET_BYTES = 600  # the whole embed with a base URL of up to 30 characters
HIDE_RULE = ".splitwerk-loading [data-splitwerk-hide]{visibility:hidden}"


def snippet_version(body: bytes) -> str:
    """The content version of a snippet build: the start of its SHA-256."""
    return hashlib.sha256(body).hexdigest()[:VERSION_LENGTH]


@functools.cache
def current_version() -> str:
    """The version of the snippet build in this checkout (read once per process)."""
    return snippet_version(SNIPPET_FILE.read_bytes())


@functools.cache
def _stub() -> str:
    """The stub's code without its leading comment lines."""
    lines = STUB_FILE.read_text(encoding="utf-8").splitlines()
    return "".join(line for line in lines if not line.startswith("//"))


def snippet_url(base_url: str) -> str:
    """The versioned, year-long cacheable URL of the snippet under ``base_url``."""
    return f"{base_url.rstrip('/')}/sdk.js?v={current_version()}"


def embed_code(base_url: str) -> str:
    """The exact HTML a shop pastes into its ``<head>`` for the Splitwerk at ``base_url``."""
    # JSON is a valid JS string literal; "<" escaped so that no "</script>" ends the element
    url = json.dumps(snippet_url(base_url)).replace("<", "\\u003c")
    script = f"{_stub()}(window,document,{url},{REVEAL_TIMEOUT_MS})"
    return f"<style>{HIDE_RULE}</style><script>{script}</script>"
