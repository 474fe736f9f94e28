"""The WSGI fast path of POST /v1/assign answers exactly as the Flask route would.

Two apps on two Redis databases hold the same experiments. Each request goes through the fast
path of one app and through the Flask route of the other; status, headers and body must be
equal, and a counter on the Flask side of the fast app shows which requests it handed over.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import redis
from werkzeug.test import EnvironBuilder, run_wsgi_app

from server.api.fastpath import AssignFastPath
from server.app import create_app
from tests.helpers import EDITOR, DeadRedis, app_settings, enrolled_total

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
EXPERIMENTS: list[dict[str, Any]] = [
    {
        "key": "checkout-button",
        "name": "Checkout button",
        "variants": [{"key": "control"}, {"key": "green", "payload": {"color": "#0a0"}}],
        "goals": [{"key": "purchase", "primary": True}],
        "segments": ["source", "device"],
    },
    {
        "key": "free-shipping",
        "name": "Free shipping banner",
        "variants": [{"key": "control"}, {"key": "banner"}],
        "goals": [{"key": "purchase", "primary": True}],
        "conditions": {"country": "DE"},
    },
]


class Counting:
    """A WSGI app wrapper that counts its calls."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls = 0

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def apps(redis_server: Any, redis_client: redis.Redis) -> tuple[AssignFastPath, Any, Counting]:
    """(fast path of app A, Flask route of app B, counter of what A handed to Flask)."""
    first = create_app(app_settings(redis_server.url))
    second = create_app(app_settings(f"{redis_server.url}?db=1"))
    for app in (first, second):
        client = app.test_client()
        for experiment in EXPERIMENTS:
            assert (
                client.post("/v1/experiments", json=experiment, headers=EDITOR).status_code == 201
            )
            start = f"/v1/experiments/{experiment['key']}/start"
            assert client.post(start, headers=EDITOR).status_code == 200
    fast = first.wsgi_app
    assert isinstance(fast, AssignFastPath)
    handed_over = Counting(fast.flask_app)
    fast.flask_app = handed_over
    flask_route = second.wsgi_app.flask_app  # type: ignore[attr-defined]
    return fast, flask_route, handed_over


def call(app: Any, body: bytes | None, **options: Any) -> tuple[str, dict[str, str], bytes]:
    options.setdefault("headers", {"User-Agent": BROWSER})
    builder = EnvironBuilder(
        path=options.pop("path", "/v1/assign"),
        method=options.pop("method", "POST"),
        data=body,
        content_type=options.pop("content_type", "application/json"),
        **options,
    )
    response, status, headers = run_wsgi_app(app, builder.get_environ())
    return status, dict(headers), b"".join(response)


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


ANSWERED_FAST = {
    "one experiment": body(
        visitor="v-1",
        experiments=["checkout-button"],
        attributes={"source": "instagram", "device": "mobile"},
    ),
    "the same visitor again": body(
        visitor="v-1",
        experiments=["checkout-button"],
        attributes={"source": "instagram", "device": "mobile"},
    ),
    "every running experiment": body(visitor="v-2", attributes={"country": "DE"}),
    "not targeted": body(
        visitor="v-3", experiments=["free-shipping"], attributes={"country": "AT"}
    ),
    "unknown experiment": body(visitor="v-4", experiments=["checkout-button", "nope"]),
    "no consent": body(visitor="v-5", experiments=["checkout-button"], consent=False),
    "text/plain like sendBeacon": body(visitor="v-6", experiments=["free-shipping"]),
}


def test_fast_path_answers_byte_for_byte_like_the_flask_route(apps: Any) -> None:
    fast, flask_route, handed_over = apps
    for name, payload in ANSWERED_FAST.items():
        content_type = "text/plain" if name.startswith("text/plain") else "application/json"
        expected = call(flask_route, payload, content_type=content_type)
        assert call(fast, payload, content_type=content_type) == expected, name
        assert expected[0] == "200 OK", name
    bot = body(visitor="v-7", experiments=["checkout-button"])
    crawler = {"headers": {"User-Agent": GOOGLEBOT}}
    assert call(fast, bot, **crawler) == call(flask_route, bot, **crawler)
    assert handed_over.calls == 0  # all of them were answered below Flask


def test_fast_path_says_recorded_false_without_consent(
    apps: Any, redis_client: redis.Redis
) -> None:
    fast, _, _ = apps
    status, headers, answer = call(fast, ANSWERED_FAST["no consent"])
    assert status == "200 OK"
    assert json.loads(answer)["recorded"] is False
    assert headers["X-Splitwerk-Recorded"] == "false"
    assert enrolled_total(redis_client) == 0


def test_fast_path_counts_an_enrolment_once(apps: Any, redis_client: redis.Redis) -> None:
    fast, _, _ = apps
    payload = body(visitor="v-8", experiments=["checkout-button"])
    answers = [json.loads(call(fast, payload)[2]) for _ in range(3)]
    assert all(a["assignments"]["checkout-button"]["enrolled"] for a in answers)
    assert len({a["assignments"]["checkout-button"]["variant"] for a in answers}) == 1
    assert enrolled_total(redis_client) == 1


HANDED_OVER: dict[str, tuple[bytes | None, dict[str, Any]]] = {
    "not JSON": (b"{visitor", {}),
    "not UTF-8": (b'{"visitor": "\xff"}', {}),
    "empty body": (b"", {}),
    "an invalid visitor": (body(visitor=""), {}),
    "an unknown field": (body(visitor="v", colour="red"), {}),
    "a forced variant without a token": (body(visitor="v", force={"checkout-button": "green"}), {}),
    "a browser's Origin": (
        body(visitor="v-9"),
        {"headers": {"Origin": "https://shop.example", "User-Agent": BROWSER}},
    ),
    "another method": (None, {"method": "GET", "query_string": {"visitor": "v-10"}}),
    "another path": (body(visitor="v"), {"path": "/v1/events"}),
}


@pytest.mark.parametrize("name", list(HANDED_OVER))
def test_everything_else_goes_to_flask(apps: Any, name: str) -> None:
    fast, flask_route, handed_over = apps
    payload, options = HANDED_OVER[name]
    expected = call(flask_route, payload, **dict(options))
    assert call(fast, payload, **dict(options)) == expected
    assert handed_over.calls == 1


def test_a_refused_request_is_answered_by_the_fast_path_like_the_flask_route(apps: Any) -> None:
    fast, flask_route, handed_over = apps
    too_many = body(visitor="v", experiments=[f"e{i}" for i in range(60)])
    expected = call(flask_route, too_many)
    assert expected[0].startswith("422")
    assert json.loads(expected[2])["errors"] == {"experiments": ["at most 20 per request"]}
    assert call(fast, too_many) == expected
    assert handed_over.calls == 0  # refused once, below Flask; never run again


@pytest.fixture
def dead_redis() -> Iterator[DeadRedis]:
    listener = DeadRedis()
    yield listener
    listener.close()


def test_a_dead_redis_is_asked_once_per_request_as_by_the_flask_route(
    dead_redis: DeadRedis,
) -> None:
    with_fast_path = create_app(app_settings(dead_redis.url))
    flask_only = create_app(app_settings(dead_redis.url))
    flask_only.wsgi_app = flask_only.wsgi_app.flask_app  # type: ignore[attr-defined]
    handed_over = Counting(with_fast_path.wsgi_app.flask_app)  # type: ignore[attr-defined]
    with_fast_path.wsgi_app.flask_app = handed_over  # type: ignore[attr-defined]
    dead_redis.reset()  # what create_app's start-up check asked
    request = body(visitor="v", experiments=["checkout-button"])

    expected = call(flask_only, request)
    by_flask = dead_redis.reset()
    answered = call(with_fast_path, request)
    by_fast_path = dead_redis.reset()

    assert expected[0].startswith("503")
    assert json.loads(expected[2])["code"] == 503
    assert answered == expected
    assert by_flask[0] > 0
    # the same connections and commands: the request ran once, not once here and once in Flask
    assert by_fast_path == by_flask
    assert handed_over.calls == 0
