"""The served OpenAPI document is valid OpenAPI 3 and describes every route."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate


def test_openapi_document_validates(client: Any) -> None:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    validate(document)
    assert document["openapi"].startswith("3.")


def test_openapi_lists_the_admin_routes_with_security(client: Any) -> None:
    paths = client.get("/v1/openapi.json").json["paths"]
    for path in (
        "/v1/experiments",
        "/v1/experiments/{key}",
        "/v1/experiments/{key}/start",
        "/v1/experiments/{key}/stop",
        "/v1/experiments/{key}/new-phase",
        "/v1/config",
        "/v1/assign",
        "/v1/events",
        "/v1/visitors/{visitor}",
        "/v1/visitors/erase",
        "/sdk.js",
    ):
        assert path in paths, path
    assert paths["/v1/experiments"]["post"]["security"] == [{"bearerAuth": []}]
    assert "requestBody" in paths["/v1/experiments"]["post"]


def test_openapi_describes_the_csv_results(client: Any) -> None:
    document = client.get("/v1/openapi.json").json
    validate(document)
    answer = document["paths"]["/v1/experiments/{key}/results"]["get"]["responses"]["200"]
    assert set(answer["content"]) == {"application/json", "text/csv"}
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Results"
    }
