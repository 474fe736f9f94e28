"""A shop process for the SDK's crash and shutdown tests: queues orders, then waits or sends.

``python -m tests.sdk.shop_process COMMAND URL SPOOL_DIR FIRST COUNT``:

- ``orders``: queue orders ``o-FIRST``.. for visitors ``buyer-FIRST``.., print ``queued``
  and sleep until killed (the test sends SIGKILL or SIGTERM).
- ``deliver``: start a client on the spool, flush, print the stats as JSON; exit 0 if all
  was sent.

SPOOL_DIR ``-`` means no spool. ``SHOP_FLUSH_INTERVAL`` and ``SHOP_CLOSE_TIMEOUT`` (seconds)
override the client's options. With ``SHOP_SIGTERM=host`` the process installs its own
SIGTERM handler first (as a host framework would), then asks the SDK to flush on SIGTERM and
chain to it; without, the SDK takes the unhandled SIGTERM itself.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from typing import Any

from splitwerk import Client
from tests.helpers import INGEST_TOKEN

REVENUE = "10.00"  # per order; the test checks the server's sum


def _client(url: str, spool: str) -> Client:
    options: dict[str, Any] = {
        "ingest_key": INGEST_TOKEN,
        "poll_interval": None,
        "flush_interval": float(os.environ.get("SHOP_FLUSH_INTERVAL", "0.1")),
        "retry_backoff": 0.05,
        "background_timeout": 1.0,
        "close_timeout": float(os.environ.get("SHOP_CLOSE_TIMEOUT", "5.0")),
    }
    if spool != "-":
        options["spool_dir"] = spool
    return Client(url, **options)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    command, url, spool, first, count = sys.argv[1:6]
    if os.environ.get("SHOP_SIGTERM") == "host":

        def host_handler(signum: int, frame: Any) -> None:
            print("host handler ran", flush=True)
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, host_handler)
    client = _client(url, spool)
    if os.environ.get("SHOP_SIGTERM") == "host":
        client.close_on_sigterm()  # the host handles SIGTERM, so the SDK only does if asked
    if command == "orders":
        for n in range(int(first), int(first) + int(count)):
            client.order(f"buyer-{n}", f"o-{n}", revenue=REVENUE)
        print("queued", flush=True)
        while True:
            time.sleep(1)
    elif command == "deliver":
        is_sent = client.flush(30.0)
        print(json.dumps(client.stats()), flush=True)
        client.close()
        raise SystemExit(0 if is_sent else 1)


if __name__ == "__main__":
    main()
