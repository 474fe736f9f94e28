"""Store behaviour that the API tests do not reach: script reloads, Redis failures and the
pinned connections of the hot paths."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from server.core.models import Attribution, Enrolment, GoalKind, GoalValue
from server.storage import keys
from server.storage.clients import connect
from server.storage.errors import StorageUnavailable
from server.storage.store import Store


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


def test_enrolled_reads_each_phase_and_sub_shard_and_answers_per_experiment_phase(
    redis_server: Any,
) -> None:
    store = store_for(redis_server.url)
    visitors = [f"v{n}" for n in range(12)]
    store.enrol(
        [Enrolment("split", 1, v, 0, (), (), shards=3) for v in visitors[::2]], "2026-12-04", 50
    )
    store.enrol([Enrolment("exp", 1, v, 1, (), ()) for v in visitors[:3]], "2026-12-04", 50)
    store.enrol([Enrolment("exp", 2, "v9", 1, (), ())], "2026-12-04", 50)
    # the even visitors lie in several of the three sub-shards
    assert len({keys.visitor_shard("split", v, 3) for v in visitors[::2]}) > 1
    wanted = [
        ("split", 1, 3, visitors),
        ("exp", 1, 1, [*visitors[1:5], "v1"]),  # a visitor named twice: one answer
        ("exp", 2, 1, visitors),  # another phase: only its own enrolments
        ("exp", 1, 1, []),
        ("none", 1, 1, ["v1"]),
    ]
    assert store.enrolled(wanted) == [set(visitors[::2]), {"v1", "v2"}, {"v9"}, set(), set()]


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
        lambda: store.enrolled([("exp", 1, 1, ["v"])]),
        # an event batch: no connection to pin (the stream's fallback), nor through the pool
        lambda: store.record_events(
            [[Attribution("exp", 1, "v", "c:v:1", "2026-11-25", ("source",), ())]],
            0.0,
            60,
            today="2026-11-25",
            daily_conversions=50,
            total_limit=100,
        ),
    ]
    for operation in operations:
        with pytest.raises(StorageUnavailable):
            operation()


def connections_received(client: redis.Redis) -> int:
    """Connections Redis has accepted since it started (INFO stats)."""
    return int(client.info("stats")["total_connections_received"])


def test_hot_path_commands_reuse_one_pinned_connection(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    store = store_for(redis_server.url)
    store.enrol([enrolment("first", 0)], "2026-11-25", 50)
    before = connections_received(redis_client)
    for number in range(50):
        store.enrol([enrolment(f"v{number}", number % 2)], "2026-11-25", 50)
    assert connections_received(redis_client) == before
    assert store.read_counts("exp", 1)["e:0"] + store.read_counts("exp", 1)["e:1"] == 51


def test_the_enrolment_read_takes_a_pinned_connection_and_the_pipeline_after_an_error(
    redis_server: Any, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_for(redis_server.url)
    store.enrol([enrolment("v1", 0), enrolment("v2", 1)], "2026-11-25", 50)
    pipelines: list[int] = []
    original = redis.client.Pipeline.execute

    def spied(self: Any, *args: Any, **kwargs: Any) -> Any:
        pipelines.append(len(self.command_stack))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", spied)
    wanted = [("broken", 1, 1, ["v1"]), ("exp", 1, 1, ["v1", "v3"]), ("exp", 1, 1, ["v2"])]
    assert store.enrolled(wanted[1:]) == [{"v1"}, {"v2"}]
    assert not pipelines  # one round trip on a pinned connection, no pipeline
    redis_client.set(keys.enrolments("broken", 1), "not a hash")
    # an error reply in the middle: the pinned connection is dropped (replies after it are
    # unread) and the pipeline runs the reads, whose error is the caller's
    with pytest.raises(StorageUnavailable):
        store.enrolled(wanted)
    assert pipelines == [3]
    # no reply of before is read now (those of the two HMGETs after the error were not)
    assert store.enrolled([("exp", 1, 1, ["v3", "v2", "v1"])]) == [{"v1", "v2"}]
    assert pipelines == [3]


def test_threads_get_their_own_pinned_connections_and_count_correctly(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    store = store_for(redis_server.url)
    visitors = [f"v{number}" for number in range(200)]

    def enrol_all(offset: int) -> list[int | None]:
        # every thread enrols every visitor, starting at a different place
        order = visitors[offset:] + visitors[:offset]
        return [
            store.enrol([enrolment(visitor, 1)], "2026-11-25", 50)[0].variant_index
            for visitor in order
        ]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(enrol_all, [0, 50, 100, 150]))
    assert all(index == 1 for result in results for index in result)
    assert store.read_counts("exp", 1)["e:1"] == len(visitors)  # each counted once


def test_a_pinned_connection_recovers_after_redis_restarts(redis_server: Any) -> None:
    store = store_for(redis_server.url)
    store.enrol([enrolment("before", 0)], "2026-11-25", 50)
    redis_server.stop()
    try:
        with pytest.raises(StorageUnavailable):
            store.enrol([enrolment("during", 0)], "2026-11-25", 50)
    finally:
        redis_server.start()
    (outcome,) = store.enrol([enrolment("after", 1)], "2026-11-25", 50)
    assert (outcome.variant_index, outcome.is_new) == (1, True)


def test_a_forked_child_opens_its_own_connection(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    store = store_for(redis_server.url)
    store.enrol([enrolment("parent", 0)], "2026-11-25", 50)
    before = connections_received(redis_client)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which exits at once
        try:
            (outcome,) = store.enrol([enrolment("child", 1)], "2026-11-25", 50)
            os._exit(0 if outcome.is_new else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's socket was not shared: the child connected anew, and the parent goes on
    assert connections_received(redis_client) == before + 1
    (again,) = store.enrol([enrolment("parent", 0)], "2026-11-25", 50)
    assert (again.variant_index, again.is_new) == (0, False)


def test_within_one_call_an_event_sees_what_the_events_before_it_wrote(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    # record_event.lua reads a call's records and idempotency scores in one command each and
    # keeps its own writes in hand until the end: an event must still see the ones before it
    store = store_for(redis_server.url)
    store.enrol([enrolment("v", 1), enrolment("w", 1)], "2026-11-25", 50)
    purchase = (GoalValue("purchase", GoalKind.CONVERSION, 0),)

    def sent(visitor: str, event: str, digest: int) -> Attribution:
        member = keys.conversion_member(visitor, event)
        return Attribution(
            "exp", 1, visitor, member, "2026-11-25", ("source",), purchase, digest=digest
        )

    group = [
        sent("v", "e1", 7),
        sent("v", "e1", 7),  # the same event again: a replay of the first
        sent("v", "e1", 8),  # the same id with other content: a conflict
        sent("v", "e2", 7),  # another event of the visitor: over today's limit of 1
        sent("w", "e1", 7),  # another visitor's: counts
    ]
    replies = store.record_events(
        [group], time.time(), 86_400, today="2026-11-25", daily_conversions=1, total_limit=10**9
    )
    assert replies == [1, 2, -4, -3, 1]
    assert int(redis_client.hget(keys.counts("exp", 1), "n:1:purchase") or 0) == 2
    assert redis_client.zcard(keys.seen("exp", 1)) == 2


def test_a_call_larger_than_one_read_command_reads_every_part(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    # record_event.lua reads a call's records and scores in parts of 1,000 (read_all); the
    # API sends at most 500 events a call, so only the store reaches the second part
    store = Store(
        connect(redis_server.url, socket_timeout=5, connect_timeout=1, retries=1, max_connections=4)
    )
    visitors = [f"v{n}" for n in range(1_001)]
    store.enrol([enrolment(visitor, n % 2) for n, visitor in enumerate(visitors)], "2026-11-25", 50)
    purchase = (GoalValue("purchase", GoalKind.CONVERSION, 0),)
    group = [
        Attribution(
            "exp",
            1,
            visitor,
            keys.conversion_member(visitor, "e1"),
            "2026-11-25",
            ("source",),
            purchase,
            digest=7,
        )
        for visitor in visitors
    ]
    group.append(Attribution("exp", 1, "nobody", "c:nobody:e1", "2026-11-25", ("source",), ()))

    def record() -> list[int]:
        return store.record_events(
            [group],
            time.time(),
            86_400,
            today="2026-11-25",
            daily_conversions=50,
            total_limit=10**9,
        )

    assert record() == [1] * 1_001 + [-1]  # the last visitor's record is in the second part
    assert record() == [2] * 1_001 + [-1]  # and so is the last event's score: a replay
    counted = redis_client.hget(keys.counts("exp", 1), "n:1:purchase")
    assert int(counted or 0) == 500  # odd visitors are in variant 1
