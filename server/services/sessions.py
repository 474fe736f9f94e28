"""Dashboard sessions held on the server, so that signing out revokes a copied cookie too.

The signed cookie carries a random session id; Redis holds only its SHA-256 (a copy of the
database opens no session) with the session's lifetime. Signing out deletes it, and a cookie
whose id is no longer there is signed out, wherever it was copied to.
"""

from __future__ import annotations

import hashlib
import secrets

from server.storage.store import Store

SESSION_ID_BYTES = 32  # 256 bits of randomness: not guessable within any session's lifetime


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(store: Store, lifetime: int) -> str:
    """Open a session for ``lifetime`` seconds and return its id (for the signed cookie)."""
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    store.open_session(_digest(session_id), lifetime)
    return session_id


def is_open(store: Store, session_id: str) -> bool:
    """Whether the session was opened here and neither expired nor closed."""
    return store.is_session_open(_digest(session_id))


def close_session(store: Store, session_id: str) -> None:
    """Revoke the session at once; every copy of its cookie stops working."""
    store.close_session(_digest(session_id))
