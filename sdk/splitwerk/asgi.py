"""The ``splitwerk_vid`` visitor cookie for ASGI apps (Starlette, FastAPI), as middleware.

Same cookie and rules as the WSGI ``VisitorMiddleware`` (see ``splitwerk.web``): set by the
shop's server with consent only, deleted when consent is withdrawn. The consent check gets the
ASGI ``scope``. The result is put into ``scope["state"]``, which Starlette exposes as
``request.state``: ``request.state.splitwerk_visitor`` and ``request.state.splitwerk_consent``;
``asgi_visitor(request)`` reads both. Needs no framework: plain ASGI 3.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from splitwerk.errors import ConfigError
from splitwerk.guard import ErrorGuard
from splitwerk.web import ConsentCheck, VisitorCookie, new_visitor_id

STATE_VISITOR = "splitwerk_visitor"  # key in scope["state"]: request.state.splitwerk_visitor
STATE_CONSENT = "splitwerk_consent"  # key in scope["state"]: the consent decision (bool)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AsgiVisitorMiddleware:
    """ASGI middleware giving every HTTP request a visitor id (options: ``VisitorCookie``).

    Starlette: ``app.add_middleware(AsgiVisitorMiddleware, consent=has_ab_consent)``.
    ``Secure`` is added when the scope's scheme is ``https`` (behind a TLS proxy, run the
    server with ``--proxy-headers``). Other scope types (websocket, lifespan) pass untouched.
    """

    def __init__(self, app: AsgiApp, *, consent: ConsentCheck, **cookie_options: Any) -> None:
        if not callable(app):
            raise ConfigError("app must be an ASGI application")
        self.app = app
        self.cookie = VisitorCookie(consent=consent, **cookie_options)
        self._guard = ErrorGuard("AsgiVisitorMiddleware")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        header: bytes | None = None
        visitor, has_consent = new_visitor_id(), False
        with self._guard:
            has_consent = self.cookie.has_consent(scope)
            visitor, action = self.cookie.decide(_cookie_header(scope), has_consent)
            is_secure = scope.get("scheme") == "https"
            text = self.cookie.header(action, visitor, is_secure)
            header = text.encode("latin-1") if text is not None else None
        state = scope.get("state")
        if not isinstance(state, MutableMapping):
            state = scope["state"] = {}
        state[STATE_VISITOR] = visitor
        state[STATE_CONSENT] = has_consent
        if header is None:
            await self.app(scope, receive, send)
            return
        set_cookie = (b"set-cookie", header)

        async def send_with_cookie(message: Message) -> None:
            if message.get("type") == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), set_cookie]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def asgi_visitor(request: Any) -> tuple[str, bool]:
    """Return ``(visitor id, has consent)`` for a Starlette request or an ASGI scope.

    Without the middleware (misconfiguration) it returns a request-scoped id without consent,
    so the shop still gets an answer and nobody is enrolled.
    """
    scope = getattr(request, "scope", request)
    state = scope.get("state") if isinstance(scope, MutableMapping) else None
    if not isinstance(state, MutableMapping) or not isinstance(state.get(STATE_VISITOR), str):
        return new_visitor_id(), False
    return state[STATE_VISITOR], state.get(STATE_CONSENT) is True


def _cookie_header(scope: Scope) -> str:
    """The request's ``Cookie`` header(s) as text; several are joined as one."""
    values = []
    for item in scope.get("headers") or ():
        if isinstance(item, (tuple, list)) and len(item) == 2 and item[0] == b"cookie":
            value = item[1]
            if isinstance(value, bytes):
                values.append(value.decode("latin-1"))
    return "; ".join(values)
