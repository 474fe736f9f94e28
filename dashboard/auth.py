"""Who is signed in to the dashboard: token login, the signed session, and role checks.

The dashboard takes the same tokens as the admin API (viewer or editor role, configured as
SHA-256 in ``SPLITWERK_TOKENS``), checks one once at the login form and then keeps a signed
session cookie. The session holds a fingerprint of the token, never the token, and every
request checks that fingerprint against the configured tokens again, so removing a token from
the settings signs its sessions out at the next restart. The session also carries the id of a
server-side session (``server.services.sessions``): signing out closes it, so a copy of the
cookie stops working too.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from flask import redirect, request, session, url_for
from werkzeug.exceptions import Forbidden

from dashboard.i18n import N_
from server.config import Token, hash_token
from server.context import current_services
from server.core.models import Role
from server.services import sessions

P = ParamSpec("P")
R = TypeVar("R")

# Seconds a login lasts: one working day, so a forgotten browser tab does not stay signed in.
SESSION_LIFETIME = 12 * 60 * 60
DEV_ACTOR = "dev"  # audit name when a development server has no tokens at all
DEV_FINGERPRINT = "dev"  # session fingerprint of that tokenless development login
DASHBOARD_ROLES = (Role.EDITOR, Role.VIEWER)  # preview and ingest tokens cannot sign in
# the 403 page of a viewer on an editor's page (translated where the error page is shown)
VIEWER_REFUSED = N_("viewers can read results; changing experiments needs an editor token")


@dataclass(frozen=True)
class User:
    """A signed-in person: the token's name (for the audit trail) and its role."""

    actor: str
    role: Role

    @property
    def is_editor(self) -> bool:
        """Whether this user may change experiments."""
        return self.role == Role.EDITOR


def is_tokenless_dev() -> bool:
    """Development mode without any token: like the API, everybody is the editor ``dev``."""
    configured = current_services().settings
    return configured.DEV and not configured.TOKENS


def _fingerprint(token: Token) -> str:
    """A keyed digest of a configured token's hash, kept in the session instead of the token."""
    return hmac.new(
        current_services().settings.SECRET_KEY.encode(), token.sha256.encode(), hashlib.sha256
    ).hexdigest()


def _dashboard_tokens() -> tuple[Token, ...]:
    return tuple(
        token for token in current_services().settings.TOKENS if token.role in DASHBOARD_ROLES
    )


def check_token(presented: str) -> tuple[User, str] | None:
    """The user a presented token signs in, with the session fingerprint; None if refused."""
    if is_tokenless_dev():
        return User(DEV_ACTOR, Role.EDITOR), DEV_FINGERPRINT
    digest = hash_token(presented.strip())
    found = None
    for token in _dashboard_tokens():
        # compare against every token so that timing does not reveal which one matched
        if hmac.compare_digest(token.sha256, digest):
            found = token
    if found is None:
        return None
    return User(found.name, found.role), _fingerprint(found)


def sign_in(user: User, fingerprint: str) -> None:
    """Start a fresh session for ``user`` (dropping anything an attacker may have planted)."""
    session.clear()
    session["actor"] = user.actor
    session["role"] = user.role.value
    session["fingerprint"] = fingerprint
    session["signed_in_at"] = time.time()
    session["id"] = sessions.open_session(current_services().store, SESSION_LIFETIME)


def sign_out() -> None:
    """Revoke the session on the server and forget it in this browser."""
    session_id = session.get("id")
    if isinstance(session_id, str):
        sessions.close_session(current_services().store, session_id)
    session.clear()


def current_user() -> User | None:
    """The signed-in user, or None when the session is missing, expired or revoked."""
    signed_in_at = session.get("signed_in_at")
    fingerprint = session.get("fingerprint")
    session_id = session.get("id")
    if not isinstance(signed_in_at, float) or not isinstance(fingerprint, str):
        return None
    if time.time() - signed_in_at > SESSION_LIFETIME:
        return None
    if not isinstance(session_id, str) or not sessions.is_open(
        current_services().store, session_id
    ):
        return None  # signed out (perhaps in another browser holding the same cookie)
    if fingerprint == DEV_FINGERPRINT:
        return User(DEV_ACTOR, Role.EDITOR) if is_tokenless_dev() else None
    for token in _dashboard_tokens():
        if hmac.compare_digest(_fingerprint(token), fingerprint):
            return User(token.name, token.role)
    return None


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Send visitors without a valid session to the login form, then back here."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if current_user() is None:
            target = request.full_path if request.method == "GET" else request.path
            return redirect(url_for("dashboard.login", next=target))  # type: ignore[return-value]  # a redirect is a valid view result
        return view(*args, **kwargs)

    return wrapper


def editor_required(view: Callable[P, R]) -> Callable[P, R]:
    """Like ``login_required``, and answer 403 to viewers."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        user = current_user()
        if user is not None and not user.is_editor:
            raise Forbidden(VIEWER_REFUSED)
        return view(*args, **kwargs)

    return login_required(wrapper)
