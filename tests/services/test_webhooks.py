"""Signed webhooks against a real receiver on 127.0.0.1: signatures, retries, restarts, once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from server.app import EVALUATOR, create_app, start_background, stop_background
from server.context import services_of
from server.core.models import Delivery
from server.demo import DEMO_DAYS, ensure_demo_experiment, generate_traffic
from server.services.monitor import Evaluator
from server.storage import keys
from tests.helpers import (
    EDITOR,
    SERVE_STOP_TIMEOUT,
    app_settings,
    free_port,
    seed_guardrail_traffic,
    serving,
)

WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789abcdef"
EXPERIMENT: dict[str, Any] = {
    "key": "gift-wrap",
    "name": "Gift wrap upsell",
    "variants": [{"key": "control"}, {"key": "wrap"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "returned", "guardrail": True, "harm": "increase"},
    ],
    "pause_on_harm": True,
    # a shop that looks for changes of 20 %: the always-valid test then needs fewer visitors
    # for this harm than with the default 5 % (tests/api/test_guardrails.py uses the default)
    "minimum_effect": 0.2,
}
HARMFUL = {"control": 0.05, "wrap": 0.2}


class Receiver:
    """A webhook receiver that checks each signature itself (HMAC-SHA256 over "t." + body,
    as the README tells receivers) and answers 503 to the first ``failures`` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                parts = dict(
                    p.split("=", 1) for p in self.headers["X-Splitwerk-Signature"].split(",")
                )
                expected = hmac.new(
                    WEBHOOK_SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
                ).hexdigest()
                with receiver.lock:
                    receiver.requests.append(
                        {
                            "valid": hmac.compare_digest(expected, parts["v1"]),
                            "fresh": abs(time.time() - int(parts["t"])) < 300,
                            "delivery": self.headers["X-Splitwerk-Delivery"],
                            "event": self.headers["X-Splitwerk-Event"],
                            "body": json.loads(body),
                        }
                    )
                    failing = len(receiver.requests) <= receiver.failures
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/splitwerk"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(failures=2) as running:
        yield running


def webhook_app(redis_url: str, url: str, **overrides: Any) -> Any:
    settings = {
        "WEBHOOK_URL": url,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WEBHOOK_RETRY_INTERVAL": 1.0,
        "WEBHOOK_TIMEOUT": 2.0,
        **overrides,
    }
    return create_app(app_settings(redis_url, **settings))


def started(app: Any, experiment: dict[str, Any] = EXPERIMENT) -> Any:
    """Create and start the experiment; returns the app's test client."""
    client = app.test_client()
    assert client.post("/v1/experiments", json=experiment, headers=EDITOR).status_code == 201
    assert (
        client.post(f"/v1/experiments/{experiment['key']}/start", headers=EDITOR).status_code == 200
    )
    return client


def mismatched(redis_client: redis.Redis) -> None:
    """Counts of 1000 against 800 visitors in a 50:50 split: a sample ratio mismatch."""
    redis_client.hset(keys.counts("gift-wrap", 1), mapping={"e:0": 1000, "e:1": 800})


def harmed(app: Any, seed: int = 1) -> None:
    seed_guardrail_traffic(started(app), "gift-wrap", HARMFUL, 800, seed=seed)


def evaluator(app: Any) -> Evaluator:
    found: Evaluator = app.extensions[EVALUATOR]
    return found


def test_a_harm_is_announced_signed_and_retried_until_accepted(
    redis_server: Any, redis_client: redis.Redis, receiver: Receiver
) -> None:
    app = webhook_app(redis_server.url, receiver.url)
    harmed(app)
    now = time.time()
    first = evaluator(app).run_once(now)
    assert first.paused == ("gift-wrap",) and first.deliveries.retried == 1
    # not due yet: the retry waits about WEBHOOK_RETRY_INTERVAL (±25 %)
    assert evaluator(app).run_once(now + 0.5).deliveries.retried == 0
    assert evaluator(app).run_once(now + 2).deliveries.retried == 1  # second failure
    # the next retry waits twice as long (2 s ± 25 %): not yet after 1.4 s, surely after 3 s
    assert evaluator(app).run_once(now + 3.4).deliveries.delivered == 0
    assert evaluator(app).run_once(now + 5.5).deliveries.delivered == 1
    assert len(receiver.requests) == 3
    assert all(request["valid"] and request["fresh"] for request in receiver.requests)
    assert len({request["delivery"] for request in receiver.requests}) == 1  # one id, 3 tries
    body = receiver.requests[-1]["body"]
    assert receiver.requests[-1]["event"] == body["type"] == "guardrail_harm"
    assert body["experiment"]["key"] == "gift-wrap" and body["experiment"]["status"] == "paused"
    assert body["details"]["goal"] == "returned" and body["details"]["paused"] is True
    assert redis_client.zcard(keys.OUTBOX) == 0 and redis_client.hlen(keys.DELIVERIES) == 0
    # announced once: later evaluations send nothing more
    evaluator(app).run_once(now + 4000)
    assert len(receiver.requests) == 3


def test_a_queued_announcement_survives_a_restart(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    # the first server's receiver is down: nothing listens on the port
    down = f"http://127.0.0.1:{free_port()}/hook"
    first = webhook_app(redis_server.url, down)
    harmed(first)
    report = evaluator(first).run_once(time.time())
    assert report.deliveries.retried == 1 and redis_client.zcard(keys.OUTBOX) == 1
    # "restart": a new app (new store, new evaluator) on the same Redis, receiver now up
    with Receiver() as receiver:
        second = webhook_app(redis_server.url, receiver.url)
        later = evaluator(second).run_once(time.time() + 60)
    assert later.announced == () and later.deliveries.delivered == 1
    assert [request["event"] for request in receiver.requests] == ["guardrail_harm"]
    assert receiver.requests[0]["valid"]


def test_a_delivery_is_given_up_after_the_last_attempt(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    with Receiver(failures=100) as receiver:
        app = webhook_app(redis_server.url, receiver.url, WEBHOOK_MAX_ATTEMPTS=3)
        harmed(app)
        now = time.time()
        reports = [evaluator(app).run_once(now + hours * 3600) for hours in range(4)]
    assert [r.deliveries.retried for r in reports] == [1, 1, 0, 0]
    assert [r.deliveries.given_up for r in reports] == [0, 0, 1, 0]
    assert len(receiver.requests) == 3 and redis_client.zcard(keys.OUTBOX) == 0


def test_only_one_worker_evaluates_per_interval(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    settings = app_settings(redis_server.url, EVALUATION_INTERVAL=30.0)
    one, other = create_app(settings), create_app(settings)
    now = time.time()
    assert evaluator(one).take_turn(now) is not None
    assert evaluator(other).take_turn(now) is None
    assert evaluator(one).take_turn(now) is None  # the turn lasts the interval, for all
    redis_client.delete(keys.EVALUATOR_TURN)  # the interval is over
    assert evaluator(other).take_turn(now) is not None


def test_the_background_thread_announces_and_stops_quickly(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    with Receiver() as receiver:
        app = webhook_app(redis_server.url, receiver.url, EVALUATION_INTERVAL=0.1)
        harmed(app)
        start_background(app)
        try:
            deadline = time.monotonic() + 20
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            began = time.monotonic()
            assert stop_background(app, 5.0)
            stopped_in = time.monotonic() - began
    assert [request["event"] for request in receiver.requests] == ["guardrail_harm"]
    assert stopped_in < 2.5


def test_the_secret_is_never_logged(
    redis_server: Any, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    token_url = f"http://127.0.0.1:{free_port()}/hook?token=query-token-0123"
    app = webhook_app(redis_server.url, token_url)
    harmed(app)
    with caplog.at_level("DEBUG"):
        evaluator(app).run_once(time.time())
    assert "webhook" in caplog.text
    assert WEBHOOK_SECRET not in caplog.text and "query-token-0123" not in caplog.text


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x-token", "http://", "example.com/x-token", "http://h:x/", "http://a b/"],
)
def test_a_webhook_url_that_is_not_http_stops_the_start(redis_server: Any, url: str) -> None:
    from server.config import ConfigError

    with pytest.raises(ConfigError, match="WEBHOOK_URL") as raised:
        webhook_app(redis_server.url, url)
    assert "x-token" not in str(raised.value)  # a URL may hold a token: never echoed


def test_a_short_webhook_secret_stops_the_start(redis_server: Any) -> None:
    from server.config import ConfigError

    with pytest.raises(ConfigError, match="WEBHOOK_SECRET") as raised:
        create_app(
            app_settings(
                redis_server.url, WEBHOOK_URL="https://example.com/h", WEBHOOK_SECRET="short"
            )
        )
    assert "short" not in str(raised.value)


@pytest.mark.slow
def test_splitwerk_serve_runs_the_evaluator_in_its_worker_and_stops_it_on_sigterm(
    redis_server: Any, redis_client: redis.Redis, tmp_path: Any
) -> None:
    """The production path: gunicorn starts the thread after the fork (the announcement comes)
    and SIGTERM ends the worker with its evaluator stopped in time."""
    harmed(create_app(app_settings(redis_server.url)))
    log = tmp_path / "serve.log"
    with Receiver() as receiver:
        with serving(
            redis_server.url,
            log,
            EVALUATION_INTERVAL="0.2",
            WEBHOOK_URL=receiver.url,
            WEBHOOK_SECRET=WEBHOOK_SECRET,
        ):
            deadline = time.monotonic() + 30
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            leaving = time.monotonic()
        stopped_in = time.monotonic() - leaving  # SIGTERM until every process has ended
    assert [request["event"] for request in receiver.requests] == ["guardrail_harm"]
    assert receiver.requests[0]["valid"]
    output = log.read_text()
    assert "Worker exiting" in output and "Shutting down: Master" in output
    assert "did not stop in time" not in output and "Traceback" not in output
    assert WEBHOOK_SECRET not in output
    assert stopped_in < SERVE_STOP_TIMEOUT - 2  # never the SIGKILL after the timeout


def test_a_sample_ratio_alarm_is_announced_once(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    with Receiver() as receiver:
        app = webhook_app(redis_server.url, receiver.url)
        started(app)
        mismatched(redis_client)
        first = evaluator(app).run_once(time.time())
        second = evaluator(app).run_once(time.time())
    assert [field.split(":")[2] for field in first.announced] == ["sample-ratio"]
    assert second.announced == () and first.paused == ()  # an alarm, never a pause
    (request,) = receiver.requests
    assert request["event"] == "sample_ratio_mismatch" and request["valid"]
    assert request["body"]["details"]["visitors"] == {"control": 1000, "wrap": 800}


def test_a_conclusive_result_is_announced(redis_server: Any, redis_client: redis.Redis) -> None:
    """The demo's verdict is conclusive (keep the control: the challenger earns less)."""
    with Receiver() as receiver:
        app = webhook_app(redis_server.url, receiver.url)
        now = time.time()
        ensure_demo_experiment(services_of(app).store, now - DEMO_DAYS * 86_400)
        generate_traffic(services_of(app), 4000, now)
        report = evaluator(app).run_once(now)
    assert "conclusive" in [field.split(":")[2] for field in report.announced]
    conclusive = [r for r in receiver.requests if r["event"] == "conclusive"]
    assert len(conclusive) == 1 and conclusive[0]["valid"]
    details = conclusive[0]["body"]["details"]
    assert details["verdict"] == "ship" and details["variant"] == "control" and details["money"]


def test_a_full_outbox_drops_new_deliveries_but_remembers_them(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    app = create_app(app_settings(redis_server.url))
    store = services_of(app).store
    for number in range(keys.OUTBOX_LIMIT):
        delivery = Delivery(f"d{number}", "conclusive", "{}")
        assert store.announce(f"e@1:p1:conclusive:{number}", 1.0, delivery) == 1
    assert store.announce("e@1:p1:extra", 1.0, Delivery("late", "conclusive", "{}")) == 2
    assert redis_client.zcard(keys.OUTBOX) == keys.OUTBOX_LIMIT
    assert not redis_client.hexists(keys.DELIVERIES, "late")
    assert store.announce("e@1:p1:extra", 1.0, Delivery("again", "conclusive", "{}")) == 0
    # announcements of experiments that no longer exist are pruned by the evaluator
    assert store.prune_announcements({"other"}) == keys.OUTBOX_LIMIT + 1


def test_a_webhook_secret_without_a_url_and_a_negative_interval_stop_the_start(
    redis_server: Any,
) -> None:
    from server.config import ConfigError

    with pytest.raises(ConfigError, match="WEBHOOK_SECRET: set, but no WEBHOOK_URL"):
        create_app(app_settings(redis_server.url, WEBHOOK_SECRET=WEBHOOK_SECRET))
    with pytest.raises(ConfigError, match="EVALUATION_INTERVAL"):
        create_app(app_settings(redis_server.url, EVALUATION_INTERVAL=-1.0))


def test_no_evaluator_is_built_when_the_interval_is_zero(redis_server: Any) -> None:
    app = create_app(app_settings(redis_server.url, EVALUATION_INTERVAL=0.0))
    assert app.extensions[EVALUATOR] is None
    start_background(app)  # nothing to start, nothing to stop
    assert stop_background(app, 0.1)


def test_a_stopped_experiment_is_evaluated_until_its_windows_mature(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    """Orders of a stopped experiment's visitors count until their windows close: an alarm on
    those late figures is still announced; after maturity the experiment is left alone."""
    windowed = {
        **EXPERIMENT,
        "goals": [{"key": "purchase", "primary": True, "window_days": 7, "return_days": 14}],
    }
    with Receiver() as receiver:
        app = webhook_app(redis_server.url, receiver.url)
        client = started(app, windowed)
        mismatched(redis_client)
        stop = client.post("/v1/experiments/gift-wrap/stop", headers=EDITOR)
        assert stop.status_code == 200
        matures_at = datetime.fromisoformat(stop.json["matures_at"]).timestamp()
        matured = evaluator(app).run_once(matures_at + 1)
        settling = evaluator(app).run_once(matures_at - 1)
    assert (matured.experiments, matured.announced) == (0, ())
    assert settling.experiments == 1
    assert [field.split(":")[2] for field in settling.announced] == ["sample-ratio"]
    assert [request["event"] for request in receiver.requests] == ["sample_ratio_mismatch"]
