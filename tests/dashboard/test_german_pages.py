"""Every dashboard page in German shows no English text: walked page by page, error pages too.

The catalogue test proves that every marked text has a German translation; this one finds the
texts that were never marked (hard-coded English in a template, an API message shown as it
came). Each page's visible text and accessible names are read with an HTML parser and checked
for words that only English uses. The experiments' own content (names, hypotheses, keys) is
what the editor typed, so it is left out, and so is code to copy (``<pre>``/``<code>``) and
anything marked ``lang="en"`` (the language switch offers "English").
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard.views import ACTIONS
from server.demo import DEMO_EXPERIMENT
from tests.dashboard.conftest import csrf_token, sign_in
from tests.dashboard.test_forms import VALID
from tests.dashboard.test_views import EXPERIMENT, create
from tests.helpers import EDITOR_TOKEN, VIEWER_TOKEN

# Words of English sentences that German does not use (no "in", "was", "also", "man" …).
ENGLISH_WORDS = frozenset((
    "the", "and", "of", "to", "is", "are", "with", "for", "not", "this", "that", "you", "your",
    "be", "by", "from", "has", "have", "its", "on", "or", "yet", "than", "must", "can",
    "cannot", "please", "enter", "add", "save", "cancel", "delete", "edit", "visitor",
    "visitors", "variant", "variants", "goal", "goals", "weight", "layer", "share", "page",
    "field", "fields", "number", "only", "each", "every", "least", "should", "there", "their",
    "which", "when", "where", "while", "would", "could", "none", "more", "less", "already",
))  # fmt: skip
ACCESSIBLE_ATTRIBUTES = ("aria-label", "title", "alt", "data-label", "data-label-empty")
SKIPPED_ELEMENTS = {"script", "style", "pre", "code", "textarea", "option"}
USER_CONTENT = (  # typed by the editor, not the dashboard's own words
    DEMO_EXPERIMENT["name"],
    DEMO_EXPERIMENT["hypothesis"],
    EXPERIMENT["name"],
    VALID["name"],
    VALID["hypothesis"],
)
WORD = re.compile(r"[A-Za-zÄÖÜäöüß]+")
IDENTIFIER = re.compile(r"\b[a-z0-9]+(?:[_-][a-z0-9]+)+\b")  # keys such as add_to_cart


class VisibleText(HTMLParser):
    """Collects the text a person reads or hears on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.skipping: list[str] = []  # open elements whose content is not checked

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        is_english = (values.get("lang") or "").startswith("en") and tag != "html"
        if tag in SKIPPED_ELEMENTS or is_english:
            self.skipping.append(tag)
        if not self.skipping:
            self.texts.extend(
                values[name] or "" for name in ACCESSIBLE_ATTRIBUTES if name in values
            )

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


def english_in(page: str) -> list[str]:
    """The texts of a page that contain English words."""
    parser = VisibleText()
    parser.feed(page)
    found = []
    for text in parser.texts:
        for content in USER_CONTENT:
            text = text.replace(content, "")
        text = IDENTIFIER.sub("", text)
        if {word.lower() for word in WORD.findall(text)} & ENGLISH_WORDS:
            found.append(text)
    return found


@pytest.fixture
def german(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.set_cookie("splitwerk_locale", "de", domain="localhost")
    return sign_in(client, EDITOR_TOKEN)


def check(client: FlaskClient, path: str, status: int = 200) -> None:
    response = client.get(path)
    assert response.status_code == status, path
    page = response.get_data(as_text=True)
    assert '<html lang="de-DE">' in page
    assert not english_in(page), (path, english_in(page))


def test_the_check_finds_english_text() -> None:
    assert english_in("<p>Add at least one goal.</p>") == ["Add at least one goal."]
    assert english_in('<a aria-label="Back to the list">x</a>')
    assert not english_in("<p>Fügen Sie ein Ziel hinzu.</p>")
    assert not english_in('<a lang="en" href="/">English</a><pre>pip install the sdk</pre>')


def test_every_page_of_a_running_experiment_reads_german(
    app: Flask, german: FlaskClient, demo: str
) -> None:
    for path in ("/dashboard/", "/dashboard/?status=running", "/dashboard/install"):
        check(german, path)
    check(german, f"/dashboard/experiments/{demo}")
    check(german, f"/dashboard/experiments/{demo}/edit")
    for action in ACTIONS:
        check(german, f"/dashboard/experiments/{demo}/actions/{action}")
    check(german, f"/dashboard/experiments/{demo}/delete", 409)
    path = f"/dashboard/experiments/{demo}/actions/new-phase"
    data = {"csrf_token": csrf_token(german, path), "coverage": "abc", "weight-1": "0"}
    refused = german.post(path, data=data)
    assert refused.status_code == 422
    assert not english_in(refused.get_data(as_text=True))


def test_draft_form_and_error_pages_read_german(app: Flask, german: FlaskClient) -> None:
    key = create(app)
    check(german, "/dashboard/")
    check(german, f"/dashboard/experiments/{key}")
    check(german, "/dashboard/experiments/new")
    check(german, f"/dashboard/experiments/{key}/delete")
    check(german, "/dashboard/experiments/nothing-here", 404)
    check(german, f"/dashboard/experiments/{key}/actions/fly", 404)
    check(german, "/dashboard/?status=unknown", 400)
    refused = german.post(f"/dashboard/experiments/{key}/actions/pause", data={})
    assert refused.status_code == 400
    assert not english_in(refused.get_data(as_text=True))


def test_the_login_and_a_viewers_refusal_read_german(app: Flask) -> None:
    client = app.test_client()
    client.set_cookie("splitwerk_locale", "de", domain="localhost")
    check(client, "/dashboard/login")
    wrong = client.post(
        "/dashboard/login", data={"token": "wrong", "csrf_token": csrf_token(client)}
    )
    assert wrong.status_code == 401 and not english_in(wrong.get_data(as_text=True))
    sign_in(client, VIEWER_TOKEN)
    check(client, "/dashboard/experiments/new", 403)


def test_every_form_error_reads_german(app: Flask, german: FlaskClient) -> None:
    path = "/dashboard/experiments/new"
    broken = {
        **VALID,
        "key": "Not A Key!",
        "name": "x" * 201,
        "variants-0-weight": "0",
        "variants-1-key": "control",
        "variants-1-weight": "heavy",
        "variants-1-payload": "{not json",
        "coverage": "250",
        "conditions": "[1]",
        "layer-name": "checkout layer",
        "layer-size": "0",
        "segments": "source, source",
        "minimum_effect": "0",
        "goals-0-key": "",
        "goals-1-key": "",
        "goals-1-event": "",
        "csrf_token": csrf_token(german, path),
    }
    response = german.post(path, data=broken)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert page.count('class="field-error"') >= 8  # every error at once
    assert not english_in(page), english_in(page)


def test_a_full_layer_is_explained_in_german(app: Flask, german: FlaskClient) -> None:
    create(app, key="first", layer={"name": "checkout", "size": 8000}, start=True)
    path = "/dashboard/experiments/new"
    data = {
        **VALID,
        "layer-name": "checkout",
        "layer-size": "50",
        "csrf_token": csrf_token(german, path),
    }
    response = german.post(path, data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Die Ebene hat keinen freien Anteil von 50\xa0% mehr" in page
    assert not english_in(page), english_in(page)
