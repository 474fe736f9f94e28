"""Event batches on a Redis Cluster: one round trip per node, each script sent as it is built.

Each experiment's script leaves the moment it is built, on a connection of its slot's node
(``storage.nodes.NodeRoundTrip``), and the replies are read when all are sent. What redis-py's
cluster client would do for a command is done here by hand, and each case is tried against a
real local cluster: the order of replies over nodes and sub-shards, a slot that moved to another
node (``MOVED``), a node that lost its scripts, a node that stalls mid-batch, and a dead node.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis

from server.core.models import Enrolment
from server.storage import keys
from server.storage import store as store_module
from server.storage.clients import connect
from server.storage.errors import OutcomeUnknown, StorageUnavailable
from server.storage.nodes import NodeRoundTrip
from server.storage.store import Store
from tests.cluster import LocalCluster, started
from tests.storage.test_streaming import conversion, enrol, events_counted, record

SEEN_WITHIN = 2.0  # seconds for a script sent before a failure to show up in Redis


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A cluster of this module's own: tests here move slots, flush scripts and stop nodes."""
    with started(LocalCluster, "sw-stream-cluster-") as own:
        yield own


@pytest.fixture
def fresh(cluster: LocalCluster) -> LocalCluster:
    """The module's cluster without data or scripts (each node loads them on first use)."""
    cluster.flush()
    for port in cluster.ports:
        cluster.node(port).script_flush()
    return cluster


def store_for(cluster: LocalCluster) -> Store:
    return Store(
        connect(
            cluster.url, socket_timeout=0.25, connect_timeout=0.25, retries=1, max_connections=4
        )
    )


def node_of(cluster: LocalCluster, experiment: str) -> int:
    """The port of the master that holds an experiment's keys (sub-shard 0, phase 1)."""
    return int(cluster.client().get_node_from_key(keys.counts(experiment, 1)).port)


def one_per_node(cluster: LocalCluster) -> list[str]:
    """Three experiment names whose keys lie on the three masters, in the order of the ports."""
    found: dict[int, str] = {}
    number = 0
    while len(found) < len(cluster.ports):
        name = f"exp-{number}"
        found.setdefault(node_of(cluster, name), name)
        number += 1
    return [found[port] for port in cluster.ports]


def counted(cluster: LocalCluster, experiments: Sequence[str]) -> list[int]:
    side = cluster.client()
    return [events_counted(side, experiment) for experiment in experiments]  # type: ignore[arg-type]


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + SEEN_WITHIN
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def move_slot(cluster: LocalCluster, experiment: str, to_port: int) -> None:
    """Reshard the slot of an experiment's hash tag, with its keys, to another master, the way
    ``redis-cli --cluster reshard`` does: IMPORTING, MIGRATING, MIGRATE, then NODE everywhere."""
    slot = int(cluster.client().keyslot(keys.counts(experiment, 1)))
    from_port = node_of(cluster, experiment)
    source, target = cluster.node(from_port), cluster.node(to_port)
    source_id, target_id = (
        source.execute_command("CLUSTER MYID"),
        target.execute_command("CLUSTER MYID"),
    )
    target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
    source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
    names = source.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
    if names:
        source.migrate("127.0.0.1", to_port, names, 0, 5000)
    for port in cluster.ports:
        cluster.node(port).execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
    LocalCluster._wait(lambda: node_of(cluster, experiment) == to_port, "the moved slot")


def test_replies_keep_their_order_over_nodes_and_sub_shards(fresh: LocalCluster) -> None:
    store = store_for(fresh)
    plain = one_per_node(fresh)
    visitors = [f"v{number}" for number in range(24)]
    enrolled = visitors[::2]  # every other visitor: the rest answer -1, not enrolled
    store.enrol(
        [
            Enrolment("sharded", 1, visitor, 1, ("source",), ("facebook",), shards=3)
            for visitor in enrolled
        ],
        "2026-12-04",
        50,
    )
    enrol(store, enrolled[:3], plain)
    sub_shards = {keys.visitor_shard("sharded", visitor, 3) for visitor in visitors}
    side = fresh.client()
    # the sharded experiment's visitors lie on all three masters, interleaved
    assert len({side.get_node_from_key(keys.counts(tag, 1)).port for tag in sub_shards}) == 3
    groups = [[conversion("sharded", visitor, "e1", shards=3) for visitor in visitors]]
    groups += [[conversion(name, visitor, "e1") for visitor in visitors[:6]] for name in plain]
    expected = [1 if visitor in enrolled else -1 for visitor in visitors]
    expected += [1 if visitor in enrolled[:3] else -1 for visitor in visitors[:6]] * 3
    assert record(store, groups) == expected
    assert events_counted(side, "sharded", 3) == len(enrolled)  # type: ignore[arg-type]
    assert counted(fresh, plain) == [3, 3, 3]
    # the enrolment reads take the same way, in the same order
    wanted = [("sharded", 1, 3, visitors), *[(name, 1, 1, visitors[:6]) for name in plain]]
    assert store.enrolled(wanted) == [set(enrolled)] + [set(enrolled[:3])] * len(plain)


def test_a_moved_slot_is_followed_and_each_event_counts_once(fresh: LocalCluster) -> None:
    store = store_for(fresh)
    names = one_per_node(fresh)
    enrol(store, ["v1"], names)
    assert record(store, [[conversion(name, "v1", "warm")] for name in names]) == [1, 1, 1]
    move_slot(fresh, names[1], fresh.ports[2])  # the store's map still names the old node
    try:
        batch = [[conversion(name, "v1", "e1")] for name in names]
        batch.insert(2, [conversion(names[1], "v1", "e1b")])  # two calls for the moved slot
        # the old node answers MOVED to both (nothing ran): the map is corrected and those
        # calls are sent to the new node, once
        assert record(store, batch) == [1, 1, 1, 1]
        assert counted(fresh, names) == [2, 3, 2]
        slot = int(fresh.client().keyslot(keys.counts(names[1], 1)))
        new_node = store._redis.nodes_manager.get_node_from_slot(slot)
        assert new_node.port == fresh.ports[2]
        assert store.enrolled([(name, 1, 1, ["v1"]) for name in names]) == [{"v1"}] * 3
        assert record(store, batch) == [2, 2, 2, 2]  # the sender's re-send: replays only
    finally:
        move_slot(fresh, names[1], fresh.ports[1])


def test_a_node_that_lost_its_scripts_gets_them_and_each_event_counts_once(
    fresh: LocalCluster,
) -> None:
    store = store_for(fresh)
    names = one_per_node(fresh)
    enrol(store, ["v1"], names)
    record(store, [[conversion(name, "v1", "warm")] for name in names])
    fresh.node(fresh.ports[1]).script_flush()  # that node restarted, say
    batch = [[conversion(name, "v1", "e1")] for name in names]
    # the middle call was refused (no such script); the script is loaded everywhere and the
    # batch runs again: the calls that had run answer as replays of themselves
    assert record(store, batch) == [2, 1, 2]
    assert counted(fresh, names) == [2, 2, 2]


def test_a_node_that_stalls_mid_batch_answers_unknown_then_the_cluster_client_serves_a_while(
    fresh: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "STREAM_PAUSE", 0.5)
    store = store_for(fresh)
    names = one_per_node(fresh)
    enrol(store, ["v1"], names)
    record(store, [[conversion(name, "v1", "warm")] for name in names])
    stalled = fresh.node(fresh.ports[1])
    sleeper = threading.Thread(target=lambda: stalled.execute_command("DEBUG", "SLEEP", "0.6"))

    def groups() -> Iterator[list[Any]]:
        yield [conversion(names[0], "v1", "e1")]
        sleeper.start()  # the middle node sleeps before it reads its script
        time.sleep(0.05)
        yield [conversion(names[1], "v1", "e1")]
        yield [conversion(names[2], "v1", "e1")]

    with store.budget(0.3), pytest.raises(OutcomeUnknown):
        record(store, groups())
    sleeper.join()
    assert wait_until(lambda: counted(fresh, names) == [2, 2, 2])  # each ran once, late or not
    trips: list[int] = []
    original = NodeRoundTrip._connection_for  # every command sent on a node's own connection

    def spied(self: NodeRoundTrip, key: str) -> Any:
        trips.append(1)
        return original(self, key)

    monkeypatch.setattr(NodeRoundTrip, "_connection_for", spied)
    batch = [[conversion(name, "v1", "e1")] for name in names]
    # within the pause the cluster client (which refreshes its map after errors) takes batches;
    # the connections the stall left out of step were dropped: every reply is this batch's own
    assert record(store, batch) == [2, 2, 2]
    assert store.enrolled([(name, 1, 1, ["v1"]) for name in names]) == [{"v1"}] * 3
    assert not trips
    time.sleep(0.5)
    assert record(store, [[conversion(name, "v1", "e2")] for name in names]) == [1, 1, 1]
    assert trips  # the pause is over: on the nodes' own connections again
    assert counted(fresh, names) == [3, 3, 3]


def test_a_dead_node_before_anything_is_sent_writes_nothing_and_after_answers_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed_over: list[int] = []  # the calls each batch the cluster client got had
    original = Store._run_scripts

    def spied(self: Store, operation: str, script: Any, calls: Any, **options: Any) -> Any:
        handed_over.append(len(calls))
        return original(self, operation, script, calls, **options)

    monkeypatch.setattr(Store, "_run_scripts", spied)
    with started(LocalCluster, "sw-dead-cluster-") as own:
        store = store_for(own)
        names = one_per_node(own)
        enrol(store, ["v1"], names)
        record(store, [[conversion(name, "v1", "warm")] for name in names])
        handed_over.clear()
        dead = own.processes[1]
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        # the dead node's call comes first: its connect fails before anything left, so the
        # cluster client gets the whole batch, which fails the same way: nothing written
        first = [[conversion(names[1], "v1", "e1")], [conversion(names[0], "v1", "e1")]]
        with pytest.raises(StorageUnavailable) as raised:
            record(store, first)
        assert not isinstance(raised.value, OutcomeUnknown)
        assert handed_over == [2]  # the built call and the one not yet built
        assert events_counted(own.node(own.ports[0]), names[0]) == 1  # the warm-up only
        store._streams_paused_until = 0.0  # the nodes' own connections again, for the next
        # the dead node's call comes second: the first had left, so its outcome is unknown
        second = [[conversion(names[0], "v1", "e2")], [conversion(names[1], "v1", "e2")]]
        with pytest.raises(OutcomeUnknown):
            record(store, second)
        assert handed_over == [2]  # never re-sent
        live = own.node(own.ports[0])
        assert wait_until(lambda: events_counted(live, names[0]) == 2)  # warm, e2: once each


def test_a_round_trip_that_raises_drops_its_connections_and_returns_them(
    fresh: LocalCluster,
) -> None:
    client = fresh.client()
    names = one_per_node(fresh)
    pools = [client.get_redis_connection(node).connection_pool for node in client.get_primaries()]
    rules = store_for(fresh)._rules
    with pytest.raises(redis.ResponseError), NodeRoundTrip(client, rules) as trip:
        for name in names:
            trip.send(keys.counts(name, 1), "HGET", keys.counts(name, 1), "n")
        raise redis.ResponseError("the caller failed between send and read")
    # every connection went back to its pool, disconnected: its reply was never read
    assert all(not pool._in_use_connections for pool in pools)
    idle = [connection for pool in pools for connection in pool._available_connections]
    assert len(idle) == 3 and all(connection._sock is None for connection in idle)
    with NodeRoundTrip(client, rules) as trip:
        for name in names:
            trip.send(keys.counts(name, 1), "HSET", keys.counts(name, 1), "n", name)
        assert trip.replies() == [1, 1, 1]
