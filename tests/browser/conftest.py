"""Headless Chromium for the browser tests: one browser per session, a context per test.

Uses the system's Chromium (Debian package `chromium`, installed by
scripts/system-packages.sh, which `make test` runs); `playwright install` is never needed.
Without Chromium every browser test is skipped with a message saying how to get it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # runs as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # no calls home (updates, safe browsing, sync): tests talk to loopback only (STYLE 41)
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# How Chromium reports a resource it could not load; the page's scripts cannot prevent it.
FAILED_LOAD = re.compile(r"^Failed to load resource: ")


@dataclass(frozen=True)
class Site:
    """A running shop and the Splitwerk it uses (``splitwerk`` is None when it is down)."""

    shop_url: str
    splitwerk_url: str
    splitwerk: Flask | None

    @property
    def server(self) -> Flask:
        assert self.splitwerk is not None
        return self.splitwerk


def chromium_path() -> str | None:
    """The system Chromium's executable, if installed."""
    found = shutil.which("chromium")
    if found:
        return found
    return str(SYSTEM_CHROMIUM) if SYSTEM_CHROMIUM.exists() else None


@dataclass
class PageLog:
    """Console messages and uncaught errors of one page."""

    console: list[ConsoleMessage] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def errors(self, failed_loads_from: tuple[str, ...] = ()) -> list[str]:
        """Console errors and uncaught exceptions, as text.

        ``failed_loads_from`` lists URL prefixes whose failed loads are expected (a server the
        test stopped): Chromium logs those itself, whatever the page does.
        """
        found = [f"page error: {error}" for error in self.page_errors]
        for message in self.console:
            if message.type != "error":
                continue
            url = message.location.get("url", "")
            if FAILED_LOAD.match(message.text) and url.startswith(failed_loads_from or ("\0",)):
                continue
            found.append(f"console: {message.text} ({url})")
        return found


def watch(page: Page) -> PageLog:
    """Start collecting ``page``'s console messages and page errors."""
    log = PageLog()
    page.on("console", lambda message: log.console.append(message))
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    return log


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG under test-artifacts/screenshots/ and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """The session's headless Chromium."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "Chromium is not installed: run `bash scripts/system-packages.sh` "
            "(`make test` does) or `apt-get install chromium`"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context per test: no cookies or storage from other tests."""
    fresh = browser.new_context(locale="de-DE")
    fresh.set_default_timeout(10_000)  # ms; a healthy page here answers in well under a second
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page of the test's context; a screenshot is saved when the test fails."""
    opened = context.new_page()
    request.node.page_log = watch(opened)
    yield opened
    report = getattr(request.node, "call_report", None)
    if report is not None and report.failed:
        screenshot(opened, f"failed-{request.node.name}")


@pytest.fixture
def page_log(page: Page, request: pytest.FixtureRequest) -> PageLog:
    """The console messages and page errors of ``page``."""
    log: PageLog = request.node.page_log
    return log


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep the call phase's report on the item, so that fixtures can tell a failed test.
    report = yield
    if report.when == "call":
        item.call_report = report  # type: ignore[attr-defined]
    return report
