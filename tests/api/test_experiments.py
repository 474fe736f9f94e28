"""Admin API for experiments: creation, normalisation, lifecycle, auth, layers, config."""

from __future__ import annotations

from typing import Any

import pytest

from server.context import services_of
from tests.helpers import EDITOR, VIEWER, auth

# every test here runs against one Redis and against the local Redis Cluster
pytestmark = pytest.mark.both_redis

DRAFT: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Green checkout button",
    "hypothesis": "A green button sells more",
    "variants": [{"key": "control"}, {"key": "green", "payload": {"color": "#0a0"}}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "margin", "kind": "margin", "event": "purchase"},
    ],
    "segments": ["source", "device"],
}


def create(client: Any, **changes: Any) -> Any:
    return client.post("/v1/experiments", json={**DRAFT, **changes}, headers=EDITOR)


def act(client: Any, key: str, action: str, **body: Any) -> Any:
    return client.post(f"/v1/experiments/{key}/{action}", json=body or None, headers=EDITOR)


def test_created_experiment_is_a_draft_with_weights_in_basis_points(client: Any) -> None:
    response = create(client, variants=[{"key": "a", "weight": 1}, {"key": "b", "weight": 2}])
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "draft"
    assert [v["allocation"] for v in body["variants"]] == [3333, 6667]
    assert body["salt"] == "checkout-button"
    assert body["phase"] == 1
    assert body["coverage"] == 10000


def test_get_returns_what_was_created(client: Any) -> None:
    create(client)
    body = client.get("/v1/experiments/checkout-button", headers=VIEWER).json
    assert body["name"] == DRAFT["name"]
    assert body["variants"][1]["payload"] == {"color": "#0a0"}
    assert [g["key"] for g in body["goals"]] == ["purchase", "margin"]
    assert body["goals"][1]["event"] == "purchase"


def test_duplicate_key_is_a_conflict(client: Any) -> None:
    create(client)
    response = create(client)
    assert response.status_code == 409
    assert response.json["errors"] == {"key": ["already taken"]}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"key": "Bad Key"}, "key"),
        ({"key": "x" * 65}, "key"),
        ({"variants": [{"key": "only"}]}, "variants"),
        ({"variants": [{"key": "a"}] * 11}, "variants"),
        ({"variants": [{"key": "a", "weight": 0}, {"key": "b"}]}, "variants"),
        ({"variants": [{"key": "a", "weight": -1}, {"key": "b"}]}, "variants"),
        ({"variants": [{"key": "a", "weight": "1"}, {"key": "b"}]}, "variants"),
        ({"variants": [{"key": "a", "weight": True}, {"key": "b"}]}, "variants"),
        ({"variants": [{"key": "a"}, {"key": "a"}]}, "variants"),
        ({"variants": [{"key": "a", "weight": 1e-9}, {"key": "b"}]}, "variants"),
        ({"coverage": 10001}, "coverage"),
        ({"coverage": "50"}, "coverage"),
        ({"goals": [{"key": "a"}, {"key": "b"}]}, "goals"),
        ({"goals": [{"key": "a", "kind": "clicks", "primary": True}]}, "goals"),
        ({"segments": ["a", "b", "c", "d", "e", "f"]}, "segments"),
        ({"segments": ["Source"]}, "segments"),
        ({"conditions": ["not", "an", "object"]}, "conditions"),
        ({"conditions": {"country": {"$bogus": 1}}}, "conditions"),
        ({"allow_list": {"qa-visitor": "nope"}}, "allow_list"),
        ({"unexpected": 1}, "unexpected"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_experiment_is_rejected_naming_the_field(
    client: Any, changes: dict[str, Any], field: str
) -> None:
    response = create(client, **changes)
    assert response.status_code == 422, response.json
    assert response.json["code"] == 422
    assert field in response.json["errors"]
    assert client.get("/v1/experiments", headers=VIEWER).json["total"] == 0


def test_missing_required_fields_are_named(client: Any) -> None:
    response = client.post("/v1/experiments", json={}, headers=EDITOR)
    assert response.status_code == 422
    assert {"key", "name", "variants"} <= set(response.json["errors"])


def test_lifecycle_runs_from_draft_to_archived(client: Any) -> None:
    create(client)
    for action, status in [
        ("start", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("stop", "stopped"),
        ("archive", "archived"),
    ]:
        response = act(client, "checkout-button", action)
        assert response.status_code == 200, (action, response.json)
        assert response.json["status"] == status
    trail = client.get("/v1/experiments/checkout-button/audit", headers=VIEWER).json
    assert [entry["action"] for entry in trail] == [
        "archive",
        "stop",
        "resume",
        "pause",
        "start",
        "create",
    ]
    assert {entry["actor"] for entry in trail} == {"erika"}


ALLOWED = {
    "draft": {"start"},
    "running": {"pause", "stop"},
    "paused": {"resume", "stop"},
    "stopped": {"archive"},
    "archived": set(),
}
PATH_TO = {
    "draft": [],
    "running": ["start"],
    "paused": ["start", "pause"],
    "stopped": ["start", "stop"],
    "archived": ["start", "stop", "archive"],
}


@pytest.mark.parametrize("status", list(ALLOWED))
@pytest.mark.parametrize("action", ["start", "pause", "resume", "stop", "archive"])
def test_every_transition_is_allowed_or_refused_with_409(
    client: Any, status: str, action: str
) -> None:
    create(client)
    for step in PATH_TO[status]:
        assert act(client, "checkout-button", step).status_code == 200
    response = act(client, "checkout-button", action)
    if action in ALLOWED[status]:
        assert response.status_code == 200
    else:
        assert response.status_code == 409
        assert f"cannot {action}" in response.json["message"]
        current = client.get("/v1/experiments/checkout-button", headers=VIEWER).json
        assert current["status"] == status


def test_start_needs_a_goal(client: Any) -> None:
    create(client, goals=[])
    response = act(client, "checkout-button", "start")
    assert response.status_code == 409
    assert "goals" in response.json["errors"]


def test_stop_with_winner_and_unknown_winner(client: Any) -> None:
    create(client)
    act(client, "checkout-button", "start")
    assert act(client, "checkout-button", "stop", winner="blue").status_code == 422
    response = act(client, "checkout-button", "stop", winner="green")
    assert response.status_code == 200
    assert response.json["winner"] == "green"
    assert response.json["stopped_at"] is not None


def test_running_experiment_keeps_allocations_and_coverage_only_grows(client: Any) -> None:
    create(client, coverage=2000)
    act(client, "checkout-button", "start")
    url = "/v1/experiments/checkout-button"
    weights = [{"key": "control", "weight": 3}, {"key": "green", "weight": 1}]
    assert client.patch(url, json={"variants": weights}, headers=EDITOR).status_code == 409
    assert client.patch(url, json={"coverage": 1000}, headers=EDITOR).status_code == 409
    assert client.patch(url, json={"segments": ["country"]}, headers=EDITOR).status_code == 409
    grown = client.patch(url, json={"coverage": 5000}, headers=EDITOR)
    assert grown.status_code == 200
    assert grown.json["coverage"] == 5000
    payloads = [{"key": "control"}, {"key": "green", "payload": {"color": "#0b0"}}]
    changed = client.patch(url, json={"variants": payloads}, headers=EDITOR)
    assert changed.status_code == 200
    assert changed.json["variants"][1]["payload"] == {"color": "#0b0"}


def test_draft_accepts_every_editable_field(client: Any) -> None:
    create(client)
    response = client.patch(
        "/v1/experiments/checkout-button",
        json={"variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 3}], "coverage": 10},
        headers=EDITOR,
    )
    assert response.status_code == 200
    assert [v["allocation"] for v in response.json["variants"]] == [2500, 7500]


def test_new_phase_needs_confirmation_and_changes_the_salt(client: Any) -> None:
    create(client)
    act(client, "checkout-button", "start")
    url = "/v1/experiments/checkout-button/new-phase"
    assert client.post(url, json={"confirm": False}, headers=EDITOR).status_code == 422
    assert client.post(url, json={}, headers=EDITOR).status_code == 422
    response = client.post(
        url,
        json={"confirm": True, "variants": [{"key": "control", "weight": 9}, {"key": "green"}]},
        headers=EDITOR,
    )
    assert response.status_code == 200
    assert response.json["phase"] == 2
    assert response.json["salt"] != "checkout-button"
    assert [v["allocation"] for v in response.json["variants"]] == [9000, 1000]


def test_delete_only_drafts_and_archived(client: Any) -> None:
    create(client)
    act(client, "checkout-button", "start")
    assert client.delete("/v1/experiments/checkout-button", headers=EDITOR).status_code == 409
    act(client, "checkout-button", "stop")
    act(client, "checkout-button", "archive")
    assert client.delete("/v1/experiments/checkout-button", headers=EDITOR).status_code == 204
    assert client.get("/v1/experiments/checkout-button", headers=VIEWER).status_code == 404


def test_an_archived_experiment_is_read_only_and_its_deletion_is_logged(client: Any) -> None:
    create(client)
    act(client, "checkout-button", "start")
    act(client, "checkout-button", "stop")
    assert client.delete("/v1/experiments/checkout-button", headers=EDITOR).status_code == 409
    act(client, "checkout-button", "archive")
    renamed = client.patch(
        "/v1/experiments/checkout-button", json={"name": "Another name"}, headers=EDITOR
    )
    assert renamed.status_code == 409
    assert renamed.json["errors"] == {"name": ["not editable while archived"]}
    assert client.delete("/v1/experiments/checkout-button", headers=VIEWER).status_code == 403
    assert client.delete("/v1/experiments/checkout-button", headers=EDITOR).status_code == 204
    assert client.delete("/v1/experiments/checkout-button", headers=EDITOR).status_code == 404
    store = services_of(client.application).store
    (entry,) = store.deletion_log(10)
    assert entry.actor == "erika" and entry.action == "delete"
    assert entry.details == {"experiment": "checkout-button", "name": DRAFT["name"]}


def test_list_filters_by_status_and_paginates(client: Any) -> None:
    for index in range(5):
        create(client, key=f"exp-{index}")
    act(client, "exp-1", "start")
    page = client.get("/v1/experiments?page=2&page_size=2", headers=VIEWER).json
    assert page["total"] == 5
    assert len(page["items"]) == 2
    running = client.get("/v1/experiments?status=running", headers=VIEWER).json
    assert [item["key"] for item in running["items"]] == ["exp-1"]
    assert client.get("/v1/experiments?status=bogus", headers=VIEWER).status_code == 422


def test_layers_allocate_free_ranges_and_refuse_overlaps(client: Any) -> None:
    first = create(client, key="hero", layer={"name": "home", "size": 6000})
    assert first.json["layer"] == {"name": "home", "start": 0, "end": 6000}
    second = create(client, key="banner", layer={"name": "home", "size": 4000})
    assert second.json["layer"] == {"name": "home", "start": 6000, "end": 10000}
    full = create(client, key="footer", layer={"name": "home", "size": 1})
    assert full.status_code == 409
    overlap = create(client, key="footer", layer={"name": "home", "start": 5000, "end": 7000})
    assert overlap.status_code == 409
    assert "overlap" in overlap.json["message"]
    other_layer = create(
        client, key="footer", layer={"name": "checkout", "start": 5000, "end": 7000}
    )
    assert other_layer.status_code == 201


def test_stopped_experiment_frees_its_layer_slots(client: Any) -> None:
    create(client, key="hero", layer={"name": "home"})
    act(client, "hero", "start")
    act(client, "hero", "stop")
    assert create(client, key="banner", layer={"name": "home"}).status_code == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/experiments"),
        ("post", "/v1/experiments"),
        ("get", "/v1/experiments/checkout-button"),
        ("patch", "/v1/experiments/checkout-button"),
        ("delete", "/v1/experiments/checkout-button"),
        ("post", "/v1/experiments/checkout-button/start"),
        ("get", "/v1/experiments/checkout-button/audit"),
    ],
)
def test_admin_routes_need_a_token(client: Any, method: str, path: str) -> None:
    for headers in ({}, auth("wrong-token"), {"Authorization": "Basic abc"}):
        response = getattr(client, method)(path, headers=headers, json={})
        assert response.status_code == 401
        assert response.json["status"] == "Unauthorized"


def test_viewer_cannot_edit(client: Any) -> None:
    response = client.post("/v1/experiments", json=DRAFT, headers=VIEWER)
    assert response.status_code == 403
    assert client.get("/v1/experiments", headers=VIEWER).status_code == 200


def test_config_lists_live_experiments_with_an_etag(client: Any) -> None:
    create(client)
    create(client, key="draft-only")
    act(client, "checkout-button", "start")
    response = client.get("/v1/config")
    assert response.status_code == 200
    body = response.json
    assert body["spec"] == "assignment v1"
    assert [e["key"] for e in body["experiments"]] == ["checkout-button"]
    experiment = body["experiments"][0]
    assert experiment["variants"][0] == {"key": "control", "allocation": 5000, "payload": None}
    assert experiment["goals"] == ["margin", "purchase"] or experiment["goals"] == ["purchase"]
    etag = response.headers["ETag"]
    assert client.get("/v1/config", headers={"If-None-Match": etag}).status_code == 304
    act(client, "checkout-button", "pause")
    changed = client.get("/v1/config", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json["experiments"][0]["status"] == "paused"
