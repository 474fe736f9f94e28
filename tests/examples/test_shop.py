"""The example shop through the Python SDK against a live Splitwerk: variants, consent, orders."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from examples.shop import create_app
from examples.shop.__main__ import fetch_embed
from examples.shop.catalog import FEATURED, totals
from examples.shop.settings import CLIENT_EXTENSION, ConsentMode
from server.services.install import current_version, embed_code
from splitwerk import Client
from tests.examples.live import (
    PAYLOADS,
    Splitwerk,
    counts,
    enrolled,
    require_events_api,
    variant_index,
)
from tests.helpers import INGEST_TOKEN, free_port

VARIANT = re.compile(rb'id="checkout-button"[^>]*data-variant="([a-z-]+)"')
STYLE = re.compile(rb"--checkout-color: (#[0-9a-fA-F]{6})")
# Inline elements of a page: tag, attributes, content.
INLINE = re.compile(rb"<(script|style)((?![^>]*\bsrc=)[^>]*)>(.*?)</\1>", re.DOTALL)
MARKED = re.compile(rb"<[^>]*\sdata-splitwerk-hide[\s>]")  # an element the embed hides
OPTIONS = re.compile(rb"window\.splitwerkConfig = (\{.*?\});</script>")

ShopFactory = Callable[..., Flask]


@pytest.fixture
def make_shop() -> Iterator[ShopFactory]:
    """Builds shops (closing their SDK clients afterwards); a generous assignment timeout."""
    apps: list[Flask] = []

    def make(url: str, consent_mode: ConsentMode = "none", **options: object) -> Flask:
        options.setdefault("assign_timeout", 2.0)  # a loaded CI machine must not flip variants
        options.setdefault("snippet_embed", embed_code(url + "/"))  # as the install page gives it
        app = create_app(url, ingest_key=INGEST_TOKEN, consent_mode=consent_mode, **options)  # type: ignore[arg-type]
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions[CLIENT_EXTENSION].close(timeout=1.0)


def rendered_variant(body: bytes) -> str:
    match = VARIANT.search(body)
    assert match is not None, "no checkout button on the page"
    return match.group(1).decode()


def snippet_options(body: bytes) -> dict[str, Any]:
    """The page's ``window.splitwerkConfig``."""
    match = OPTIONS.search(body)
    assert match is not None, "no snippet options on the page"
    options: dict[str, Any] = json.loads(match.group(1))
    return options


def csp_hash(text: bytes) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text).digest()).decode()}'"


def visitor_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("splitwerk_vid")
    return cookie.value if cookie is not None else None


def test_product_page_renders_the_variant_the_server_assigned(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    client = make_shop(splitwerk.url).test_client()
    response = client.get("/")
    assert response.status_code == 200
    variant = rendered_variant(response.data)
    payload = PAYLOADS[variant]
    style = STYLE.search(response.data)
    assert style is not None and style.group(1).decode() == payload["color"]
    assert payload["note"].encode() in response.data
    assert visitor_cookie(client) is not None
    assert counts(splitwerk.app)[f"e:{variant_index(variant)}"] == 1


def test_a_returning_visitor_keeps_the_variant_and_is_enrolled_once(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    client = make_shop(splitwerk.url).test_client()
    first = rendered_variant(client.get("/").data)
    visitor = visitor_cookie(client)
    assert rendered_variant(client.get("/").data) == first
    assert (
        rendered_variant(
            client.post("/cart", data={"product": FEATURED.slug}, follow_redirects=True).data
        )
        == first
    )
    assert rendered_variant(client.get("/cart").data) == first
    assert visitor_cookie(client) == visitor
    assert enrolled(splitwerk.app) == 1


def test_without_consent_there_is_no_cookie_and_no_enrolment(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    client = make_shop(splitwerk.url, consent_mode="required").test_client()
    response = client.get("/")
    assert response.status_code == 200
    assert b'id="consent-banner"' in response.data
    assert snippet_options(response.data)["consentMode"] == "required"
    assert visitor_cookie(client) is None
    assert enrolled(splitwerk.app) == 0


def test_agreeing_in_the_banner_sets_the_cookie_and_enrols(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    client = make_shop(splitwerk.url, consent_mode="required").test_client()
    answer = client.post("/consent", data={"choice": "agree", "next": "/cart"})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/cart"
    page = client.get("/")
    assert b'id="consent-banner"' not in page.data
    assert snippet_options(page.data)["consentMode"] == "none"
    assert visitor_cookie(client) is not None
    assert enrolled(splitwerk.app) == 1


def test_declining_hides_the_banner_and_deletes_the_visitor_cookie(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    client = make_shop(splitwerk.url, consent_mode="required").test_client()
    client.post("/consent", data={"choice": "agree"})
    client.get("/")
    assert visitor_cookie(client) is not None
    client.post("/consent", data={"choice": "decline"})
    page = client.get("/")
    assert b'id="consent-banner"' not in page.data
    assert visitor_cookie(client) is None


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "cart"])
def test_consent_redirects_only_to_paths_of_the_shop(
    splitwerk: Splitwerk, make_shop: ShopFactory, target: str
) -> None:
    client = make_shop(splitwerk.url, consent_mode="required").test_client()
    answer = client.post("/consent", data={"choice": "agree", "next": target})
    assert answer.headers["Location"] == "/"


def test_consent_without_a_valid_choice_is_rejected(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    client = make_shop(splitwerk.url, consent_mode="required").test_client()
    assert client.post("/consent", data={"choice": "maybe"}).status_code == 400
    assert client.get_cookie("shop_consent") is None


def test_checkout_sends_the_order_with_its_money(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    require_events_api(splitwerk.app)
    shop = make_shop(splitwerk.url)
    client = shop.test_client()
    variant = rendered_variant(client.get("/").data)
    client.post("/cart", data={"product": FEATURED.slug, "quantity": "2"})
    response = client.post("/checkout")
    assert response.status_code == 303
    assert client.get(response.headers["Location"]).status_code == 200
    sdk: Client = shop.extensions[CLIENT_EXTENSION]
    assert sdk.flush(timeout=5.0)
    assert sdk.stats()["accepted"] == 1
    order = totals({FEATURED.slug: 2})
    net = order.revenue - order.tax
    margin = net - order.cost_of_goods - order.payment_fee - order.shipping_cost
    index = variant_index(variant)
    recorded = counts(splitwerk.app)
    assert recorded[f"n:{index}:purchase"] == 1
    assert recorded[f"s:{index}:revenue"] == int(net * 100)
    assert recorded[f"s:{index}:margin"] == int(margin * 100)
    assert rendered_variant(client.get("/").data) == variant  # the cart is empty, the variant not


def test_a_returned_order_is_refunded_and_the_buyer_becomes_a_returning_customer(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    require_events_api(splitwerk.app)
    shop = make_shop(splitwerk.url)
    client = shop.test_client()
    variant = rendered_variant(client.get("/").data)
    client.post("/cart", data={"product": FEATURED.slug, "quantity": "1"})
    order_page = client.post("/checkout").headers["Location"]
    sdk: Client = shop.extensions[CLIENT_EXTENSION]
    assert sdk.flush(timeout=5.0)
    response = client.post(f"{order_page}/return")
    assert response.status_code == 303
    assert b'id="returned"' in client.get(order_page).data
    assert client.post(f"{order_page}/return").status_code == 303  # sent once only
    assert sdk.flush(timeout=5.0)
    assert sdk.stats()["accepted"] == 2
    order = totals({FEATURED.slug: 1})
    index = variant_index(variant)
    recorded = counts(splitwerk.app)
    assert recorded[f"s:{index}:revenue"] == 0  # the whole basket came back
    assert recorded[f"rf:{index}:revenue"] == int((order.revenue - order.tax) * 100)
    assert recorded[f"e:{index}:customer=new"] == 1  # enrolled on the first, new visit
    other = shop.test_client()
    assert other.post("/orders/o-unknown/return").status_code == 404


def test_an_empty_cart_is_not_ordered(splitwerk: Splitwerk, make_shop: ShopFactory) -> None:
    shop = make_shop(splitwerk.url)
    response = shop.test_client().post("/checkout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/cart"
    assert shop.extensions[CLIENT_EXTENSION].stats()["queued"] == 0


@pytest.mark.parametrize(
    "form",
    [
        {"product": "no-such-thing"},
        {"product": FEATURED.slug, "quantity": "0"},
        {"product": FEATURED.slug, "quantity": "-1"},
        {"product": FEATURED.slug, "quantity": "1.5"},
        {"product": FEATURED.slug, "quantity": "21"},
    ],
)
def test_bad_cart_input_is_rejected(
    splitwerk: Splitwerk, make_shop: ShopFactory, form: dict[str, str]
) -> None:
    client = make_shop(splitwerk.url).test_client()
    assert client.post("/cart", data=form).status_code == 400
    assert b"(0)" in client.get("/cart").data


def test_unreachable_splitwerk_leaves_the_shop_working_with_the_control(
    make_shop: ShopFactory,
) -> None:
    client = make_shop(f"http://127.0.0.1:{free_port()}", assign_timeout=0.1).test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert rendered_variant(page.data) == "control"
    client.post("/cart", data={"product": FEATURED.slug})
    assert client.post("/checkout").status_code == 303


@pytest.mark.parametrize("path", ["/", "/browser", "/cart"])
def test_pages_have_a_strict_content_security_policy(
    splitwerk: Splitwerk, make_shop: ShopFactory, path: str
) -> None:
    response = make_shop(splitwerk.url, consent_mode="required").test_client().get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    sources = {
        name: value.split() for name, value in (part.split(" ", 1) for part in policy.split("; "))
    }
    assert sources["script-src"][:2] == ["'self'", splitwerk.url]
    # the embed code exactly as GET /v1/snippet/embed gives it, loading today's /sdk.js
    assert embed_code(splitwerk.url + "/").encode() in response.data
    assert f'"{splitwerk.url}/sdk.js?v={current_version()}"'.encode() in response.data
    # inline only what the policy allows: the embed's elements by hash, the rest by nonce
    inline = INLINE.findall(response.data)
    assert len([tag for tag, _, _ in inline if tag == b"script"]) == 2  # options and embed
    for tag, attributes, text in inline:
        allowed = sources[f"{tag.decode()}-src"]
        nonce = re.search(rb'nonce="([^"]+)"', attributes)
        if nonce is not None:
            assert f"'nonce-{nonce.group(1).decode()}'" in allowed
        else:
            assert csp_hash(text) in allowed, text[:60]


def test_without_the_embed_code_pages_have_no_snippet(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    response = make_shop(splitwerk.url, snippet_embed="").test_client().get("/browser")
    assert response.status_code == 200
    assert b"sdk.js" not in response.data and b"splitwerkConfig" not in response.data
    assert "sha256-" not in response.headers["Content-Security-Policy"]


def test_only_the_browser_page_asks_the_snippet_for_the_experiment_and_marks_it(
    splitwerk: Splitwerk, make_shop: ShopFactory
) -> None:
    client = make_shop(splitwerk.url).test_client()
    browser = client.get("/browser").data
    assert snippet_options(browser) == {
        "consentMode": "none",
        "timeoutMs": 800,
        "experiments": ["checkout-button"],
    }
    assert len(MARKED.findall(browser)) == 2  # the button and the note under it
    server = client.get("/").data
    assert "experiments" not in snippet_options(server)
    assert MARKED.findall(server) == []


def test_the_shop_fetches_the_embed_code_splitwerk_gives(splitwerk: Splitwerk) -> None:
    assert fetch_embed(splitwerk.url) == embed_code(splitwerk.url + "/")
    assert fetch_embed(f"http://127.0.0.1:{free_port()}") == ""  # nothing listens: no snippet


def test_unknown_consent_mode_and_bad_url_are_refused() -> None:
    with pytest.raises(ValueError, match="consent_mode"):
        create_app("http://127.0.0.1:1", ingest_key=None, consent_mode="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="splitwerk_url"):
        create_app("127.0.0.1:8000", ingest_key=None)


def test_amounts_are_decimal_and_free_shipping_starts_at_50_euros() -> None:
    small = totals({"bohnen-hochland": 1})
    assert small.revenue == Decimal("19.40")  # 14.50 + 4.90 shipping
    assert small.tax == Decimal("3.10")
    big = totals({"handmuehle": 2})
    assert big.shipping_fee == Decimal("0.00")
    assert big.payment_fee == Decimal("1.87")  # 1.9 % of 79.80 + 0.35, rounded half up
