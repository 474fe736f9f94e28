"""Constants and small helpers shared by the tests."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import redis
from werkzeug.serving import make_server

from server.storage import keys

SPEC_DIR = Path(__file__).resolve().parents[1] / "spec"  # the repository's copy of the contract
SECRET = "test-secret-key-that-is-long-enough-0123456789"
EDITOR_TOKEN = "editor-token-for-tests"
VIEWER_TOKEN = "viewer-token-for-tests"
PREVIEW_TOKEN = "preview-token-for-tests"
INGEST_TOKEN = "ingest-token-for-tests"


def _entry(role: str, name: str, token: str) -> str:
    return f"{role}:{name}:{hashlib.sha256(token.encode()).hexdigest()}"


TOKENS = ",".join(
    [
        _entry("editor", "erika", EDITOR_TOKEN),
        _entry("viewer", "viktor", VIEWER_TOKEN),
        _entry("preview", "qa", PREVIEW_TOKEN),
        _entry("ingest", "shop", INGEST_TOKEN),
    ]
)


def app_settings(redis_url: str, **overrides: object) -> dict[str, object]:
    """Settings for create_app() in tests: the suite's Redis, fixed secret and tokens."""
    settings: dict[str, object] = {
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET,
        "TOKENS": TOKENS,
        "TESTING": True,
        # A shared 2-core machine can starve a request of CPU for longer than the production
        # budget; the tests of the budget itself set it back (tests/storage/test_connection.py).
        "REDIS_REQUEST_TIMEOUT": 1.0,
    }
    settings.update(overrides)
    return settings


def auth(token: str) -> dict[str, str]:
    """An Authorization header with a bearer token."""
    return {"Authorization": f"Bearer {token}"}


EDITOR = auth(EDITOR_TOKEN)
VIEWER = auth(VIEWER_TOKEN)


class LiveServer:
    """A real HTTP server on 127.0.0.1 (a free port) running a WSGI app in a thread."""

    def __init__(self, app: Any) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._thread.join(5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def enrolled_total(redis_client: redis.Redis, experiment: str = "checkout-button") -> int:
    """Visitors enrolled in phase 1 of an experiment over all variants (its e:<variant> counts)."""
    counts = redis_client.hgetall(keys.counts(experiment, 1))
    return sum(int(v) for k, v in counts.items() if k.decode().count(":") == 1)


SERVE_START_TIMEOUT = 30.0  # seconds for `splitwerk serve` to answer; a loaded 2-core machine
SERVE_STOP_TIMEOUT = 10.0  # seconds after SIGTERM before the process group is killed


@contextlib.contextmanager
def serving(redis_url: str, log: Path, **settings: str) -> Iterator[str]:
    """`splitwerk serve` (gunicorn, the production path) on a free port; yields its base URL."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SPLITWERK_SECRET_KEY": SECRET,
        "SPLITWERK_TOKENS": TOKENS,
        **{f"SPLITWERK_{name}": value for name, value in settings.items()},
    }
    command = [sys.executable, "-c", "from server.cli import main; main()", "serve"]
    options = ["--host", "127.0.0.1", "--port", str(port), "--redis-url", redis_url]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, *options, "--workers", "1", "--threads", "4"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,  # its own process group: the gunicorn workers stop with it
        )
        try:
            _wait_until_answering(process, port, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(SERVE_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(SERVE_STOP_TIMEOUT)


def _wait_until_answering(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"splitwerk serve exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            finally:
                connection.close()
        time.sleep(0.1)
    raise RuntimeError(f"splitwerk serve did not answer: {log.read_text()[-2000:]}")


class DeadRedis:
    """A TCP listener in the place of Redis: it reads what a client sends, answers nothing and
    hangs up, counting connections and the commands they carried (RESP arrays)."""

    SETTLE = 0.1  # seconds without a new connection before reset() reads the counts

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = 0
        self.commands: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            with connection:
                connection.settimeout(1.0)
                try:
                    received = connection.recv(65536)
                except OSError:
                    received = b""
            with self._lock:
                self.connections += 1
                self.commands.extend(_command_names(received))

    def reset(self) -> tuple[int, list[str]]:
        """(connections, command names) since the last reset, once the counts have stood
        still for ``SETTLE`` seconds: a client gives up when the listener hangs up, which
        is a moment before the listener's thread counts that connection."""
        deadline = time.monotonic() + 5 * DeadRedis.SETTLE
        last = -1
        while time.monotonic() < deadline:
            with self._lock:
                current = self.connections
            if current == last:
                break
            last = current
            time.sleep(DeadRedis.SETTLE)
        with self._lock:
            seen = (self.connections, self.commands)
            self.connections, self.commands = 0, []
        return seen

    def close(self) -> None:
        self._listener.close()
        self._thread.join(5)


def _command_names(received: bytes) -> list[str]:
    """The names of the RESP commands in ``received`` (arrays of bulk strings)."""
    names, lines, index = [], received.split(b"\r\n"), 0
    while index < len(lines) and lines[index].startswith(b"*"):
        count = int(lines[index][1:])
        arguments = lines[index + 2 : index + 2 * count + 1 : 2]
        names.append(b" ".join(arguments[:1]).decode().upper())
        index += 2 * count + 1
    return names


def seed_guardrail_traffic(
    client: Any, experiment: str, rates: dict[str, float], visitors: int, seed: int
) -> None:
    """Enrol ``visitors`` through /v1/assign; each converts on the goal "returned" with its
    variant's rate in ``rates`` and on "purchase" at 30 % (seeded; issue 21's guardrails)."""
    import random

    generator = random.Random(seed)
    events = []
    for number in range(visitors):
        visitor = f"{experiment}-{seed}-{number}"
        answer = client.post("/v1/assign", json={"visitor": visitor, "experiments": [experiment]})
        variant = answer.json["assignments"][experiment]["variant"]
        if generator.random() < 0.3:
            events.append({"type": "conversion", "id": f"p-{visitor}", "visitor": visitor,
                           "goal": "purchase"})  # fmt: skip
        if generator.random() < rates[variant]:
            events.append({"type": "conversion", "id": f"r-{visitor}", "visitor": visitor,
                           "goal": "returned"})  # fmt: skip
    for start in range(0, len(events), 500):
        answer = client.post("/v1/events", json={"events": events[start : start + 500]})
        assert answer.status_code == 200 and answer.json["rejected"] == 0, answer.json


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module named ``name`` (scripts/ is not a package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def record_totals(record: bytes) -> dict[str, str]:
    """A visitor's totals in their enrolment record (the extra "\x1eg:<name>=<value>;…",
    server/storage/keys.py) as a dict; empty without any."""
    extras = record.decode().split("\x1e")[1:]
    packed = next((extra[2:] for extra in extras if extra.startswith("g:")), "")
    return dict(entry.split("=", 1) for entry in packed.split(";") if entry)
