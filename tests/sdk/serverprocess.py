"""The real server as a child process (``splitwerk serve``, gunicorn) that tests stop and restart.

Stopping kills the whole process group (master and workers) with SIGKILL: an outage, not a
polite shutdown. Starting again binds the same port, as a restarted server would.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from server.storage import keys
from splitwerk import Client
from tests.helpers import INGEST_TOKEN, SECRET, TOKENS, free_port

ROOT = Path(__file__).resolve().parents[2]
CENTS_PER_ORDER = 1000  # shop_process.REVENUE, "10.00", without tax
START_TIMEOUT = 30.0  # seconds for gunicorn to answer; a loaded 2-core machine needs a few


class ServerProcess:
    """``splitwerk serve`` on 127.0.0.1 with the suite's Redis; ``stop()`` and ``start()``."""

    def __init__(self, redis_url: str, port: int | None = None) -> None:
        self.redis_url = redis_url
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = Path(sys.executable).with_name("splitwerk")
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SPLITWERK_")},
            "SPLITWERK_SECRET_KEY": SECRET,
            "SPLITWERK_TOKENS": TOKENS,
        }
        self.process = subprocess.Popen(
            [
                str(binary),
                "serve",
                "--port",
                str(self.port),
                "--redis-url",
                self.redis_url,
                "--workers",
                "1",
                "--threads",
                "8",
                "--no-demo",
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() kills the workers too
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.is_up():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the server did not start")

    def is_up(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
        try:
            connection.request("GET", "/v1/config")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None


class Counts:
    """The server's counters of one experiment, read from Redis."""

    def __init__(self, redis_client: redis.Redis, key: str = "checkout-button") -> None:
        self.redis = redis_client
        self.key = key

    def total(self, prefix: str, goal: str) -> int:
        raw = self.redis.hgetall(keys.counts(self.key, 1))
        return sum(
            int(value)
            for name, value in raw.items()
            if name.decode().startswith(f"{prefix}:")
            and name.decode().count(":") == 2
            and name.decode().endswith(f":{goal}")
        )


def client_for(url: str, **options: Any) -> Client:
    settings: dict[str, Any] = {
        "ingest_key": INGEST_TOKEN,
        "poll_interval": None,
        "timeout": 5.0,
        "flush_interval": 0.1,
        "retry_backoff": 0.05,  # doubling: 0.05, 0.1, ... 1.6 s by the end of the outage
        "background_timeout": 1.0,
        "handle_sigterm": False,
    }
    settings.update(options)
    return Client(url, **settings)


def enrol(url: str, visitors: list[str]) -> None:
    with client_for(url) as client:
        for visitor in visitors:
            assert client.assign(visitor, ["checkout-button"])["checkout-button"].enrolled
