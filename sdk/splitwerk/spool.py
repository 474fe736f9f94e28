"""The optional durable spool: queued orders and refunds in SQLite, so a crash loses none.

Each process writes its own database in the spool folder, ``spool-<pid>-<random>.db``, and
holds an exclusive ``flock`` on the ``.lock`` file beside it for as long as it lives. The
kernel releases that lock when the process ends in any way, ``kill -9`` included, so a lock
that can be taken marks a database whose owner is gone: any other process using the folder
(a sibling worker, or the shop's next start) adopts its rows and sends them. Rows are
deleted once the server has answered for them. Redelivery is safe: every event carries the
id it got when it was queued, and the server counts an id once.

WAL journal with ``synchronous=NORMAL``: a commit is a write into the OS's page cache, about
0.1-0.2 ms (measured), and survives the process being killed (not a power cut). POSIX
only (``fcntl``); every spool failure is logged and the events stay in memory.
"""

import logging
import os
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

from splitwerk.errors import ConfigError

log = logging.getLogger(__name__)

PREFIX = "spool-"  # file names: spool-<pid>-<random>.db and .lock
BUSY_TIMEOUT_MS = 200  # another process adopting our rows never holds the database longer
SPOOL_ERRORS = (sqlite3.Error, OSError)  # what a spool operation may raise; all are logged

Row = tuple[int, int, bytes, float]  # spool id, priority, event JSON, queued at (unix seconds)


def check_folder(folder: object) -> Path:
    """Return the spool folder as a ``Path``, created if missing; ``ConfigError`` if unusable."""
    if not isinstance(folder, (str, os.PathLike)):
        raise ConfigError(f"spool_dir must be a folder path, not {folder!r}")
    try:
        import fcntl  # noqa: F401  (POSIX only: checked here so that the error is early)
    except ImportError as error:
        raise ConfigError("spool_dir needs a POSIX system (fcntl)") from error
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"spool_dir {str(path)!r} cannot be created: {error}") from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"spool_dir {str(path)!r} is not writable")
    return path


class Spool:
    """This process's spool database, opened on first use (again in a forked child)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._pid = -1  # the process that opened the files below; -1: not opened
        self._database: sqlite3.Connection | None = None
        self._lock_file: int | None = None
        self._name = ""
        self._is_closed = False  # after close(), late calls of the sender thread do nothing

    def add(self, priority: int, body: bytes, queued_at: float) -> int | None:
        """Store one event; return its spool id, or ``None`` if the spool failed (logged)."""
        if self._is_closed:
            return None
        try:
            with self._lock:
                database = self._open()
                with database:
                    cursor = database.execute(
                        "INSERT INTO events (priority, body, queued_at) VALUES (?, ?, ?)",
                        (priority, body, queued_at),
                    )
                return cursor.lastrowid
        except SPOOL_ERRORS as error:
            log.error("splitwerk: spool write failed, the event is kept in memory: %r", error)
            return None

    def remove(self, ids: list[int]) -> None:
        """Delete events the server has answered for (or that were given up)."""
        if not ids or self._is_closed:
            return
        try:
            with self._lock:
                database = self._open()
                with database:
                    database.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
        except SPOOL_ERRORS as error:
            log.error("splitwerk: spool delete failed (they may be sent again): %r", error)

    def adopt(self) -> list[Row]:
        """Move the rows of spools whose process is gone into this one; return them."""
        import fcntl

        adopted: list[Row] = []
        if self._is_closed:
            return adopted
        try:
            with self._lock:
                database = self._open()
                for lock_path in sorted(self.folder.glob(f"{PREFIX}*.lock")):
                    if lock_path.stem == self._name:
                        continue
                    adopted.extend(self._adopt_one(database, lock_path, fcntl))
                for unseen in self.folder.glob(f"{PREFIX}*.new"):
                    _remove_if_unheld(unseen, fcntl)
        except SPOOL_ERRORS as error:
            log.error("splitwerk: adopting spooled events failed: %r", error)
        if adopted:
            log.warning("splitwerk: resending %d spooled events of an ended process", len(adopted))
        # In the order they were queued, across files: an order before its refund.
        return sorted(adopted, key=lambda row: row[3])

    def _adopt_one(self, database: sqlite3.Connection, lock_path: Path, fcntl: Any) -> list[Row]:
        descriptor = os.open(lock_path, os.O_RDWR)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []  # its process is alive and sends them itself
            path = lock_path.with_suffix(".db")
            rows: list[tuple[int, bytes, float]] = []
            if path.exists():
                other = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
                try:
                    rows = other.execute(
                        "SELECT priority, body, queued_at FROM events ORDER BY id"
                    ).fetchall()
                except sqlite3.OperationalError:
                    rows = []  # created but never initialised: nothing was stored
                finally:
                    other.close()
            moved: list[Row] = []
            with database:
                for priority, body, queued_at in rows:
                    cursor = database.execute(
                        "INSERT INTO events (priority, body, queued_at) VALUES (?, ?, ?)",
                        (priority, body, queued_at),
                    )
                    assert cursor.lastrowid is not None
                    moved.append((cursor.lastrowid, priority, body, queued_at))
            # Ours now (committed above), so the old files go; a crash in between only
            # means the rows are sent twice, which the event ids make harmless.
            for suffix in (".db", ".db-wal", ".db-shm", ".lock"):
                lock_path.with_suffix(suffix).unlink(missing_ok=True)
            return moved
        finally:
            os.close(descriptor)

    def _open(self) -> sqlite3.Connection:
        """This process's database; in a forked child, new files (the parent keeps its own)."""
        if self._database is not None and self._pid == os.getpid():
            return self._database
        import fcntl

        # A forked child leaves the parent's connection alone (SQLite forbids using it across
        # fork) and closes only its copy of the lock descriptor, which keeps the parent's lock.
        if self._lock_file is not None and self._pid != os.getpid():
            os.close(self._lock_file)
        self._database = None
        self._lock_file = None
        self._name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # Locked under a name adopters do not look at, then renamed: a lock file that another
        # process can see is always held, so it is never taken for an ended process's.
        unseen = self.folder / f"{self._name}.new"
        descriptor = os.open(unseen, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        unseen.replace(self.folder / f"{self._name}.lock")
        database = sqlite3.connect(
            self.folder / f"{self._name}.db",
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,  # the host's threads add, the sender thread removes
        )
        database.execute("PRAGMA journal_mode=WAL")
        database.execute("PRAGMA synchronous=NORMAL")
        database.execute(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " priority INTEGER NOT NULL, body BLOB NOT NULL, queued_at REAL NOT NULL)"
        )
        self._lock_file = descriptor
        self._database = database
        self._pid = os.getpid()
        return database

    def close(self) -> None:
        """Close this process's database and unlock it: another process may adopt its rows."""
        with self._lock:
            self._is_closed = True
            if self._database is None or self._pid != os.getpid():
                return
            try:
                (left,) = self._database.execute("SELECT COUNT(*) FROM events").fetchone()
                self._database.close()
                if not left:
                    for suffix in (".db", ".db-wal", ".db-shm"):
                        (self.folder / f"{self._name}{suffix}").unlink(missing_ok=True)
                    (self.folder / f"{self._name}.lock").unlink(missing_ok=True)
            except SPOOL_ERRORS as error:
                log.error("splitwerk: closing the spool failed: %r", error)
            finally:
                if self._lock_file is not None:
                    os.close(self._lock_file)
                self._database = None
                self._lock_file = None
                self._pid = -1


def _remove_if_unheld(path: Path, fcntl: Any) -> None:
    """Remove a lock file that a process died with before it was renamed (nothing in it)."""
    try:
        descriptor = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return  # renamed or removed meanwhile
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except BlockingIOError:
        pass  # a living process is just starting its spool
    finally:
        os.close(descriptor)
