"""The install page in Chromium: a copy button puts the exact block on the clipboard."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageLog, screenshot
from tests.browser.dashboard.conftest import Site, csp_violations, sign_in
from tests.helpers import VIEWER_TOKEN

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("language", "copied"), [("en", "Copied"), ("de", "Kopiert")])
def test_a_copy_button_copies_its_block(
    site: Site, watched_page: Page, page_log: PageLog, language: str, copied: str
) -> None:
    page = watched_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    sign_in(page, site, VIEWER_TOKEN, language=language)
    page.locator("nav.main-nav a[href='/dashboard/install']").click()
    page.wait_for_url(site.path("/dashboard/install"))

    for block in ("embed-code", "sdk-code", "ingest-commands", "shop-command"):
        button = page.locator(f"button[data-copy='{block}']")
        button.click()
        expect(button).to_have_text(copied)
        clipboard = page.evaluate("navigator.clipboard.readText()")
        assert clipboard == page.locator(f"#{block}").text_content()
    embed = page.locator("#embed-code").text_content() or ""
    assert f'"{site.url}/sdk.js?v=' in embed
    assert csp_violations(page) == []
    assert page_log.errors() == []
    screenshot(page, f"dashboard-install-{language}")
