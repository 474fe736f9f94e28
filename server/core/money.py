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

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENTS_PER_UNIT = 100  # two decimal places: every currency the shops we serve use (EUR, CHF, …)
MAX_AMOUNT_CENTS = 100_000_000_00  # 100 million per amount: above that it is a typo, not an order


class MoneyError(ValueError):
    """An amount that is not a non-negative decimal with at most two places."""


def parse_cents(value: object) -> int:
    """Turn a decimal string or JSON number into integer cents, exactly.

    Raises:
        MoneyError: not a number, negative, more than two decimal places, or too large.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MoneyError("must be a decimal string or a number")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise MoneyError("must be a decimal number like 49.90") from None
    if not amount.is_finite():
        raise MoneyError("must be a finite number")
    if amount < 0:
        raise MoneyError("must not be negative")
    cents = amount * CENTS_PER_UNIT
    if cents != cents.to_integral_value():
        raise MoneyError("at most two decimal places")
    if cents > MAX_AMOUNT_CENTS:
        raise MoneyError("is too large")
    return int(cents)


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
