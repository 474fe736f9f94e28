"""A child process that runs SDK calls sent by test_never_raises.py, so a crash fails a test.

Started as ``python -m tests.sdk.fuzz_worker URL DEAD_URL INGEST_KEY SPOOL_DIR``. It builds one
client per target and then answers requests on stdin/stdout: each is a length-prefixed pickle of
``(target, method, args, kwargs)``; the reply is a pickle of ``{"error", "type", "elapsed"}``.
If the SDK kills the process (a segmentation fault in C code, ``os._exit``), the parent sees
the pipe close and reports the call that did it.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import struct
import sys
import time
from typing import Any

from splitwerk import Client, ConfigError, VisitorMiddleware, visitor_of
from splitwerk.adapters import DjangoVisitorMiddleware, django_visitor
from splitwerk.asgi import AsgiVisitorMiddleware, asgi_visitor

HEADER = struct.Struct("!I")  # the length of the pickle that follows
TIMEOUT = 0.5  # seconds a remote call may take; the parent checks it


def _clients(url: str, dead_url: str, ingest_key: str, spool: str) -> dict[str, Client]:
    common: dict[str, Any] = {
        "timeout": TIMEOUT,
        "ingest_key": ingest_key,
        "flush_interval": 0.2,
        "background_timeout": 0.5,
        "close_timeout": 0.5,
    }
    local = Client(url, mode="local", poll_interval=30.0, **common)
    if not local.wait_for_config(10.0):
        raise SystemExit("the local client got no config")
    return {
        "remote": Client(url, poll_interval=None, **common),
        # Its orders pile up in a spool too: odd order ids and amounts go through SQLite.
        "remote-down": Client(dead_url, poll_interval=None, spool_dir=spool, **common),
        "local": local,
    }


def _plain_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["splitwerk.visitor"].encode()]


def _consent(answer: Any) -> Any:
    def check(environ: Any) -> Any:
        if isinstance(answer, str):
            raise RuntimeError(answer)  # a consent check that fails
        return answer

    return check


def run_wsgi(cookie: str, consent: Any) -> list[tuple[str, str]]:
    """One request through ``VisitorMiddleware`` with this Cookie header."""
    headers: list[tuple[str, str]] = []

    def start_response(status: str, given: list[tuple[str, str]], exc_info: Any = None) -> None:
        headers.extend(given)

    middleware = VisitorMiddleware(_plain_app, consent=_consent(consent))
    environ = {"HTTP_COOKIE": cookie, "wsgi.url_scheme": "https", "REQUEST_METHOD": "GET"}
    body = b"".join(middleware(environ, start_response))
    assert body, "the app saw no visitor id"
    for _name, value in headers:
        value.encode("latin-1")  # a header the server can send
    return headers


def run_asgi(cookie: bytes, consent: Any) -> list[tuple[bytes, bytes]]:
    """One request through ``AsgiVisitorMiddleware`` with this cookie header."""
    sent: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        visitor = scope["state"]["splitwerk_visitor"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": visitor.encode()})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = AsgiVisitorMiddleware(app, consent=_consent(consent))
    scope = {"type": "http", "scheme": "https", "headers": [(b"cookie", cookie)], "state": {}}
    asyncio.run(middleware(scope, receive, send))
    assert sent[-1]["body"], "the app saw no visitor id"
    return list(sent[0]["headers"])


def construct(url: Any, **options: Any) -> str:
    """Build a client: the one call allowed to raise, and only ``ConfigError``."""
    try:
        client = Client(url, **options)
    except ConfigError:
        return "ConfigError"
    client.close(0.1)
    return "Client"


def run_readers(state: Any, cookie: str, consent: Any) -> list[Any]:
    """The helpers that read a request's visitor, and the Django middleware, on odd input."""

    class Request:  # what DjangoVisitorMiddleware and django_visitor use of a request
        def __init__(self) -> None:
            self.META = {"HTTP_COOKIE": cookie, "splitwerk.visitor": state}

        def is_secure(self) -> bool:
            return True

    class Response:
        def __init__(self) -> None:
            self.cookies: list[Any] = []

        def set_cookie(self, *args: Any, **kwargs: Any) -> None:
            self.cookies.append((args, kwargs))

        def delete_cookie(self, *args: Any, **kwargs: Any) -> None:
            self.cookies.append(("delete", args, kwargs))

    environ = {"splitwerk.visitor": state, "splitwerk.consent": consent}
    middleware = DjangoVisitorMiddleware(lambda request: Response(), consent=_consent(consent))
    request = Request()
    answers = [
        visitor_of(environ),
        asgi_visitor({"state": {"splitwerk_visitor": state, "splitwerk_consent": consent}}),
        asgi_visitor(state),
        middleware(request).cookies,
        django_visitor(request),
    ]
    for visitor, has_consent in (answers[0], answers[1], answers[2], answers[4]):
        assert isinstance(visitor, str) and isinstance(has_consent, bool)
    return answers


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the SDK logs every fallback; keep stderr quiet
    url, dead_url, ingest_key, spool = sys.argv[1:5]
    clients = _clients(url, dead_url, ingest_key, spool)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"ready\n")
    stdout.flush()
    while True:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            break
        target, method, args, kwargs = pickle.loads(stdin.read(HEADER.unpack(header)[0]))
        started = time.monotonic()
        error = None
        result: Any = None
        try:
            if target == "construct":
                result = construct(*args, **kwargs)
            elif target == "readers":
                result = run_readers(*args)
            elif target == "wsgi":
                result = run_wsgi(*args)
            elif target == "asgi":
                result = run_asgi(*args)
            else:
                result = getattr(clients[target], method)(*args, **kwargs)
        except BaseException as exc:  # anything escaping is what the test reports
            error = f"{type(exc).__name__}: {exc}"
        reply = pickle.dumps(
            {
                "error": error,
                "type": type(result).__name__,
                "elapsed": time.monotonic() - started,
                "value": result if isinstance(result, (str, bool)) else None,
                "reasons": {key: getattr(answer, "reason", None) for key, answer in result.items()}
                if isinstance(result, dict) and method == "assign"
                else None,
            }
        )
        stdout.write(HEADER.pack(len(reply)) + reply)
        stdout.flush()
    for client in clients.values():
        client.close(0.5)


if __name__ == "__main__":
    main()
