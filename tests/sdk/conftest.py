"""Fixtures for the SDK tests."""

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from server.app import create_app
from tests.helpers import EDITOR, app_settings

from .fakeserver import FakeServer
from .serverprocess import ServerProcess


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.stop()


@pytest.fixture
def real_server(redis_server: Any, redis_client: redis.Redis) -> Iterator[ServerProcess]:
    admin = create_app(app_settings(redis_server.url)).test_client()
    body = {
        "key": "checkout-button",
        "name": "Checkout button",
        "variants": [{"key": "control"}, {"key": "green"}],
        "goals": [
            {"key": "purchase", "kind": "revenue", "primary": True},
            {"key": "add_to_cart"},
        ],
    }
    assert admin.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201
    assert admin.post("/v1/experiments/checkout-button/start", headers=EDITOR).status_code == 200
    process = ServerProcess(redis_server.url)
    process.start()
    yield process
    process.stop()
