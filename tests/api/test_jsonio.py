"""Every JSON body is parsed strictly (depth, NaN) and no response carries NaN or Infinity."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.core.strict_json import MAX_DEPTH
from tests.helpers import EDITOR

EXPERIMENT: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Checkout button",
    "variants": [{"key": "control"}, {"key": "green", "payload": {"price": 1.5}}],
    "goals": [{"key": "purchase", "primary": True}],
}
DEEP = "[" * 5_000 + "]" * 5_000


def strict_parse(text: str | bytes) -> Any:
    """What a browser's JSON.parse accepts: no NaN, no Infinity."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a response")

    return json.loads(text, parse_constant=refuse)


def is_bad_json_answer(response: Any, reason: str) -> bool:
    body = response.json
    return (
        response.status_code == 400
        and response.mimetype == "application/json"
        and body["code"] == 400
        and body["message"] == "The request body is not valid JSON."
        and any(reason in message for message in body["errors"]["body"])
    )


ROUTES = [
    ("POST", "/v1/assign", '{"visitor": "v", "attributes": {"a": %s}}'),
    ("POST", "/v1/assign", '{"visitor": "v", "force": {"a": "b"}, "x": %s}'),
    ("POST", "/v1/events", '{"events": [%s]}'),
    ("POST", "/v1/experiments", '{"key": "k", "name": "n", "variants": %s}'),
    ("PATCH", "/v1/experiments/checkout-button", '{"conditions": {"a": %s}}'),
    ("POST", "/v1/experiments/checkout-button/stop", '{"winner": %s}'),
]


CASES = [(*route, "application/json") for route in ROUTES] + [
    (*route, "text/plain") for route in ROUTES if not route[1].startswith("/v1/experiments")
]  # browsers send text/plain to the public routes; the admin API reads application/json


@pytest.mark.parametrize(("method", "path", "template", "content_type"), CASES)
def test_deeply_nested_json_is_a_400_naming_the_depth(
    client: Any, method: str, path: str, template: str, content_type: str
) -> None:
    client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR)
    response = client.open(
        path,
        method=method,
        data=template % DEEP,
        headers={**EDITOR, "Content-Type": content_type},
    )
    assert is_bad_json_answer(response, f"nested deeper than {MAX_DEPTH} levels"), response.json


@pytest.mark.parametrize(("method", "path", "template"), ROUTES)
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused_in_every_body(
    client: Any, method: str, path: str, template: str, constant: str
) -> None:
    client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR)
    response = client.open(
        path,
        method=method,
        data=template % constant,
        headers={**EDITOR, "Content-Type": "application/json"},
    )
    assert is_bad_json_answer(
        response, "not a JSON number" if "1e" not in constant else "too large"
    )


def test_editor_payload_with_nan_is_refused_and_nothing_is_stored(client: Any) -> None:
    body = json.dumps(EXPERIMENT).replace("1.5", "NaN")
    response = client.post(
        "/v1/experiments", data=body, headers={**EDITOR, "Content-Type": "application/json"}
    )
    assert is_bad_json_answer(response, "NaN is not a JSON number")
    assert client.get("/v1/experiments/checkout-button", headers=EDITOR).status_code == 404


def test_dashboard_payload_with_nan_is_refused(app: Any) -> None:
    from dashboard import forms

    with app.test_request_context():
        parsed = forms.parse({"variants-0-key": "control", "variants-0-payload": '{"price": NaN}'})
    assert "variants-0-payload" in parsed.said
    assert parsed.data["variants"][0]["payload"] is None


def test_config_and_assign_answers_are_strict_json(client: Any) -> None:
    client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR)
    client.post("/v1/experiments/checkout-button/start", headers=EDITOR)
    config = client.get("/v1/config")
    assert strict_parse(config.data)["experiments"][0]["variants"][1]["payload"] == {"price": 1.5}
    for visitor in ("a", "b", "c", "d"):
        answer = client.post("/v1/assign", json={"visitor": visitor})
        assert strict_parse(answer.data)["assignments"]["checkout-button"]["variant"]


def test_results_never_carry_nan(client: Any) -> None:
    client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR)
    client.post("/v1/experiments/checkout-button/start", headers=EDITOR)
    response = client.get("/v1/experiments/checkout-button/results", headers=EDITOR)
    assert response.status_code == 200
    strict_parse(response.data)


def test_flask_json_refuses_to_write_nan(app: Any) -> None:
    with app.app_context(), pytest.raises(ValueError):
        app.json.dumps({"price": float("nan")})


def test_templates_write_null_for_nan(app: Any) -> None:
    with app.app_context():
        template = app.jinja_env.from_string("{{ value|tojson }}")
        rendered = template.render(value={"estimate": float("nan"), "n": [1.5, float("inf")]})
    assert strict_parse(rendered.replace("&#34;", '"')) == {"estimate": None, "n": [1.5, None]}
