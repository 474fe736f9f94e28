"""Splitwerk with the demo experiment, served for the example shop's end-to-end tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from server.app import create_app
from server.context import services_of
from server.demo import DEMO_EXPERIMENT, DEMO_KEY, ensure_demo_experiment
from server.storage.store import Store
from tests.helpers import app_settings

ENROLLED = re.compile(r"e:(\d+)")  # the counter field of a variant's enrolled visitors
PAYLOADS: dict[str, dict[str, str]] = {
    variant["key"]: variant["payload"] for variant in DEMO_EXPERIMENT["variants"]
}


@dataclass(frozen=True)
class Splitwerk:
    """A Splitwerk server that is listening: its base URL and its app (for the counters)."""

    url: str
    app: Flask


def splitwerk_app(redis_url: str, *, cors_origins: str = "") -> Flask:
    """A Splitwerk server app with the demo experiment created and started."""
    app = create_app(app_settings(redis_url, CORS_ORIGINS=cors_origins))
    ensure_demo_experiment(store_of(app), time.time())
    return app


def store_of(app: Flask) -> Store:
    """The Redis store of a Splitwerk app."""
    store: Store = services_of(app).store
    return store


def counts(app: Flask) -> dict[str, int]:
    """Every counter of the demo experiment's current phase."""
    store = store_of(app)
    experiment = store.load_experiment(DEMO_KEY)
    assert experiment is not None
    return store.read_counts(DEMO_KEY, experiment.phase)


def enrolled(app: Flask) -> int:
    """How many visitors the demo experiment has enrolled, over all variants."""
    return sum(value for name, value in counts(app).items() if ENROLLED.fullmatch(name))


def variant_index(variant: str) -> int:
    """The position of a demo variant (counter fields name variants by index)."""
    return list(PAYLOADS).index(variant)


def require_events_api(app: Flask) -> None:
    """Skip the test if the server has no POST /v1/events yet."""
    rules: Iterable[Any] = app.url_map.iter_rules()
    if not any(rule.rule == "/v1/events" and "POST" in rule.methods for rule in rules):
        pytest.skip("POST /v1/events not available yet")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` every 20 ms for up to ``timeout`` seconds; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class LateApp:
    """A WSGI app whose target is set after its server listens, so its URL is known first.

    The shop needs Splitwerk's URL and Splitwerk needs the shop's origin (CORS): the shop's
    server starts first with this placeholder.
    """

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)
