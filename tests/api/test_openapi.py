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


def _target(document: dict[str, Any], link: dict[str, Any]) -> tuple[str, str]:
    """The (path, method) an operationRef points to, checked to exist."""
    path, method = link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
    path = path.replace("~1", "/").replace("~0", "~")
    assert method in document["paths"][path], link
    return path, method


def test_openapi_links_lead_from_create_to_start_assign_events_and_results(client: Any) -> None:
    document = client.get("/v1/openapi.json").json
    paths = document["paths"]
    created = paths["/v1/experiments"]["post"]["responses"]["201"]["links"]
    started = paths["/v1/experiments/{key}/start"]["post"]["responses"]["200"]["links"]
    assigned = paths["/v1/assign"]["post"]["responses"]["200"]["links"]
    start = created["StartExperiment"]
    assert _target(document, start) == ("/v1/experiments/{key}/start", "post")
    assert start["parameters"] == {"key": "$response.body#/key"}
    assign = started["AssignVisitor"]
    assert _target(document, assign) == ("/v1/assign", "post")
    assert assign["requestBody"]["experiments"] == ["$response.body#/key"]
    assert _target(document, started["GetResults"]) == ("/v1/experiments/{key}/results", "get")
    event = assigned["SendConversion"]
    assert _target(document, event) == ("/v1/events", "post")
    assert event["requestBody"]["events"][0]["visitor"] == "$response.body#/visitor"
    for path_item in paths.values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue  # the path's "parameters" list
            for answer in operation.get("responses", {}).values():
                for link in answer.get("links", {}).values():
                    _target(document, link)


def test_openapi_documents_the_errors_gunicorn_answers_in_html(client: Any) -> None:
    description = client.get("/v1/openapi.json").json["info"]["description"]
    assert "as HTML, not JSON" in description
    assert "8190" in description
    assert "414" in description
