"""Fixtures for the SDK tests."""

from collections.abc import Iterator

import pytest

from .fakeserver import FakeServer


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.stop()
