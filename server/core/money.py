"""Exact money: decimal amounts to integer cents, net revenue, contribution margin, refunds.

Definitions (README "Money"):

- ``revenue``  what the customer paid for the order, VAT included, after discounts
- ``tax``      the VAT contained in ``revenue``
- ``discount`` the discount already deducted from ``revenue``; recorded, not subtracted again
- ``shipping`` what shipping the order costs the shop
- net revenue          = revenue − tax
- contribution margin  = net revenue − cost of goods − payment fee − shipping

A refund of a gross ``amount`` removes the same share of the order's net revenue
(amount × net / gross, rounded half up to a cent) from both net revenue and margin: goods that
come back are rarely resold at full value, and payment fees are not returned, so the margin
loses the whole net amount refunded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENTS_PER_UNIT = 100  # two decimal places: every currency the shops we serve use (EUR, CHF, …)
# The limits that keep every counter exact (README "Limits and security"): one amount, and
# one visitor's running total of a revenue or margin goal, at most one million in the shop's
# currency. A variant's sum of 10 million such totals is 1e15 cents, below 2^53: exact in
# Redis's int64 and in the doubles of its Lua scripts; sums of squares are kept in two parts
# (storage/keys.py).
MAX_AMOUNT_CENTS = 1_000_000_00  # one amount of an event
MAX_VISITOR_TOTAL_CENTS = 1_000_000_00  # |a visitor's total| of one goal
# ASCII digits, an optional dot with one or two decimals: no sign, exponent, spaces, "_" or
# other scripts' digits, all of which Python's Decimal would take. Zeros after the second
# decimal (up to six decimals, like the Python SDK) are taken: Decimal arithmetic in a shop
# writes 11.9000 for 10.00 × 1.19, which is exactly 11.90.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]{1,2})0{0,4})?", re.ASCII)
_DECIMALS = re.compile(r"[0-9]+\.[0-9]{3,}", re.ASCII)  # to say what is wrong with "1.001"
_MAX_DIGITS = 12  # integer digits looked at: more are over MAX_AMOUNT_CENTS in any case


class MoneyError(ValueError):
    """An amount that is not a non-negative decimal with at most two places."""


def parse_cents(value: object) -> int:
    """Turn a decimal string (``"49.90"``) or JSON number into integer cents, exactly.

    Strings are ASCII digits with an optional dot and one or two decimals (zeros may follow,
    up to six decimals). A JSON number is read as the shortest decimal that gives the same
    double (49.9, not 49.899999…).

    Raises:
        MoneyError: not such a number, negative, more than two decimal places, or too large.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MoneyError("must be a decimal string or a number")
    if isinstance(value, int):
        # checked as a number: str() of a huge int is slow and refused beyond 4300 digits
        if value < 0:
            raise MoneyError("must not be negative")
        if value > MAX_AMOUNT_CENTS // CENTS_PER_UNIT:
            raise MoneyError(f"must be at most {format_cents(MAX_AMOUNT_CENTS)}")
        return value * CENTS_PER_UNIT
    if isinstance(value, float) and not math.isfinite(value):
        raise MoneyError("must be a finite number")
    text = repr(value) if isinstance(value, float) else str(value)
    if text.startswith("-"):
        raise MoneyError("must not be negative")
    if isinstance(value, float) and text.endswith(".0"):
        text = text[:-2]
    match = _AMOUNT.fullmatch(text)
    if match is None:
        if _DECIMALS.fullmatch(text):
            raise MoneyError("at most two decimal places")
        raise MoneyError("must be a decimal number like 49.90")
    units, fraction = match.group(1).lstrip("0"), match.group(2) or ""
    if len(units) > _MAX_DIGITS:
        raise MoneyError(f"must be at most {format_cents(MAX_AMOUNT_CENTS)}")
    cents = int(units or "0") * CENTS_PER_UNIT + int(fraction.ljust(2, "0"))
    if cents > MAX_AMOUNT_CENTS:
        raise MoneyError(f"must be at most {format_cents(MAX_AMOUNT_CENTS)}")
    return cents


def format_cents(cents: int) -> str:
    """Cents as a decimal string with two places ("-12.30")."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), CENTS_PER_UNIT)
    return f"{sign}{units}.{rest:02d}"


@dataclass(frozen=True, slots=True)
class OrderAmounts:
    """An order's money in cents: what was paid, and what the shop keeps of it."""

    gross: int
    net_revenue: int
    margin: int


def order_amounts(
    revenue: int, tax: int, shipping: int, cost_of_goods: int, payment_fee: int
) -> OrderAmounts:
    """Net revenue and contribution margin of an order (all in cents).

    Raises:
        MoneyError: the tax is larger than the revenue it is contained in.
    """
    if tax > revenue:
        raise MoneyError("tax cannot exceed revenue")
    net = revenue - tax
    return OrderAmounts(
        gross=revenue, net_revenue=net, margin=net - cost_of_goods - payment_fee - shipping
    )


def refund_reduction(amount: int, gross: int, net_revenue: int) -> int:
    """Cents of net revenue (and margin) that a refund of ``amount`` gross cents removes."""
    if gross == 0:
        return 0
    exact = Decimal(amount) * Decimal(net_revenue) / Decimal(gross)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
