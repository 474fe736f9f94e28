"""The embed code in a small shop, in Chromium: consent, a slow or missing Splitwerk, bytes.

Each test starts Splitwerk (the demo experiment, CORS for the shop) and a small shop whose
pages carry the exact embed code of ``server.services.install.embed_code`` and call the
snippet the documented ways: ``splitwerk.onVariant`` dresses the marked button,
``splitwerk('consent', true)`` is the consent tool, ``splitwerk.track`` counts conversions.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, expect

from server.context import services_of
from server.services.install import REVEAL_TIMEOUT_MS, current_version, embed_code
from tests.browser.conftest import CHROMIUM_ARGS, PageLog, chromium_path
from tests.browser.conftest import Site as ShopSite
from tests.conftest import RedisServer
from tests.examples.live import LateApp, counts, enrolled, splitwerk_app, variant_index, wait_for
from tests.helpers import EDITOR, LiveServer, free_port

pytestmark = pytest.mark.browser

PAGES = 10  # page views after consent, as in the walk through a shop
SLOW_SNIPPET_SECONDS = 5.0  # how late /sdk.js arrives in the slow-server test
# The marked content must show within this many ms even when /sdk.js is late or missing: the
# embed's cap (800 ms) plus a page's timer lag on a busy 2-core machine.
VISIBLE_WITHIN_MS = 1200
WIRE_BUDGET_BYTES = 4096  # the snippet's budget on the wire (sdk/js/size.mjs)
REPOSITORY = Path(__file__).resolve().parents[2]
MINIFIED = REPOSITORY / "sdk" / "js" / "splitwerk.min.js"
# The condition table shared by the server, the Python SDK and the snippet.
CONDITION_CASES = REPOSITORY / "tests" / "cases" / "conditions.json"
# The operators the snippet evaluates itself (sdk/js/README.md); it hands the rest to the server.
SNIPPET_OPERATORS = {"$and", "$or", "$nor", "$not", "$eq", "$ne", "$in", "$nin"} | {
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$exists",
}
# Chromium offers brotli only to secure origins (HTTPS and localhost): a plain-http host name,
# resolved to loopback, makes it ask for gzip the way a client without brotli does.
PLAIN_HOST = "splitwerk.test"
# Samples, from before the first byte is parsed, whether the title and the marked button are
# visible (every animation frame and every 10 ms), and when the button first was.
RECORD_VISIBILITY = """
window.samples = [];
const sample = () => {
  const title = document.getElementById('title');
  const buy = document.getElementById('buy');
  if (title) window.samples.push(getComputedStyle(title).visibility);
  if (buy && getComputedStyle(buy).visibility === 'visible' && window.buyVisibleAt === undefined)
    window.buyVisibleAt = performance.now();
};
setInterval(sample, 10);
const frame = () => { sample(); requestAnimationFrame(frame); };
requestAnimationFrame(frame);
"""
PAGE = """<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<title>Seite {number}</title>
<link rel="icon" href="data:,">
<script>window.splitwerkConfig = {config};</script>
{embed}
</head>
<body>
<h1 id="title">Rösterei, Seite {number}</h1>
<button id="buy" data-splitwerk-hide data-variant="control">Jetzt kaufen</button>
<button id="cart">In den Warenkorb</button> <output id="cart-size">0</output>
<button id="agree">Zustimmen</button>
<script>
  splitwerk.onVariant('checkout-button', function (variant) {{
    document.getElementById('buy').dataset.variant = variant;
  }});
  document.getElementById('buy').addEventListener('click', function () {{
    splitwerk.track('add_to_cart');
    splitwerk.flush();
  }});
  document.getElementById('cart').addEventListener('click', function () {{
    var size = document.getElementById('cart-size');
    size.textContent = +size.textContent + 1;
    splitwerk('track', 'add_to_cart');
  }});
  document.getElementById('agree').addEventListener('click', function () {{
    splitwerk('consent', true);
  }});
</script>
</body>
</html>
"""


class SnippetDelivery:
    """WSGI wrapper of Splitwerk that delays /sdk.js, or answers it with 404."""

    def __init__(self, app: Any, *, delay: float = 0.0, is_missing: bool = False) -> None:
        self.app = app
        self.delay = delay
        self.is_missing = is_missing

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/sdk.js":
            if self.is_missing:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found"]
            time.sleep(self.delay)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def shop_app(splitwerk_url: str, config: dict[str, Any]) -> Flask:
    """A shop whose pages carry the embed code and the snippet ``config``."""
    app = Flask(__name__)
    embed = embed_code(splitwerk_url)

    @app.get("/page/<int:number>")
    def page(number: int) -> str:
        return PAGE.format(number=number, config=json.dumps(config), embed=embed)

    return app


@dataclass(frozen=True)
class Site(ShopSite):
    """A running shop with numbered pages and the Splitwerk it uses."""

    def page(self, number: int) -> str:
        return f"{self.shop_url}/page/{number}"


StartSite = Callable[..., Site]


@pytest.fixture
def start_site(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[StartSite]:
    """Starts a shop and its Splitwerk (unless ``splitwerk_is_up=False``); stops both after."""
    with contextlib.ExitStack() as stack:

        def start(
            config: dict[str, Any] | None = None,
            *,
            splitwerk_is_up: bool = True,
            delay: float = 0.0,
            is_missing: bool = False,
        ) -> Site:
            late = LateApp()
            shop_url = stack.enter_context(LiveServer(late)).url
            server_app = None
            if splitwerk_is_up:
                server_app = splitwerk_app(redis_server.url, cors_origins=shop_url)
                stack.callback(services_of(server_app).store.close)
                delivery = SnippetDelivery(server_app, delay=delay, is_missing=is_missing)
                url = stack.enter_context(LiveServer(delivery)).url
            else:
                url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
            late.app = shop_app(url, {"experiments": ["checkout-button"], **(config or {})})
            return Site(shop_url, url, server_app)

        yield start


def watch_requests(page: Page, path: str) -> list[Request]:
    """Every request of ``page`` whose URL path ends with ``path``, as they are sent."""
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request) if request.url.endswith(path) else None)
    return seen


def ready(page: Page) -> dict[str, Any]:
    """The snippet's answer for the demo experiment on this page."""
    page.wait_for_function("() => window.splitwerk && window.splitwerk.version")
    answer: dict[str, Any] = page.evaluate("splitwerk.ready")["checkout-button"]
    return answer


def storage_is_empty(page: Page) -> bool:
    empty: bool = page.evaluate("localStorage.length + sessionStorage.length === 0")
    return empty


def test_after_consent_ten_pages_keep_one_variant_and_count_every_conversion(
    start_site: StartSite, context: BrowserContext, page: Page, page_log: PageLog
) -> None:
    site = start_site({"consentMode": "required"})
    assigns = watch_requests(page, "/v1/assign")
    page.goto(site.page(1))
    assert ready(page)["reason"] == "no_consent"
    page.get_by_role("button", name="Zustimmen").click()  # the consent tool
    assert wait_for(lambda: any(c["name"] == "splitwerk_vid" for c in context.cookies()))
    visitor = next(c["value"] for c in context.cookies() if c["name"] == "splitwerk_vid")

    shown = []
    for number in range(2, PAGES + 2):
        page.goto(site.page(number))
        answer = ready(page)
        assert answer["enrolled"] is True, answer
        expect(page.locator("#buy")).to_have_attribute("data-variant", answer["variant"])
        shown.append(answer["variant"])
        with page.expect_request(re.compile(r".*/v1/events$")) as beacon:
            page.get_by_role("button", name="Jetzt kaufen").click()
        body = beacon.value.post_data_json
        assert body is not None and body["events"][0]["visitor"] == visitor

    assert len(set(shown)) == 1, shown  # no variant switch on any page
    assert {json.loads(r.post_data or "")["visitor"] for r in assigns} == {visitor}
    assert enrolled(site.server) == 1
    index = variant_index(shown[0])
    assert wait_for(lambda: counts(site.server).get(f"n:{index}:add_to_cart") == PAGES)
    others = [name for name in counts(site.server) if name.endswith(":add_to_cart")]
    assert all(name.split(":")[1] == str(index) for name in others), others
    assert page_log.errors() == []


def test_without_consent_every_page_shows_the_control_and_nothing_is_stored_or_recorded(
    start_site: StartSite, context: BrowserContext, page: Page, page_log: PageLog
) -> None:
    site = start_site({"consentMode": "required"})
    sent = watch_requests(page, "/v1/assign") + watch_requests(page, "/v1/events")
    for number in range(1, PAGES + 1):
        page.goto(site.page(number))
        answer = ready(page)
        assert (answer["variant"], answer["enrolled"], answer["reason"]) == (
            "control",
            False,
            "no_consent",
        )
        expect(page.locator("#buy")).to_have_attribute("data-variant", "control")
        page.get_by_role("button", name="In den Warenkorb").click()
        page.evaluate("splitwerk.flush()")
        assert context.cookies() == []
        assert storage_is_empty(page)
    assert sent == []  # no id, no attribute, no event left the browser
    assert enrolled(site.server) == 0
    assert counts(site.server) == {}
    # What a shop's backend (or anyone) gets for a visitor without consent: recorded:false.
    answer = page.evaluate(
        """url => fetch(url + '/v1/assign', {method: 'POST',
             body: JSON.stringify({visitor: 'no-consent', consent: false})}).then(r => r.json())""",
        site.splitwerk_url,
    )
    assert answer["recorded"] is False
    assert answer["assignments"]["checkout-button"]["enrolled"] is False
    assert enrolled(site.server) == 0
    assert page_log.errors() == []


def test_a_slow_sdk_js_shows_the_marked_content_with_the_control_within_the_cap(
    start_site: StartSite, context: BrowserContext, page: Page, page_log: PageLog
) -> None:
    site = start_site(delay=SLOW_SNIPPET_SECONDS)
    context.add_init_script(RECORD_VISIBILITY)
    page.goto(site.page(1), wait_until="domcontentloaded")  # "load" waits for /sdk.js
    page.wait_for_function("() => performance.now() > 1500")
    visible_at = page.evaluate("window.buyVisibleAt")
    # hidden while the embed waits, shown at its cap: the stub's timer, not the snippet
    assert visible_at is not None and REVEAL_TIMEOUT_MS <= visible_at <= VISIBLE_WITHIN_MS
    assert page.evaluate("window.splitwerk.version") is None  # the snippet has not arrived
    expect(page.locator("#buy")).to_have_attribute("data-variant", "control")
    page.get_by_role("button", name="In den Warenkorb").click()  # the shop works meanwhile
    expect(page.locator("#cart-size")).to_have_text("1")

    # When the snippet does arrive, the page keeps the control: nothing jumps.
    answer = ready(page)
    assert (answer["variant"], answer["reason"]) == ("control", "timeout")
    expect(page.locator("#buy")).to_have_attribute("data-variant", "control")
    # and it runs the calls the page queued meanwhile: the click's conversion goes out
    with page.expect_request(re.compile(r".*/v1/events$")) as beacon:
        page.evaluate("splitwerk.flush()")
    body = beacon.value.post_data_json
    assert body is not None and [e["goal"] for e in body["events"]] == ["add_to_cart"]
    samples = page.evaluate("window.samples")
    assert samples and set(samples) == {"visible"}  # the rest of the page was never hidden
    assert page_log.errors() == []


@pytest.mark.parametrize("failure", ["sdk.js answers 404", "Splitwerk is down"])
def test_a_missing_snippet_breaks_nothing_in_the_shop(
    failure: str,
    start_site: StartSite,
    context: BrowserContext,
    page: Page,
    page_log: PageLog,
) -> None:
    site = start_site(is_missing=True, splitwerk_is_up=failure != "Splitwerk is down")
    context.add_init_script(RECORD_VISIBILITY)
    page.goto(site.page(1))
    page.wait_for_function(f"() => performance.now() > {VISIBLE_WITHIN_MS}")
    visible_at = page.evaluate("window.buyVisibleAt")
    assert visible_at is not None and visible_at <= VISIBLE_WITHIN_MS, visible_at
    for _ in range(3):
        page.get_by_role("button", name="In den Warenkorb").click()
    expect(page.locator("#cart-size")).to_have_text("3")
    page.get_by_role("button", name="Jetzt kaufen").click()
    page.get_by_role("button", name="Zustimmen").click()
    variant = page.evaluate("splitwerk.variant('checkout-button')")
    assert variant is None  # the stub settles its calls, with nothing, when the script fails
    assert page_log.errors(failed_loads_from=(site.splitwerk_url,)) == []


def test_a_returning_visitor_keeps_the_stored_variant_when_splitwerk_does_not_answer(
    start_site: StartSite, context: BrowserContext, page: Page, page_log: PageLog
) -> None:
    site = start_site({"consentMode": "required"})
    page.goto(site.page(1))
    page.get_by_role("button", name="Zustimmen").click()
    page.goto(site.page(2))
    first = ready(page)
    assert first["enrolled"] is True

    def no_answer(route: Route) -> None:
        route.abort("connectionrefused")

    context.route(re.compile(r".*/v1/assign$"), no_answer)
    for number in (3, 4):
        page.goto(site.page(number))
        answer = ready(page)
        assert (answer["variant"], answer["enrolled"]) == (first["variant"], True)
        assert answer["reason"] == "error"
        expect(page.locator("#buy")).to_have_attribute("data-variant", first["variant"])
    assert page_log.errors(failed_loads_from=(site.splitwerk_url,)) == []


def test_sdk_js_comes_versioned_brotli_compressed_and_within_4_kb(
    start_site: StartSite, page: Page, page_log: PageLog
) -> None:
    site = start_site()
    with page.expect_response(re.compile(r".*/sdk\.js\?v=.*")) as caught:
        page.goto(site.page(1))
    response = caught.value
    assert response.url == f"{site.splitwerk_url}/sdk.js?v={current_version()}"
    headers = response.headers
    assert headers["content-encoding"] == "br"
    assert "max-age=31536000" in headers["cache-control"]
    assert "immutable" in headers["cache-control"]
    on_wire = response.request.sizes()["responseBodySize"]
    assert 0 < on_wire <= WIRE_BUDGET_BYTES, on_wire
    assert ready(page)["enrolled"] is True
    assert page_log.errors() == []


def test_sdk_js_comes_gzip_compressed_within_4_kb_to_a_browser_without_brotli(
    browser: Browser, start_site: StartSite
) -> None:
    site = start_site()
    plain_url = site.splitwerk_url.replace("127.0.0.1", PLAIN_HOST)
    rule = f"--host-resolver-rules=MAP {PLAIN_HOST} 127.0.0.1"
    executable = chromium_path()
    assert executable is not None  # the browser fixture skips without one
    gzip_only = browser.browser_type.launch(executable_path=executable, args=[*CHROMIUM_ARGS, rule])
    try:
        page = gzip_only.new_page()
        with page.expect_response(re.compile(r".*/sdk\.js\?v=.*")) as caught:
            page.goto(f"{plain_url}/sdk.js?v={current_version()}")
        response = caught.value
        assert "br" not in (response.request.all_headers().get("accept-encoding") or "")
        assert response.headers["content-encoding"] == "gzip"
        assert "immutable" in response.headers["cache-control"]
        assert response.body() == MINIFIED.read_bytes()  # the minified build, decompressed
        on_wire = response.request.sizes()["responseBodySize"]
        assert 0 < on_wire <= WIRE_BUDGET_BYTES, on_wire
    finally:
        gzip_only.close()


def test_local_mode_leaves_a_regex_condition_to_the_server_instead_of_targeting_nobody(
    start_site: StartSite, page: Page, page_log: PageLog
) -> None:
    site = start_site({"local": True, "experiments": ["regex-banner"]})
    client = site.server.test_client()
    experiment = {
        "key": "regex-banner",
        "name": "Banner for visitors who came directly",
        "variants": [{"key": "control"}, {"key": "banner", "weight": 1}],
        "goals": [{"key": "add_to_cart", "primary": True}],
        "conditions": {"source": {"$regex": "^dir"}},
    }
    assert client.post("/v1/experiments", json=experiment, headers=EDITOR).status_code == 201
    assert client.post("/v1/experiments/regex-banner/start", headers=EDITOR).status_code == 200
    page.goto(site.page(1))
    page.wait_for_function("() => window.splitwerk && window.splitwerk.version")
    answer = page.evaluate("splitwerk.ready")["regex-banner"]
    assert (answer["enrolled"], answer["reason"]) == (True, "running")
    assert page_log.errors() == []


def test_the_embed_hides_marked_elements_only_until_the_variant_is_applied(
    start_site: StartSite, context: BrowserContext, page: Page, page_log: PageLog
) -> None:
    site = start_site()
    context.add_init_script(RECORD_VISIBILITY)
    page.goto(site.page(1))
    answer = ready(page)
    expect(page.locator("#buy")).to_have_attribute("data-variant", answer["variant"])
    expect(page.locator("#buy")).to_be_visible()
    assert (
        page.evaluate("document.documentElement.classList.contains('splitwerk-loading')") is False
    )
    assert page.evaluate("window.buyVisibleAt") <= REVEAL_TIMEOUT_MS + VISIBLE_WITHIN_MS
    assert set(page.evaluate("window.samples")) == {"visible"}
    assert page_log.errors() == []


def test_a_configured_covariate_goes_with_the_assignment_request(
    start_site: StartSite, page: Page, page_log: PageLog
) -> None:
    """The shop's CUPED covariate (issue 20) is the top-level ``covariate`` of /v1/assign.

    Only the request is checked: whether the server accepts the field is the server's tests'
    business.
    """
    bodies: list[dict[str, Any]] = []

    def record(route: Route) -> None:
        bodies.append(json.loads(route.request.post_data or ""))
        route.continue_()

    page.route(re.compile(r".*/v1/assign$"), record)
    with_covariate = start_site({"covariate": 129.5})
    page.goto(with_covariate.page(1))
    page.wait_for_function("() => window.splitwerk && window.splitwerk.version")
    page.evaluate("splitwerk.ready")
    assert [body.get("covariate") for body in bodies] == [129.5]
    assert bodies[0]["experiments"] == ["checkout-button"]

    without = start_site()  # no covariate configured: no field at all
    page.goto(without.page(1))
    page.wait_for_function("() => window.splitwerk && window.splitwerk.version")
    page.evaluate("splitwerk.ready")
    assert len(bodies) == 2 and "covariate" not in bodies[1]
    # a server without the field answers 422: Chromium logs that load, the page has no error
    assert page_log.errors(failed_loads_from=(with_covariate.splitwerk_url,)) == []


def test_in_local_mode_the_covariate_goes_with_the_exposure_and_is_recorded(
    start_site: StartSite, page: Page, page_log: PageLog
) -> None:
    """Local mode decides in the browser and enrols through the exposure event: the shop's
    CUPED covariate must travel with it, or the server never learns it (issue 20)."""
    site = start_site({"local": True, "covariate": "129.5"})
    assert site.server is not None
    page.goto(site.page(1))
    answer = ready(page)
    assert answer["enrolled"] is True
    page.evaluate("splitwerk.flush()")
    index = variant_index(answer["variant"])
    assert wait_for(lambda: counts(site.server).get(f"xn:{index}") == 1), counts(site.server)
    assert counts(site.server)[f"xs:{index}"] == 12950  # hundredths, as /v1/assign keeps it
    assert page_log.errors() == []


def test_a_configured_consent_cookie_is_the_consent_on_every_page_until_withdrawn(
    start_site: StartSite, context: BrowserContext, page: Page, page_log: PageLog
) -> None:
    site = start_site({"consentMode": "required", "consentCookie": "shop_consent=ab-testing"})
    page.goto(site.page(1))
    assert ready(page)["reason"] == "no_consent"
    assert context.cookies() == []
    # the shop's consent tool stores its own cookie; the snippet reads it on every later page
    page.evaluate("document.cookie = 'shop_consent=ab-testing; Path=/'")
    shown, visitors = [], set()
    for number in range(2, 5):
        page.goto(site.page(number))
        answer = ready(page)
        assert answer["enrolled"] is True, answer
        shown.append(answer["variant"])
        visitors.update(c["value"] for c in context.cookies() if c["name"] == "splitwerk_vid")
    assert len(set(shown)) == 1 and len(visitors) == 1, (shown, visitors)
    assert enrolled(site.server) == 1

    # withdrawn in the consent tool: the control again, and the snippet's data is gone
    page.evaluate("document.cookie = 'shop_consent=; Path=/; Max-Age=0'")
    page.goto(site.page(5))
    answer = ready(page)
    assert (answer["variant"], answer["reason"]) == ("control", "no_consent")
    assert context.cookies() == []
    assert storage_is_empty(page)
    assert enrolled(site.server) == 1
    assert page_log.errors() == []


def operators_of(condition: Any) -> set[str]:
    """Every operator (``$…`` key) in a condition."""
    if isinstance(condition, list):
        return set().union(*(operators_of(c) for c in condition))
    if isinstance(condition, dict):
        found = {key for key in condition if key.startswith("$")}
        return found.union(*(operators_of(value) for value in condition.values()))
    return set()


def test_chromium_runs_the_shared_condition_table_as_the_server_decides_it(
    start_site: StartSite, page: Page, page_log: PageLog
) -> None:
    """In the browser's own engine: own properties only, code-point order, the server's
    refusals; operators the snippet lacks and rounded integers are handed to the server."""
    site = start_site()
    page.goto(site.page(1))
    page.wait_for_function("() => window.splitwerk && window.splitwerk.version")
    text = CONDITION_CASES.read_text(encoding="utf-8")
    # parsed in the page, as the snippet parses /v1/config: integers beyond 2^53 get rounded
    verdicts = page.evaluate(
        """text => JSON.parse(text).map(c => {
          try { return splitwerk.core.matches(c.condition, c.attributes); }
          catch (e) { return 'refused'; }
        })""",
        text,
    )
    wrong = []
    for case, verdict in zip(json.loads(text), verdicts, strict=True):
        evaluated = operators_of(case["condition"]) <= SNIPPET_OPERATORS
        rounded = re.search(r"\d{16,}", json.dumps(case["condition"])) is not None
        if case.get("invalid"):
            expected = ["refused"] if evaluated else ["refused", None]
        elif not evaluated or rounded:
            expected = [None]  # handed to the server, never answered here
        else:
            expected = [case["expected"]]
        if verdict not in expected:
            wrong.append((case["name"], verdict))
    assert wrong == []
    assert len(verdicts) > 300
    assert page_log.errors() == []
