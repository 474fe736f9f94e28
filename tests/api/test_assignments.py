"""POST/GET /v1/assign: answers, counting once, stickiness, QA, bots, privacy, degraded mode."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import urllib.request
from typing import Any

import pytest
import redis
from flask import Flask

from server.app import create_app
from server.context import services_of
from server.storage import keys
from tests.helpers import EDITOR, PREVIEW_TOKEN, LiveServer, app_settings, auth, enrolled_total

# every test here runs against one Redis and against the local Redis Cluster
pytestmark = pytest.mark.both_redis

EXPERIMENT: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Checkout button",
    "variants": [{"key": "control"}, {"key": "green", "payload": {"color": "#0a0"}}],
    "goals": [{"key": "purchase", "primary": True}],
    "segments": ["source"],
}
COUNTS = keys.counts("checkout-button", 1)
ENROLMENTS = keys.enrolments("checkout-button", 1)
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def start(client: Any, **changes: Any) -> None:
    body = {**EXPERIMENT, **changes}
    assert client.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201
    assert client.post(f"/v1/experiments/{body['key']}/start", headers=EDITOR).status_code == 200


def assign(client: Any, visitor: str = "v-1", **body: Any) -> Any:
    return client.post(
        "/v1/assign", json={"visitor": visitor, **body}, headers={"User-Agent": BROWSER}
    )


def test_answer_names_variant_payload_enrolment_and_reason(client: Any) -> None:
    start(client)
    response = assign(client, experiments=["checkout-button"])
    assert response.status_code == 200
    answer = response.json["assignments"]["checkout-button"]
    assert answer["enrolled"] is True
    assert answer["reason"] == "running"
    assert answer["variant"] in {"control", "green"}
    expected_payload = None if answer["variant"] == "control" else {"color": "#0a0"}
    assert answer["payload"] == expected_payload
    assert response.json["recorded"] is True
    assert response.headers["X-Splitwerk-Recorded"] == "true"


def test_unknown_experiments_are_reported_per_item(client: Any) -> None:
    start(client)
    response = assign(client, experiments=["checkout-button", "no-such-thing"])
    assert response.status_code == 200
    assert response.json["assignments"]["no-such-thing"] == {
        "variant": None,
        "payload": None,
        "enrolled": False,
        "reason": "unknown_experiment",
    }
    assert response.json["assignments"]["checkout-button"]["enrolled"] is True


def test_without_names_every_running_matching_experiment_answers(client: Any) -> None:
    start(client)
    start(client, key="german-only", conditions={"country": "DE"})
    client.post("/v1/experiments", json={**EXPERIMENT, "key": "a-draft"}, headers=EDITOR)
    answers = assign(client, attributes={"country": "AT"}).json["assignments"]
    assert set(answers) == {"checkout-button"}
    answers = assign(client, "v-2", attributes={"country": "DE"}).json["assignments"]
    assert set(answers) == {"checkout-button", "german-only"}


def test_status_reasons_for_paused_and_stopped_with_winner(client: Any) -> None:
    start(client)
    client.post("/v1/experiments/checkout-button/pause", headers=EDITOR)
    paused = assign(client, experiments=["checkout-button"]).json["assignments"]
    assert paused["checkout-button"] == {
        "variant": "control",
        "payload": None,
        "enrolled": False,
        "reason": "paused",
    }
    client.post("/v1/experiments/checkout-button/stop", json={"winner": "green"}, headers=EDITOR)
    stopped = assign(client, experiments=["checkout-button"]).json["assignments"]
    assert stopped["checkout-button"]["variant"] == "green"
    assert stopped["checkout-button"]["reason"] == "winner"


def test_a_visitor_is_counted_once_with_segment_and_day(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    first = assign(client, attributes={"source": "facebook"}).json["assignments"]
    for _ in range(3):
        again = assign(client, attributes={"source": "newsletter"}).json["assignments"]
        assert again == first
    counts = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    index = ["control", "green"].index(first["checkout-button"]["variant"])
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert counts == {
        f"e:{index}": 1,
        f"e:{index}:d:{day}": 1,
        f"e:{index}:source=facebook": 1,
    }


def test_concurrent_duplicate_requests_count_once(redis_url: str, redis_client: Any) -> None:
    app = create_app(app_settings(redis_url))
    start(app.test_client())
    workers = 16
    barrier = threading.Barrier(workers)

    def request(visitor: str) -> str:
        barrier.wait()
        body = json.dumps({"visitor": visitor, "experiments": ["checkout-button"]}).encode()
        call = urllib.request.Request(server.url + "/v1/assign", data=body, method="POST")
        call.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(call, timeout=10) as response:
            answer = json.loads(response.read())["assignments"]["checkout-button"]
        return str(answer["variant"])

    with LiveServer(app) as server, concurrent.futures.ThreadPoolExecutor(workers) as pool:
        variants = list(pool.map(request, ["same-visitor"] * workers))
    assert len(set(variants)) == 1
    assert enrolled_total(redis_client) == 1
    assert redis_client.hlen(ENROLMENTS) == 1


def test_enrolled_visitor_keeps_variant_when_targeting_changes(client: Any) -> None:
    start(client, conditions={"country": "DE"})
    first = assign(client, attributes={"country": "DE"}).json["assignments"]["checkout-button"]
    assert first["enrolled"] is True
    client.patch(
        "/v1/experiments/checkout-button", json={"conditions": {"country": "FR"}}, headers=EDITOR
    )
    later = assign(client, attributes={"country": "DE"}).json["assignments"]["checkout-button"]
    assert later == first
    stranger = assign(
        client, "v-9", experiments=["checkout-button"], attributes={"country": "DE"}
    ).json["assignments"]
    assert stranger["checkout-button"]["reason"] == "not_targeted"


def test_segment_values_beyond_the_cap_count_as_other(
    redis_url: str, redis_client: redis.Redis
) -> None:
    client = create_app(app_settings(redis_url, SEGMENT_VALUE_LIMIT=3)).test_client()
    start(client)
    for index, source in enumerate(["a", "b", "c", "d", "e", "a"]):
        assign(client, f"visitor-{index}", attributes={"source": source})
    values = redis_client.smembers(keys.segment_values("checkout-button", 1, "source"))
    assert values == {b"a", b"b", b"c"}
    counts = {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS).items()}
    per_value: dict[str, int] = {}
    for name, value in counts.items():
        if "source=" in name:
            source = name.split("source=")[1]
            per_value[source] = per_value.get(source, 0) + value
    assert per_value == {"a": 2, "b": 1, "c": 1, "other": 2}


def test_bots_get_control_consistently_and_are_not_counted(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    for visitor in ("crawler-1", "crawler-2", "crawler-1"):
        response = client.post(
            "/v1/assign", json={"visitor": visitor}, headers={"User-Agent": GOOGLEBOT}
        )
        answer = response.json["assignments"]["checkout-button"]
        assert answer == {"variant": "control", "payload": None, "enrolled": False, "reason": "bot"}
    by_body = client.post("/v1/assign", json={"visitor": "x", "user_agent": GOOGLEBOT})
    assert by_body.json["assignments"]["checkout-button"]["reason"] == "bot"
    assert not redis_client.exists(COUNTS)
    assert not redis_client.exists(ENROLMENTS)


def test_force_needs_a_preview_token_and_is_not_counted(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    body = {"visitor": "qa", "force": {"checkout-button": "green"}}
    assert client.post("/v1/assign", json=body).status_code == 403
    response = client.post("/v1/assign", json=body, headers=auth(PREVIEW_TOKEN))
    assert response.json["assignments"]["checkout-button"] == {
        "variant": "green",
        "payload": {"color": "#0a0"},
        "enrolled": False,
        "reason": "forced",
    }
    query = client.get(
        "/v1/assign?visitor=qa&force=checkout-button:green", headers=auth(PREVIEW_TOKEN)
    )
    assert query.json["assignments"]["checkout-button"]["reason"] == "forced"
    assert not redis_client.exists(COUNTS)


def test_force_is_honoured_in_dev_mode_without_a_token(redis_url: str, redis_client: Any) -> None:
    client = create_app(app_settings(redis_url, DEV=True)).test_client()
    start(client)
    body = {"visitor": "qa", "force": {"checkout-button": "green"}}
    assert (
        client.post("/v1/assign", json=body).json["assignments"]["checkout-button"]["reason"]
        == "forced"
    )


def test_allow_list_forces_a_variant_without_counting(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client, allow_list={"qa-erika": "green"})
    answer = assign(client, "qa-erika").json["assignments"]["checkout-button"]
    assert (answer["variant"], answer["reason"], answer["enrolled"]) == ("green", "forced", False)
    assert not redis_client.exists(COUNTS)


def test_without_consent_nothing_is_recorded(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    response = assign(client, consent=False)
    answer = response.json["assignments"]["checkout-button"]
    assert answer["enrolled"] is False
    assert answer["reason"] == "no_consent"
    assert not redis_client.exists(ENROLMENTS)
    # the answer says so, too: nothing was recorded
    assert response.json["recorded"] is False
    assert response.headers["X-Splitwerk-Recorded"] == "false"


def test_redis_holds_no_raw_visitor_id_ip_or_user_agent(
    client: Any, redis_client: redis.Redis
) -> None:
    start(client)
    visitor = "kunde-mueller@example.org"
    client.post(
        "/v1/assign",
        json={"visitor": visitor, "attributes": {"source": "facebook"}},
        headers={"User-Agent": BROWSER, "X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "198.51.100.23"},
    )
    dump = b""
    for key in redis_client.scan_iter():
        dump += key
        kind = redis_client.type(key)
        if kind == b"hash":
            for field, value in redis_client.hgetall(key).items():
                dump += field + value
        elif kind == b"set":
            dump += b"".join(redis_client.smembers(key))
        elif kind == b"list":
            dump += b"".join(redis_client.lrange(key, 0, -1))
        elif kind == b"string":
            dump += redis_client.get(key) or b""
    for secret in (visitor, "203.0.113.7", "198.51.100.23", "Chrome/126"):
        assert secret.encode() not in dump, secret
    assert redis_client.hlen(ENROLMENTS) == 1
    (pseudonym,) = redis_client.hkeys(ENROLMENTS)
    assert len(pseudonym) == 16


def test_stop_sets_retention_expiry_on_visitor_records(redis_url: str, redis_client: Any) -> None:
    client = create_app(app_settings(redis_url, RETENTION_DAYS=30)).test_client()
    start(client)
    assign(client)
    assert redis_client.ttl(ENROLMENTS) == -1
    client.post("/v1/experiments/checkout-button/stop", headers=EDITOR)
    assert 30 * 86400 - 60 < redis_client.ttl(ENROLMENTS) <= 30 * 86400
    assert redis_client.ttl(COUNTS) == -1


def test_new_phase_reassigns_and_counts_afresh(client: Any, redis_client: redis.Redis) -> None:
    start(client)
    for index in range(40):
        assign(client, f"v-{index}")
    client.post("/v1/experiments/checkout-button/new-phase", json={"confirm": True}, headers=EDITOR)
    assign(client, "v-0")
    assert redis_client.hlen(keys.enrolments("checkout-button", 2)) == 1
    assert redis_client.ttl(ENROLMENTS) > 0


def test_text_plain_body_and_get_query_are_accepted(client: Any) -> None:
    start(client)
    text = client.post(
        "/v1/assign",
        data=json.dumps({"visitor": "v-1", "attributes": {"source": "instagram"}}),
        content_type="text/plain;charset=UTF-8",
    )
    assert text.status_code == 200
    query = client.get("/v1/assign?visitor=v-1&experiments=checkout-button&attr.source=x")
    assert (
        query.json["assignments"]["checkout-button"] == text.json["assignments"]["checkout-button"]
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"visitor": ""}, "visitor"),
        ({"visitor": "x" * 129}, "visitor"),
        ({"visitor": "\ud800"}, "visitor"),
        ({"visitor": 42}, "visitor"),
        ({}, "visitor"),
        ({"visitor": "v", "attributes": "source=facebook"}, "attributes"),
        ({"visitor": "v", "attributes": ["facebook"]}, "attributes"),
        ({"visitor": "v", "attributes": {f"a{i}": i for i in range(51)}}, "attributes"),
        ({"visitor": "v", "attributes": {"": 1}}, "attributes"),
        ({"visitor": "v", "experiments": [f"e{i}" for i in range(21)]}, "experiments"),
        ({"visitor": "v", "experiments": ["Not A Key"]}, "experiments"),
        ({"visitor": "v", "experiments": "checkout-button"}, "experiments"),
        ({"visitor": "v", "consent": "maybe"}, "consent"),
        ({"visitor": "v", "surprise": 1}, "surprise"),
    ],
)
def test_bad_assign_input_is_a_4xx_naming_the_field(
    client: Any, redis_client: redis.Redis, body: dict[str, Any], field: str
) -> None:
    start(client)
    response = client.post("/v1/assign", json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]
    assert not redis_client.exists(ENROLMENTS)


def test_bad_json_and_empty_body_on_assign(client: Any) -> None:
    assert client.post("/v1/assign", data="{", content_type="text/plain").status_code == 400
    empty = client.post("/v1/assign", data="", content_type="text/plain")
    assert empty.status_code == 422
    assert "visitor" in empty.json["errors"]
    assert client.get("/v1/assign").status_code == 422


def test_degraded_mode_answers_from_cached_config_when_redis_stops(
    redis_server: Any, redis_client: Any
) -> None:
    app = create_app(app_settings(redis_server.url, CONFIG_REFRESH_INTERVAL=0.05))
    client = app.test_client()
    start(client)
    healthy = assign(client, "v-1", experiments=["checkout-button"]).json
    redis_server.stop()
    try:
        time.sleep(0.1)
        began = time.monotonic()
        response = assign(client, "v-2", experiments=["checkout-button", "unknown"])
        elapsed = time.monotonic() - began
        assert response.status_code == 200
        assert response.headers["X-Splitwerk-Recorded"] == "false"
        assert response.json["recorded"] is False
        answer = response.json["assignments"]["checkout-button"]
        assert answer["enrolled"] is False
        assert answer["variant"] in {"control", "green"}
        assert response.json["assignments"]["unknown"]["reason"] == "unknown_experiment"
        # bounded by the Redis timeouts (0.25 s each, one retry), not hanging
        assert elapsed < 2.0
        same = assign(client, "v-1", experiments=["checkout-button"]).json
        assert (
            same["assignments"]["checkout-button"]["variant"]
            == healthy["assignments"]["checkout-button"]["variant"]
        )
    finally:
        redis_server.start()


def test_degraded_without_any_known_config_is_a_503(tmp_path: Any) -> None:
    client = create_app(app_settings(f"unix://{tmp_path}/gone.sock")).test_client()
    response = client.post("/v1/assign", json={"visitor": "v"})
    assert response.status_code == 503
    assert "Retry-After" in response.headers


@pytest.mark.parametrize(
    "allowed", ["https://shop.example.de", "https://a.example,https://b.example", "*"]
)
def test_every_browser_route_answer_varies_by_origin(
    redis_url: str, redis_client: Any, allowed: str
) -> None:
    app: Flask = create_app(app_settings(redis_url, CORS_ORIGINS=allowed))
    client = app.test_client()
    start(client)
    config = client.get("/v1/config")
    snippet = client.get("/sdk.js")
    requests = [
        ("GET", "/v1/config", {}, {}),
        ("GET", "/v1/config", {"If-None-Match": config.headers["ETag"]}, {}),  # 304
        ("GET", "/sdk.js", {}, {}),
        ("GET", "/sdk.js", {"If-None-Match": snippet.headers["ETag"]}, {}),  # 304
        ("POST", "/v1/assign", {}, {"json": {"visitor": "v"}}),  # the WSGI fast path
        ("POST", "/v1/assign", {}, {"json": {"visitor": ""}}),  # an error
        # a refusal of the use case, answered by the fast path
        ("POST", "/v1/assign", {}, {"json": {"visitor": "v", "experiments": ["e"] * 30}}),
        ("GET", "/v1/assign?visitor=v", {}, {}),
        ("POST", "/v1/events", {}, {"json": {"events": []}}),
    ]
    for origin in (None, "https://shop.example.de", "https://evil.example"):
        headers = {"Origin": origin} if origin else {}
        for method, path, extra, body in requests:
            response = client.open(path, method=method, headers={**headers, **extra}, **body)
            assert "Origin" in response.headers.get("Vary", ""), (origin, method, path)
            assert response.headers.get("Vary", "").count("Origin") == 1
    admin = client.get("/v1/experiments", headers={"Origin": "https://shop.example.de", **EDITOR})
    assert "Origin" not in admin.headers.get("Vary", "")


def test_cors_only_for_configured_origins_on_public_routes(
    redis_url: str, redis_client: Any
) -> None:
    app: Flask = create_app(app_settings(redis_url, CORS_ORIGINS="https://shop.example.de"))
    client = app.test_client()
    start(client)
    origin = {"Origin": "https://shop.example.de"}
    preflight = client.options(
        "/v1/assign", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example.de"
    answer = client.post("/v1/assign", json={"visitor": "v"}, headers=origin)
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example.de"
    assert "X-Splitwerk-Recorded" in answer.headers["Access-Control-Expose-Headers"]
    stranger = client.post(
        "/v1/assign", json={"visitor": "v"}, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in stranger.headers
    admin = client.get("/v1/experiments", headers={**origin, **EDITOR})
    assert "Access-Control-Allow-Origin" not in admin.headers


def test_returning_visitor_is_answered_from_the_worker_cache_without_redis(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    app = create_app(app_settings(redis_server.url, CONFIG_REFRESH_INTERVAL=60))
    client = app.test_client()
    start(client)
    first = assign(client, "v-1", experiments=["checkout-button"]).json["assignments"]
    redis_server.stop()
    try:
        again = assign(client, "v-1", experiments=["checkout-button"])
        assert again.json["assignments"] == first
        assert again.json["recorded"] is True  # known enrolment: nothing left to record
        stranger = assign(client, "v-2", experiments=["checkout-button"])
        assert stranger.json["recorded"] is False
    finally:
        redis_server.start()


def test_erasure_empties_every_workers_enrolment_cache(
    redis_url: str, redis_client: redis.Redis
) -> None:
    worker = create_app(app_settings(redis_url, CONFIG_REFRESH_INTERVAL=0.01)).test_client()
    other = create_app(app_settings(redis_url)).test_client()
    start(worker)
    assign(worker, "v-1", experiments=["checkout-button"])
    assert redis_client.hlen(ENROLMENTS) == 1
    assert other.delete("/v1/visitors/v-1", headers=EDITOR).status_code == 200
    assert redis_client.hlen(ENROLMENTS) == 0
    time.sleep(0.02)
    assign(worker, "v-1", experiments=["checkout-button"])
    # the worker asked Redis again instead of trusting its cache: the visitor is enrolled anew
    assert redis_client.hlen(ENROLMENTS) == 1
    assert enrolled_total(redis_client) == 2


def test_direct_answer_equals_the_response_schema(client: Any) -> None:
    from server import schemas
    from server.api import fastschemas
    from server.services.assignments import AssignRequest

    start(client, allow_list={"qa": "green"})
    assigner = services_of(client.application).assigner
    for visitor in ("v-1", "qa", "v-2"):
        result = assigner.assign(
            AssignRequest(visitor, ("checkout-button", "nope"), {"source": "x"}), time.time()
        )
        assert fastschemas.dump_assign_result(result) == schemas.AssignResponseSchema().dump(result)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("experiments=BAD", "experiments"),
        ("experiments=ok,-bad", "experiments"),
        ("force=abc", "force"),
        ("force=checkout-button:BAD", "force"),
        ("&".join(f"attr.a{i}=1" for i in range(51)), "attributes"),
        ("attr." + "a" * 65 + "=1", "attributes"),
    ],
)
def test_get_assign_validation_errors_are_422_naming_the_field(
    client: Any, redis_client: redis.Redis, query: str, field: str
) -> None:
    start(client)
    response = client.get(f"/v1/assign?visitor=v&{query}", headers=auth(PREVIEW_TOKEN))
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/json"
    assert field in response.json["errors"]
    assert field in response.json["message"]
    assert enrolled_total(redis_client) == 0


def test_attributes_are_measured_by_their_serialised_size(client: Any) -> None:
    start(client)
    big = int("9" * 4000)  # 4,000 bytes of JSON, not the 32 of an ordinary number
    for body in (
        {"visitor": "v", "attributes": {"a": big, "b": big, "c": big}},
        {"visitor": "v", "attributes": {"a": "\U0001f600" * 700}},  # 12 bytes each: 8,402
    ):
        response = client.post("/v1/assign", data=json.dumps(body), content_type="text/plain")
        assert response.status_code == 422, body
        assert "8192 bytes" in response.json["errors"]["attributes"][0]
    fits = {"visitor": "v", "attributes": {"a": big, "b": big}}
    assert client.post("/v1/assign", json=fits).status_code == 200


@pytest.mark.parametrize(
    "force",
    [{"checkout-button": "gren"}, {"checkout-buton": "green"}],
)
def test_forcing_a_variant_that_does_not_exist_is_422_and_counts_nobody(
    client: Any, redis_client: redis.Redis, force: dict[str, str]
) -> None:
    start(client)
    body = {"visitor": "qa", "experiments": ["checkout-button"], "force": force}
    response = client.post("/v1/assign", json=body, headers=auth(PREVIEW_TOKEN))
    assert response.status_code == 422
    assert list(response.json["errors"]["force"]) == list(force)
    pair = ",".join(f"{k}:{v}" for k, v in force.items())
    query = client.get(
        f"/v1/assign?visitor=qa&experiments=checkout-button&force={pair}",
        headers=auth(PREVIEW_TOKEN),
    )
    assert query.status_code == 422
    assert enrolled_total(redis_client) == 0
    assert redis_client.hlen(ENROLMENTS) == 0
