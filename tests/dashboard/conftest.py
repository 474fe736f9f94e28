"""Fixtures of the dashboard view tests: signed-in test clients and demo data."""

from __future__ import annotations

import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.context import services_of
from server.demo import DEMO_DAYS, SECONDS_PER_DAY, ensure_demo_experiment, generate_traffic
from tests.helpers import EDITOR_TOKEN, VIEWER_TOKEN

DEMO_VISITORS = 1500  # enough for every table and chart, generated in about a second
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/dashboard/login") -> str:
    """The CSRF token of the client's session, as a page's form carries it."""
    page = client.get(path)
    found = CSRF_FIELD.search(page.get_data(as_text=True))
    assert found is not None, f"no CSRF field on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, token: str) -> FlaskClient:
    """Sign ``client`` in through the login form."""
    response = client.post(
        "/dashboard/login", data={"token": token, "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def editor(app: Flask) -> FlaskClient:
    """A client signed in with the editor token (English pages)."""
    client = app.test_client()
    client.set_cookie("splitwerk_locale", "en", domain="localhost")
    return sign_in(client, EDITOR_TOKEN)


@pytest.fixture
def viewer(app: Flask) -> FlaskClient:
    """A client signed in with the viewer token (English pages)."""
    client = app.test_client()
    client.set_cookie("splitwerk_locale", "en", domain="localhost")
    return sign_in(client, VIEWER_TOKEN)


@pytest.fixture
def demo(app: Flask) -> str:
    """The demo experiment with two weeks of seeded traffic; returns its key."""
    now = time.time()
    store = services_of(app).store
    ensure_demo_experiment(store, now - DEMO_DAYS * SECONDS_PER_DAY)
    generate_traffic(services_of(app), DEMO_VISITORS, now)
    return "checkout-button"
