"""GET /sdk.js: the snippet with a content version, long caching only for the versioned URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import create_app
from tests.helpers import app_settings

SNIPPET = Path(__file__).resolve().parents[2] / "sdk" / "js" / "splitwerk.js"


def test_snippet_is_served_with_its_version(client: Any) -> None:
    response = client.get("/sdk.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert response.data == SNIPPET.read_bytes()
    assert "max-age=300" in response.headers["Cache-Control"]
    version = response.headers["X-Splitwerk-Snippet-Version"]
    versioned = client.get(f"/sdk.js?v={version}")
    assert "immutable" in versioned.headers["Cache-Control"]
    assert "max-age=31536000" in versioned.headers["Cache-Control"]
    stale = client.get("/sdk.js?v=000000000000")
    assert "immutable" not in stale.headers["Cache-Control"]
    again = client.get("/sdk.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_snippet_path_setting_serves_another_file(redis_server: Any, tmp_path: Path) -> None:
    custom = tmp_path / "custom.js"
    custom.write_text("window.custom = 1;")
    app = create_app(app_settings(redis_server.url, SNIPPET_PATH=str(custom)))
    assert app.test_client().get("/sdk.js").data == b"window.custom = 1;"
