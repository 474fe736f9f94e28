"""Commands are packed by one hiredis call (``DirectPacker``), into the bytes redis-py writes;
an event batch's script calls are put together from parts packed once per event."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import Connection

from server.app import create_app
from server.context import services_of
from server.core.models import Attribution, GoalKind, GoalValue
from server.storage.clients import connect
from server.storage.connection import DirectPacker, packed_arguments, packed_command
from server.storage.store import Store
from tests.helpers import app_settings

ARGUMENTS = st.one_of(
    st.text(), st.binary(), st.integers(), st.floats(allow_nan=True, allow_infinity=True)
)


def redis_py() -> Any:
    """redis-py's own packer, as a plain connection builds it (with hiredis installed)."""
    return Connection()._command_packer


@given(name=st.sampled_from(["EVALSHA", "HSET", "GET"]), arguments=st.lists(ARGUMENTS))
def test_the_bytes_are_redis_pys_for_every_argument_type_it_packs_directly(
    name: str, arguments: list[Any]
) -> None:
    fallback = redis_py()
    direct = DirectPacker(fallback)
    assert b"".join(direct.pack(name, *arguments)) == b"".join(fallback.pack(name, *arguments))


@pytest.mark.parametrize(
    "command",
    [
        ("CONFIG GET", "maxmemory-policy"),  # redis-py splits a name with spaces into words
        (b"CONFIG GET", "maxmemory-policy"),
        ("SET", "key", memoryview(b"value")),
        ("SET", "key", bytearray(b"value")),
    ],
)
def test_what_it_does_not_pack_itself_redis_py_packs(command: tuple[Any, ...]) -> None:
    fallback = redis_py()
    assert b"".join(DirectPacker(fallback).pack(*command)) == b"".join(fallback.pack(*command))


def test_a_bool_is_refused_as_redis_py_refuses_it() -> None:
    with pytest.raises(redis.DataError):
        DirectPacker(redis_py()).pack("SET", "key", True)


@pytest.mark.both_redis
def test_the_servers_connections_pack_directly_and_run_scripts(app: Any, redis_url: str) -> None:
    store = services_of(app).store
    client = store._redis  # the server's own client (single, or cluster)
    if redis_url.startswith("redis+cluster://"):
        client = client.get_node_from_key("sw:{x}").redis_connection
    connection = client.connection_pool.get_connection()
    try:
        assert isinstance(connection._command_packer, DirectPacker)
    finally:
        client.connection_pool.release(connection)
    # a script with arguments of every type, through the server's client
    assert client.eval("return ARGV", 0, "text", b"\x00\xff", 7, 2.5) == [
        b"text",
        b"\x00\xff",
        b"7",
        b"2.5",
    ]


def test_a_client_with_another_encoding_keeps_redis_pys_packer(redis_url: str) -> None:
    app = create_app(app_settings(redis_url))
    client = services_of(app).store._redis
    options = client.connection_pool.connection_kwargs
    connection = client.connection_pool.connection_class(**{**options, "encoding": "latin-1"})
    assert not isinstance(connection._command_packer, DirectPacker)
    assert (
        b"".join(connection.pack_command("SET", "k", "é"))
        == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n\xe9\r\n"
    )


@given(
    name=st.sampled_from(["EVALSHA", "HSET"]),
    arguments=st.lists(ARGUMENTS, min_size=1),
    cuts=st.lists(st.integers(min_value=1), max_size=5),
)
def test_a_command_put_together_from_packed_parts_is_the_command_packed_whole(
    name: str, arguments: list[Any], cuts: list[int]
) -> None:
    whole = (name, *arguments)
    places = sorted({0, len(whole), *(cut % len(whole) for cut in cuts)})
    parts = [packed_arguments(whole[start:stop]) for start, stop in itertools.pairwise(places)]
    assert packed_command(len(whole), parts) == b"".join(redis_py().pack(*whole))


def _attribution(visitor: str, member: str, digest: int, goals: tuple[GoalValue, ...]) -> Any:
    is_order = member.startswith("o:")
    return Attribution(
        "checkout",
        2,
        visitor,
        member,
        "2026-12-04",
        ("source", "device"),
        goals,
        order_id=member[2:] if is_order else "",
        gross=4990 if is_order else 0,
        net_revenue=4193 if is_order else 0,
        digest=digest,
        minute=29_000_000,
    )


def test_an_event_batchs_calls_are_the_bytes_redis_py_packs_with_each_event_packed_once(
    redis_url: str,
) -> None:
    store = Store(
        connect(redis_url, socket_timeout=1, connect_timeout=1, retries=0, max_connections=4)
    )
    conversion = (GoalValue("add_to_cart", GoalKind.CONVERSION, 0),)
    order = (
        GoalValue("purchase", GoalKind.CONVERSION, 0),
        GoalValue("revenue", GoalKind.REVENUE, 4193, window_minutes=10080, settle_minutes=20160),
        GoalValue("margin", GoalKind.MARGIN, 1808),
    )
    items = [
        _attribution("v-1", "c:v-1:e1", 11, conversion),
        _attribution("v-2", "o:o-77", 12, order),
        _attribution("v-3", "c:v-3:e2", 13, conversion),
        _attribution("v-3", "c:v-3:e2", 14, conversion),  # the same id, other content: its own
        _attribution("v-4", "c:v-4:é€", 15, conversion),  # text beyond ASCII
    ]
    packed: dict[Any, bytes] = {}
    now = 1_764_000_000.5
    calls = [
        store._record_call(tag, 2, items, now, 123, "2026-12-04", 50, 10**9, packed)
        for tag in ("{checkout}", "{checkout}:s1")  # two calls: the events are packed once
    ]
    for call in calls:
        command = ("EVALSHA", store._record_event.sha, len(call.keys), *call.keys, *call.args)
        assert call.packed == b"".join(redis_py().pack(*command))
    assert len(packed) == len(items)
    assert calls[0].args == calls[1].args
