"""Fixtures of the dashboard browser tests: a live Splitwerk with demo data, signed-in pages.

Reuses tests/browser/conftest.py (the system Chromium, ``page``, ``page_log``, screenshots).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from flask import Flask
from playwright.sync_api import Page

from server.app import create_app
from server.context import services_of
from server.demo import DEMO_DAYS, SECONDS_PER_DAY, ensure_demo_experiment, generate_traffic
from server.launcher import DEMO_VISITORS as CLI_DEMO_VISITORS
from tests.conftest import RedisServer
from tests.helpers import LiveServer, app_settings

AXE = Path(__file__).resolve().parents[3] / "dashboard" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")  # axe-core impacts that fail a page
# The demo traffic of `splitwerk serve --dev`, so that the pages (and the README pictures) show
# what a first start shows: two weeks, in about three seconds.
DEMO_VISITORS = CLI_DEMO_VISITORS
# Records Content-Security-Policy violations from the first byte on; init scripts run outside
# the page's CSP, so this does not need the policy to allow anything.
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.cspViolations.push(event.violatedDirective + ' ' + (event.blockedURI || 'inline'));
});
"""


@dataclass(frozen=True)
class Site:
    """A running Splitwerk with the demo experiment."""

    url: str
    app: Flask
    experiment: str

    def path(self, path: str) -> str:
        """The absolute URL of a path on this site."""
        return self.url + path


# The demo's keys as the first test of a UTC day made them: (name, milliseconds to live or 0,
# DUMP payload), by day. Generating the traffic takes about 4 s; restoring it, milliseconds.
DEMO_SNAPSHOTS: dict[str, list[tuple[bytes, int, bytes]]] = {}


def _with_demo_traffic(redis_client: redis.Redis, redis_url: str) -> Flask:
    """An app over the flushed Redis holding the demo experiment and two weeks of traffic.

    The first test of a UTC day generates them and keeps a copy of every key; the next ones of
    that day restore the copy before their app starts, so the pages show the same days.
    """
    day = time.strftime("%Y-%m-%d", time.gmtime())
    snapshot = DEMO_SNAPSHOTS.get(day)
    if snapshot is not None:
        for name, milliseconds, payload in snapshot:
            redis_client.restore(name, milliseconds, payload, replace=True)
        return create_app(app_settings(redis_url))
    app = create_app(app_settings(redis_url))
    now = time.time()
    ensure_demo_experiment(services_of(app).store, now - DEMO_DAYS * SECONDS_PER_DAY)
    generate_traffic(services_of(app), DEMO_VISITORS, now)
    kept = []
    for name in redis_client.scan_iter():
        dumped = redis_client.dump(name)
        assert dumped is not None, name  # nothing else writes to the test's Redis meanwhile
        kept.append((name, max(int(redis_client.pttl(name)), 0), dumped))
    DEMO_SNAPSHOTS.clear()
    DEMO_SNAPSHOTS[day] = kept
    return app


@pytest.fixture
def site(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[Site]:
    """Splitwerk on a loopback port with two weeks of seeded demo traffic."""
    app = _with_demo_traffic(redis_client, redis_server.url)
    with LiveServer(app) as server:
        yield Site(server.url, app, "checkout-button")


@pytest.fixture
def watched_page(page: Page) -> Page:
    """``page`` recording CSP violations in ``window.cspViolations``."""
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    return page


def sign_in(page: Page, site: Site, token: str, *, language: str | None = "en") -> None:
    """Sign in through the login form; ``language`` pins the page language by cookie."""
    if language is not None:
        page.context.add_cookies([{"name": "splitwerk_locale", "value": language, "url": site.url}])
    page.goto(site.path("/dashboard/login"))
    page.locator("#token").fill(token)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(site.path("/dashboard/"))


def csp_violations(page: Page) -> list[str]:
    """The CSP violations the page reported so far."""
    found: list[str] = page.evaluate("window.cspViolations || []")
    return found


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations of the page as "rule: target" lines.

    axe-core comes from dashboard/node_modules (`npm ci` in dashboard/ installs it); it is
    evaluated through the DevTools protocol, which the page's CSP does not govern.
    """
    assert AXE.is_file(), "run `npm ci` in dashboard/ to install axe-core"
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text() + "\n;undefined")
    found: list[dict[str, object]] = page.evaluate(
        "async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations"
        ".map((v) => ({id: v.id, impact: v.impact,"
        " targets: v.nodes.map((n) => n.target.join(' '))}))"
    )
    return [
        f"{violation['id']} ({violation['impact']}): {violation['targets']}"
        for violation in found
        if violation["impact"] in BLOCKING_IMPACTS
    ]
