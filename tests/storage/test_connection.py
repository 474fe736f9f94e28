"""Every Redis connection keeps the request's time budget and refuses an evicting Redis.

Against real redis-servers of the test's own (unix sockets in temporary folders), configured
each way, stopped with SIGSTOP or put to sleep with DEBUG SLEEP; never port 6379.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from server.app import create_app
from server.cli import main
from server.storage.errors import RedisRefused, StorageUnavailable
from tests.conftest import RedisServer
from tests.helpers import EDITOR, SECRET, TOKENS, app_settings

EXPERIMENT: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Checkout button",
    "variants": [{"key": "control"}, {"key": "green"}],
    "goals": [{"key": "purchase", "primary": True}],
}
BUDGET = 0.3  # seconds: the default REDIS_REQUEST_TIMEOUT
SLACK = 0.05  # seconds a request may take beyond its budget (the limit)


def _policy(server: RedisServer, policy: str) -> None:
    client = server.client()
    client.config_set("maxmemory-policy", policy)
    client.close()


def test_an_allkeys_policy_refuses_to_start_naming_the_setting(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis("--maxmemory-policy", "allkeys-lru")
    with pytest.raises(RedisRefused, match=r"maxmemory-policy is allkeys-lru.*noeviction"):
        create_app(app_settings(server.url))


def test_splitwerk_serve_refuses_an_allkeys_redis(
    own_redis: Callable[..., RedisServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = own_redis("--maxmemory-policy", "allkeys-random")
    monkeypatch.setenv("SPLITWERK_SECRET_KEY", SECRET)
    monkeypatch.setenv("SPLITWERK_TOKENS", TOKENS)
    result = CliRunner().invoke(main, ["serve", "--redis-url", server.url])
    assert result.exit_code != 0
    assert "maxmemory-policy is allkeys-random" in result.output


def test_a_volatile_policy_starts_with_a_warning(
    own_redis: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = own_redis("--maxmemory-policy", "volatile-lru")
    with caplog.at_level(logging.WARNING, logger="server.storage.connection"):
        app = create_app(app_settings(server.url))
    assert "maxmemory-policy is volatile-lru" in caplog.text
    assert app.test_client().get("/v1/config").status_code == 200


def test_noeviction_starts_without_a_warning(
    own_redis: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = own_redis()
    with caplog.at_level(logging.WARNING, logger="server.storage.connection"):
        create_app(app_settings(server.url)).test_client().get("/v1/config")
    assert "maxmemory-policy" not in caplog.text


def test_a_redis_without_config_starts_with_a_warning(
    own_redis: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = own_redis("--rename-command", "CONFIG", "")
    with caplog.at_level(logging.WARNING, logger="server.storage.connection"):
        app = create_app(app_settings(server.url))
        client = app.test_client()
        assert client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR).status_code == 201
    assert "cannot read Redis maxmemory-policy" in caplog.text
    assert caplog.text.count("cannot read Redis maxmemory-policy") == 1  # not per connection


def test_a_policy_changed_to_allkeys_is_refused_on_reconnect_and_accepted_again(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    app = create_app(app_settings(server.url))
    client = app.test_client()
    assert client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR).status_code == 201
    admin = server.client()
    _policy(server, "allkeys-lru")
    admin.client_kill_filter(_type="normal", skipme=True)  # every connection of the app drops
    refused = client.post("/v1/experiments", json={**EXPERIMENT, "key": "b"}, headers=EDITOR)
    assert refused.status_code == 503
    assert not admin.hexists("sw:experiments", "b")
    _policy(server, "noeviction")
    admin.client_kill_filter(_type="normal", skipme=True)
    accepted = client.post("/v1/experiments", json={**EXPERIMENT, "key": "b"}, headers=EDITOR)
    assert accepted.status_code == 201
    admin.close()


def _started_app(server: RedisServer, **settings: Any) -> Any:
    app = create_app(app_settings(server.url, CONFIG_REFRESH_INTERVAL=0.2, **settings))
    client = app.test_client()
    assert client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR).status_code == 201
    assert client.post("/v1/experiments/checkout-button/start", headers=EDITOR).status_code == 200
    return client


def _timed_assigns(client: Any, count: int, prefix: str) -> list[tuple[float, Any]]:
    timings = []
    for number in range(count):
        begin = time.monotonic()
        response = client.post(
            "/v1/assign", json={"visitor": f"{prefix}-{number}", "experiments": ["checkout-button"]}
        )
        timings.append((time.monotonic() - begin, response))
        time.sleep(0.07)  # lets the config refresh interval pass now and then
    return timings


@pytest.mark.slow
def test_no_assign_outlasts_the_budget_while_redis_is_stopped(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    client = _started_app(server)
    assert client.post("/v1/assign", json={"visitor": "warm"}).json["recorded"] is True
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        timings = _timed_assigns(client, 12, "stopped")
        begin = time.monotonic()
        events = client.post(
            "/v1/events",
            json={
                "events": [
                    {"type": "conversion", "id": "c1", "visitor": "warm", "goal": "purchase"}
                ]
            },
        )
        events_took = time.monotonic() - begin
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert max(took for took, _ in timings) <= BUDGET + SLACK, timings
    assert all(response.status_code == 200 for _, response in timings)
    assert all(response.json["recorded"] is not True for _, response in timings)
    assert events.status_code == 503
    assert events_took <= BUDGET + SLACK
    # Redis resumed: the same client records again, by itself
    deadline = time.monotonic() + 5
    while client.post("/v1/assign", json={"visitor": "after"}).json["recorded"] is not True:
        assert time.monotonic() < deadline, "did not recover"
        time.sleep(0.1)


@pytest.mark.slow
def test_no_assign_outlasts_the_budget_while_redis_sleeps(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis("--enable-debug-command", "yes")
    client = _started_app(server)
    assert client.post("/v1/assign", json={"visitor": "warm"}).json["recorded"] is True
    sleeper = threading.Thread(
        target=lambda: server.client().execute_command("DEBUG", "SLEEP", "2")
    )
    sleeper.start()
    time.sleep(0.05)
    timings = _timed_assigns(client, 8, "asleep")
    sleeper.join()
    assert max(took for took, _ in timings) <= BUDGET + SLACK, timings
    assert all(response.status_code == 200 for _, response in timings)


def test_a_budget_bounds_store_calls_and_admin_calls_keep_the_socket_timeout(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    app = create_app(app_settings(server.url, REDIS_SOCKET_TIMEOUT=0.5, REDIS_RETRIES=1))
    store = app.extensions["splitwerk.store"]
    store.ping()
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        begin = time.monotonic()
        with store.budget(0.1), pytest.raises(StorageUnavailable):
            store.versions()
        bounded = time.monotonic() - begin
        begin = time.monotonic()
        with pytest.raises(StorageUnavailable):
            store.versions()
        unbounded = time.monotonic() - begin
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert bounded < 0.1 + SLACK
    assert unbounded >= 0.5  # socket timeout per attempt, no budget outside requests
