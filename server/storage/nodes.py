"""One round trip per Redis Cluster node, without the cluster pipeline's client work.

redis-py's cluster pipeline queues every command, routes it, groups the queue per node, packs
each node's share and then reads the replies: about 0.4 ms of client CPU for an event batch's
enrolment reads alone, and each node's commands leave only when the last one is queued.
``NodeRoundTrip`` sends each command the moment it is given, on one connection per node taken
from that node's pool, and reads every reply when all are sent: the same round trip per node,
while the nodes already run the first commands.

It does no redirects, retries or topology refreshes: a caller that gets a ``MOVED`` reply or a
failure hands the commands to redis-py's cluster client, which does (``Store``).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import MovedError

from server.storage.connection import Rules


class NodeRoundTrip:
    """Commands routed by their key's slot, each sent at once on its node's connection.

    A context manager: on leaving, the connections go back to their pools; when the block
    raised, they are disconnected first (replies may still be on their way, so they are out of
    step). Connects and their handshakes are set aside from ``Rules.write`` (``Rules.aside``):
    only the commands themselves count as sent.
    """

    def __init__(self, cluster: RedisCluster, rules: Rules) -> None:
        self._cluster = cluster
        self._rules = rules
        # per node name: its pool, a connection taken from it, and the places of its commands
        self._taken: dict[str, tuple[Any, Any, list[int]]] = {}
        self._sent = 0

    def send(self, key: str, *command: Any) -> None:
        """Send ``command`` to the node of ``key``'s slot, as the slot map says now.

        Raises:
            redis.RedisError: no connection to the node, or the send failed.
            RedisClusterException: no node serves the slot.
        """
        self._connection_for(key).send_command(*command)

    def send_packed(self, key: str, command: bytes) -> None:
        """``send`` for a command already in Redis's protocol (``connection.packed_command``)."""
        self._connection_for(key).send_packed_command([command])

    def _connection_for(self, key: str) -> Any:
        """The connection to the node of ``key``'s slot, taken now if it was not; the place
        of the command about to be sent is noted."""
        slot = self._cluster.keyslot(key)  # type: ignore[no-untyped-call]  # redis stub gap
        node = self._cluster.nodes_manager.get_node_from_slot(slot)
        entry = self._taken.get(node.name)
        if entry is None:
            pool = self._cluster.get_redis_connection(node).connection_pool
            with self._rules.aside():  # a connect's handshake is not the caller's command
                entry = self._taken[node.name] = (pool, pool.get_connection(), [])
        entry[2].append(self._sent)
        self._sent += 1
        return entry[1]

    def replies(self) -> list[Any]:
        """Every reply, in the order of the sends; an error reply (a command Redis refused) as
        its exception. A ``MOVED`` reply without a host (``MOVED 3999 :6381``) gets the host
        of the node that answered it.

        Raises:
            redis.RedisError: a reply never came (a timeout, a lost connection).
        """
        replies: list[Any] = [None] * self._sent
        for _, connection, places in self._taken.values():
            for place in places:
                try:
                    replies[place] = connection.read_response()
                except redis.ResponseError as error:  # a reply: the next one follows
                    if isinstance(error, MovedError) and not error.host:
                        error.host = connection.host
                    replies[place] = error
        return replies

    def __enter__(self) -> NodeRoundTrip:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for pool, connection, _ in self._taken.values():
            if error is not None:
                connection.disconnect()
            pool.release(connection)
        self._taken.clear()
