"""Local mode: config polling with ETags, in-process evaluation, exposures reported once."""

import os
import time

import pytest

from splitwerk import Client

from .fakeserver import FakeServer, wait_until


def local(server: FakeServer, **options: object) -> Client:
    options.setdefault("poll_interval", 60.0)
    options.setdefault("flush_interval", 0.05)
    return Client(server.url, mode="local", **options)  # type: ignore[arg-type]


def test_local_variant_needs_no_request_per_call(server: FakeServer) -> None:
    client = local(server)
    assert client.wait_for_config(2.0)
    answers = {client.variant("checkout-button", f"v-{n}") for n in range(200)}
    assert answers == {"control", "green"}
    assert server.count("/v1/assign") == 0
    client.close()


def test_before_the_first_config_the_default_is_shown(server: FakeServer) -> None:
    server.script("/v1/config", 500)
    client = local(server)
    assert client.variant("checkout-button", "v-1", default="blue") == "blue"
    assert client.assign("v-1", ["checkout-button"])["checkout-button"].reason == "unavailable"
    client.close(0)


def test_exposures_are_reported_once_with_segment_and_condition_attributes(
    server: FakeServer,
) -> None:
    client = local(server)
    assert client.wait_for_config(2.0)
    attributes = {"source": "facebook", "email": "kim@example.org"}
    for _ in range(5):
        assert client.variant("facebook-only", "v-1", attributes) == "banner"
    client.assign("v-1", ["facebook-only"], attributes)
    assert client.flush(2.0)
    exposures = [event for event in server.unique_events() if event["type"] == "exposure"]
    assert len(exposures) == 1
    assert exposures[0]["experiment"] == "facebook-only"
    assert exposures[0]["variant"] == "banner"
    assert exposures[0]["attributes"] == {"source": "facebook"}  # email is neither
    client.close()


def test_unenrolled_visitors_are_not_reported(server: FakeServer) -> None:
    client = local(server)
    assert client.wait_for_config(2.0)
    assert client.variant("facebook-only", "v-1", {"source": "google"}) == "base"
    assert client.variant("old-test", "v-1") == "b"
    assert (
        client.assign("v-1", ["checkout-button"], consent=False)["checkout-button"].reason
        == "no_consent"
    )
    assert client.variant("checkout-button", "v-1", force="green") == "green"
    assert client.flush(1.0)
    assert server.unique_events() == []
    client.close()


def test_assign_without_keys_returns_running_matching_experiments(server: FakeServer) -> None:
    client = local(server)
    assert client.wait_for_config(2.0)
    answers = client.assign("v-1", attributes={"source": "google"})
    assert set(answers) == {"checkout-button"}
    answers = client.assign("v-1", ["checkout-button", "zzz"], {"source": "facebook"})
    assert answers["zzz"].variant is None
    assert answers["zzz"].reason == "unknown_experiment"
    client.close()


def test_polling_uses_etags_and_picks_up_changes(server: FakeServer) -> None:
    client = local(server, poll_interval=0.05)
    assert client.wait_for_config(2.0)
    assert wait_until(lambda: client.stats()["config_not_modified"] >= 2)
    headers = [h for m, p, h, _ in server.requests if p == "/v1/config"]
    assert headers[0].get("If-None-Match") is None
    assert headers[-1].get("If-None-Match") == '"17"'
    server.config["experiments"][0]["status"] = "paused"
    server.etag = '"18"'
    assert wait_until(
        lambda: (
            client.variant("checkout-button", "v-7") == "control"
            and client.stats()["config_updates"] == 2
        )
    )
    client.close()


def test_bad_config_keeps_the_one_in_use(server: FakeServer) -> None:
    client = local(server, poll_interval=0.05)
    assert client.wait_for_config(2.0)
    server.config = {"spec": "assignment v9", "experiments": []}
    server.etag = '"19"'
    assert wait_until(lambda: client.stats()["config_errors"] >= 1)
    assert client.variant("old-test", "v-1") == "b"
    client.close()


def test_local_variant_is_fast(server: FakeServer) -> None:
    client = local(server)
    assert client.wait_for_config(2.0)
    client.variant("checkout-button", "v-1")
    started = time.process_time()
    for _ in range(20_000):
        client.variant("checkout-button", "v-1")
    per_call = (time.process_time() - started) / 20_000
    assert per_call < 20e-6  # generous: ~1 µs on a laptop; catches accidental I/O or parsing
    client.close()


def test_an_exposure_that_cannot_be_sent_still_gives_the_visitor_their_variant(
    server: FakeServer,
) -> None:
    client = local(server)
    assert client.wait_for_config(2.0)
    expected = client.variant("checkout-button", "v-1")
    other = local(server)
    assert other.wait_for_config(2.0)
    # "source" is a segment of checkout-button, so it is reported with the exposure.
    assert other.variant("checkout-button", "v-1", {"source": float("nan")}) == expected
    assert other.stats()["invalid"] == 1 and other.stats()["exposures"] == 0
    client.close()
    other.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_polls_and_reports_through_its_own_threads(server: FakeServer) -> None:
    client = local(server, poll_interval=0.1)
    assert client.wait_for_config(2.0)
    visitors = (f"v-{number}" for number in range(100))
    green = next(
        visitor for visitor in visitors if client.variant("checkout-button", visitor) == "green"
    )
    assert client.flush(2.0)
    pid = os.fork()
    if pid == 0:  # the child: noticed by the stored pid, no fork hook; no thread came along
        code = 1
        try:
            # A visitor new to this process checks the pid (a visitor the parent reported is
            # answered without the ~0.5 us check); then the child's own poller picks up the
            # stopped experiment and its own batcher reports.
            client.variant("checkout-button", "v-child")
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and code:
                if client.variant("checkout-button", green) == "control":
                    code = 0
                time.sleep(0.02)
            if code == 0 and not client.flush(5.0):
                code = 2
            client.close(1.0)
        finally:
            os._exit(code)
    stopped = server.config["experiments"][0]
    stopped.update(status="stopped", winner="control")
    server.etag = '"18"'
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "v-child" in {event["visitor"] for event in server.unique_events()}
    assert client.variant("checkout-button", "v-parent") == "control"  # the parent polls too
    client.close()
