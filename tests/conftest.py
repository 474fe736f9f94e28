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
from typing import Any

import pytest
import redis
from hypothesis import settings as hypothesis_settings

from server.app import create_app
from tests.cluster import LocalCluster, started
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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A local Redis Cluster of three masters, started once for the whole run."""
    with started(LocalCluster, "sw-cluster-") as cluster:
        yield cluster


BACKENDS = ("single", "cluster")  # the Redis setups of tests marked both_redis


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests marked ``both_redis`` once against one Redis and once against the cluster,
    unless they handle a Redis server themselves (stop it, start their own)."""
    if metafunc.definition.get_closest_marker("both_redis") is None:
        return
    if {"redis_server", "own_redis"} & set(metafunc.fixturenames):
        return
    if {"app", "redis_client", "redis_url"} & set(metafunc.fixturenames):
        metafunc.parametrize("redis_backend", BACKENDS, indirect=True)


@pytest.fixture
def redis_backend(request: pytest.FixtureRequest) -> str:
    """The test's Redis: "single" (the suite's one Redis) or "cluster" (both_redis tests)."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, redis_backend: str) -> str:
    """The REDIS_URL of the test's backend."""
    if redis_backend == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def redis_client(request: pytest.FixtureRequest, redis_backend: str) -> Iterator[Any]:
    """A client of the test's Redis (or cluster), flushed before each test."""
    if redis_backend == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        client: Any = cluster.client()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = server.client()
        client.flushall()
    yield client
    client.close()


@pytest.fixture
def app(redis_url: str, redis_client: Any):  # type: ignore[no-untyped-def]
    """A fresh app per test against the flushed suite Redis (or cluster)."""
    return create_app(app_settings(redis_url))


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
