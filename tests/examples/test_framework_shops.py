"""The Django and Starlette example shops: one visitor cookie, variants and orders end to end.

Each shop talks to a real Splitwerk server (the demo experiment) over HTTP on 127.0.0.1. The
cookie each framework's middleware sets must be the one the WSGI middleware sets: same name,
same attributes (Django adds ``expires`` next to ``Max-Age``, which is ignored here).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Iterator
from typing import Any

import pytest

from splitwerk import VisitorMiddleware
from tests.examples.live import Splitwerk, counts, require_events_api, variant_index
from tests.helpers import INGEST_TOKEN

pytest.importorskip("django")
pytest.importorskip("starlette")

CONSENT_COOKIE = "ab_consent=yes"  # what both example shops' consent checks look for
SECURE = {"httponly", "max-age=31536000", "path=/", "samesite=lax", "secure"}


def run_coroutine(coroutine: Any) -> Any:
    """Run a coroutine to its end in a thread of its own, as an ASGI server would.

    Not in this thread: other tests of the run (Playwright's) may have left an event loop
    running in it, and asyncio.run() refuses to start a second one there.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def cookie_of(header: str) -> tuple[str, str, set[str]]:
    """Name, value and attributes (lower-case, without ``expires``) of a Set-Cookie value."""
    pair, *attributes = (part.strip() for part in header.split(";"))
    name, _, value = pair.partition("=")
    kept = {a.lower() for a in attributes if a and not a.lower().startswith("expires=")}
    return name, value.strip('"'), kept


def wsgi_cookie() -> tuple[str, str, set[str]]:
    """The reference: the WSGI middleware's cookie for a consenting visitor over https."""
    headers: list[tuple[str, str]] = []
    middleware = VisitorMiddleware(
        lambda environ, start: start("200 OK", []) or [b""], consent=lambda environ: True
    )
    middleware({"wsgi.url_scheme": "https"}, lambda status, given, exc=None: headers.extend(given))
    return cookie_of(dict(headers)["Set-Cookie"])


def test_the_reference_cookie_has_the_documented_attributes() -> None:
    name, value, attributes = wsgi_cookie()
    assert (name, len(value), attributes) == ("splitwerk_vid", 32, SECURE)


# --- Django ----------------------------------------------------------------------------


@pytest.fixture
def django_shop(splitwerk: Splitwerk, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("SPLITWERK_URL", splitwerk.url)
    monkeypatch.setenv("SHOP_INGEST_KEY", INGEST_TOKEN)
    from examples.django_shop import app as shop

    yield shop
    if shop._clients:
        shop._clients.pop().close()


def test_django_shop_sets_the_same_cookie_and_keeps_the_variant(
    splitwerk: Splitwerk, django_shop: Any
) -> None:
    from django.test import Client as Browser

    require_events_api(splitwerk.app)
    browser = Browser(HTTP_COOKIE=CONSENT_COOKIE)
    first = browser.get("/", secure=True)
    assert first.status_code == 200
    name, visitor, attributes = cookie_of(first.cookies["splitwerk_vid"].OutputString())
    assert (name, attributes) == ("splitwerk_vid", wsgi_cookie()[2])
    cookie = f"{CONSENT_COOKIE}; splitwerk_vid={visitor}"
    again = Browser(HTTP_COOKIE=cookie).get("/", secure=True)
    assert "splitwerk_vid" not in again.cookies  # known visitor: no new cookie
    assert again.content == first.content  # the same variant
    checkout = Browser(HTTP_COOKIE=cookie).get("/checkout?order=dj-1", secure=True)
    assert json.loads(checkout.content) == {"order": "dj-1", "visitor": visitor}
    sdk = django_shop.client()
    assert sdk.flush(5.0) and sdk.stats()["accepted"] == 1
    variant = "control" if b"#1565c0" in first.content else "green-note"
    assert counts(splitwerk.app)[f"n:{variant_index(variant)}:purchase"] == 1


def test_django_shop_without_consent_sets_no_cookie(django_shop: Any) -> None:
    from django.test import Client as Browser

    response = Browser().get("/", secure=True)
    assert response.status_code == 200 and "splitwerk_vid" not in response.cookies


# --- Starlette (ASGI) ------------------------------------------------------------------


def asgi_get(app: Any, target: str, cookie: str = "") -> tuple[int, dict[str, str], bytes]:
    """One GET through the ASGI app, as an ASGI server would send it."""
    path, _, query = target.partition("?")
    headers = [(b"host", b"shop.test")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "server": ("shop.test", 443),
        "client": ("127.0.0.1", 50000),
    }
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    run_coroutine(app(scope, receive, send))
    start = messages[0]
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], response_headers, body


@pytest.fixture
def starlette_shop(splitwerk: Splitwerk) -> Iterator[Any]:
    from examples.starlette_shop.app import create_app

    app = create_app(splitwerk.url, INGEST_TOKEN)
    yield app
    app.state.splitwerk.close()


def test_starlette_shop_sets_the_same_cookie_and_keeps_the_variant(
    splitwerk: Splitwerk, starlette_shop: Any
) -> None:
    require_events_api(splitwerk.app)
    status, headers, first = asgi_get(starlette_shop, "/", CONSENT_COOKIE)
    assert status == 200
    name, visitor, attributes = cookie_of(headers["set-cookie"])
    assert (name, attributes) == ("splitwerk_vid", wsgi_cookie()[2])
    cookie = f"{CONSENT_COOKIE}; splitwerk_vid={visitor}"
    _, headers, again = asgi_get(starlette_shop, "/", cookie)
    assert "set-cookie" not in headers and again == first
    _, _, checkout = asgi_get(starlette_shop, "/checkout?order=as-1", cookie)
    assert json.loads(checkout) == {"order": "as-1", "visitor": visitor}
    sdk = starlette_shop.state.splitwerk
    assert sdk.flush(5.0) and sdk.stats()["accepted"] == 1
    variant = "control" if b"#1565c0" in first else "green-note"
    assert counts(splitwerk.app)[f"n:{variant_index(variant)}:purchase"] == 1


def test_starlette_shop_deletes_the_cookie_when_consent_is_withdrawn(starlette_shop: Any) -> None:
    _, headers, _ = asgi_get(starlette_shop, "/", "splitwerk_vid=abc")
    name, value, attributes = cookie_of(headers["set-cookie"])
    assert (name, value) == ("splitwerk_vid", "") and "max-age=0" in attributes
