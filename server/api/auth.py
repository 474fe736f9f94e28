"""Bearer-token checks for the admin API: who is calling, and may they do this."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import g, request
from werkzeug.exceptions import Forbidden, Unauthorized

from server.config import hash_token
from server.context import current_services
from server.core.models import Role

P = ParamSpec("P")
R = TypeVar("R")

DEV_ACTOR = "dev"  # audit name of changes made without a token in development mode


def presented_token(header: str = "Authorization") -> str | None:
    """The bearer token of the request, if any."""
    value = request.headers.get(header, "")
    scheme, _, token = value.partition(" ")
    if header == "Authorization":
        return token.strip() or None if scheme.lower() == "bearer" else None
    return value.strip() or None


def actor_for(role: Role, token: str | None) -> str | None:
    """The configured name of a token that grants ``role``, compared in constant time."""
    if token is None:
        return None
    digest = hash_token(token)
    actor = None
    for candidate in current_services().settings.tokens_for(role):
        # compare against every token so that timing does not reveal which one matched
        if hmac.compare_digest(candidate.sha256, digest):
            actor = candidate.name
    return actor


def any_role_of(token: str | None) -> bool:
    """Whether the token is configured at all (for telling 401 from 403)."""
    if token is None:
        return False
    digest = hash_token(token)
    return any(hmac.compare_digest(t.sha256, digest) for t in current_services().settings.TOKENS)


def require(role: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a view: 401 without a valid token, 403 with a token of a weaker role."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            token = presented_token()
            actor = actor_for(role, token)
            settings = current_services().settings
            if actor is None and token is None and settings.DEV and not settings.TOKENS:
                actor = DEV_ACTOR
            if actor is None:
                if any_role_of(token):
                    raise Forbidden(f"this token may not act as {role.value}")
                raise Unauthorized("a valid token is required: Authorization: Bearer <token>")
            g.actor = actor
            return view(*args, **kwargs)

        return wrapper

    return decorator
