"""One JSON error body for every error: werkzeug defaults, bad JSON, storage down, bugs."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from werkzeug.exceptions import default_exceptions

from server.app import create_app
from tests.helpers import EDITOR, VIEWER, app_settings

SHAPE = {"code", "status", "message", "errors"}


@pytest.mark.parametrize("code", sorted(default_exceptions))
def test_every_werkzeug_error_has_the_json_shape(app: Flask, code: int) -> None:
    exception = default_exceptions[code]

    def fail() -> None:
        if code == 405:
            raise exception(valid_methods=["GET"])  # type: ignore[call-arg]
        raise exception()

    app.add_url_rule(f"/raise/{code}", f"raise_{code}", fail)
    response = app.test_client().get(f"/raise/{code}")
    assert response.status_code == code
    assert response.is_json
    assert set(response.json) == SHAPE
    assert response.json["code"] == code


def test_unknown_route_and_method(client: Any) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert set(missing.json) == SHAPE
    wrong = client.put("/v1/config")
    assert wrong.status_code == 405
    assert set(wrong.json) == SHAPE
    assert "GET" in wrong.headers["Allow"]


def test_bad_json_is_a_400(client: Any) -> None:
    response = client.post(
        "/v1/experiments", data="{not json", content_type="application/json", headers=EDITOR
    )
    assert response.status_code == 400
    assert set(response.json) == SHAPE


def test_invalid_key_in_path_is_a_404_before_redis(client: Any) -> None:
    response = client.get("/v1/experiments/NOT*A*KEY", headers=VIEWER)
    assert response.status_code == 404
    assert set(response.json) == SHAPE


def test_unexpected_bug_is_a_500_without_details(app: Flask) -> None:
    def broken() -> None:
        raise RuntimeError("secret internals")

    app.add_url_rule("/broken", "broken", broken)
    response = app.test_client().get("/broken")
    assert response.status_code == 500
    assert set(response.json) == SHAPE
    assert "secret" not in response.get_data(as_text=True)


def test_redis_down_is_a_503_with_retry_after(tmp_path: Any) -> None:
    app = create_app(app_settings(f"unix://{tmp_path}/no-redis.sock"))
    client = app.test_client()
    for response in (
        client.get("/v1/experiments", headers=VIEWER),
        client.get("/readyz"),
        client.get("/v1/config"),
    ):
        assert response.status_code == 503
        assert set(response.json) == SHAPE
        assert int(response.headers["Retry-After"]) > 0
    assert client.get("/healthz").status_code == 200


def test_config_serves_last_known_snapshot_when_redis_goes_away(
    client: Any, redis_server: Any
) -> None:
    assert client.get("/v1/config").status_code == 200
    redis_server.stop()
    try:
        response = client.get("/v1/config")
        assert response.status_code == 200
        assert response.json["spec"] == "assignment v1"
    finally:
        redis_server.start()


@pytest.mark.parametrize("body", [b"{not json", b'{"visitor": "v-1",', b"\xff\xfe{}"])
def test_bad_json_gets_the_same_400_on_every_route(client: Any, body: bytes) -> None:
    # /v1/assign is answered below Flask by the fast path when the body is well formed;
    # /v1/experiments is read by webargs; /v1/events by the public routes' own reader
    answers = {
        path: client.post(path, data=body, content_type="application/json", headers=EDITOR)
        for path in ("/v1/experiments", "/v1/assign", "/v1/events")
    }
    for path, response in answers.items():
        assert response.status_code == 400, path
        assert response.json == {
            "code": 400,
            "status": "Bad Request",
            "message": "The request body is not valid JSON.",
            "errors": {"body": ["Not valid JSON (UTF-8)."]},
        }, path
