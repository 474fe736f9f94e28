"""HMAC-SHA256 signatures of webhook deliveries: the header a receiver checks (pure).

Each attempt of a delivery is signed anew over ``"<timestamp>." + body`` with the shared
secret, and sent as ``X-Splitwerk-Signature: t=<unix seconds>,v1=<hex digest>``. A receiver
recomputes the digest from the raw body, compares in constant time, and rejects timestamps
older than a few minutes (a replayed request) and delivery ids it has seen
(``X-Splitwerk-Delivery``; retries carry the same id). README "Webhooks" has an example.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Splitwerk-Signature"
DELIVERY_HEADER = "X-Splitwerk-Delivery"  # the same on every retry: receivers deduplicate by it
EVENT_HEADER = "X-Splitwerk-Event"
SCHEME = "v1"  # names the signing method, so that a later one can be sent beside it
# Seconds a receiver should accept a signature for: clock skew plus delivery time, not more,
# so that a recorded request cannot be replayed later.
REPLAY_TOLERANCE = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header for one attempt."""
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance: float = REPLAY_TOLERANCE
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and its timestamp is recent enough."""
    parts = dict(item.partition("=")[::2] for item in header.split(","))
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, parts.get(SCHEME, ""))
