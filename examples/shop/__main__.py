"""``python -m examples.shop``: run the example shop next to a Splitwerk server (`make run`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections.abc import Sequence

from examples.shop.app import create_app
from examples.shop.settings import CONSENT_MODES

DEFAULT_SPLITWERK_URL = "http://127.0.0.1:8000"  # where `make run` serves Splitwerk
# 5001, not Flask's 5000: macOS's AirPlay receiver listens on 5000.
DEFAULT_PORT = 5001
INGEST_KEY_VARIABLE = "SHOP_INGEST_KEY"  # keeps the key out of the process list
EMBED_TIMEOUT = 5.0  # seconds to wait for Splitwerk's embed code at start


def fetch_embed(splitwerk_url: str) -> str:
    """Splitwerk's embed code (``GET /v1/snippet/embed``), as a shop copies it; "" without."""
    url = f"{splitwerk_url.rstrip('/')}/v1/snippet/embed"
    try:
        with urllib.request.urlopen(url, timeout=EMBED_TIMEOUT) as response:
            html = json.load(response)["html"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"no embed code from {url} ({error}): pages run without the snippet", file=sys.stderr)
        return ""
    return html if isinstance(html, str) else ""


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve the shop with Flask's development server."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.shop",
        description="The Splitwerk example shop (development server, not for production).",
    )
    parser.add_argument("--splitwerk-url", default=DEFAULT_SPLITWERK_URL, help="Splitwerk URL")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument(
        "--ingest-key",
        default=os.environ.get(INGEST_KEY_VARIABLE),
        help=f"Splitwerk ingest token for orders (default: ${INGEST_KEY_VARIABLE})",
    )
    parser.add_argument(
        "--consent-mode", choices=CONSENT_MODES, default="required", help="consent banner"
    )
    args = parser.parse_args(argv)
    app = create_app(
        args.splitwerk_url,
        ingest_key=args.ingest_key,
        consent_mode=args.consent_mode,
        snippet_embed=fetch_embed(args.splitwerk_url),
    )
    shop = f"http://{args.host}:{args.port}"
    print(f"shop: {shop}/  (browser-assigned page: {shop}/browser)")
    print(f"Splitwerk must allow this origin: SPLITWERK_CORS_ORIGINS={shop} make run")
    if args.ingest_key is None:
        print(f"no ingest key (--ingest-key or ${INGEST_KEY_VARIABLE}): orders are not recorded")
    app.run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
