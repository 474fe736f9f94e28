"""Constants and small helpers shared by the tests."""

from __future__ import annotations

import hashlib
import socket
import threading
from pathlib import Path
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
