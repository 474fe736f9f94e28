"""Visitor identity for web apps: the first-party ``splitwerk_vid`` cookie, as WSGI middleware.

The cookie is set by the shop's own server (not by JavaScript), so browsers that cap script
cookies keep it for its full year. It is only set with the visitor's consent: the middleware
asks a ``consent`` callable, which gets the WSGI environ (Django: ``request.META``). Without
consent the request gets a fresh id that lives for this request only, no cookie is written,
an existing cookie is deleted (consent withdrawn), and the SDK should be called with
``consent=False`` so the visitor is never enrolled or recorded. The result is put
into the environ: ``environ["splitwerk.visitor"]`` (the id) and ``environ["splitwerk.consent"]``.
"""

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from types import TracebackType
from typing import Any, Literal

from splitwerk.errors import ConfigError
from splitwerk.guard import ErrorGuard

log = logging.getLogger(__name__)

COOKIE_NAME = "splitwerk_vid"
COOKIE_MAX_AGE = 365 * 24 * 60 * 60  # one year, in seconds: long enough for a buying cycle
VISITOR_KEY = "splitwerk.visitor"  # environ key of the visitor id
CONSENT_KEY = "splitwerk.consent"  # environ key of the consent decision (bool)
# Ids we issue are 32 hex digits; a foreign value must be cookie-safe and fit the 128 limit.
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_VALID_DOMAIN = re.compile(r"\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")

ConsentCheck = Callable[[Mapping[str, Any]], bool]
CookieAction = Literal["set", "delete"] | None
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | None


class VisitorCookie:
    """Decides a request's visitor id and what to do with the cookie; shared by all adapters.

    Args:
        consent: called with the environ (or Django's ``request.META``); true if the visitor
            agreed to the A/B testing cookie. An exception counts as no consent.
        cookie_name: the cookie's name.
        http_only: hide the cookie from JavaScript (turn off if the JS snippet must read it).
        domain: e.g. ``".shop.example"`` to share it across subdomains; default host-only.
        max_age: the cookie's lifetime in seconds.
    """

    def __init__(
        self,
        *,
        consent: ConsentCheck,
        cookie_name: str = COOKIE_NAME,
        http_only: bool = True,
        domain: str | None = None,
        max_age: int = COOKIE_MAX_AGE,
    ) -> None:
        if not callable(consent):
            raise ConfigError("consent must be a callable taking the environ")
        if not isinstance(cookie_name, str) or not _VALID_ID.fullmatch(cookie_name):
            raise ConfigError(f"cookie_name must be a plain token, not {cookie_name!r}")
        if domain is not None and (
            not isinstance(domain, str) or not _VALID_DOMAIN.fullmatch(domain)
        ):
            raise ConfigError(f"domain must be a host name, not {domain!r}")
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
            raise ConfigError("max_age must be a positive number of seconds")
        self.consent = consent
        self.cookie_name = cookie_name
        self.http_only = http_only
        self.domain = domain
        self.max_age = max_age
        self._guard = ErrorGuard("consent check")

    def resolve(self, environ: MutableMapping[str, Any]) -> CookieAction:
        """Put the visitor id and consent into ``environ``; return the cookie action."""
        has_consent = self.has_consent(environ)
        header = environ.get("HTTP_COOKIE", "")
        visitor, action = self.decide(header if isinstance(header, str) else "", has_consent)
        environ[VISITOR_KEY] = visitor
        environ[CONSENT_KEY] = has_consent
        return action

    def has_consent(self, request: Any) -> bool:
        """Ask the consent check about ``request``; an exception or non-``True`` is a no."""
        with self._guard:
            return self.consent(request) is True
        return False

    def decide(self, cookie_header: str, has_consent: bool) -> tuple[str, CookieAction]:
        """Return the visitor id for a request with this ``Cookie`` header, and the action."""
        existing = read_cookie(cookie_header, self.cookie_name)
        if has_consent:
            if existing is not None:
                return existing, None
            return new_visitor_id(), "set"
        return new_visitor_id(), ("delete" if existing is not None else None)

    def header(self, action: CookieAction, visitor: str, is_secure: bool) -> str | None:
        """Return the ``Set-Cookie`` header value for ``action``, if any."""
        if action is None:
            return None
        value, max_age = (visitor, self.max_age) if action == "set" else ("", 0)
        parts = [f"{self.cookie_name}={value}", "Path=/", f"Max-Age={max_age}", "SameSite=Lax"]
        if self.domain is not None:
            parts.append(f"Domain={self.domain}")
        if self.http_only:
            parts.append("HttpOnly")
        if is_secure:
            parts.append("Secure")
        return "; ".join(parts)


class VisitorMiddleware:
    """WSGI middleware that gives every request a visitor id (see the module docstring).

    ``Secure`` is added when ``environ["wsgi.url_scheme"]`` is ``https``; behind a TLS proxy,
    apply ``werkzeug.middleware.proxy_fix.ProxyFix`` (or your server's equivalent) outside.
    Keyword arguments are those of ``VisitorCookie``.
    """

    def __init__(self, app: WsgiApp, *, consent: ConsentCheck, **cookie_options: Any) -> None:
        if not callable(app):
            raise ConfigError("app must be a WSGI application")
        self.app = app
        self.cookie = VisitorCookie(consent=consent, **cookie_options)
        self._guard = ErrorGuard("VisitorMiddleware")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        header = None
        with self._guard:
            action = self.cookie.resolve(environ)
            is_secure = environ.get("wsgi.url_scheme") == "https"
            header = self.cookie.header(action, environ[VISITOR_KEY], is_secure)
        if VISITOR_KEY not in environ:
            environ[VISITOR_KEY] = new_visitor_id()
            environ[CONSENT_KEY] = False
        if header is None:
            return self.app(environ, start_response)
        set_cookie = ("Set-Cookie", header)

        def start_with_cookie(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo = None
        ) -> Any:
            return start_response(status, [*headers, set_cookie], exc_info)

        return self.app(environ, start_with_cookie)


def visitor_of(environ: MutableMapping[str, Any]) -> tuple[str, bool]:
    """Return ``(visitor id, has consent)`` for a request the middleware has seen.

    Without the middleware (misconfiguration) it returns a request-scoped id without
    consent, so the shop still gets an answer and nobody is enrolled.
    """
    visitor = environ.get(VISITOR_KEY)
    if not isinstance(visitor, str):
        log.warning("splitwerk: no visitor id in the request; is the middleware installed?")
        visitor = environ[VISITOR_KEY] = new_visitor_id()
        environ[CONSENT_KEY] = False
    return visitor, environ.get(CONSENT_KEY) is True


def read_cookie(header: str, name: str) -> str | None:
    """Return the valid visitor id stored under ``name`` in a ``Cookie`` header, if any.

    Parsed by hand because ``http.cookies.SimpleCookie`` gives up on the whole header when
    any other cookie in it is malformed.
    """
    for pair in header.split(";"):
        key, separator, value = pair.strip().partition("=")
        if separator and key == name:
            value = value.strip().strip('"')
            return value if _VALID_ID.fullmatch(value) else None
    return None


def new_visitor_id() -> str:
    """Return a new random visitor id (32 hex digits)."""
    return uuid.uuid4().hex
