"""Commands are packed by one hiredis call (``DirectPacker``), into the bytes redis-py writes."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import Connection

from server.app import create_app
from server.context import services_of
from server.storage.connection import DirectPacker
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
