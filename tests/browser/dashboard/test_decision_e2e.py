"""The money decision in Chromium: the card, phones at 390 px, the split preview, deleting an
archived experiment, and axe-core on every dashboard page."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from server import schemas
from server.context import services_of
from server.services import experiments as services
from tests.browser.conftest import PageLog, screenshot
from tests.browser.dashboard.conftest import Site, axe_violations, csp_violations, sign_in
from tests.helpers import EDITOR_TOKEN

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}  # a common phone's CSS viewport
DESKTOP = {"width": 1280, "height": 900}
DOCS_PHONE_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "screenshots" / "phone.png"
# Read when the module is collected: the suite scrubs SPLITWERK_* variables around each test.
UPDATE_DOCS_SCREENSHOTS = os.environ.get("SPLITWERK_UPDATE_DOCS_SCREENSHOTS") == "1"
LIST_LABELS = ("Status", "What to do now", "Days running", "Enrolled visitors", "Checks")


def add_experiment(site: Site, key: str, *, archived: bool = False) -> None:
    """A second experiment through the services; stopped and archived if asked."""
    store = services_of(site.app).store
    data = schemas.ExperimentCreateSchema().load(
        {
            "key": key,
            "name": f"Archived test {key}",
            "variants": [{"key": "control", "weight": 1}, {"key": "b", "weight": 1}],
            "goals": [{"key": "purchase", "primary": True}],
        }
    )
    services.create_experiment(store, data, "test", time.time())
    if archived:
        for action in ("start", "stop", "archive"):
            services.act_on_experiment(store, key, action, "test", time.time(), retention_days=90)


def assert_no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def test_the_decision_card_leads_the_experiment_page_and_the_list(
    site: Site, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, site, EDITOR_TOKEN)
    cell = page.locator("td.decision-cell").first
    expect(cell).to_contain_text("per 1,000 visitors")
    page.goto(site.path(f"/dashboard/experiments/{site.experiment}"))
    card = page.locator("section.decision")
    expect(card).to_be_visible()
    # the demo's verdict (tests/test_demo.py): green converts more but earns less margin
    expect(card.locator("h2")).to_have_text("Keep control")
    expect(card).to_contain_text("Every challenger is conclusively worse")
    expect(card).to_contain_text("Extra margin per 1,000 visitors with green-note")
    expect(card).to_contain_text("Conversion rate (purchase)")
    # above the fold: the card starts within the first screen of a laptop
    box = card.bounding_box()
    assert box is not None and box["y"] < 500
    screenshot(page, "dashboard-decision")
    assert csp_violations(page) == [] and page_log.errors() == []


def test_list_and_experiment_page_read_well_at_390_px(
    site: Site, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page
    page.set_viewport_size(PHONE)
    sign_in(page, site, EDITOR_TOKEN)
    row = page.locator("table.experiments tbody tr").first
    # every column is there, labelled, without scrolling sideways
    for label in LIST_LABELS:
        cell = row.locator(f"td[data-label='{label}']")
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert_no_sideways_scroll(page)
    screenshot(page, "dashboard-list-390")

    page.goto(site.path(f"/dashboard/experiments/{site.experiment}"))
    expect(page.locator("section.decision")).to_be_visible()
    assert_no_sideways_scroll(page)
    # the goal tables turn into labelled cards: no column hidden behind a sideways scroll
    margin = page.locator("#goal-margin-caption").locator("xpath=..")
    expect(margin.locator("td[data-label='Chance to beat control']").first).to_be_visible()
    widths = page.eval_on_selector_all(
        ".goal .table-scroll", "(regions) => regions.map((r) => r.scrollWidth - r.clientWidth)"
    )
    assert widths and max(widths) <= 0, widths
    screenshot(page, "dashboard-experiment-390")
    # the README's phone picture: the top of the experiment page with the decision card
    top = page.screenshot(clip={"x": 0, "y": 0, **PHONE})
    if UPDATE_DOCS_SCREENSHOTS:
        DOCS_PHONE_SCREENSHOT.write_bytes(top)
    assert csp_violations(page) == [] and page_log.errors() == []


def test_the_form_previews_the_split_as_weights_change(
    site: Site, watched_page: Page, page_log: PageLog
) -> None:
    page = watched_page
    sign_in(page, site, EDITOR_TOKEN)
    page.goto(site.path("/dashboard/experiments/new"))
    preview = page.locator("#split-preview")
    page.locator("#variants-1-key").fill("green")
    page.locator("#variants-1-weight").fill("3")
    expect(preview).to_contain_text("control")
    expect(preview).to_contain_text("25.0%")
    expect(preview).to_contain_text("75.0%")
    page.locator("#variants-1-weight").fill("0")
    expect(preview).to_contain_text("100.0%")
    assert csp_violations(page) == [] and page_log.errors() == []


def test_an_archived_experiment_is_deleted_after_a_confirmation(
    site: Site, watched_page: Page, page_log: PageLog
) -> None:
    add_experiment(site, "old-banner", archived=True)
    page = watched_page
    sign_in(page, site, EDITOR_TOKEN)
    page.goto(site.path("/dashboard/experiments/old-banner"))
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.locator("h1")).to_contain_text("Delete")
    page.get_by_role("button", name="Yes, delete").click()
    page.wait_for_url(site.path("/dashboard/"))
    expect(page.locator(".flash")).to_contain_text("Experiment old-banner deleted.")
    expect(page.locator("table.experiments")).not_to_contain_text("old-banner")
    assert csp_violations(page) == [] and page_log.errors() == []


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_dashboard_page_has_no_serious_axe_violation(
    site: Site, watched_page: Page, language: str
) -> None:
    add_experiment(site, "old-banner", archived=True)
    add_experiment(site, "draft-one")
    page = watched_page
    page.set_viewport_size(DESKTOP)
    page.context.add_cookies([{"name": "splitwerk_locale", "value": language, "url": site.url}])
    page.goto(site.path("/dashboard/login"))
    assert axe_violations(page) == [], "login"
    sign_in(page, site, EDITOR_TOKEN, language=language)
    experiment = f"/dashboard/experiments/{site.experiment}"
    pages = (
        "/dashboard/",
        experiment,
        f"{experiment}/edit",
        f"{experiment}/actions/pause",
        f"{experiment}/actions/stop",
        f"{experiment}/actions/new-phase",
        "/dashboard/experiments/new",
        "/dashboard/experiments/old-banner",
        "/dashboard/experiments/old-banner/delete",
        "/dashboard/experiments/draft-one",
        "/dashboard/install",
        "/dashboard/experiments/nothing-here",
    )
    for path in pages:
        page.goto(site.path(path))
        assert axe_violations(page) == [], path
    # a form with errors, and the list at phone width
    page.goto(site.path("/dashboard/experiments/new"))
    page.locator("#key").fill("Bad Key")
    page.locator("#variants-1-weight").fill("0")
    page.locator("form.experiment-form button[type=submit]").click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert axe_violations(page) == [], "form with errors"
    page.set_viewport_size(PHONE)
    page.goto(site.path("/dashboard/"))
    assert axe_violations(page) == [], "list at 390 px"
