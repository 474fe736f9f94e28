"""The install page: embed code with the current snippet version, SDK lines with this server's
URL, the ingest key recipe and the example shop's command, each with a copy button, in German
and English."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient

from server.services.install import embed_code

COPY_BUTTON = re.compile(r'<button type="button" class="button copy-button" data-copy="([a-z-]+)"')


def code_block(page: str, block_id: str) -> str:
    found = re.search(rf'<code id="{block_id}">(.*?)</code>', page, re.DOTALL)
    assert found is not None, f"no block {block_id}"
    return html.unescape(found.group(1))


def test_the_install_page_shows_what_a_shop_copies(app: Flask, viewer: FlaskClient) -> None:
    response = viewer.get("/dashboard/install")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    version = app.test_client().get("/sdk.js").headers["X-Splitwerk-Snippet-Version"]

    embed = code_block(page, "embed-code")
    assert embed == embed_code("http://localhost")
    assert f'"http://localhost/sdk.js?v={version}"' in embed
    assert f"(snippet version {version})" in page
    sdk = code_block(page, "sdk-code")
    assert '    "http://localhost", ingest_key=os.environ["SPLITWERK_INGEST_KEY"]' in sdk
    assert "client = Client(" in sdk
    assert code_block(page, "sdk-install") == "pip install ./sdk"
    ingest = code_block(page, "ingest-commands")
    assert "splitwerk hash-token" in ingest
    assert "ingest:shop:<sha256>" in ingest
    shop = code_block(page, "shop-command")
    assert "python -m examples.shop --splitwerk-url http://localhost" in shop
    assert COPY_BUTTON.findall(page) == [
        "embed-code",
        "sdk-install",
        "sdk-code",
        "ingest-commands",
        "shop-command",
    ]
    assert "<script>" not in page  # the copy buttons run from dashboard.js (strict CSP)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_versioned_url_of_the_embed_code_is_cached_for_good(
    app: Flask, viewer: FlaskClient
) -> None:
    page = viewer.get("/dashboard/install").get_data(as_text=True)
    source = re.search(r'"http://localhost(/sdk\.js\?v=[0-9a-f]+)"', code_block(page, "embed-code"))
    assert source is not None
    loaded = app.test_client().get(source.group(1))
    assert loaded.status_code == 200
    assert "immutable" in loaded.headers["Cache-Control"]


def test_the_header_links_to_the_install_page(viewer: FlaskClient) -> None:
    page = viewer.get("/dashboard/").get_data(as_text=True)
    assert 'href="/dashboard/install"' in page


def test_the_install_page_speaks_german(viewer: FlaskClient) -> None:
    viewer.set_cookie("splitwerk_locale", "de", domain="localhost")
    page = viewer.get("/dashboard/install").get_data(as_text=True)
    assert "Splitwerk in Ihren Shop einbinden" in page
    assert ">Kopieren</button>" in page
    assert 'data-copied="Kopiert"' in page
    assert "Ein Ingest-Schlüssel für Bestellungen und Erstattungen" in page


def test_the_install_page_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/dashboard/install")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/dashboard/login")
