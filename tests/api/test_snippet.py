"""GET /sdk.js (minified, compressed, cached a year when versioned) and GET /v1/snippet/embed."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import brotli

from server.app import create_app
from server.services import install
from tests.helpers import app_settings

MINIFIED = Path(__file__).resolve().parents[2] / "sdk" / "js" / "splitwerk.min.js"
WIRE_BUDGET_BYTES = 4096  # the snippet's budget on the wire (sdk/js/size.mjs)


def test_snippet_is_served_minified_with_its_version(client: Any) -> None:
    response = client.get("/sdk.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert response.data == MINIFIED.read_bytes()
    assert "Content-Encoding" not in response.headers
    assert "max-age=300" in response.headers["Cache-Control"]
    version = response.headers["X-Splitwerk-Snippet-Version"]
    assert version == install.current_version()
    versioned = client.get(f"/sdk.js?v={version}")
    assert "immutable" in versioned.headers["Cache-Control"]
    assert "max-age=31536000" in versioned.headers["Cache-Control"]
    stale = client.get("/sdk.js?v=000000000000")
    assert "immutable" not in stale.headers["Cache-Control"]
    again = client.get("/sdk.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_snippet_is_brotli_where_accepted_and_gzip_otherwise(client: Any) -> None:
    chrome = client.get("/sdk.js", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert chrome.headers["Content-Encoding"] == "br"
    assert brotli.decompress(chrome.data) == MINIFIED.read_bytes()
    assert len(chrome.data) <= WIRE_BUDGET_BYTES
    assert chrome.headers["Vary"] == "Accept-Encoding"
    old = client.get("/sdk.js", headers={"Accept-Encoding": "gzip, deflate"})
    assert old.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(old.data) == MINIFIED.read_bytes()
    refused = client.get("/sdk.js", headers={"Accept-Encoding": "br;q=0, gzip"})
    assert refused.headers["Content-Encoding"] == "gzip"
    # each representation has its own ETag, so no cache hands brotli to a gzip-only client
    assert len({chrome.headers["ETag"], old.headers["ETag"]}) == 2
    revalidated = client.get(
        "/sdk.js", headers={"Accept-Encoding": "gzip", "If-None-Match": old.headers["ETag"]}
    )
    assert revalidated.status_code == 304


def test_snippet_is_within_the_budget_with_brotli_as_served(client: Any) -> None:
    served = client.get("/sdk.js", headers={"Accept-Encoding": "br"})
    assert served.headers["Content-Encoding"] == "br"
    assert len(served.data) <= WIRE_BUDGET_BYTES


def test_snippet_is_within_the_budget_with_gzip_as_served(client: Any) -> None:
    served = client.get("/sdk.js", headers={"Accept-Encoding": "gzip"})
    assert served.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(served.data) == MINIFIED.read_bytes()
    assert len(served.data) <= WIRE_BUDGET_BYTES, f"{len(served.data)} B gzip on the wire"


def test_snippet_path_setting_serves_another_file(redis_server: Any, tmp_path: Path) -> None:
    custom = tmp_path / "custom.js"
    custom.write_text("window.custom = 1;")
    app = create_app(app_settings(redis_server.url, SNIPPET_PATH=str(custom)))
    plain = app.test_client().get("/sdk.js", headers={"Accept-Encoding": "identity"})
    assert plain.data == b"window.custom = 1;"


def test_embed_route_gives_the_embed_code_with_the_current_version(client: Any) -> None:
    response = client.get("/v1/snippet/embed", base_url="https://ab.shop.example")
    assert response.status_code == 200
    version = install.current_version()
    assert response.json == {
        "html": install.embed_code("https://ab.shop.example/"),
        "version": version,
    }
    assert f'"https://ab.shop.example/sdk.js?v={version}"' in response.json["html"]
    served = client.get("/sdk.js", headers={"Accept-Encoding": "identity"})
    assert served.headers["X-Splitwerk-Snippet-Version"] == version
