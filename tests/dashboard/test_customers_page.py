"""The experiment page's customer figures (issue 21): repeat buyers, orders per visitor and the
return rate per variant, with the differences to the control, as the results API gives them."""

from __future__ import annotations

import html
import random
import re
import time
from typing import Any

import redis

from dashboard import formatting
from tests.api.test_covariate import shop_traffic, start
from tests.api.test_customer_metrics import GOALS
from tests.api.test_windows import DAY, KEY, Shop
from tests.dashboard.conftest import sign_in
from tests.helpers import EDITOR_TOKEN, VIEWER


def shop_with_returns(redis_url: str) -> Shop:
    """An ended experiment whose challenger sells more often and gets more goods back."""
    shop = Shop(redis_url)
    start = time.time() - 90 * DAY  # every window and return period has closed
    shop.create(goals=GOALS, analysis="fixed")
    shop.act("start", start)
    rng = random.Random(11)
    for number in range(240):  # 100 visitors per variant before a difference is judged
        visitor = f"v-{number}"
        variant = shop.enrol(visitor, start + number * 60)
        orders = rng.choice([0, 0, 1, 1, 2, 3]) + (1 if variant == "note" and number % 3 else 0)
        for order in range(orders):
            revenue, at = rng.randrange(1000, 9000), start + number * 60 + (order + 1) * DAY
            assert shop.order(visitor, f"o-{number}-{order}", revenue, at) == "accepted"
            if rng.random() < (0.6 if variant == "note" else 0.1):
                refund = shop.refund(f"o-{number}-{order}", revenue // 2, at + DAY)
                assert refund == "accepted"
    return shop


def row_of(page: str, caption: str, variant: str) -> str:
    """The text of one variant's row in the table with that caption."""
    table = re.search(rf"<caption[^>]*>{re.escape(caption)}</caption>(.*?)</table>", page, re.S)
    assert table is not None, f"no table {caption!r}"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    found = [r for r in rows if re.search(rf'<th scope="row">{re.escape(variant)}\b', r)]
    assert len(found) == 1, rows
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found[0]))


def test_the_page_shows_repeat_buyers_orders_per_visitor_and_the_return_rate(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    shop = shop_with_returns(redis_server.url)
    purchase, revenue = shop.results()["goals"]
    client = shop.app.test_client()
    client.set_cookie("splitwerk_locale", "en", domain="localhost")
    page = html.unescape(
        sign_in(client, EDITOR_TOKEN).get(f"/dashboard/experiments/{KEY}").get_data(as_text=True)
    )
    repeat = purchase["customer"]["repeat"]["variants"]
    per_visitor = purchase["customer"]["per_visitor"]["variants"]
    control = row_of(page, "Customers of purchase", "control")
    assert formatting.percent(repeat[0]["estimate"], "en", 1) in control
    assert formatting.number(per_visitor[0]["estimate"], "en", 2) in control
    challenger = row_of(page, "Customers of purchase", "note")
    assert formatting.percent(repeat[1]["estimate"], "en", 1) in challenger
    assert f"{formatting.points(repeat[1]['uplift'], 'en')} pp" in challenger
    interval = per_visitor[1]["uplift_interval"]
    assert (
        f"{formatting.number(per_visitor[1]['uplift'], 'en', 2, signed=True)}; "
        f"{formatting.number(interval['lower'], 'en', 2, signed=True)} to "
        f"{formatting.number(interval['upper'], 'en', 2, signed=True)}"
    ) in challenger
    rates = revenue["customer"]["return_rate"]
    returns = row_of(page, "Customers of revenue", "note")
    assert formatting.percent(rates[1]["estimate"], "en", 1) in returns
    assert f"{formatting.points(rates[1]['uplift'], 'en')} pp" in returns
    assert rates[1]["significant"] is True  # the challenger's goods come back more often
    assert "(conclusive)" in returns
    assert "(conclusive)" not in row_of(page, "Customers of revenue", "control")
    # the revenue goal has no repeat figures, the purchase goal no return rate: no empty columns
    assert page.count("Return rate</th>") == 1 and page.count("Repeat buyers</th>") == 1
    # orders feed "purchase": its repeats are repeat buyers; another conversion goal's are not
    assert "Converted twice or more" not in page


def test_a_goal_not_fed_by_orders_counts_repeat_conversions_not_buyers(app: Any, demo: str) -> None:
    """The demo's add_to_cart goal listens to its own event: two add-to-carts make no buyer."""
    client = app.test_client()
    client.set_cookie("splitwerk_locale", "de", domain="localhost")
    page = html.unescape(
        sign_in(client, EDITOR_TOKEN).get(f"/dashboard/experiments/{demo}").get_data(as_text=True)
    )
    carts = re.search(r"Kunden bei add_to_cart</caption>(.*?)</thead>", page, re.S)
    assert carts is not None
    assert "Zweimal oder öfter konvertiert" in carts.group(1)
    assert "Conversions pro Besucher" in carts.group(1)
    orders = re.search(r"Kunden bei purchase</caption>(.*?)</thead>", page, re.S)
    assert orders is not None and "Wiederkäufer" in orders.group(1)


def test_the_page_says_when_cuped_adjusted_comparisons_decide(app: Any) -> None:
    """With covariates sent at enrolment (issue 20) the adjusted uplifts decide the verdict:
    the page names them, with their intervals and the variance saved, as the results API has
    them."""
    client = app.test_client()
    start(client)
    shop_traffic(client, 700, seed=3)
    body = client.get("/v1/experiments/cuped/results", headers=VIEWER).json
    margin = next(report for report in body["goals"] if report["key"] == "margin")
    adjusted = margin["covariate"]["variants"]
    client.set_cookie("splitwerk_locale", "en", domain="localhost")
    page = html.unescape(
        sign_in(client, EDITOR_TOKEN).get("/dashboard/experiments/cuped").get_data(as_text=True)
    )
    notes = re.findall(r'<p class="muted small covariate">(.*?)</p>', page, re.S)
    assert len(notes) == 3  # purchase, revenue and margin all had enough covariates
    note = next(text for text in notes if formatting.money(adjusted[0]["uplift"], "EUR", "en",
                                                          signed=True) in text)  # fmt: skip
    visitors = formatting.number(sum(margin["covariate"]["visitors"]), "en")
    assert f"CUPED, {visitors} visitors sent one" in note
    for variant, result in zip(("green", "blue"), adjusted, strict=True):
        interval = result["uplift_interval"]
        lower, upper = (
            formatting.money(interval[side], "EUR", "en", signed=True)
            for side in ("lower", "upper")
        )
        uplift = formatting.money(result["uplift"], "EUR", "en", signed=True)
        assert f"{variant} {uplift} ({lower} to {upper})" in note
        change = formatting.percent(result["variance_ratio"] - 1.0, "en", 0, signed=True)
        assert f"variance {change}" in note
