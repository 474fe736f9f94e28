"""Guardrails through the API: fields, the alarm in results, and pausing by the evaluator."""

from __future__ import annotations

import time
from typing import Any

import pytest

from server.app import EVALUATOR
from server.services.monitor import Evaluator
from tests.helpers import EDITOR, VIEWER, seed_guardrail_traffic

EXPERIMENT: dict[str, Any] = {
    "key": "gift-wrap",
    "name": "Gift wrap upsell",
    "variants": [{"key": "control"}, {"key": "wrap"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "returned", "guardrail": True, "harm": "increase"},
    ],
}
HARMFUL = {"control": 0.05, "wrap": 0.2}  # the variant quadruples the return rate
# about 1,000 per variant: the always-valid test, sized for a 5 % effect, needs them for that harm
VISITORS = 2000


def start(client: Any, **changes: Any) -> None:
    body = {**EXPERIMENT, **changes}
    assert client.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201
    assert client.post(f"/v1/experiments/{body['key']}/start", headers=EDITOR).status_code == 200


def evaluator(app: Any) -> Evaluator:
    found: Evaluator = app.extensions[EVALUATOR]
    return found


def test_guardrail_fields_are_stored_and_shown(client: Any) -> None:
    start(client, pause_on_harm=True)
    body = client.get("/v1/experiments/gift-wrap", headers=VIEWER).json
    assert body["pause_on_harm"] is True
    assert [(g["key"], g["guardrail"], g["harm"]) for g in body["goals"]] == [
        ("purchase", False, "decrease"),
        ("returned", True, "increase"),
    ]
    # while running, an editor may turn pausing off (and guardrails on or off)
    answer = client.patch(
        "/v1/experiments/gift-wrap", json={"pause_on_harm": False}, headers=EDITOR
    )
    assert answer.status_code == 200 and answer.json["pause_on_harm"] is False


@pytest.mark.parametrize(
    ("goal", "field"),
    [
        ({"key": "returned", "harm": "increase"}, "harm"),
        ({"key": "returned", "guardrail": True, "harm": "sideways"}, "harm"),
        ({"key": "returned", "guardrail": "perhaps"}, "guardrail"),
    ],
)
def test_bad_guardrail_input_is_a_422_naming_the_field(
    client: Any, goal: dict[str, Any], field: str
) -> None:
    body = {**EXPERIMENT, "goals": [{"key": "purchase", "primary": True}, goal]}
    answer = client.post("/v1/experiments", json=body, headers=EDITOR)
    assert answer.status_code == 422
    assert field in answer.json["errors"]["goals"]["1"]


def test_pause_on_harm_must_be_a_boolean(client: Any) -> None:
    answer = client.post(
        "/v1/experiments", json={**EXPERIMENT, "pause_on_harm": "sometimes"}, headers=EDITOR
    )
    assert answer.status_code == 422 and "pause_on_harm" in answer.json["errors"]


def test_a_seeded_harm_pauses_the_experiment_when_the_editor_chose_so(app: Any) -> None:
    client = app.test_client()
    start(client, pause_on_harm=True)
    seed_guardrail_traffic(client, "gift-wrap", HARMFUL, VISITORS, seed=1)
    results = client.get("/v1/experiments/gift-wrap/results", headers=VIEWER).json
    assert results["guardrail_alarm"] is True
    (check,) = results["guardrails"]
    assert check["goal"] == "returned" and check["variant"] == "wrap" and check["harmful"]
    assert check["harm"] == "increase" and check["uplift"] > 0

    report = evaluator(app).run_once(time.time())
    assert report.paused == ("gift-wrap",)
    assert client.get("/v1/experiments/gift-wrap", headers=VIEWER).json["status"] == "paused"
    entry = client.get("/v1/experiments/gift-wrap/audit", headers=VIEWER).json[0]
    assert (entry["actor"], entry["action"]) == ("guardrail", "pause")
    assert entry["details"]["harms"][0]["goal"] == "returned"
    # a paused experiment answers the control to everybody
    body = {"visitor": "new-visitor", "experiments": ["gift-wrap"]}
    answer = client.post("/v1/assign", json=body).json
    assert answer["assignments"]["gift-wrap"]["reason"] == "paused"


def test_a_seeded_harm_only_alarms_when_pausing_was_not_chosen(app: Any) -> None:
    client = app.test_client()
    start(client)
    seed_guardrail_traffic(client, "gift-wrap", HARMFUL, VISITORS, seed=2)
    report = evaluator(app).run_once(time.time())
    assert report.paused == ()
    assert [field.split(":")[2] for field in report.announced] == ["harm"]
    assert client.get("/v1/experiments/gift-wrap", headers=VIEWER).json["status"] == "running"
    assert client.get("/v1/experiments/gift-wrap/results", headers=VIEWER).json["guardrail_alarm"]
    # announced once: the next evaluation finds nothing new
    assert evaluator(app).run_once(time.time()).announced == ()


def test_a_resumed_experiment_is_not_paused_again_for_the_same_harm(app: Any) -> None:
    client = app.test_client()
    start(client, pause_on_harm=True)
    seed_guardrail_traffic(client, "gift-wrap", HARMFUL, VISITORS, seed=3)
    assert evaluator(app).run_once(time.time()).paused == ("gift-wrap",)
    assert client.post("/v1/experiments/gift-wrap/resume", headers=EDITOR).status_code == 200
    assert evaluator(app).run_once(time.time()).paused == ()
    assert client.get("/v1/experiments/gift-wrap", headers=VIEWER).json["status"] == "running"


def test_a_a_traffic_raises_no_alarm(app: Any) -> None:
    """Seeded A/A traffic on three guardrails: no harm, no pause, no announcement."""
    client = app.test_client()
    goals = [
        {"key": "purchase", "primary": True, "guardrail": True},
        {"key": "returned", "guardrail": True, "harm": "increase"},
    ]
    start(client, goals=goals, pause_on_harm=True)
    seed_guardrail_traffic(client, "gift-wrap", {"control": 0.1, "wrap": 0.1}, 1200, seed=4)
    results = client.get("/v1/experiments/gift-wrap/results", headers=VIEWER).json
    assert results["guardrail_alarm"] is False
    assert len(results["guardrails"]) == 2
    assert all(check["status"] == "judged" for check in results["guardrails"])
    report = evaluator(app).run_once(time.time())
    assert report.experiments == 1 and report.announced == () and report.paused == ()
