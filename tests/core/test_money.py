"""Exact money: parsing to cents, order amounts, refund reductions (property tests)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.core.money import (
    MAX_AMOUNT_CENTS,
    MoneyError,
    format_cents,
    order_amounts,
    parse_cents,
    refund_reduction,
)

cents = st.integers(min_value=0, max_value=MAX_AMOUNT_CENTS)


@given(cents)
def test_cents_survive_a_round_trip_through_text(amount: int) -> None:
    assert parse_cents(format_cents(amount)) == amount


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("49.90", 4990),
        ("0", 0),
        (12, 1200),
        (0.1, 10),
        (19.99, 1999),
        (100.0, 10000),
        ("007.5", 750),
        ("11.9000", 1190),  # Decimal("10.00") * Decimal("1.19")
        ("1000000", 100_000_000),
        (1000000, 100_000_000),
    ],
)
def test_decimal_strings_and_numbers_become_exact_cents(raw: object, expected: int) -> None:
    assert parse_cents(raw) == expected


@pytest.mark.parametrize(
    "raw", ["-1", "1.001", "abc", "", "NaN", "Infinity", True, None, [], "1e20", 0.001]
)
def test_invalid_amounts_are_refused(raw: object) -> None:
    with pytest.raises(MoneyError):
        parse_cents(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1e999999", "decimal number"),  # Decimal would overflow the context
        ("1e2", "decimal number"),
        ("\uff11\uff12", "decimal number"),  # fullwidth digits
        ("\u0661\u0662\u0663", "decimal number"),  # Arabic-Indic digits
        ("1_000", "decimal number"),
        ("-0", "negative"),
        ("-0.00", "negative"),
        (-0.0, "negative"),
        (-1, "negative"),
        (" 7.5 ", "decimal number"),
        ("7.", "decimal number"),
        (".5", "decimal number"),
        ("+5", "decimal number"),
        ("1.001", "two decimal places"),
        ("1.0000000", "two decimal places"),
        ("1000000.01", "at most 1000000.00"),
        (1000001, "at most 1000000.00"),
        (10**400, "at most 1000000.00"),
        ("9" * 5000, "at most 1000000.00"),
        (1e300, "decimal number"),
        (float("nan"), "finite"),
    ],
)
def test_amounts_outside_the_documented_form_are_refused_with_a_reason(
    raw: object, reason: str
) -> None:
    with pytest.raises(MoneyError, match=reason):
        parse_cents(raw)


def test_margin_formula() -> None:
    amounts = order_amounts(
        revenue=11900, tax=1900, shipping=490, cost_of_goods=4000, payment_fee=150
    )
    assert amounts.net_revenue == 10000
    assert amounts.margin == 10000 - 4000 - 150 - 490
    with pytest.raises(MoneyError):
        order_amounts(revenue=100, tax=101, shipping=0, cost_of_goods=0, payment_fee=0)


@given(
    gross=st.integers(min_value=1, max_value=10_000_000),
    net_share=st.fractions(min_value=0, max_value=1),
    parts=st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=8),
)
def test_refunds_in_parts_never_drift_far_from_one_full_refund(
    gross: int, net_share: object, parts: list[int]
) -> None:
    net = int(Decimal(gross) * Decimal(str(float(net_share))))  # type: ignore[arg-type]
    total_parts = sum(parts)
    amounts = [gross * part // total_parts for part in parts]
    amounts[-1] += gross - sum(amounts)
    reductions = [refund_reduction(amount, gross, net) for amount in amounts]
    # each reduction is rounded to the cent: parts differ from the whole by under a cent each
    assert abs(sum(reductions) - refund_reduction(gross, gross, net)) <= len(parts)
    assert refund_reduction(gross, gross, net) == net
    assert all(0 <= reduction <= net for reduction in reductions)
