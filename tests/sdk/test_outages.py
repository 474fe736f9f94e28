"""Orders survive outages: the real server stopped and restarted on its port, the shop killed.

The server runs as ``splitwerk serve`` (gunicorn) in a child process; stopping it kills its
process group. Outages are seconds long here; the SDK's back-off and ``retry_deadline`` are
shortened by configuration in proportion (the defaults: 0.5 s doubling to 30 s, one hour).
What counts is read from Redis, where the server keeps its counters.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from splitwerk import Client
from tests.helpers import INGEST_TOKEN

from .serverprocess import CENTS_PER_ORDER, ROOT, Counts, ServerProcess, client_for, enrol

OUTAGE = 6.0  # seconds the server is away: longer than the old three retries (2-4 s)
ORDERS = 20
pytestmark = pytest.mark.slow


def test_orders_and_conversions_survive_an_outage_and_count_once(
    real_server: ServerProcess, redis_client: redis.Redis
) -> None:
    buyers = [f"buyer-{n}" for n in range(ORDERS)]
    enrol(real_server.url, buyers)
    client = client_for(real_server.url, retry_deadline=120.0)  # stands in for the default hour
    client.track("add_to_cart", "buyer-0")
    assert client.flush(5.0)
    real_server.stop()
    for n, buyer in enumerate(buyers):
        client.order(buyer, f"o-{n}", revenue="10.00")
        client.track("add_to_cart", buyer)
    time.sleep(OUTAGE)
    assert client.stats()["failed"] == 0
    real_server.start()
    assert client.flush(40.0)  # at most one back-off (capped at 30 s) after the return
    stats = client.stats()
    client.close()
    assert (stats["failed"], stats["dropped"], stats["rejected"]) == (0, 0, 0)
    assert stats["retried"] > 0
    counts = Counts(redis_client)
    assert counts.total("n", "purchase") == ORDERS
    assert counts.total("c", "purchase") == ORDERS
    assert counts.total("s", "purchase") == ORDERS * CENTS_PER_ORDER
    assert counts.total("n", "add_to_cart") == ORDERS + 1


def test_the_reported_ten_second_outage_loses_nothing_with_default_options(
    real_server: ServerProcess, redis_client: redis.Redis
) -> None:
    """The issue's case: default options, ~10 s without the server, 100 orders and more."""
    buyers = [f"buyer-{n}" for n in range(100)]
    enrol(real_server.url, buyers)
    client = Client(real_server.url, ingest_key=INGEST_TOKEN, handle_sigterm=False)
    real_server.stop()
    for second in range(10):  # a shop taking ten orders a second all through the outage
        for n in range(second * 10, second * 10 + 10):
            client.order(buyers[n], f"o-{n}", revenue="10.00")
            client.track("add_to_cart", buyers[n])
        time.sleep(1.0)
    real_server.start()
    assert client.flush(60.0)  # at most one back-off (16-30 s) after the return
    stats = client.stats()
    client.close()
    assert (stats["failed"], stats["dropped"], stats["sent"]) == (0, 0, 200)
    counts = Counts(redis_client)
    assert counts.total("n", "purchase") == 100
    assert counts.total("s", "purchase") == 100 * CENTS_PER_ORDER
    assert counts.total("n", "add_to_cart") == 100


def test_events_are_given_up_only_at_the_retry_deadline_and_logged(
    real_server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    enrol(real_server.url, ["buyer-1"])
    real_server.stop()
    client = client_for(real_server.url, retry_deadline=2.0)
    with caplog.at_level(logging.WARNING, logger="splitwerk"):
        client.order("buyer-1", "o-1", revenue="10.00")
        client.track("add_to_cart", "buyer-1")
        time.sleep(1.0)
        assert client.stats()["failed"] == 0  # still being retried
        deadline = time.monotonic() + 10.0
        while client.stats()["failed"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    stats = client.stats()
    client.close(0)
    assert stats["failed"] == 2 and stats["queued"] == 0
    assert "order o-1 given up: not delivered within 2s" in caplog.text


def test_a_full_queue_drops_conversions_before_orders_and_counts_them(
    real_server: ServerProcess, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    buyers = [f"buyer-{n}" for n in range(10)]
    enrol(real_server.url, buyers)
    real_server.stop()
    client = client_for(real_server.url, max_queue=30, batch_size=5)
    with caplog.at_level(logging.WARNING, logger="splitwerk"):
        for n, buyer in enumerate(buyers):
            for _ in range(6):
                client.track("add_to_cart", buyer)
            client.order(buyer, f"o-{n}", revenue="10.00")
        stats = client.stats()
    assert stats["dropped"] >= 70 - 30 - 5  # the queue, plus one batch in flight or put back
    assert stats["dropped_money"] == 0
    assert "conversion (queue full)" in caplog.text
    real_server.start()
    assert client.flush(40.0)
    client.close()
    counts = Counts(redis_client)
    assert counts.total("n", "purchase") == 10
    assert counts.total("s", "purchase") == 10 * CENTS_PER_ORDER


def _shop(command: str, url: str, spool: Path, first: int = 0, count: int = 0) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.sdk.shop_process",
        command,
        url,
        str(spool),
        str(first),
        str(count),
    ]


def test_a_killed_shop_loses_no_order_and_a_resend_counts_none_twice(
    real_server: ServerProcess, redis_client: redis.Redis, tmp_path: Path
) -> None:
    buyers = [f"buyer-{n}" for n in range(ORDERS)]
    enrol(real_server.url, buyers)
    spool = tmp_path / "spool"
    real_server.stop()
    shop = subprocess.Popen(
        _shop("orders", real_server.url, spool, 0, ORDERS), cwd=ROOT, stdout=subprocess.PIPE
    )
    assert shop.stdout is not None and shop.stdout.readline() == b"queued\n"
    shop.send_signal(signal.SIGKILL)  # kill -9: no atexit, no flush
    assert shop.wait(10) == -signal.SIGKILL
    # A copy of the spool as the killed process left it, to send every order a second time.
    again = tmp_path / "spool-copy"
    shutil.copytree(spool, again)
    assert list(spool.glob("*.db")), "the orders were not spooled"
    real_server.start()
    first = subprocess.run(
        _shop("deliver", real_server.url, spool), cwd=ROOT, capture_output=True, timeout=60
    )
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    delivered = json.loads(first.stdout)
    assert (delivered["sent"], delivered["accepted"], delivered["failed"]) == (ORDERS, ORDERS, 0)
    assert not list(spool.glob("*.db")), "delivered orders stayed in the spool"
    second = subprocess.run(
        _shop("deliver", real_server.url, again), cwd=ROOT, capture_output=True, timeout=60
    )
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    resent = json.loads(second.stdout)
    # the server answers a re-send with the same content as it answered the first (accepted,
    # issue #12) and counts it once: the totals below are those of one delivery
    assert (resent["sent"], resent["accepted"], resent["failed"]) == (ORDERS, ORDERS, 0)
    counts = Counts(redis_client)
    assert counts.total("n", "purchase") == ORDERS
    assert counts.total("c", "purchase") == ORDERS
    assert counts.total("s", "purchase") == ORDERS * CENTS_PER_ORDER
