"""The code a shop copies to install Splitwerk: snippet embed code, SDK lines, keys, example shop.

The dashboard's install page and ``GET /v1/snippet/embed`` show these texts; each is built here
once, from the server's own URL, so the page and the API never disagree.
"""

from __future__ import annotations

from html import escape

SHOP_PORT = 5001  # the example shop's default port (examples/shop/__main__.py)
# The SDK is not on PyPI: it installs from the sdk/ folder of the Splitwerk repository.
SDK_INSTALL_COMMAND = "pip install ./sdk"


def embed_code(base_url: str, *, version: str) -> str:
    """The script tag for a shop page's <head>: the snippet at its versioned, cacheable URL.

    Consent is required before anything is stored (the usual choice in the EU), and marked
    elements (``data-splitwerk``) stay hidden until their variant is applied, at most 800 ms.
    """
    source = f"{base_url.rstrip('/')}/sdk.js?v={version}"
    return (
        f'<script src="{escape(source)}"\n'
        '        data-consent-mode="required" data-anti-flicker="true"></script>'
    )


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
