"""The code a shop copies to install Splitwerk: snippet embed code, SDK lines, keys, example shop.

The dashboard's install page and ``GET /v1/snippet/embed`` show these texts; each is built here
once, from the server's own URL, so the page and the API never disagree.

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
SHOP_PORT = 5001  # the example shop's default port (examples/shop/__main__.py)
# The SDK is not on PyPI: it installs from the sdk/ folder of the Splitwerk repository.
SDK_INSTALL_COMMAND = "pip install ./sdk"
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


def python_sdk_code(base_url: str) -> str:
    """A client of this server with the ingest key, one assignment and one order."""
    return (
        "import os\n"
        "from splitwerk import Client\n"
        "\n"
        "client = Client(\n"
        f'    "{base_url.rstrip("/")}", ingest_key=os.environ["SPLITWERK_INGEST_KEY"]\n'
        ")\n"
        'variant = client.variant("checkout-button", visitor_id)\n'
        'client.order(visitor_id, "10042", revenue="119.00", tax="19.00", currency="EUR")'
    )


def ingest_key_commands() -> str:
    """Create an ingest key: a new token, and its hash as a SPLITWERK_TOKENS entry."""
    return (
        "splitwerk hash-token\n"
        "# token: <the key for the shop's back end>\n"
        "# sha256: <its SHA-256>\n"
        'export SPLITWERK_TOKENS="$SPLITWERK_TOKENS,ingest:shop:<sha256>"'
    )


def shop_command(base_url: str) -> str:
    """Run the example shop against this server, with the development ingest key."""
    shop = f"http://127.0.0.1:{SHOP_PORT}"
    return (
        f"# start Splitwerk with SPLITWERK_CORS_ORIGINS={shop} (the shop's origin)\n"
        "SHOP_INGEST_KEY=$(cat .splitwerk/dev-ingest-token) \\\n"
        f"  .venv/bin/python -m examples.shop --splitwerk-url {base_url.rstrip('/')} "
        f"--port {SHOP_PORT}"
    )
