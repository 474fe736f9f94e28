"""The shop's pages: product, cart, checkout, consent; the demo experiment on the buttons."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, redirect, render_template, request, session
from werkzeug.wrappers import Response

from examples.shop import catalog, consent
from examples.shop.settings import shop_settings, splitwerk_client
from splitwerk import Assignment
from splitwerk.adapters import flask_visitor

bp = Blueprint("shop", __name__)

EXPERIMENT = "checkout-button"  # the demo experiment of server/demo.py
CONTROL_COLOR = "#1f5fbf"  # the button's colour when no payload says otherwise
# A payload colour is written into a <style> element: only a plain hex colour gets there.
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
MAX_NOTE_LENGTH = 200  # characters of a payload note shown under the button; longer is dropped


@dataclass(frozen=True)
class CheckoutButton:
    """How the demo experiment's variant dresses the buy and checkout buttons."""

    variant: str
    color: str
    note: str


def button_of(answer: Assignment | None) -> CheckoutButton:
    """Read a variant's payload ``{"color", "note"}``; anything unusable keeps the control look."""
    payload: Any = answer.payload if answer is not None else None
    color = payload.get("color") if isinstance(payload, dict) else None
    note = payload.get("note") if isinstance(payload, dict) else None
    return CheckoutButton(
        variant=(answer.variant if answer is not None else None) or "control",
        color=color if isinstance(color, str) and _COLOR.fullmatch(color) else CONTROL_COLOR,
        note=note if isinstance(note, str) and len(note) <= MAX_NOTE_LENGTH else "",
    )


def device_of(user_agent: str) -> str:
    """``mobile`` or ``desktop``: "Mobi" in the User-Agent is MDN's advice for the split."""
    return "mobile" if "Mobi" in user_agent else "desktop"


def assigned_button() -> CheckoutButton:
    """This visitor's variant of the demo experiment, asked from the server (never raises)."""
    visitor, has_consent = flask_visitor()
    attributes = {
        "device": device_of(request.headers.get("User-Agent", "")),
        # Splitwerk's built-in attribute: has this visitor bought here before?
        "customer": "returning" if session.get("has_ordered") else "new",
    }
    answers = splitwerk_client().assign(visitor, [EXPERIMENT], attributes, consent=has_consent)
    return button_of(answers.get(EXPERIMENT))


def cart() -> dict[str, int]:
    """The session's cart: product slug → quantity."""
    stored = session.get("cart")
    return dict(stored) if isinstance(stored, dict) else {}


def render_page(template: str, **context: Any) -> str:
    """Render a page with what the layout needs: snippet options, consent banner, cart size."""
    settings = shop_settings()
    answer = consent.answer_of(request.headers.get("Cookie", ""))
    needs_consent = settings.consent_mode == "required" and answer != consent.AGREED
    # window.splitwerkConfig: the browser-assigned page asks for the experiment at load
    snippet_config: dict[str, Any] = {
        "consentMode": "required" if needs_consent else "none",
        "timeoutMs": settings.snippet_timeout_ms,
    }
    if context.get("in_browser"):
        snippet_config["experiments"] = [EXPERIMENT]
    return render_template(
        template,
        settings=settings,
        snippet_config=snippet_config,
        show_banner=settings.consent_mode == "required" and answer is None,
        cart_size=sum(cart().values()),
        experiment=EXPERIMENT,
        **context,
    )


@bp.get("/")
def product() -> str:
    """The product page; the server assigns the variant through the Python SDK."""
    return render_page(
        "product.html", product=catalog.FEATURED, button=assigned_button(), in_browser=False
    )


@bp.get("/browser")
def product_in_browser() -> str:
    """The same product page, but the snippet assigns the variant in the browser."""
    return render_page(
        "product.html",
        product=catalog.FEATURED,
        button=button_of(None),
        in_browser=True,
    )


@bp.post("/cart")
def add_to_cart() -> Response:
    """Put a product into the cart; the browser reports the conversion on submit."""
    slug = request.form.get("product", "")
    quantity = request.form.get("quantity", "1")
    if slug not in catalog.PRODUCTS:
        abort(400, "unknown product")
    if not quantity.isdigit() or not 1 <= int(quantity) <= catalog.MAX_QUANTITY:
        abort(400, f"quantity must be 1 to {catalog.MAX_QUANTITY}")
    items = cart()
    if items.get(slug, 0) + int(quantity) > catalog.MAX_QUANTITY:
        abort(400, f"at most {catalog.MAX_QUANTITY} of one product")
    items[slug] = items.get(slug, 0) + int(quantity)
    session["cart"] = items
    return redirect("/cart", 303)


@bp.get("/cart")
def show_cart() -> str:
    """The cart with the checkout button, dressed by the same experiment."""
    return render_page("cart.html", totals=catalog.totals(cart()), button=assigned_button())


@bp.post("/checkout")
def checkout() -> Response:
    """Place the order and report it (with its money) to Splitwerk from the server."""
    totals = catalog.totals(cart())
    if not totals.lines:
        return redirect("/cart", 303)
    visitor, has_consent = flask_visitor()
    order_id = f"o-{secrets.token_hex(8)}"
    if has_consent:
        # Orders carry money: only the backend sends them, with the ingest key.
        splitwerk_client().order(
            visitor,
            order_id,
            revenue=totals.revenue,
            tax=totals.tax,
            shipping=totals.shipping_cost,
            cost_of_goods=totals.cost_of_goods,
            payment_fee=totals.payment_fee,
            currency=catalog.CURRENCY,
        )
    session["cart"] = {}
    session["has_ordered"] = True
    session["last_order"] = {"id": order_id, "revenue": str(totals.revenue)}
    return redirect(f"/orders/{order_id}", 303)


@bp.get("/orders/<order_id>")
def order_placed(order_id: str) -> str:
    """The thank-you page of the session's last order."""
    last = session.get("last_order")
    if not isinstance(last, dict) or last.get("id") != order_id:
        abort(404)
    return render_page(
        "order.html",
        order_id=order_id,
        revenue=Decimal(last["revenue"]),
        is_returned=bool(last.get("returned")),
    )


@bp.post("/orders/<order_id>/return")
def return_order(order_id: str) -> Response:
    """Send the whole order back; the refund goes to Splitwerk from the server, with the
    ingest key, so that the variant's 30-day margin counts it (issue 21)."""
    last = session.get("last_order")
    if not isinstance(last, dict) or last.get("id") != order_id:
        abort(404)
    _, has_consent = flask_visitor()
    if has_consent and not last.get("returned"):
        splitwerk_client().refund(order_id, Decimal(last["revenue"]))
    session["last_order"] = {**last, "returned": True}
    return redirect(f"/orders/{order_id}", 303)


@bp.post("/consent")
def record_consent() -> Response:
    """Store the banner's answer in a cookie and go back to the page it was given on."""
    choice = request.form.get("choice")
    if choice not in ("agree", "decline"):
        abort(400, "choice must be agree or decline")
    target = request.form.get("next", "/")
    # Only a path of this shop: an open redirect would let other sites bounce through us.
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        target = "/"
    response = redirect(target, 303)
    response.set_cookie(
        consent.CONSENT_COOKIE,
        consent.AGREED if choice == "agree" else consent.DECLINED,
        max_age=consent.CONSENT_MAX_AGE,
        samesite="Lax",
        secure=request.is_secure,
        httponly=True,
    )
    return response
