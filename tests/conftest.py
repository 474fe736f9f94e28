"""Shared fixtures: a real redis-server of the suite's own (unix socket, never port 6379)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import settings as hypothesis_settings

from server.app import create_app
from tests.helpers import app_settings

# Property tests are seeded (derandomize) so a run is repeatable, and have no per-example
# deadline: timing on a shared 2-core machine is not what they test.
hypothesis_settings.register_profile("splitwerk", derandomize=True, deadline=None)
hypothesis_settings.load_profile("splitwerk")


@pytest.fixture(autouse=True, scope="session")
def _scrubbed_environment() -> Iterator[None]:
    """Tests never see the developer's SPLITWERK_* settings."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("SPLITWERK_")}
    for name in saved:
        del os.environ[name]
    yield
    os.environ.update(saved)


class RedisServer:
    """A redis-server child process on a unix socket in a temporary folder."""

    def __init__(self, folder: Path, *extra_arguments: str) -> None:
        self.folder = folder
        self.extra_arguments = extra_arguments  # more redis-server options, e.g. a maxmemory
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; `make test` installs it")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                *self.extra_arguments,
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(unix_socket_path=str(self.socket)).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    # A short folder name: unix socket paths are limited to about 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="sw-redis-"))
    server = RedisServer(folder)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the suite's Redis, flushed before each test."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def app(redis_server: RedisServer, redis_client: redis.Redis):  # type: ignore[no-untyped-def]
    """A fresh app per test against the flushed suite Redis."""
    return create_app(app_settings(redis_server.url))


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def own_redis() -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers with extra options; each is stopped (and resumed first) at the end."""
    started: list[RedisServer] = []

    def start(*options: str) -> RedisServer:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="sw-own-")), *options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)
