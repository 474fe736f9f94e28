"""GET /v1/snippet/embed: the script tag for shop pages with the current snippet version."""

from __future__ import annotations

from typing import Any

from server.services.install import embed_code


def test_the_embed_code_points_at_the_current_snippet_version(client: Any) -> None:
    response = client.get("/v1/snippet/embed", base_url="https://ab.shop.example")
    assert response.status_code == 200
    version = client.get("/sdk.js").headers["X-Splitwerk-Snippet-Version"]
    assert response.json == {
        "html": embed_code("https://ab.shop.example"),
        "version": version,
    }
    assert f'"https://ab.shop.example/sdk.js?v={version}"' in response.json["html"]


def test_the_embed_code_needs_no_token(client: Any) -> None:
    assert client.get("/v1/snippet/embed").status_code == 200
