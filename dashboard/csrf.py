"""CSRF protection for the dashboard's forms: a secret per session, checked on every POST.

The synchroniser-token pattern: the session (signed, HttpOnly) holds a random token, each form
carries it in a hidden field, and a POST without the matching value is refused with 400. A
cross-site page can make the browser send the cookie but cannot read the token.
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session
from werkzeug.exceptions import BadRequest

from dashboard.i18n import N_

FIELD = "csrf_token"  # name of the hidden form field
TOKEN_BYTES = 32  # 256 bits: far beyond guessing within a session's lifetime
# the 400 page's text (translated where the error page is shown)
REFUSED = N_("the form expired or came from another site; reload the page and retry")


def token() -> str:
    """The session's CSRF token, created on first use."""
    value = session.get(FIELD)
    if not isinstance(value, str):
        value = secrets.token_urlsafe(TOKEN_BYTES)
        session[FIELD] = value
    return value


def check() -> None:
    """Refuse a state-changing request whose form does not carry the session's token.

    Raises:
        BadRequest: the token is missing or does not match.
    """
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    expected = session.get(FIELD)
    presented = request.form.get(FIELD, "")
    # compare bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500)
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode(), presented.encode(errors="replace")
    ):
        raise BadRequest(REFUSED)
