"""Fast recovery and answers during an outage, with the real server stopped and restarted."""

from __future__ import annotations

import time
from typing import Any

import pytest

from splitwerk import Client
from splitwerk.memory import REMEMBERED

from .serverprocess import ServerProcess

RECOVERY_LIMIT = 2.0  # seconds after the server is back by which answers are the server's
VISITORS = [f"v-{n}" for n in range(40)]  # enough that both variants occur
pytestmark = pytest.mark.slow


def _client(url: str, **options: Any) -> Client:
    settings: dict[str, Any] = {
        "timeout": 0.5,
        "poll_interval": None,
        "failure_threshold": 2,
        "handle_sigterm": False,
    }
    settings.update(options)
    return Client(url, **settings)


def test_answers_are_the_servers_again_within_two_seconds_of_its_return(
    real_server: ServerProcess,
) -> None:
    client = _client(real_server.url)  # the default cool-down between probes: 1 s
    assert client.assign("v-0", ["checkout-button"])["checkout-button"].reason == "running"
    real_server.stop()
    for n in range(5):  # the breaker opens after two failures
        assert client.assign(f"down-{n}", ["checkout-button"])["checkout-button"].reason == (
            "unavailable"
        )
    assert client.stats()["circuit_opened"] == 1
    real_server.start()
    back = time.monotonic()
    recovered = None
    n = 0
    while time.monotonic() - back < RECOVERY_LIMIT + 3.0:
        n += 1
        answer = client.assign(f"fresh-{n}", ["checkout-button"])["checkout-button"]
        if answer.reason == "running":
            recovered = time.monotonic() - back
            break
        time.sleep(0.05)
    client.close(0)
    assert recovered is not None and recovered < RECOVERY_LIMIT, recovered


def test_a_visitor_seen_before_keeps_their_variant_while_the_server_is_down(
    real_server: ServerProcess,
) -> None:
    client = _client(real_server.url)
    before = {visitor: client.variant("checkout-button", visitor) for visitor in VISITORS}
    assert set(before.values()) == {"control", "green"}
    real_server.stop()
    during = {visitor: client.variant("checkout-button", visitor) for visitor in VISITORS}
    answer = client.assign("v-1", ["checkout-button"])["checkout-button"]
    newcomer = client.variant("checkout-button", "never-seen", default="control")
    client.close(0)
    assert during == before
    assert (answer.variant, answer.reason) == (before["v-1"], REMEMBERED)
    assert newcomer == "control"


def test_local_mode_keeps_evaluating_from_its_config_and_reports_exposures_later(
    real_server: ServerProcess,
) -> None:
    client = _client(
        real_server.url,
        mode="local",
        poll_interval=0.5,
        flush_interval=0.1,
        retry_backoff=0.05,
        background_timeout=0.5,
    )
    assert client.wait_for_config(10.0)
    before = {visitor: client.assign(visitor, ["checkout-button"]) for visitor in VISITORS[:20]}
    assert client.flush(5.0)
    real_server.stop()
    time.sleep(1.5)  # config polls fail meanwhile
    during = {visitor: client.assign(visitor, ["checkout-button"]) for visitor in VISITORS}
    assert {v: during[v] for v in before} == before
    newcomers = [during[v]["checkout-button"] for v in VISITORS[20:]]
    assert all(answer.enrolled and answer.reason == "running" for answer in newcomers)
    assert client.stats()["config_errors"] > 0
    real_server.start()
    assert client.flush(40.0)  # the newcomers' exposures, queued during the outage
    stats = client.stats()
    client.close(0)
    assert stats["exposures"] == len(VISITORS) and stats["failed"] == 0
    assert stats["accepted"] == len(VISITORS)
