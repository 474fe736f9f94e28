"""Remote mode against the fake server: answers, fallbacks, the timeout bound, the breaker."""

import math
import os
import time
from collections.abc import Mapping

import pytest

from splitwerk import Client, ConfigError, Response

from .fakeserver import FakeServer, wait_until

TIMEOUT = 0.1
MARGIN = 0.08  # scheduling slack on a busy CI machine


def remote(server: FakeServer, **options: object) -> Client:
    options.setdefault("timeout", TIMEOUT)
    options.setdefault("poll_interval", None)
    return Client(server.url, **options)  # type: ignore[arg-type]


def test_variant_comes_from_the_server(server: FakeServer) -> None:
    with remote(server) as client:
        assert client.variant("checkout-button", "v-1", {"source": "facebook"}) == "green"
    body = server.bodies("/v1/assign")[0]
    assert body == {
        "visitor": "v-1",
        "experiments": ["checkout-button"],
        "attributes": {"source": "facebook"},
    }


def test_assign_returns_payloads_and_reasons(server: FakeServer) -> None:
    with remote(server) as client:
        answers = client.assign("v-1", ["checkout-button", "zzz"])
    assert answers["checkout-button"].variant == "green"
    assert answers["checkout-button"].payload == {"color": "green"}
    assert answers["checkout-button"].enrolled
    assert answers["zzz"].variant is None
    assert answers["zzz"].reason == "unknown_experiment"


def test_unknown_experiment_gives_the_default(server: FakeServer) -> None:
    with remote(server) as client:
        assert client.variant("zzz", "v-1", default="blue") == "blue"
        assert client.variant("zzz", "v-1") == "control"


def test_without_consent_the_server_is_told_not_to_record(server: FakeServer) -> None:
    with remote(server) as client:
        answers = client.assign("v-1", ["checkout-button"], consent=False)
    assert (answers["checkout-button"].enrolled, answers["checkout-button"].reason) == (
        False,
        "no_consent",
    )
    assert server.bodies("/v1/assign")[0]["consent"] is False


def test_force_is_passed_to_the_server(server: FakeServer) -> None:
    with remote(server) as client:
        client.assign("v-1", ["checkout-button"], force={"checkout-button": "control"})
    assert server.bodies("/v1/assign")[0]["force"] == {"checkout-button": "control"}


@pytest.mark.parametrize("action", [500, 503, (429, {"Retry-After": "5"}), 404, "close"])
def test_server_errors_give_the_default(server: FakeServer, action: object) -> None:
    server.script("/v1/assign", action)
    with remote(server) as client:
        assert client.variant("checkout-button", "v-1", default="blue") == "blue"
        assert client.stats()["assign_errors"] == 1


def test_garbled_answer_gives_the_default() -> None:
    class Garbled:
        def request(
            self,
            method: str,
            path: str,
            body: bytes | None,
            headers: Mapping[str, str],
            timeout: float,
        ) -> Response:
            return Response(200, {}, b"<html>")

        def close(self) -> None:
            pass

    with Client("http://127.0.0.1:9", transport=Garbled(), poll_interval=None) as client:
        assert client.variant("checkout-button", "v-1") == "control"
        assert client.assign("v-1", ["a"])["a"].reason == "unavailable"


def test_stalled_server_answer_comes_within_the_timeout(server: FakeServer) -> None:
    client = remote(server)
    client.variant("checkout-button", "v-1")  # connect first: measure the kept-alive path too
    server.script("/v1/assign", "stall")
    started = time.monotonic()
    assert client.variant("checkout-button", "v-9", default="blue") == "blue"
    assert time.monotonic() - started < TIMEOUT + MARGIN
    server.script("/v1/assign", "stall")
    started = time.monotonic()
    answers = client.assign("v-2", ["checkout-button"])
    assert time.monotonic() - started < TIMEOUT + MARGIN
    assert answers["checkout-button"].reason == "unavailable"
    client.close(0)


def test_first_connection_to_a_stalled_server_also_respects_the_timeout(server: FakeServer) -> None:
    server.script("/v1/assign", "stall")
    client = remote(server)
    started = time.monotonic()
    assert client.variant("checkout-button", "v-1") == "control"
    assert time.monotonic() - started < TIMEOUT + MARGIN
    client.close(0)


def test_unreachable_server_gives_the_default_quickly() -> None:
    client = Client("http://127.0.0.1:9", timeout=TIMEOUT, poll_interval=None)
    started = time.monotonic()
    assert client.variant("checkout-button", "v-1", default="blue") == "blue"
    assert time.monotonic() - started < TIMEOUT + MARGIN
    client.close(0)


def test_fallback_uses_the_last_config_control_and_winner(server: FakeServer) -> None:
    client = remote(server, poll_interval=60.0)
    assert client.wait_for_config(2.0)
    server.script("/v1/assign", 500, 500, 500)
    assert client.variant("checkout-button", "v-1", default="blue") == "control"
    assert client.variant("old-test", "v-1") == "b"
    answers = client.assign("v-1")
    assert answers["checkout-button"].reason == "unavailable"
    assert answers["old-test"].variant == "b"
    client.close(0)


def test_dropped_keep_alive_connection_is_reopened(server: FakeServer) -> None:
    with remote(server) as client:
        assert client.variant("checkout-button", "v-1") == "green"
        server.script("/v1/assign", "close")
        assert client.variant("checkout-button", "v-1") == "green"  # retried on a new connection
        assert (client.stats()["assign_errors"], client.stats()["reconnects"]) == (0, 1)


def test_circuit_breaker_skips_the_network_then_probes(server: FakeServer) -> None:
    server.script("/v1/assign", *[500] * 3)
    client = remote(server, failure_threshold=3, circuit_cooldown=0.3)
    for _ in range(3):
        assert client.variant("checkout-button", "v-1") == "control"
    for _ in range(10):
        assert client.variant("checkout-button", "v-1") == "control"
    assert server.count("/v1/assign") == 3
    stats = client.stats()
    assert (stats["circuit_opened"], stats["circuit_skips"]) == (1, 10)
    time.sleep(0.35)
    assert client.variant("checkout-button", "v-1") == "green"  # the probe succeeds
    assert client.variant("checkout-button", "v-1") == "green"
    assert server.count("/v1/assign") == 5
    client.close(0)


def test_failed_probe_reopens_the_breaker(server: FakeServer) -> None:
    server.script("/v1/assign", 500, 500, 500)
    client = remote(server, failure_threshold=2, circuit_cooldown=0.2)
    client.variant("checkout-button", "v-1")
    client.variant("checkout-button", "v-1")
    time.sleep(0.25)
    client.variant("checkout-button", "v-1")  # probe fails
    client.variant("checkout-button", "v-1")  # skipped
    assert server.count("/v1/assign") == 3
    client.close(0)


def test_invalid_visitor_never_reaches_the_server(server: FakeServer) -> None:
    with remote(server) as client:
        assert client.variant("checkout-button", "", default="blue") == "blue"
        assert client.variant("checkout-button", "x" * 129) == "control"
        assert client.variant("checkout-button", 42) == "control"  # type: ignore[arg-type]
        assert client.assign("", ["x"])["x"].reason == "invalid_visitor"
        assert client.stats()["invalid"] >= 3
    assert server.count("/v1/assign") == 0


def test_public_methods_swallow_internal_errors(caplog: pytest.LogCaptureFixture) -> None:
    class Exploding:
        def request(self, *args: object) -> Response:
            raise RuntimeError("bug")

        def close(self) -> None:
            raise RuntimeError("bug")

    client = Client("http://127.0.0.1:9", transport=Exploding(), poll_interval=None)
    assert client.variant("checkout-button", "v-1", default="blue") == "blue"
    assert client.assign("v-1", ["a"]) == {}
    client.close(0)
    assert "internal error" in caplog.text


@pytest.mark.parametrize(
    "options",
    [
        {"url": "ftp://x"},
        {"url": "127.0.0.1:5000"},
        {"url": "http://x:notaport"},
        {"url": "http://\ud800/"},  # no host name can be made of it
        {"url": "http://" + "a" * 64 + ".example"},  # a label longer than DNS allows
        {"retry_deadline": 0},
        {"remembered_assignments": -1},
        {"spool_dir": 5},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": math.inf},
        {"timeout": True},
        {"mode": "hybrid"},
        {"ingest_key": ""},
        {"batch_size": 501},
        {"batch_size": 0},
        {"max_queue": 0},
        {"max_retries": -1},
        {"ingest_key": "key\ud800"},
        {"ingest_key": "key\nX-Other: 1"},
        {"mode": "local", "poll_interval": None},
        {"transport": object()},
    ],
)
def test_bad_arguments_raise_config_error(options: dict[str, object]) -> None:
    url = options.pop("url", "http://127.0.0.1:9")
    with pytest.raises(ConfigError):
        Client(url, **options)  # type: ignore[arg-type]


def test_close_is_idempotent_and_later_calls_still_answer(server: FakeServer) -> None:
    client = remote(server)
    client.close()
    client.close()
    assert client.variant("zzz", "v-1") == "control"
    client.track("goal", "v-1")
    assert wait_until(lambda: client.stats()["dropped"] == 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection_and_gets_real_answers(
    server: FakeServer,
) -> None:
    client = remote(server, timeout=2.0)
    assert client.variant("checkout-button", "v-1") == "green"  # the parent's kept-alive socket
    connections = server.connections
    pid = os.fork()
    if pid == 0:  # the child: noticed by the stored pid, no fork hook
        code = 1
        try:
            if client.variant("checkout-button", "v-2") == "green":
                code = 0 if client.stats()["assign_errors"] == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert server.connections == connections + 1  # the child did not use the parent's socket
    assert client.variant("checkout-button", "v-3") == "green"
    assert server.connections == connections + 1  # and the parent still uses its own
    client.close(0)
