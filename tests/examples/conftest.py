"""A live Splitwerk server (real HTTP, the suite's Redis) for the example shop's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from server.context import services_of
from tests.conftest import RedisServer
from tests.examples.live import Splitwerk, splitwerk_app
from tests.helpers import LiveServer


@pytest.fixture
def splitwerk(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[Splitwerk]:
    """Splitwerk on a free loopback port with the demo experiment running."""
    app = splitwerk_app(redis_server.url)
    with LiveServer(app) as server:
        yield Splitwerk(server.url, app)
    services_of(app).store.close()
