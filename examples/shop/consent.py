"""The consent banner's cookie: whether the visitor agreed to A/B testing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.http import parse_cookie

CONSENT_COOKIE = "shop_consent"  # written by POST /consent; the banner's answer
AGREED = "ab-testing"  # the cookie's value after "agree"; anything else means no
DECLINED = "declined"  # the cookie's value after "decline", so the banner is not shown again
# Half a year, then the banner asks again: the period European regulators suggest (CNIL: 6 months).
CONSENT_MAX_AGE = 182 * 24 * 60 * 60


def answer_of(cookie_header: str) -> str | None:
    """Return the banner's stored answer from a ``Cookie`` header, if the visitor gave one."""
    value = parse_cookie(cookie_header).get(CONSENT_COOKIE)
    return value if value in (AGREED, DECLINED) else None


def has_consent(environ: Mapping[str, Any]) -> bool:
    """Whether the request carries the visitor's agreement (the SDK middleware's check)."""
    return answer_of(environ.get("HTTP_COOKIE", "")) == AGREED


def always(environ: Mapping[str, Any]) -> bool:
    """Consent check for shops that need none (``consent_mode="none"``)."""
    return True
