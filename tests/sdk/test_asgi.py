"""The ASGI visitor middleware without a framework: scopes, cookies, consent, misuse."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import pytest

from splitwerk import ConfigError
from splitwerk.asgi import AsgiVisitorMiddleware, asgi_visitor


def run_coroutine(coroutine: Any) -> Any:
    """Run a coroutine to its end in a thread of its own, as an ASGI server would.

    Not in this thread: other tests of the run (Playwright's) may have left an event loop
    running in it, and asyncio.run() refuses to start a second one there.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run(middleware: AsgiVisitorMiddleware, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run_coroutine(middleware(scope, receive, send))
    return sent


async def echo(scope: Any, receive: Any, send: Any) -> None:
    visitor, consent = asgi_visitor(scope)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"y")]})
    await send({"type": "http.response.body", "body": f"{visitor} {consent}".encode()})


def test_a_consenting_new_visitor_gets_the_cookie_and_keeps_it() -> None:
    middleware = AsgiVisitorMiddleware(echo, consent=lambda scope: True)
    sent = run(middleware, {"type": "http", "scheme": "http", "headers": []})
    headers = dict(sent[0]["headers"])
    visitor, consent = sent[1]["body"].decode().split()
    assert consent == "True" and headers[b"x"] == b"y"
    cookie = headers[b"set-cookie"].decode()
    assert cookie.startswith(f"splitwerk_vid={visitor}; Path=/; Max-Age=31536000; SameSite=Lax")
    assert "Secure" not in cookie  # plain http
    # Two Cookie headers (HTTP/2 may split them) are read as one.
    scope = {
        "type": "http",
        "headers": [(b"cookie", b"a=b"), (b"cookie", f"splitwerk_vid={visitor}".encode())],
    }
    again = run(middleware, scope)
    assert b"set-cookie" not in dict(again[0]["headers"])
    assert again[1]["body"].decode() == f"{visitor} True"


def test_a_failing_consent_check_means_no_consent_and_no_cookie() -> None:
    def broken(scope: Any) -> bool:
        raise RuntimeError("consent service down")

    sent = run(AsgiVisitorMiddleware(echo, consent=broken), {"type": "http", "headers": []})
    assert b"set-cookie" not in dict(sent[0]["headers"])
    assert sent[1]["body"].decode().endswith(" False")


def test_other_scopes_pass_untouched_and_misuse_is_refused() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope))

    run(AsgiVisitorMiddleware(app, consent=lambda scope: True), {"type": "lifespan"})
    assert seen == [{"type": "lifespan"}]
    with pytest.raises(ConfigError):
        AsgiVisitorMiddleware(app, consent="yes")  # type: ignore[arg-type]
    visitor, consent = asgi_visitor({"type": "http"})  # no middleware: request-scoped, no consent
    assert len(visitor) == 32 and consent is False
