"""Thin Flask and Django adapters over ``web``; they import neither framework at import time."""

from collections.abc import Callable, MutableMapping
from typing import Any

from splitwerk.errors import ConfigError
from splitwerk.web import VISITOR_KEY, ConsentCheck, VisitorCookie, VisitorMiddleware, visitor_of


def init_flask(app: Any, *, consent: ConsentCheck, **cookie_options: Any) -> None:
    """Wrap a Flask app's ``wsgi_app`` in ``VisitorMiddleware`` (options: ``VisitorCookie``)."""
    if not hasattr(app, "wsgi_app"):
        raise ConfigError("app must be a Flask application")
    app.wsgi_app = VisitorMiddleware(app.wsgi_app, consent=consent, **cookie_options)


def flask_visitor() -> tuple[str, bool]:
    """Return ``(visitor id, has consent)`` for the current Flask request."""
    from flask import request  # Flask is optional: imported on use

    return visitor_of(request.environ)


class DjangoVisitorMiddleware:
    """Django middleware with the behaviour of ``VisitorMiddleware``.

    Add ``"splitwerk.adapters.DjangoVisitorMiddleware"`` to ``MIDDLEWARE`` and name the
    consent check in settings: ``SPLITWERK_CONSENT = "shop.privacy.has_ab_consent"``, a
    callable taking ``request.META``. Optional settings: ``SPLITWERK_COOKIE_HTTP_ONLY``,
    ``SPLITWERK_COOKIE_DOMAIN``. ``Secure`` follows ``request.is_secure()``, which honours
    ``SECURE_PROXY_SSL_HEADER``. The id is in ``request.META["splitwerk.visitor"]``; use
    ``django_visitor(request)``.
    """

    def __init__(
        self,
        get_response: Callable[[Any], Any],
        *,
        consent: ConsentCheck | None = None,
        **cookie_options: Any,
    ) -> None:
        if consent is None:
            # Django is optional and untyped: setup.cfg tells mypy to skip it
            from django.conf import settings
            from django.utils.module_loading import import_string

            setting = getattr(settings, "SPLITWERK_CONSENT", None)
            if setting is None:
                raise ConfigError("set SPLITWERK_CONSENT to the dotted path of a consent check")
            consent = import_string(setting) if isinstance(setting, str) else setting
            if consent is None:
                raise ConfigError("SPLITWERK_CONSENT names no callable")
            cookie_options.setdefault(
                "http_only", getattr(settings, "SPLITWERK_COOKIE_HTTP_ONLY", True)
            )
            cookie_options.setdefault("domain", getattr(settings, "SPLITWERK_COOKIE_DOMAIN", None))
        self.get_response = get_response
        self.cookie = VisitorCookie(consent=consent, **cookie_options)

    def __call__(self, request: Any) -> Any:
        meta: MutableMapping[str, Any] = request.META
        action = self.cookie.resolve(meta)
        response = self.get_response(request)
        cookie = self.cookie
        if action == "set":
            response.set_cookie(
                cookie.cookie_name,
                meta[VISITOR_KEY],
                max_age=cookie.max_age,
                path="/",
                domain=cookie.domain,
                secure=request.is_secure(),
                httponly=cookie.http_only,
                samesite="Lax",
            )
        elif action == "delete":
            response.delete_cookie(
                cookie.cookie_name, path="/", domain=cookie.domain, samesite="Lax"
            )
        return response


def django_visitor(request: Any) -> tuple[str, bool]:
    """Return ``(visitor id, has consent)`` for a Django request."""
    return visitor_of(request.META)
