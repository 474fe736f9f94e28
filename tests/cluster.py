"""A local Redis Cluster of three masters on free loopback ports (the suite's and the bench's)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import redis
from redis.cluster import RedisCluster

MASTERS = 3  # the smallest cluster Redis accepts without replicas
SLOTS = 16384  # hash slots of every Redis Cluster
BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10,000
START_TIMEOUT = 20.0  # seconds for the nodes to agree on cluster_state:ok on a loaded machine


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (+10,000) are free too (never 6379)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port + BUS_OFFSET < 65_536 and port not in ports and _is_free(port + BUS_OFFSET):
            ports.append(port)
    return ports


class LocalCluster:
    """Three redis-server processes with cluster-enabled, each serving a third of the slots."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = cluster_ports(MASTERS)
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The server's setting: every node as a start-up node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; `make test` installs it")
        for port in self.ports:
            self.processes.append(
                subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(self.folder / f"nodes-{port}.conf"),
                        "--cluster-node-timeout",
                        "2000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--maxmemory-policy",
                        "noeviction",
                        "--enable-debug-command",  # DEBUG SLEEP stalls a node in tests
                        "local",
                        "--dir",
                        str(self.folder),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            self._wait(lambda port=port: self.node(port).ping(), f"node {port}")
        share = SLOTS // MASTERS
        for number, port in enumerate(self.ports):
            last = SLOTS - 1 if number == MASTERS - 1 else (number + 1) * share - 1
            self.node(port).execute_command("CLUSTER ADDSLOTSRANGE", number * share, last)
        for port in self.ports[1:]:
            self.node(self.ports[0]).execute_command("CLUSTER MEET", "127.0.0.1", port)
        for port in self.ports:
            self._wait(lambda port=port: self._is_ok(port), f"cluster_state:ok on {port}")

    def _is_ok(self, port: int) -> bool:
        info = self.node(port).cluster("INFO")  # parsed by redis-py into a dict of strings
        return info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == MASTERS

    @staticmethod
    def _wait(condition: object, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if condition():  # type: ignore[operator]
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def client(self) -> RedisCluster:
        """A plain cluster client for the tests' own checks."""
        return RedisCluster(host="127.0.0.1", port=self.ports[0], socket_timeout=2)

    def flush(self) -> None:
        for port in self.ports:
            self.node(port).flushall()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


class Servers(Protocol):
    """redis-server processes set up in a folder: a LocalCluster, the Sentinel tests' set."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


ServersT = TypeVar("ServersT", bound=Servers)


@contextmanager
def started(make: Callable[[Path], ServersT], prefix: str) -> Iterator[ServersT]:
    """``make(folder)`` in a new temporary folder, started; stopped and the folder removed on
    leaving. A short folder name: a unix socket path is limited to about 107 bytes."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    servers = make(folder)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)
