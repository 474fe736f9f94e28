"""The guardrail alarm in Chromium: a harm seeded through the API shows on the decision card."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from playwright.sync_api import Page, expect

from server.app import create_app
from tests.browser.conftest import PageLog
from tests.browser.dashboard.conftest import Site, axe_violations, csp_violations, sign_in
from tests.conftest import RedisServer
from tests.helpers import EDITOR, EDITOR_TOKEN, LiveServer, app_settings, seed_guardrail_traffic

pytestmark = pytest.mark.browser

EXPERIMENT = {
    "key": "gift-wrap",
    "name": "Gift wrap upsell",
    "variants": [{"key": "control"}, {"key": "wrap"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "returned", "guardrail": True, "harm": "increase"},
    ],
}


def guarded_site(redis_server: RedisServer, rates: dict[str, float]) -> Iterator[Site]:
    app = create_app(app_settings(redis_server.url))
    client = app.test_client()
    assert client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR).status_code == 201
    assert client.post("/v1/experiments/gift-wrap/start", headers=EDITOR).status_code == 200
    seed_guardrail_traffic(client, "gift-wrap", rates, 2000, seed=7)
    with LiveServer(app) as server:
        yield Site(server.url, app, "gift-wrap")


@pytest.fixture
def harmed_site(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[Site]:
    """An experiment whose challenger quadruples the return rate (a guardrail)."""
    yield from guarded_site(redis_server, {"control": 0.05, "wrap": 0.2})


@pytest.fixture
def calm_site(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[Site]:
    """The same experiment with the same return rate in both variants (A/A on the guardrail)."""
    yield from guarded_site(redis_server, {"control": 0.1, "wrap": 0.1})


def test_a_guardrail_harm_raises_the_alarm_on_the_decision_card(
    harmed_site: Site, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page
    sign_in(page, harmed_site, EDITOR_TOKEN)
    # the list shows it in the checks column
    row = page.locator("table.experiments tbody tr").first
    expect(row.locator(".badge")).to_have_text("Guardrail alarm")
    page.goto(harmed_site.path("/dashboard/experiments/gift-wrap"))
    alarm = page.locator("section.decision [role=alert]")
    expect(alarm).to_be_visible()
    expect(alarm).to_have_text("Guardrail alarm: wrap significantly harms returned.")
    assert axe_violations(page) == []
    assert csp_violations(page) == [] and page_log.errors() == []


def test_no_alarm_without_harm(calm_site: Site, watched_page: Page, page_log: PageLog) -> None:
    page = watched_page
    sign_in(page, calm_site, EDITOR_TOKEN)
    expect(page.locator("table.experiments tbody tr").first.locator(".badge")).to_have_count(0)
    page.goto(calm_site.path("/dashboard/experiments/gift-wrap"))
    expect(page.locator("section.decision")).to_be_visible()
    expect(page.locator("section.decision [role=alert]")).to_have_count(0)
    assert page_log.errors() == []
