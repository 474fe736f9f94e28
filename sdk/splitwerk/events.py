"""Builds and checks the event documents of ``POST /v1/events``; no I/O.

Money is passed on as a decimal string and never touched by float arithmetic. Accepted:
``Decimal``, ``int`` and decimal strings such as ``"49.90"``; refused: ``float`` (49.9 is
not exactly representable, and silently rounding revenue is the bug this SDK must not have),
``bool``, negative amounts, NaN and infinities. Builders raise ``ValueError`` with the reason;
the client catches it, logs it and counts the event as ``invalid``.
"""

import math
import re
import time
from decimal import Decimal
from typing import Any, TypeGuard

Event = dict[str, Any]

MAX_VISITOR_LENGTH = 128  # the server's limit for visitor ids (spec: 1..128 characters)
MAX_NAME_LENGTH = 128  # goals, experiment keys, order ids: the server's id limit
# Up to 15 integer digits (a quadrillion in any currency) and 6 decimals (crypto, BHD's 3).
_MONEY = re.compile(r"\d{1,15}(?:\.\d{1,6})?")
_CURRENCY = re.compile(r"[A-Z]{3}")  # ISO 4217 code
ORDER_AMOUNTS = ("revenue", "tax", "shipping", "discount", "cost_of_goods", "payment_fee")


def money(value: object, name: str) -> str:
    """Return ``value`` as a plain decimal string, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"{name} must be Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, Decimal):
        text = format(value, "f") if value.is_finite() else "NaN"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError(f"{name} must be Decimal, int or str, not {type(value).__name__}")
    if not _MONEY.fullmatch(text):
        raise ValueError(f"{name} is not a non-negative decimal amount: {text[:40]!r}")
    return text


def is_valid_visitor(visitor: object) -> TypeGuard[str]:
    """Tell whether ``visitor`` is an id the server accepts: 1..128 characters of UTF-8 text.

    A lone surrogate (``"\\ud800"``, which JSON can carry) has no UTF-8 form: the server
    refuses such an id with a 422, so the SDK treats it as invalid rather than hashing it.
    """
    if type(visitor) is not str or not 0 < len(visitor) <= MAX_VISITOR_LENGTH:
        return False
    if visitor.isascii():  # O(1) in CPython; nearly every real id takes this branch
        return True
    try:
        visitor.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_visitor(visitor: object) -> str:
    """Return ``visitor`` if it is a valid visitor id, else raise ``ValueError``."""
    if not is_valid_visitor(visitor):
        raise ValueError(
            f"visitor must be a string of 1..{MAX_VISITOR_LENGTH} characters of UTF-8 text"
        )
    return visitor


def check_name(value: object, name: str) -> str:
    """Return ``value`` if it is a non-empty string of at most 128 characters."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH:
        raise ValueError(f"{name} must be a string of 1..{MAX_NAME_LENGTH} characters")
    return value


def conversion(goal: str, visitor: str, value: object, ts: float | None) -> Event:
    """Build a ``conversion`` event; ``ts`` defaults to now (unix seconds)."""
    event: Event = {
        "type": "conversion",
        "visitor": check_visitor(visitor),
        "goal": check_name(goal, "goal"),
        "ts": _timestamp(ts),
    }
    if value is not None:
        event["value"] = money(value, "value")
    return event


def order(
    visitor: str,
    order_id: str,
    amounts: dict[str, object],
    goal: str,
    currency: str | None,
) -> Event:
    """Build an ``order`` event; amounts that are ``None`` are left out."""
    event: Event = {
        "type": "order",
        "visitor": check_visitor(visitor),
        "order_id": check_name(order_id, "order_id"),
        "goal": check_name(goal, "goal"),
    }
    for name in ORDER_AMOUNTS:
        amount = amounts.get(name)
        if amount is not None:
            event[name] = money(amount, name)
    if currency is not None:
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise ValueError("currency must be an ISO 4217 code such as 'EUR'")
        event["currency"] = currency
    # The time of the sale, not of its delivery: after an outage it still counts on its day.
    event["ts"] = time.time()
    return event


def refund(order_id: str, amount: object) -> Event:
    """Build a ``refund`` event."""
    return {
        "type": "refund",
        "order_id": check_name(order_id, "order_id"),
        "amount": money(amount, "amount"),
        "ts": time.time(),  # as for orders: the day of the refund, however late it arrives
    }


def exposure(
    visitor: str,
    experiment: str,
    variant: str,
    attributes: dict[str, Any],
    covariate: float | None = None,
) -> Event:
    """Build an ``exposure`` event (local mode reports which variant a visitor was shown)."""
    event: Event = {
        "type": "exposure",
        "visitor": visitor,
        "experiment": experiment,
        "variant": variant,
        "attributes": attributes,
    }
    if covariate is not None:
        event["covariate"] = covariate
    return event


MAX_COVARIATE = 1_000_000  # the server's bound on |covariate| (it keeps CUPED's sums exact)


def is_valid_covariate(value: object) -> TypeGuard[int | float]:
    """Whether the server takes this CUPED covariate: a finite number within ±MAX_COVARIATE
    with at most two decimals (by its shortest text, as the server reads it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if abs(value) > MAX_COVARIATE or not math.isfinite(value):  # a huge int fits no float
        return False
    exponent = Decimal(repr(value)).as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -2


def _timestamp(ts: float | None) -> float:
    if ts is None:
        return time.time()
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not 0 < ts < 1e11:
        raise ValueError("ts must be unix seconds")
    return float(ts)
