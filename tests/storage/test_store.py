"""Store behaviour that the API tests do not reach: script reloads and Redis failures."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from server.core.models import Enrolment
from server.storage.errors import StorageUnavailable
from server.storage.store import Store, connect


def store_for(url: str) -> Store:
    return Store(
        connect(url, socket_timeout=0.25, connect_timeout=0.25, retries=1, max_connections=4)
    )


def enrolment(visitor: str, variant: int | None) -> Enrolment:
    return Enrolment("exp", 1, visitor, variant, ("source",), ("facebook",))


@pytest.mark.parametrize("batch", [1, 3])
def test_scripts_are_reloaded_after_redis_forgot_them(
    redis_server: Any, redis_client: redis.Redis, batch: int
) -> None:
    store = store_for(redis_server.url)
    store.enrol([enrolment("warm", 0)], "2026-11-25", 50)
    redis_client.script_flush()
    outcomes = store.enrol([enrolment(f"v{i}", 1) for i in range(batch)], "2026-11-25", 50)
    assert all(outcome.is_new and outcome.variant_index == 1 for outcome in outcomes)


def test_enrol_counts_once_and_look_up_does_not_enrol(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    store = store_for(redis_server.url)
    first, again, lookup = store.enrol(
        [enrolment("v", 1), enrolment("v", 0), enrolment("w", None)], "2026-11-25", 50
    )
    assert (first.variant_index, first.is_new) == (1, True)
    assert (again.variant_index, again.is_new) == (1, False)
    assert lookup.variant_index is None
    assert store.read_counts("exp", 1)["e:1"] == 1


def test_every_operation_turns_a_dead_redis_into_storage_unavailable(tmp_path: Any) -> None:
    store = store_for(f"unix://{tmp_path}/missing.sock")
    operations = [
        store.ping,
        store.versions,
        store.load_experiments,
        lambda: store.load_experiment("exp"),
        lambda: store.enrol([enrolment("v", 0)], "2026-11-25", 50),
        lambda: store.read_counts("exp", 1),
        lambda: store.audit_trail("exp", 10),
        lambda: store.expire_visitor_records("exp", 1, 60),
    ]
    for operation in operations:
        with pytest.raises(StorageUnavailable):
            operation()
