"""A one-page Starlette shop: the ASGI visitor middleware, a server-side variant, an order.

Run it next to ``make run`` (the server on :8000), with any ASGI server::

    SPLITWERK_URL=http://127.0.0.1:8000 SHOP_INGEST_KEY=<the ingest key make run prints> \
        uvicorn --factory examples.starlette_shop.app:app_from_environment --port 5003

FastAPI is Starlette: ``app.add_middleware(AsgiVisitorMiddleware, consent=...)`` is the same.
``Client`` calls block for at most their ``timeout`` (0.1 s by default); in an async view
run them in a thread (``run_in_threadpool``) so that the event loop never waits.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from splitwerk import Client
from splitwerk.asgi import AsgiVisitorMiddleware, asgi_visitor


def has_ab_consent(scope: Mapping[str, Any]) -> bool:
    """The visitor accepted A/B testing in the shop's consent banner (its own cookie here)."""
    cookies = [value for name, value in scope.get("headers", ()) if name == b"cookie"]
    return any(b"ab_consent=yes" in value for value in cookies)


def create_app(splitwerk_url: str, ingest_key: str | None) -> Starlette:
    """The shop, talking to Splitwerk at ``splitwerk_url``."""
    client = Client(splitwerk_url, ingest_key=ingest_key)

    async def product(request: Request) -> HTMLResponse:
        visitor, consent = asgi_visitor(request)
        variant = await run_in_threadpool(
            client.variant, "checkout-button", visitor, consent=consent
        )
        color = "#2e7d32" if variant != "control" else "#1565c0"
        return HTMLResponse(f'<button style="background:{color}">In den Warenkorb</button>')

    async def checkout(request: Request) -> JSONResponse:
        visitor, consent = asgi_visitor(request)
        order_id = request.query_params.get("order", "o-1")
        if consent:  # order() only queues: it never waits on the network
            client.order(visitor, order_id, revenue="59.90", tax="9.56", currency="EUR")
        return JSONResponse({"order": order_id, "visitor": visitor})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(client.close)  # sends queued orders, within close_timeout

    app = Starlette(
        routes=[Route("/", product), Route("/checkout", checkout)],
        middleware=[Middleware(AsgiVisitorMiddleware, consent=has_ab_consent)],
        lifespan=lifespan,
    )
    app.state.splitwerk = client
    return app


def app_from_environment() -> Starlette:
    """The factory for ``uvicorn --factory``: settings from the environment."""
    return create_app(
        os.environ.get("SPLITWERK_URL", "http://127.0.0.1:8000"),
        os.environ.get("SHOP_INGEST_KEY") or None,
    )
