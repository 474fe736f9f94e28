"""A WSGI shop run by gunicorn in test_shutdown.py, with the README's ``worker_exit`` recipe.

``GET /order?n=N`` queues order ``g-N`` for visitor ``buyer-N`` (the flush interval is long:
the orders are still queued when gunicorn stops). This module is both the app
(``tests.sdk.gunicorn_shop:app``) and gunicorn's config file (``-c``), as in the README:
``worker_exit`` closes the client, which sends the queue.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from splitwerk import Client
from tests.helpers import INGEST_TOKEN

_clients: list[Client] = []  # one per worker process, made on first use


def client() -> Client:
    if not _clients:
        _clients.append(
            Client(
                os.environ["SPLITWERK_URL"],
                ingest_key=INGEST_TOKEN,
                poll_interval=None,
                flush_interval=600.0,  # nothing is sent before the shutdown
                close_timeout=10.0,
            )
        )
    return _clients[0]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    number = parse_qs(environ.get("QUERY_STRING", "")).get("n", ["0"])[0]
    client().order(f"buyer-{number}", f"g-{number}", revenue="10.00")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(client().stats()["queued"]).encode()]


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook, as the SDK README shows it."""
    if _clients:
        _clients[0].close(timeout=5.0)
