"""The dashboard in a real headless Chromium: sign-in, list, results with charts, lifecycle,
form errors, German pages, CSP, and screenshots of the main pages."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, PageLog, screenshot
from tests.browser.dashboard.conftest import Site, csp_violations, sign_in
from tests.helpers import EDITOR_TOKEN, VIEWER_TOKEN

pytestmark = pytest.mark.browser

DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "screenshots" / "experiment.png"
# Read when the module is collected: the suite scrubs SPLITWERK_* variables around each test.
UPDATE_DOCS_SCREENSHOTS = os.environ.get("SPLITWERK_UPDATE_DOCS_SCREENSHOTS") == "1"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # a common phone's CSS viewport
README_CLIP = {"x": 0, "y": 0, "width": 1280, "height": 1480}  # px: down to the first goal table

# How much of a chart's canvas must be painted: axes, labels and lines cover far more.
MINIMUM_PAINTED_SHARE = 0.01
PAINTED_SHARE = """
(canvas) => {
  const { width, height } = canvas;
  const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
  return painted / (width * height);
}
"""


def assert_clean(page: Page, log: PageLog, answered_4xx: tuple[str, ...] = ()) -> None:
    """No CSP violation and no console error (``answered_4xx``: pages that answer 422 on
    purpose, which Chromium logs as a failed load whatever the page does)."""
    assert csp_violations(page) == []
    assert log.errors(failed_loads_from=answered_4xx) == []


def test_editor_reads_list_and_experiment_with_charts(
    site: Site, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, site, EDITOR_TOKEN)

    row = page.locator("table.experiments tbody tr").first
    expect(row).to_contain_text("Checkout button")
    expect(row).to_contain_text("Running")
    screenshot(page, "dashboard-list")

    page.get_by_role("link", name="Checkout button: green and free-shipping note").click()
    expect(page.locator("h1")).to_have_text("Checkout button: green and free-shipping note")
    charts = page.locator("canvas[data-chart]")
    expect(charts.first).to_be_visible()
    assert charts.count() == 5  # visitors + one per goal
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')]"
        ".every((canvas) => window.Chart && window.Chart.getChart(canvas))"
    )
    for index in range(charts.count()):
        share = charts.nth(index).evaluate(PAINTED_SHARE)
        assert share > MINIMUM_PAINTED_SHARE, f"chart {index} looks empty ({share:.3%})"
    expect(page.get_by_role("heading", name="Who responds?")).to_be_visible()
    expect(page.locator("text=€").first).to_be_visible()
    assert_clean(page, page_log)
    screenshot(page, "dashboard-experiment")
    # The README shows the top of the page: the verdict, progress, split and first charts.
    top = SCREENSHOTS / "dashboard-experiment-top.png"
    page.screenshot(path=str(top), clip=README_CLIP, full_page=True)
    assert top.stat().st_size > 0
    # Refreshing the committed README picture is opt-in, so a test run leaves the tree clean.
    if UPDATE_DOCS_SCREENSHOTS:
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(top, DOCS_SCREENSHOT)


def test_pause_needs_a_confirmation_and_shows_in_the_audit_trail(
    site: Site, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page
    sign_in(page, site, EDITOR_TOKEN)
    page.goto(site.path(f"/dashboard/experiments/{site.experiment}"))

    page.get_by_role("link", name="Pause", exact=True).click()
    expect(page.locator("h1")).to_contain_text("Pause")
    screenshot(page, "dashboard-confirm-pause")
    page.get_by_role("button", name="Yes, pause").click()

    expect(page.locator(".meta .status")).to_have_text("Paused")
    expect(page.locator(".flash")).to_contain_text("Experiment paused.")
    expect(page.locator("table.audit tbody tr").first).to_contain_text("paused")
    expect(page.get_by_role("link", name="Resume", exact=True)).to_be_visible()
    assert_clean(page, page_log)


def test_viewer_sees_no_actions(site: Site, watched_page: Page, page_log: PageLog) -> None:
    page = watched_page
    sign_in(page, site, VIEWER_TOKEN)
    page.goto(site.path(f"/dashboard/experiments/{site.experiment}"))
    expect(page.locator(".actions-bar")).to_contain_text("signed in as a viewer")
    expect(page.get_by_role("link", name="Pause", exact=True)).to_have_count(0)
    assert_clean(page, page_log)


def test_form_shows_validation_errors_next_to_fields(
    site: Site, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, site, EDITOR_TOKEN)
    page.goto(site.path("/dashboard/experiments/new"))

    page.locator("#key").fill("Bad Key")
    page.locator("#name").fill("Free shipping banner")
    page.locator("#variants-1-key").fill("banner")
    page.locator("#variants-1-payload").fill("{not json")
    page.locator("#goals-0-key").fill("purchase")
    page.get_by_role("button", name="Add a variant").click()
    expect(page.locator("#variants-3-key")).to_be_visible()
    page.get_by_role("button", name="Create draft").click()

    expect(page.locator(".error-summary")).to_be_visible()
    expect(page.locator("#key")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#key-error")).to_contain_text("Use lowercase letters, digits, - and _")
    expect(page.locator("#variants-1-payload-error")).to_contain_text("not valid JSON")
    expect(page.locator("#name")).to_have_value("Free shipping banner")
    screenshot(page, "dashboard-form-errors")
    assert_clean(page, page_log, answered_4xx=(site.path("/dashboard/experiments/new"),))


def test_german_pages_format_numbers_the_german_way(
    site: Site, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page  # the browser context asks for de-DE
    page.goto(site.path("/dashboard/login"))
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    sign_in(page, site, EDITOR_TOKEN, language=None)
    page.goto(site.path(f"/dashboard/experiments/{site.experiment}"))

    expect(page.get_by_role("heading", name="Wer reagiert?")).to_be_visible()
    margin_table = page.locator("#goal-margin-caption").locator("xpath=..")
    # German money: decimal comma, the symbol after the number (a no-break space between)
    assert re.search(r"\d,\d{2}\u00a0€", margin_table.inner_text())
    screenshot(page, "dashboard-experiment-de")

    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Who responds?")).to_be_visible()
    assert_clean(page, page_log)


def test_experiment_page_fits_a_phone(site: Site, watched_page: Page, page_log: PageLog) -> None:
    page = watched_page
    page.set_viewport_size(PHONE)
    sign_in(page, site, EDITOR_TOKEN)
    page.goto(site.path(f"/dashboard/experiments/{site.experiment}"))
    expect(page.locator("canvas[data-chart]").first).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    screenshot(page, "dashboard-experiment-phone")
    assert_clean(page, page_log)
