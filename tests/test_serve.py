"""`splitwerk serve` under a real gunicorn: kept-alive connections survive idle clients."""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import splitwerk
from tests.helpers import SECRET, TOKENS, free_port

ROOT = Path(__file__).resolve().parents[1]
EVENT_BATCH = json.dumps(
    {"events": [{"type": "conversion", "id": "c-1", "visitor": "v-1", "goal": "purchase"}]}
)


@pytest.fixture
def gunicorn_server(redis_server, request) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`splitwerk serve` (gunicorn, one worker) with the keep-alive the test asks for."""
    port = free_port()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("SPLITWERK_")
    }
    environment.update(
        SPLITWERK_SECRET_KEY=SECRET,
        SPLITWERK_TOKENS=TOKENS,
        SPLITWERK_KEEPALIVE=str(request.param),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--redis-url",
            redis_server.url,
            "--port",
            str(port),
            "--workers",
            "1",
            "--threads",
            "4",
        ],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def _idle_clients(address: str, clients: int, requests: int) -> tuple[int, int, set[int]]:
    """Clients that each POST ``requests`` event batches on one connection, idling 2–3 s
    between them. Returns (answered, failed, how many local ports each client used)."""
    host, port = address.split(":")
    answered, failed = [0], [0]
    ports_per_client: set[int] = set()
    lock = threading.Lock()

    def run(seed: int) -> None:
        pause = random.Random(seed)
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        ports: set[int] = set()
        for number in range(requests):
            if number:
                time.sleep(pause.uniform(2.0, 3.0))
            try:
                connection.request(
                    "POST",
                    "/v1/events",
                    body=EVENT_BATCH,
                    headers={"Content-Type": "application/json"},
                )
                assert connection.sock is not None
                ports.add(connection.sock.getsockname()[1])
                response = connection.getresponse()
                response.read()
                with lock:
                    answered[0] += response.status == 200
                    failed[0] += response.status != 200
            except (OSError, http.client.HTTPException):
                connection.close()  # the next request opens a new connection
                with lock:
                    failed[0] += 1
        connection.close()
        with lock:
            ports_per_client.add(len(ports))

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answered[0], failed[0], ports_per_client


@pytest.mark.slow
@pytest.mark.parametrize("gunicorn_server", [75], indirect=True)
def test_clients_idling_between_posts_reuse_their_connection_without_failures(
    gunicorn_server: str, redis_client: object
) -> None:
    answered, failed, ports_per_client = _idle_clients(gunicorn_server, clients=12, requests=4)
    assert failed == 0
    assert answered == 12 * 4
    assert ports_per_client == {1}  # every client kept its one connection


@pytest.mark.slow
@pytest.mark.parametrize("gunicorn_server", [1], indirect=True)
def test_a_keep_alive_shorter_than_the_clients_idle_time_breaks_requests(
    gunicorn_server: str, redis_client: object
) -> None:
    # the race the KEEPALIVE default avoids: the server closes, the client sends anyway
    _, failed, _ = _idle_clients(gunicorn_server, clients=2, requests=2)
    assert failed > 0


def _idle_sdk(address: str, threads: int, calls: int) -> dict[str, int]:
    """One SDK client whose threads each call assign ``calls`` times on the thread's
    kept-alive connection, idling 2–3 s between calls. Returns the SDK's counters."""
    client = splitwerk.Client(f"http://{address}", timeout=2.0, poll_interval=None)

    def run(seed: int) -> None:
        pause = random.Random(seed)
        for number in range(calls):
            if number:
                time.sleep(pause.uniform(2.0, 3.0))
            client.assign(f"visitor-{seed}-{number}")

    workers = [threading.Thread(target=run, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    stats = client.stats()
    client.close(0)
    return stats


@pytest.mark.slow
@pytest.mark.parametrize(
    ("gunicorn_server", "threads", "is_reconnecting"),
    [(75, 6, False), (1, 2, True)],
    indirect=["gunicorn_server"],
    ids=["keepalive-75", "keepalive-1"],
)
def test_the_sdk_reconnects_only_when_the_keep_alive_is_shorter_than_its_idle_time(
    gunicorn_server: str, threads: int, is_reconnecting: bool, redis_client: object
) -> None:
    """With the default KEEPALIVE no idle connection is closed under the SDK; with a 1 s one
    each is, and the SDK resends on a new connection (the call still answers) and counts it."""
    stats = _idle_sdk(gunicorn_server, threads=threads, calls=3)
    assert stats["assign_errors"] == 0, stats
    assert (stats["reconnects"] > 0) is is_reconnecting, stats


def _serve_dev(data_dir: Path, port: int) -> subprocess.Popen[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("SPLITWERK_")
    }
    environment["SPLITWERK_DATA_DIR"] = str(data_dir)
    command = ["serve", "--dev", "--no-demo", "--port", str(port), "--workers", "1"]
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", *command],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until_up(port: int, process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            assert connection.getresponse().status == 200
            connection.close()
            return
        except OSError:
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)


def _redis_processes(folder: Path) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", f"redis-server.*{folder}"], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


@pytest.mark.slow
def test_one_embedded_redis_per_data_folder_even_after_a_kill_9() -> None:
    folder = Path(tempfile.mkdtemp(prefix="sw-serve-"))  # short: it holds a unix socket
    first_port, second_port = free_port(), free_port()
    first = _serve_dev(folder, first_port)
    try:
        _wait_until_up(first_port, first)
        second = _serve_dev(folder, second_port)
        output, _ = second.communicate(timeout=60)
        assert second.returncode != 0
        assert f"another Splitwerk server (pid {first.pid})" in output
        assert len(_redis_processes(folder)) == 1
        _wait_until_up(first_port, first)  # the first one still serves
    finally:
        first.kill()  # kill -9: its redis-server is orphaned
        first.wait()
    orphans = _redis_processes(folder)
    assert len(orphans) == 1
    third = _serve_dev(folder, second_port)
    try:
        _wait_until_up(second_port, third)
        running = _redis_processes(folder)
        assert len(running) == 1
        assert running != orphans
    finally:
        third.terminate()
        third.communicate(timeout=30)
    assert _redis_processes(folder) == []
    shutil.rmtree(folder, ignore_errors=True)
