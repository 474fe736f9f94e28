"""Store.record_events sends each experiment's script the moment it is built (one Redis).

An event batch of the shop mix counts in five experiments: five script calls. They leave one by
one while the next is built, so Redis runs one while this process builds the next, and the
replies are read when all are sent. These tests check that overlap against a real Redis, and
what it must not break: the order of the replies (sub-shards included), a stalled or restarted
Redis, a flushed script cache, a batch Redis refuses in part, and every pinned connection busy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis

from server.core.models import Attribution, Enrolment, GoalKind, GoalValue
from server.storage import keys
from server.storage.clients import connect
from server.storage.errors import OutcomeUnknown, StorageUnavailable
from server.storage.store import Store
from tests.conftest import RedisServer

EXPERIMENTS = ("exp-a", "exp-b", "exp-c")
DAY = "2026-12-04"
WINDOW = 30 * 86_400  # seconds of idempotency
SEEN_WITHIN = 2.0  # seconds a sent script may take to show up in Redis's statistics


def store_for(server: RedisServer) -> Store:
    return Store(
        connect(server.url, socket_timeout=0.25, connect_timeout=0.25, retries=1, max_connections=4)
    )


def enrol(store: Store, visitors: Sequence[str], experiments: Sequence[str] = EXPERIMENTS) -> None:
    outcomes = store.enrol(
        [
            Enrolment(experiment, 1, visitor, 1, ("source",), ("facebook",))
            for experiment in experiments
            for visitor in visitors
        ],
        DAY,
        50,
    )
    assert all(outcome.is_new for outcome in outcomes)


def conversion(experiment: str, visitor: str, event: str, shards: int = 1) -> Attribution:
    return Attribution(
        experiment,
        1,
        visitor,
        keys.conversion_member(visitor, event),
        DAY,
        ("source",),
        (GoalValue("purchase", GoalKind.CONVERSION, 0),),
        digest=7,
        shards=shards,
    )


def record(store: Store, groups: Any) -> list[int]:
    return store.record_events(
        groups, time.time(), WINDOW, today=DAY, daily_conversions=50, total_limit=10**9
    )


def events_counted(client: redis.Redis, experiment: str, shards: int = 1) -> int:
    """Events of the purchase goal counted in variant 1, over the experiment's sub-shards."""
    return sum(
        int(
            client.hget(keys.counts(keys.sub_shard(experiment, shard, shards), 1), "n:1:purchase")
            or 0
        )
        for shard in range(shards)
    )


def counted_in_each(client: redis.Redis) -> list[int]:
    """Events counted in each of EXPERIMENTS (variant 1, purchase goal)."""
    return [events_counted(client, experiment) for experiment in EXPERIMENTS]


def script_calls(client: redis.Redis) -> int:
    """Scripts Redis has run since it started (INFO commandstats)."""
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_each_experiments_script_runs_while_the_next_is_built(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    store, side = store_for(server), server.client()
    enrol(store, ["v1", "v2"])
    record(store, [[conversion("exp-a", "v1", "warm")]])  # loads the script
    ran_before_next: list[bool] = []

    def groups() -> Iterator[list[Attribution]]:
        for number, experiment in enumerate(EXPERIMENTS):
            if number:  # the previous experiment's script has left: Redis runs it now
                deadline = time.monotonic() + SEEN_WITHIN
                while script_calls(side) < calls_before + number and time.monotonic() < deadline:
                    time.sleep(0.005)
                ran_before_next.append(script_calls(side) >= calls_before + number)
            yield [conversion(experiment, "v1", "e1"), conversion(experiment, "v2", "e1")]

    calls_before = script_calls(side)
    assert record(store, groups()) == [1] * 6
    assert ran_before_next == [True, True]
    assert counted_in_each(side) == [3, 2, 2]


def test_replies_keep_the_order_of_the_attributions_across_sub_shards(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    store, side = store_for(server), server.client()
    visitors = [f"v{number}" for number in range(24)]
    enrolled = visitors[::2]  # every other visitor: the rest answer -1, not enrolled
    store.enrol(
        [
            Enrolment("sharded", 1, visitor, 1, ("source",), ("facebook",), shards=3)
            for visitor in enrolled
        ],
        DAY,
        50,
    )
    enrol(store, enrolled[:3], ["plain"])
    groups = [
        [conversion("sharded", visitor, "e1", shards=3) for visitor in visitors],
        [conversion("plain", visitor, "e1") for visitor in visitors[:6]],
    ]
    # the visitors of the sharded experiment lie in all three sub-shards, interleaved
    assert len({keys.visitor_shard("sharded", visitor, 3) for visitor in visitors}) == 3
    expected = [1 if visitor in enrolled else -1 for visitor in visitors]
    expected += [1 if visitor in enrolled[:3] else -1 for visitor in visitors[:6]]
    assert record(store, groups) == expected
    assert events_counted(side, "sharded", 3) == len(enrolled)
    assert events_counted(side, "plain") == 3


def test_a_stall_in_the_middle_answers_unknown_and_the_connection_stays_in_step(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis("--enable-debug-command", "yes")
    store, side = store_for(server), server.client()
    enrol(store, ["v1", "v2"])
    record(store, [[conversion("exp-a", "v1", "warm")]])
    sleeper = threading.Thread(
        target=lambda: server.client().execute_command("DEBUG", "SLEEP", "0.6")
    )

    def groups() -> Iterator[list[Attribution]]:
        yield [conversion("exp-a", "v1", "e1"), conversion("exp-a", "v2", "e1")]
        sleeper.start()  # Redis sleeps before it reads the next scripts
        time.sleep(0.05)
        yield [conversion("exp-b", "v1", "e1")]
        yield [conversion("exp-c", "v1", "e1")]

    with store.budget(0.3), pytest.raises(OutcomeUnknown):
        record(store, groups())
    sleeper.join()
    # the scripts ran after the sleep, each once; the next batch reads its own replies (a
    # connection out of step would hand it three of the old ones)
    assert counted_in_each(side) == [3, 1, 1]
    again = [[conversion("exp-b", "v1", "e1")], [conversion("exp-c", "v2", "e2")]]
    assert record(store, again) == [2, 1]  # a replay of the first send, a new event


def test_a_restarted_redis_gets_the_batch_on_a_new_connection(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    store = store_for(server)
    enrol(store, ["v1"])
    assert (
        record(store, [[conversion(experiment, "v1", "e1")] for experiment in EXPERIMENTS])
        == [1] * 3
    )
    server.stop()
    server.start()  # empty, its script cache too; the pinned connection's socket is dead
    side = server.client()
    enrol(store_for(server), ["v1"])
    groups = [[conversion(experiment, "v1", "e2")] for experiment in EXPERIMENTS]
    assert record(store, groups) == [1] * 3
    assert counted_in_each(side) == [1, 1, 1]


def test_a_flushed_script_cache_runs_the_batch_again_and_counts_each_event_once(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    store, side = store_for(server), server.client()
    enrol(store, ["v1"])
    record(store, [[conversion("exp-a", "v1", "warm")]])
    side.script_flush()
    groups = [[conversion(experiment, "v1", "e1")] for experiment in EXPERIMENTS]
    assert record(store, groups) == [1] * 3
    assert counted_in_each(side) == [2, 1, 1]


@pytest.mark.parametrize("is_loaded", [True, False], ids=["streamed", "after-a-reload"])
def test_a_batch_redis_refuses_in_part_answers_unknown_and_counts_the_rest_once(
    own_redis: Callable[..., RedisServer], is_loaded: bool
) -> None:
    server = own_redis()
    store, side = store_for(server), server.client()
    enrol(store, ["v1", "v2"])
    if is_loaded:  # else Redis answers the batch "no such script" and it runs again
        record(store, [[conversion("exp-c", "v2", "warm")]])
    side.set(keys.counts("exp-b", 1), "not a hash")  # exp-b's script refuses before writing
    groups = [[conversion(experiment, "v1", "e1")] for experiment in EXPERIMENTS]
    with pytest.raises(OutcomeUnknown):
        record(store, groups)
    warm = 1 if is_loaded else 0
    assert [events_counted(side, experiment) for experiment in ("exp-a", "exp-c")] == [1, 1 + warm]
    side.delete(keys.counts("exp-b", 1))
    assert record(store, groups) == [2, 1, 2]  # the sender's retry: exp-b counts now, once
    assert counted_in_each(side) == [1, 1, 1 + warm]


def test_a_batch_redis_refuses_whole_is_unavailable_and_writes_nothing(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    store, side = store_for(server), server.client()
    enrol(store, ["v1"])
    for experiment in EXPERIMENTS:
        side.set(keys.seen(experiment, 1), "not a sorted set")
    before = {name: side.dump(name) for name in side.keys("*")}
    with pytest.raises(StorageUnavailable) as raised:
        record(store, [[conversion(experiment, "v1", "e1")] for experiment in EXPERIMENTS])
    assert not isinstance(raised.value, OutcomeUnknown)
    assert {name: side.dump(name) for name in side.keys("*")} == before


def test_with_every_pinned_connection_busy_a_batch_goes_through_the_pool(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis()
    store, side = store_for(server), server.client()
    enrol(store, ["v1"])
    started, release = threading.Barrier(3), threading.Event()

    def hold() -> None:
        # a batch whose building waits: it keeps its pinned connection until released
        def slow() -> Iterator[list[Attribution]]:
            started.wait()
            release.wait(5)
            yield [conversion("exp-a", "v1", f"held-{threading.get_ident()}")]

        record(store, slow())

    holders = [threading.Thread(target=hold) for _ in range(2)]  # max_connections 4: 2 pinned
    for holder in holders:
        holder.start()
    started.wait()
    try:
        groups = [[conversion(experiment, "v1", "e1")] for experiment in EXPERIMENTS]
        assert record(store, groups) == [1] * 3
    finally:
        release.set()
        for holder in holders:
            holder.join()
    assert counted_in_each(side) == [3, 1, 1]
