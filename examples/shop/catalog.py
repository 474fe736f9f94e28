"""The shop's products and the money of an order, in Decimal (never float)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CURRENCY = "EUR"  # ISO 4217 code sent with every order
CENT = Decimal("0.01")  # money is rounded to whole cents, half up, as on a receipt
VAT_RATE = Decimal("0.19")  # German standard VAT, included in every shown price
SHIPPING_FEE = Decimal("4.90")  # what the customer pays for shipping below FREE_SHIPPING_FROM
# What a parcel costs the shop, free shipping or not: the margin's side of the free-shipping note.
SHIPPING_COST = Decimal("4.50")
# Orders from this subtotal ship free: the promise of the demo's "green-note" variant.
FREE_SHIPPING_FROM = Decimal("50.00")
# A typical card processor's price: 1.9 % of the charged amount plus 0.35 € per payment.
PAYMENT_FEE_RATE = Decimal("0.019")
PAYMENT_FEE_FIXED = Decimal("0.35")
MAX_QUANTITY = 20  # per product in one cart; a bigger number is refused, not clipped


@dataclass(frozen=True)
class Product:
    """Something the shop sells; ``price`` is gross (VAT included), ``cost`` what we paid."""

    slug: str
    name: str
    description: str
    price: Decimal
    cost: Decimal


PRODUCTS: Mapping[str, Product] = {
    product.slug: product
    for product in (
        Product(
            "handmuehle",
            "Kaffeemühle aus Buchenholz",
            "Kegelmahlwerk aus Keramik, stufenlos einstellbar, für Filter und Espresso.",
            Decimal("39.90"),
            Decimal("17.20"),
        ),
        Product(
            "bohnen-hochland",
            "Hochland-Bohnen, 500 g",
            "Arabica aus Äthiopien, hell geröstet, mit Noten von Bergamotte und Honig.",
            Decimal("14.50"),
            Decimal("6.10"),
        ),
    )
}
FEATURED = PRODUCTS["handmuehle"]  # the product on the demo's product pages


@dataclass(frozen=True)
class Line:
    """One product of a cart with its quantity and gross amount."""

    product: Product
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class Totals:
    """What an order of a cart costs the customer and what it costs the shop."""

    lines: tuple[Line, ...]
    subtotal: Decimal
    shipping_fee: Decimal  # charged to the customer, part of ``revenue``
    shipping_cost: Decimal  # what shipping costs the shop (Splitwerk's ``shipping``)
    revenue: Decimal  # gross: what the customer pays, shipping and VAT included
    tax: Decimal  # the VAT contained in ``revenue``
    cost_of_goods: Decimal
    payment_fee: Decimal


def cents(amount: Decimal) -> Decimal:
    """Round ``amount`` to whole cents, half up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def totals(cart: Mapping[str, int]) -> Totals:
    """Price a cart (product slug → quantity); unknown products are left out."""
    lines = tuple(
        Line(PRODUCTS[slug], quantity, PRODUCTS[slug].price * quantity)
        for slug, quantity in sorted(cart.items())
        if slug in PRODUCTS and quantity > 0
    )
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    shipping_fee = SHIPPING_FEE if lines and subtotal < FREE_SHIPPING_FROM else Decimal("0.00")
    revenue = subtotal + shipping_fee
    return Totals(
        lines=lines,
        subtotal=subtotal,
        shipping_fee=shipping_fee,
        shipping_cost=SHIPPING_COST if lines else Decimal("0.00"),
        revenue=revenue,
        tax=cents(revenue * VAT_RATE / (1 + VAT_RATE)),
        cost_of_goods=sum((line.product.cost * line.quantity for line in lines), Decimal("0.00")),
        payment_fee=cents(revenue * PAYMENT_FEE_RATE + PAYMENT_FEE_FIXED)
        if lines
        else Decimal("0.00"),
    )


def euros(amount: Decimal) -> str:
    """Format an amount the German way: ``1.234,50 €``."""
    text = f"{cents(amount):,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{text} €"
