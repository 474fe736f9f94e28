"""Graceful shutdown: SIGTERM sends the queued events within a deadline, then chains on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from splitwerk import Client
from tests.helpers import free_port

from .fakeserver import FakeServer
from .serverprocess import CENTS_PER_ORDER, ROOT, Counts, ServerProcess, enrol

QUEUED = 50  # the case: 50 queued events lost to a plain SIGTERM


def _start_shop(url: str, spool: str = "-", **environment: str) -> subprocess.Popen[bytes]:
    shop = subprocess.Popen(
        [sys.executable, "-m", "tests.sdk.shop_process", "orders", url, spool, "0", str(QUEUED)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "SHOP_FLUSH_INTERVAL": "600", **environment},
    )
    assert shop.stdout is not None and shop.stdout.readline() == b"queued\n"
    return shop


@pytest.mark.slow
def test_sigterm_sends_the_queued_orders_and_ends_the_process_as_sigterm_does(
    real_server: ServerProcess, redis_client: redis.Redis
) -> None:
    enrol(real_server.url, [f"buyer-{n}" for n in range(QUEUED)])
    shop = _start_shop(real_server.url)
    shop.send_signal(signal.SIGTERM)
    assert shop.wait(15) == -signal.SIGTERM  # what the default handler would have done
    counts = Counts(redis_client)
    assert counts.total("n", "purchase") == QUEUED
    assert counts.total("s", "purchase") == QUEUED * CENTS_PER_ORDER


@pytest.mark.slow
def test_sigterm_flushes_then_runs_the_hosts_own_handler(
    real_server: ServerProcess, redis_client: redis.Redis
) -> None:
    enrol(real_server.url, [f"buyer-{n}" for n in range(QUEUED)])
    shop = _start_shop(real_server.url, SHOP_SIGTERM="host")
    shop.send_signal(signal.SIGTERM)
    assert shop.wait(15) == 0  # the host's handler decided: SystemExit(0)
    assert shop.stdout is not None and shop.stdout.read() == b"host handler ran\n"
    assert Counts(redis_client).total("n", "purchase") == QUEUED


@pytest.mark.slow
def test_sigterm_keeps_its_deadline_when_the_server_is_down_and_the_spool_keeps_the_orders(
    real_server: ServerProcess, redis_client: redis.Redis, tmp_path: Path
) -> None:
    enrol(real_server.url, [f"buyer-{n}" for n in range(QUEUED)])
    real_server.stop()
    shop = _start_shop(real_server.url, str(tmp_path), SHOP_CLOSE_TIMEOUT="1.0")
    started = time.monotonic()
    shop.send_signal(signal.SIGTERM)
    assert shop.wait(15) == -signal.SIGTERM
    assert time.monotonic() - started < 1.0 + 1.5  # the close timeout, plus start-up slack
    real_server.start()
    deliver = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.sdk.shop_process",
            "deliver",
            real_server.url,
            str(tmp_path),
            "0",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert deliver.returncode == 0, deliver.stderr.decode()[-2000:]
    assert Counts(redis_client).total("n", "purchase") == QUEUED


@pytest.mark.slow
def test_gunicorn_with_the_readme_worker_exit_hook_sends_the_queue_on_sigterm(
    real_server: ServerProcess, redis_client: redis.Redis
) -> None:
    enrol(real_server.url, [f"buyer-{n}" for n in range(QUEUED)])
    port = free_port()
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "python:tests.sdk.gunicorn_shop",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "tests.sdk.gunicorn_shop:app",
        ],
        cwd=ROOT,
        env={**os.environ, "SPLITWERK_URL": real_server.url, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        queued = ""
        deadline = time.monotonic() + 30
        for n in range(QUEUED):
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/order?n={n}") as page:
                        queued = page.read().decode()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "gunicorn did not start"
                    time.sleep(0.1)
        assert queued == str(QUEUED)  # all still queued in the worker
        gunicorn.send_signal(signal.SIGTERM)
        assert gunicorn.wait(30) == 0
    finally:
        if gunicorn.poll() is None:
            gunicorn.kill()
    counts = Counts(redis_client)
    assert counts.total("n", "purchase") == QUEUED
    assert counts.total("s", "purchase") == QUEUED * CENTS_PER_ORDER


@pytest.fixture
def restore_sigterm() -> Iterator[None]:
    saved = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, saved)


def test_a_host_that_handles_sigterm_keeps_its_handler(
    server: FakeServer, restore_sigterm: None
) -> None:
    def host(signum: int, frame: Any) -> None:
        pass

    signal.signal(signal.SIGTERM, host)
    client = Client(server.url, poll_interval=None)
    assert signal.getsignal(signal.SIGTERM) is host
    client.close()


def test_an_unhandled_sigterm_is_taken_and_given_back_at_close(
    server: FakeServer, restore_sigterm: None
) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    client = Client(server.url, poll_interval=None)
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    client.close()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    untouched = Client(server.url, poll_interval=None, handle_sigterm=False)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    untouched.close()
