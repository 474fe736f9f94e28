"""README's "Your first experiment", step by step, in Chromium against a real server.

An editor creates and starts an experiment with the dashboard's form, copies the embed code from
the install page, a shop page with that code (served by its own HTTP server on another origin)
assigns a visitor, the shop's back end sends the visitor's order with the ingest key, and the
experiment's page shows the visitor and the order.
"""

from __future__ import annotations

import functools
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Page, expect

from server.app import create_app
from tests.browser.conftest import PageLog, screenshot
from tests.browser.dashboard.conftest import Site, csp_violations, sign_in
from tests.conftest import RedisServer
from tests.helpers import EDITOR_TOKEN, INGEST_TOKEN, LiveServer, app_settings, free_port

pytestmark = pytest.mark.browser

EXPERIMENT = "first-test"
# The shop's page: the copied embed code in <head>; the visitor agreed to testing in the shop's
# consent banner, and the button takes the colour of its variant.
SHOP_PAGE = """<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<title>Shop</title>
<script>
  window.splitwerkConfig = {{experiments: ['{experiment}'], consentMode: 'required'}};
</script>
{embed_code}
</head>
<body>
<button id="buy" data-splitwerk-hide>Kaufen</button>
<script>
  splitwerk.consent(true);
  splitwerk.onVariant('{experiment}', function (variant, payload) {{
    var button = document.getElementById('buy');
    if (payload && payload.color) button.style.background = payload.color;
    button.setAttribute('data-variant', variant);
  }});
</script>
</body>
</html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the shop's folder without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class Shop:
    """A static shop on its own loopback port (another origin than Splitwerk)."""

    def __init__(self, folder: Path, port: int) -> None:
        handler = functools.partial(QuietHandler, directory=str(folder))
        self.folder = folder
        self.url = f"http://127.0.0.1:{port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Shop:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    with Shop(tmp_path, free_port()) as running:
        yield running


@pytest.fixture
def splitwerk(redis_server: RedisServer, redis_client: redis.Redis, shop: Shop) -> Iterator[Site]:
    """Splitwerk without any experiment, allowing the shop's origin; results never cached."""
    app = create_app(app_settings(redis_server.url, CORS_ORIGINS=shop.url, RESULTS_CACHE_TTL=0))
    with LiveServer(app) as server:
        yield Site(server.url, app, EXPERIMENT)


def send_order(base_url: str, visitor: str) -> dict[str, object]:
    """What README's curl command sends: one order with the ingest key."""
    body = {
        "events": [
            {
                "type": "order",
                "visitor": visitor,
                "order_id": "10001",
                "revenue": "49.90",
                "tax": "7.97",
                "currency": "EUR",
            }
        ]
    }
    request = urllib.request.Request(
        base_url + "/v1/events",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-Splitwerk-Ingest-Key": INGEST_TOKEN},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer


def test_the_first_experiment_from_the_dashboard_to_its_results(
    splitwerk: Site, shop: Shop, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=splitwerk.url)
    sign_in(page, splitwerk, EDITOR_TOKEN)

    # 1. create the experiment in the dashboard and start it
    page.get_by_role("link", name="New experiment").first.click()
    page.locator("#key").fill(EXPERIMENT)
    page.locator("#name").fill("Green buy button")
    page.locator("#variants-1-key").fill("green")
    page.locator("#variants-1-payload").fill('{"color": "#1b7f3a"}')
    # money first: with an ingest key the goals come prefilled, margin per visitor as primary
    expect(page.locator("#goals-0-key")).to_have_value("margin")
    expect(page.locator("#goals-1-key")).to_have_value("purchase")
    # the margin counts each visitor's orders for 30 days after they were first seen
    page.locator("#goals-0-window_days").fill("30")
    page.get_by_role("button", name="Create draft").click()
    page.wait_for_url(splitwerk.path(f"/dashboard/experiments/{EXPERIMENT}"))
    page.get_by_role("link", name="Start", exact=True).click()
    page.get_by_role("button", name="Yes, start").click()
    expect(page.locator(".meta .status")).to_have_text("Running")

    # 2. copy the embed code from the install page into the shop's page
    page.get_by_role("link", name="Install").click()
    page.locator("button[data-copy='embed-code']").click()
    expect(page.locator("button[data-copy='embed-code']")).to_have_text("Copied")
    embed_code = page.evaluate("navigator.clipboard.readText()")
    assert f'"{splitwerk.url}/sdk.js?v=' in embed_code
    assert csp_violations(page) == []
    (shop.folder / "index.html").write_text(
        SHOP_PAGE.format(embed_code=embed_code, experiment=EXPERIMENT)
    )

    # a visitor opens the shop and consents (the control until then); from the next page on the
    # snippet assigns and enrols them
    visitor_page = page.context.new_page()
    visitor_page.goto(shop.url + "/")
    expect(visitor_page.locator("#buy[data-variant]")).to_have_count(1)
    visitor_page.reload()
    expect(visitor_page.locator("#buy[data-variant]")).to_have_count(1)
    variant = visitor_page.locator("#buy").get_attribute("data-variant")
    assert variant in {"control", "green"}
    cookies = {c["name"]: c["value"] for c in page.context.cookies(shop.url)}
    visitor = cookies["splitwerk_vid"]
    screenshot(visitor_page, "first-experiment-shop")

    # 3. the shop's back end sends the order with the ingest key
    answer = send_order(splitwerk.url, visitor)
    assert answer["accepted"] == 1, answer

    # 4. the results show the visitor and the order in the variant they saw
    page.goto(splitwerk.path(f"/dashboard/experiments/{EXPERIMENT}"))
    table = page.locator("table.results").filter(has=page.locator("#goal-purchase-caption"))
    row = table.locator("tbody tr").filter(has=page.locator(f"th:text-is('{variant}')"))
    other = "green" if variant == "control" else "control"
    other_row = table.locator("tbody tr").filter(has=page.locator(f"th:text-is('{other}')"))
    expect(row.locator("td").nth(0)).to_have_text("1")  # visitors
    expect(row.locator("td").nth(1)).to_have_text("1")  # conversions: the order
    expect(other_row.locator("td").nth(0)).to_have_text("0")
    # the margin's window (30 days and the default 14 for returns) is stated under its table
    expect(page.get_by_text("after their 44-day window and return period")).to_be_visible()
    screenshot(page, "first-experiment-results")
    assert csp_violations(page) == []
    assert page_log.errors() == []
