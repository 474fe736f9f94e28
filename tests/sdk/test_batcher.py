"""Events: never blocking, bounded, batched, retried with the same ids, fork-safe."""

import os
import time
from collections.abc import Mapping
from decimal import Decimal

import pytest

from splitwerk import Client, Response

from .fakeserver import FakeServer, wait_until


def events_client(server: FakeServer, **options: object) -> Client:
    options.setdefault("poll_interval", None)
    options.setdefault("flush_interval", 0.05)
    options.setdefault("retry_backoff", 0.02)
    options.setdefault("ingest_key", "secret")
    return Client(server.url, **options)  # type: ignore[arg-type]


def assert_each_event_counted_once(server: FakeServer, visitors: set[str]) -> None:
    received = server.unique_events()
    assert sorted(event["visitor"] for event in received) == sorted(visitors)


def test_events_arrive_in_batches_with_the_ingest_key(server: FakeServer) -> None:
    client = events_client(server, batch_size=10, flush_interval=60.0)
    for n in range(25):
        client.track("add_to_cart", f"v-{n}", "12.50")
    assert wait_until(lambda: len(server.unique_events()) == 20)  # two full batches, at once
    assert client.flush(2.0)
    assert_each_event_counted_once(server, {f"v-{n}" for n in range(25)})
    assert [len(body["events"]) for body in server.bodies("/v1/events")] == [10, 10, 5]
    headers = [h for _, p, h, _ in server.requests if p == "/v1/events"]
    assert all(h["X-Splitwerk-Ingest-Key"] == "secret" for h in headers)
    assert client.stats()["sent"] == 25
    client.close()


def test_track_does_not_wait_for_a_stalled_server(server: FakeServer) -> None:
    server.stall_seconds = 0.3
    server.script("/v1/events", "stall")
    client = events_client(server)
    client.track("goal", "v-0")
    time.sleep(0.1)  # the batch is now stuck in the stalled request
    started = time.monotonic()
    for n in range(1, 1000):
        client.track("goal", f"v-{n}")
    assert time.monotonic() - started < 0.2
    assert client.flush(5.0)
    assert_each_event_counted_once(server, {f"v-{n}" for n in range(1000)})
    client.close()


@pytest.mark.parametrize(
    "failures",
    [
        [500, 503],
        ["close", "close"],
        ["process-then-500", "process-then-500"],
        ["stall"],
        [(429, {"Retry-After": "0.2"})],
    ],
)
def test_events_arrive_exactly_once_across_failures(
    server: FakeServer, failures: list[object]
) -> None:
    server.stall_seconds = 0.5
    server.script("/v1/events", *failures)
    client = events_client(server, background_timeout=0.2)
    visitors = {f"v-{n}" for n in range(30)}
    for visitor in sorted(visitors):
        client.track("goal", visitor)
    assert client.flush(5.0)
    assert_each_event_counted_once(server, visitors)
    stats = client.stats()
    assert stats["retried"] >= 30 and stats["failed"] == 0
    if "process-then-500" in failures:
        assert max(server.event_deliveries.values()) == 3  # same ids every time
    client.close()


def test_retry_after_is_honoured(server: FakeServer) -> None:
    server.script("/v1/events", (503, {"Retry-After": "0.4"}))
    client = events_client(server)
    client.track("goal", "v-1")
    started = time.monotonic()
    assert client.flush(3.0)
    assert time.monotonic() - started >= 0.35
    client.close()


def test_batch_is_dropped_and_counted_after_the_last_retry(server: FakeServer) -> None:
    server.script("/v1/events", 500, 500, 500)
    client = events_client(server, max_retries=2)
    client.track("goal", "v-1")
    assert client.flush(3.0)
    stats = client.stats()
    assert (stats["failed"], stats["retried"], stats["sent"]) == (1, 2, 0)
    client.track("goal", "v-2")
    assert client.flush(3.0)
    assert_each_event_counted_once(server, {"v-2"})
    client.close()


def test_client_errors_are_not_retried(server: FakeServer) -> None:
    server.script("/v1/events", 400)
    client = events_client(server)
    client.track("goal", "v-1")
    assert client.flush(2.0)
    assert client.stats()["failed"] == 1
    assert server.count("/v1/events") == 1
    client.close()


def test_full_queue_drops_the_oldest_and_counts(server: FakeServer) -> None:
    server.stall_seconds = 0.3
    server.script("/v1/events", "stall")
    client = events_client(server, max_queue=10, batch_size=1)
    client.track("goal", "v-first")
    time.sleep(0.1)  # v-first is in flight, stalled
    for n in range(15):
        client.track("goal", f"v-{n}")
    assert client.stats()["dropped"] == 5
    assert client.flush(5.0)
    assert_each_event_counted_once(server, {"v-first"} | {f"v-{n}" for n in range(5, 15)})
    client.close()


def test_order_and_refund_money_is_sent_as_decimal_strings(server: FakeServer) -> None:
    client = events_client(server)
    client.order("v-1", "o-1", Decimal("49.90"), tax="7.97", shipping=5, currency="EUR")
    client.refund("o-1", Decimal("10.00"))
    client.track("add_to_cart", "v-1", value=Decimal("12.5"), ts=1764000000.0)
    assert client.flush(2.0)
    by_type = {event["type"]: event for event in server.unique_events()}
    order = by_type["order"]
    assert (order["revenue"], order["tax"], order["shipping"], order["goal"]) == (
        "49.90",
        "7.97",
        "5",
        "purchase",
    )
    assert "discount" not in order
    assert by_type["refund"]["amount"] == "10.00"
    assert by_type["conversion"]["value"] == "12.5"
    assert by_type["conversion"]["ts"] == 1764000000.0
    client.close()


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.order("v-1", "o-1", 49.9),
        lambda c: c.order("v-1", "o-1", "-1.00"),
        lambda c: c.order("v-1", "o-1", "1e3"),
        lambda c: c.order("v-1", "o-1", Decimal("NaN")),
        lambda c: c.order("v-1", "o-1", True),
        lambda c: c.order("v-1", "o-1", "1.00", currency="euro"),
        lambda c: c.refund("o-1", 10.0),
        lambda c: c.track("goal", "v-1", value=1.5),
        lambda c: c.track("", "v-1"),
        lambda c: c.track("goal", ""),
        lambda c: c.track("goal", "v-1", ts=-5),
    ],
)
def test_invalid_events_are_dropped_and_counted_not_raised(
    server: FakeServer, call: object
) -> None:
    client = events_client(server)
    call(client)  # type: ignore[operator]
    assert client.stats()["invalid"] == 1
    assert client.flush(1.0)
    assert server.unique_events() == []
    client.close()


def test_orders_need_an_ingest_key(server: FakeServer) -> None:
    client = events_client(server, ingest_key=None)
    client.order("v-1", "o-1", "1.00")
    client.refund("o-1", "1.00")
    assert client.stats()["invalid"] == 2
    client.close()


def test_close_flushes_with_a_time_limit(server: FakeServer) -> None:
    client = events_client(server, flush_interval=60.0)
    client.track("goal", "v-1")
    client.close(2.0)
    assert_each_event_counted_once(server, {"v-1"})
    server.stall_seconds = 2.0
    server.script("/v1/events", "stall", "stall", "stall", "stall")
    stuck = events_client(server, flush_interval=60.0, background_timeout=5.0)
    stuck.track("goal", "v-2")
    started = time.monotonic()
    stuck.close(0.3)
    assert time.monotonic() - started < 0.5


def test_transport_failures_are_injectable() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0
            self.ids: list[list[str]] = []

        def request(
            self,
            method: str,
            path: str,
            body: bytes | None,
            headers: Mapping[str, str],
            timeout: float,
        ) -> Response:
            self.calls += 1
            import json

            self.ids.append([event["id"] for event in json.loads(body or b"{}")["events"]])
            if self.calls < 3:
                raise TimeoutError("injected")
            return Response(200, {}, b'{"accepted": 1}')

        def close(self) -> None:
            pass

    flaky = Flaky()
    client = Client("http://127.0.0.1:9", transport=flaky, poll_interval=None, retry_backoff=0.01)
    client.track("goal", "v-1")
    assert client.flush(2.0)
    assert flaky.calls == 3
    assert flaky.ids[0] == flaky.ids[1] == flaky.ids[2]
    assert client.stats()["accepted"] == 1
    client.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_sends_its_own_events_and_parent_is_unaffected(server: FakeServer) -> None:
    client = events_client(server, flush_interval=60.0)
    client.track("goal", "parent-before-fork")
    pid = os.fork()
    if pid == 0:  # the child: must not resend the parent's queue, must send its own
        code = 1
        try:
            client.track("goal", "child")
            stats = client.stats()
            if client.flush(3.0) and stats["queued"] == 1:
                code = 0
        finally:
            os._exit(code)
    client.track("goal", "parent-after-fork")
    assert client.flush(3.0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert_each_event_counted_once(server, {"parent-before-fork", "parent-after-fork", "child"})
    client.close()


def test_a_batch_refused_as_a_whole_is_resent_event_by_event(server: FakeServer) -> None:
    # One bad event must not take the good ones (an order, say) down with it.
    server.script("/v1/events", 400, 400)
    client = events_client(server, flush_interval=60.0)
    client.order("v-1", "o-1", "10.00")
    client.track("goal", "v-2")
    client.track("goal", "v-3")
    assert client.flush(3.0)
    stats = client.stats()
    assert [len(body["events"]) for body in server.bodies("/v1/events")] == [3, 1, 1, 1]
    assert stats["failed"] == 1  # the first alone was refused again: that one is given up
    assert {event["visitor"] for event in server.unique_events()} == {"v-2", "v-3"}
    client.close()


def test_an_event_that_is_not_json_is_refused_when_queued(server: FakeServer) -> None:
    client = events_client(server)
    loop: list[object] = []
    loop.append(loop)
    client.track("goal", "v-" + "x" * 10, value=None)
    client._queue(lambda: {"type": "conversion", "visitor": "v-1", "nan": float("nan")})
    client._queue(lambda: {"type": "conversion", "visitor": "v-1", "loop": loop})
    client._queue(lambda: {"type": "conversion", "visitor": "v-1", "big": "x" * 20_000})
    assert client.stats()["invalid"] == 3
    assert client.flush(2.0)
    assert len(server.unique_events()) == 1
    client.close()


def test_a_transport_raising_the_unexpected_loses_no_event() -> None:
    class Buggy:
        calls = 0

        def request(
            self,
            method: str,
            path: str,
            body: bytes | None,
            headers: Mapping[str, str],
            timeout: float,
        ) -> Response:
            Buggy.calls += 1
            if Buggy.calls == 1:
                raise RuntimeError("a bug in a custom transport")
            return Response(200, {}, b'{"accepted": 1}')

        def close(self) -> None:
            pass

    client = Client(
        "http://127.0.0.1:9",
        transport=Buggy(),
        poll_interval=None,
        retry_backoff=0.01,
        ingest_key="k",
    )
    client.order("v-1", "o-1", "1.00")
    assert client.flush(2.0)
    stats = client.stats()
    assert (Buggy.calls, stats["accepted"], stats["failed"]) == (2, 1, 0)
    client.close()
