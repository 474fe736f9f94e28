"""Redis connections that keep a request's time budget and refuse a Redis that evicts our keys.

Two rules hold for every connection a client opens, whichever kind (TCP, TLS, unix socket):

- **One time budget per request.** A request sets a deadline for the calling thread
  (``Rules.budget``); every connect, send and read of that thread then waits at most until the
  deadline, retries and reconnects included, so a sleeping or stopped Redis costs a request its
  budget and no more. Without a deadline (the CLI, start-up) the socket timeouts alone apply.
- **No blind re-sends of writes.** redis-py retries a command after a timeout or a lost
  connection by sending it again. For a write that is not idempotent (our Lua scripts) the
  first send may have run, and the second would then answer "duplicate" for it. Inside
  ``Rules.write`` such a command is retried only if it never left this process (a failed
  connect), and ``Rules.was_sent`` tells whether it might have run.
- **No eviction of our data.** On every (re)connect the connection reads ``maxmemory-policy``.
  An ``allkeys-*`` policy would silently delete experiments, enrolments and orders when memory
  runs out, so such a Redis is refused (``EvictingRedis``); a ``volatile-*`` policy may delete the
  records of stopped experiments (they carry TTLs) and is logged as a warning; ``noeviction``
  (refuse writes when full) is what Splitwerk needs. A Redis that forbids CONFIG is accepted
  with a warning, since the policy cannot be checked there.

A Redis Cluster client (``GuardedCluster``) follows the same rules: redis-py builds a client
per node, whose pools make connections of the same kind, and its cluster-level retries (which
re-send a command after a timeout, also from a pipeline) stop at a write that may have run;
the topology refreshes it runs within a write block (``Rules.aside``) do not count as the
write's sends.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hiredis
import redis

# redis-py defines the policy types there and exports them nowhere else
from redis._parsers.commands import CommandPolicies, RequestPolicy, ResponsePolicy
from redis.backoff import NoBackoff
from redis.cluster import ClusterPipeline as RedisClusterPipeline
from redis.cluster import RedisCluster
from redis.commands.policies import BasePolicyResolver, PolicyResolver, StaticPolicyResolver
from redis.connection import AbstractConnection
from redis.retry import Retry

log = logging.getLogger(__name__)

SHORTEST_WAIT = (
    0.0001  # seconds; a spent budget still reads what already arrived (0 = non-blocking)
)
SAFE_POLICY = "noeviction"  # Redis refuses writes when full instead of deleting keys


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class EvictingRedis(redis.ConnectionError):
    """Redis is configured to evict any key when memory runs out (``allkeys-*``)."""


def policy_problem(policy: str) -> str | None:
    """Why a maxmemory-policy is refused, or None when it is acceptable."""
    if policy.startswith("allkeys-"):
        return (
            f"Redis maxmemory-policy is {policy}: it deletes experiments, enrolments and orders "
            f"when memory runs out; set maxmemory-policy {SAFE_POLICY} (see README, Redis memory)"
        )
    return None


class Rules:
    """The deadlines of the threads using one client, and what its connections learnt."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._warned: set[str] = set()  # warnings already logged, so reconnects don't repeat them

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """Bound all Redis work of the calling thread within the block to ``seconds``."""
        previous: float | None = getattr(self._local, "deadline", None)
        deadline = time.monotonic() + seconds
        self._local.deadline = deadline if previous is None else min(deadline, previous)
        try:
            yield
        finally:
            self._local.deadline = previous

    @contextmanager
    def write(self, is_idempotent: bool) -> Iterator[None]:
        """Track whether the block's commands left this process (``was_sent``); unless they are
        idempotent, a command that did is never sent again."""
        self._local.is_single_send = not is_idempotent
        self._local.was_sent = False
        try:
            yield
        finally:
            self._local.is_single_send = False

    def was_sent(self) -> bool:
        """Whether a command of the last ``write`` block left this process (it may have
        run in Redis even when its answer never came)."""
        return bool(getattr(self._local, "was_sent", False))

    @contextmanager
    def aside(self) -> Iterator[None]:
        """Commands sent within the block are not the write's: ``was_sent`` stays as it was.

        For what a client sends of its own accord in a write block: a connection's handshake
        and health check, and the topology refresh redis-py's cluster client runs before a
        command's next attempt (since redis-py 8.2 also before the first attempt of the next
        command). Their commands must not make the write look sent, or the write would be
        refused before it ever left this process.
        """
        was_sent = self.was_sent()
        try:
            yield
        finally:
            self.mark_sent(was_sent)

    def mark_sent(self, was_sent: bool = True) -> None:
        """Note (or, after commands set aside, restore) whether a command was sent."""
        self._local.was_sent = was_sent

    def may_resend(self) -> bool:
        """Whether a failed command may be sent again."""
        return not (getattr(self._local, "is_single_send", False) and self.was_sent())

    def remaining(self) -> float | None:
        """Seconds left of the calling thread's budget; None when it has none."""
        deadline: float | None = getattr(self._local, "deadline", None)
        return None if deadline is None else deadline - time.monotonic()

    def warn_once(self, message: str) -> None:
        """Log a warning the first time it occurs for this client."""
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)


class GuardedRetry(Retry):
    """redis-py's retry without backoff, which refuses to re-send what ``Rules`` forbids."""

    def __init__(self, rules: Rules, retries: int) -> None:
        super().__init__(NoBackoff(), retries)
        self.rules = rules

    def __deepcopy__(self, memo: dict[int, Any]) -> GuardedRetry:
        return GuardedRetry(self.rules, self.get_retries())  # Rules holds a threading.local

    def call_with_retry(
        self, do: Any, fail: Any, is_retryable: Any = None, with_failure_count: bool = False
    ) -> Any:
        def retryable(error: Exception) -> bool:
            if not self.rules.may_resend():
                return False
            return bool(is_retryable(error)) if is_retryable is not None else True

        return super().call_with_retry(do, fail, retryable, with_failure_count)


# the argument types whose bytes hiredis.pack_command writes exactly as redis-py's encoder does
# (UTF-8 for text, repr() for numbers); bool, a subclass of int, is refused by redis-py
DIRECT_TYPES = frozenset({str, bytes, int, float})


def packed_arguments(values: tuple[Any, ...]) -> bytes:
    """``values`` in Redis's protocol without the command's length line: a part of a command
    that ``packed_command`` puts together (str, bytes, int or float values only, as
    DirectPacker sends them; text as UTF-8, which the store's data is in)."""
    packed: bytes = hiredis.pack_command(values)
    return packed[packed.index(b"\r\n") + 2 :]


def packed_command(count: int, parts: list[bytes]) -> bytes:
    """A command of ``count`` arguments from its parts (``packed_arguments``), in order: the
    bytes hiredis.pack_command would give for all the arguments at once."""
    return b"*%d\r\n%b" % (count, b"".join(parts))


class DirectPacker:
    """Packs a command with one call of ``hiredis.pack_command`` on its arguments as they are.

    redis-py's hiredis packer first encodes every argument by a Python call (about 3 ms per
    event batch of five scripts and some 3,700 arguments here, 0.5 ms this way). A command with
    an argument of another type, or whose name is not a str without spaces (redis-py splits
    "CONFIG GET" into words), goes to redis-py's packer.
    """

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback

    def pack(self, *args: Any) -> list[bytes]:
        """The command in Redis's protocol, as a list of chunks (redis-py's packer interface)."""
        if (
            args
            and type(args[0]) is str
            and " " not in args[0]
            and DIRECT_TYPES.issuperset(map(type, args))  # one C loop: 3,700 arguments a batch
        ):
            return [hiredis.pack_command(args)]
        return list(self._fallback.pack(*args))


class BoundedConnection(AbstractConnection):
    """Mixed in front of redis-py's connection classes (see ``bind``); ``rules`` is set there."""

    rules: Rules

    def _construct_command_packer(self, packer: Any) -> Any:
        built = super()._construct_command_packer(packer)  # type: ignore[no-untyped-call]
        encoder = self.encoder
        if packer is None and (encoder.encoding, encoder.encoding_errors) == ("utf-8", "strict"):
            return DirectPacker(built)  # the same bytes, as UTF-8 is what hiredis writes
        return built

    def _remaining(self) -> float | None:
        remaining = self.rules.remaining()
        if remaining is not None and remaining <= 0:
            raise redis.TimeoutError("the request's Redis time budget is spent")
        return remaining

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        remaining = self._remaining()
        if remaining is None or self._sock:
            super().connect_check_health(*args, **kwargs)
            return
        configured = self.socket_connect_timeout
        self.socket_connect_timeout = min(remaining, configured or remaining)
        try:
            super().connect_check_health(*args, **kwargs)
        finally:
            self.socket_connect_timeout = configured

    def on_connect_check_health(self, check_health: bool = True) -> None:
        super().on_connect_check_health(check_health)
        self.send_command(  # type: ignore[no-untyped-call]  # redis stub gap
            "CONFIG", "GET", "maxmemory-policy", check_health=False
        )
        try:
            reply = self.read_response()
        except redis.ResponseError as error:  # CONFIG renamed away or denied by an ACL
            self.rules.warn_once(
                f"cannot read Redis maxmemory-policy ({error}); make sure it is {SAFE_POLICY}"
            )
            return
        # a map in RESP3, a flat [name, value] list in RESP2
        pairs = (
            list(reply.items())
            if isinstance(reply, dict)
            else list(zip(reply[::2], reply[1::2], strict=False))
        )
        policy = next(
            (_text(value) for name, value in pairs if _text(name) == "maxmemory-policy"), ""
        )
        problem = policy_problem(policy)
        if problem:
            self.rules.warn_once(problem)
            raise EvictingRedis(problem)
        if policy.startswith("volatile-"):
            self.rules.warn_once(
                f"Redis maxmemory-policy is {policy}: when memory runs out it deletes the "
                f"records of stopped experiments, which their refunds need; use {SAFE_POLICY}"
            )

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._remaining()
        # connect and health check first: their commands are not the caller's
        with self.rules.aside():
            if not self._sock:
                # A new connection needs no health check, and must not run one: connect()
                # (not connect_check_health(), because a Sentinel connection asks for the
                # current master there) sends its handshake with health checks on, and a
                # peer that hangs up (a proxy before a dead Redis) made the failed check
                # reconnect, which checked again, until a RecursionError.
                self.next_health_check = int(time.monotonic() + self.health_check_interval)
                self.connect()  # type: ignore[no-untyped-call]  # redis stub gap
            if check_health:
                self.check_health()  # type: ignore[no-untyped-call]  # redis stub gap
        assert self._sock is not None  # connected above, or the connect raised
        remaining = self._remaining()  # what the connect and the health check left
        if remaining is not None:
            self._sock.settimeout(
                max(SHORTEST_WAIT, min(remaining, self.socket_timeout or remaining))
            )
        is_refused = False
        try:
            super().send_packed_command(command, check_health=False)
        except redis.ConnectionError:
            is_refused = True  # the peer had closed the connection: none of this reached Redis
            raise
        finally:
            if not is_refused:
                self.rules.mark_sent()  # sent, or a timeout (or anything else) sent part of it
            if self._sock:
                self._sock.settimeout(self.socket_timeout)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        remaining = self.rules.remaining()
        if remaining is not None:
            timeout = kwargs.get("timeout")
            limit = self.socket_timeout if not isinstance(timeout, int | float) else timeout
            kwargs["timeout"] = max(SHORTEST_WAIT, min(remaining, limit or remaining))
        return super().read_response(*args, **kwargs)


class NotResent(redis.RedisError):
    """A write that may have run was not sent again (see ``Rules.write``).

    Not a ``ConnectionError``: redis-py's cluster client retries those by type.
    """


def _bounded_class(base: type[AbstractConnection], rules: Rules) -> type[AbstractConnection]:
    return type(f"Bounded{base.__name__}", (BoundedConnection, base), {"rules": rules})


def bind(client: redis.Redis, rules: Rules, retries: int) -> redis.Redis:
    """Make every connection ``client``'s pool opens from now on follow ``rules``, retrying a
    failed command ``retries`` times where ``rules`` allow it."""
    pool = client.connection_pool
    pool.connection_class = _bounded_class(pool.connection_class, rules)
    pool.connection_kwargs["retry"] = GuardedRetry(rules, retries)
    return client


def bounded_pool_class(rules: Rules) -> type[redis.ConnectionPool]:
    """A connection pool class whose connections follow ``rules`` (for the cluster's nodes,
    which redis-py creates itself, also after a topology change)."""

    class BoundedPool(redis.ConnectionPool):
        def __init__(
            self, connection_class: type[AbstractConnection] = redis.Connection, **kwargs: Any
        ) -> None:
            super().__init__(connection_class=_bounded_class(connection_class, rules), **kwargs)

    return BoundedPool


class _SendOnce:
    """Mixed into the cluster client and its pipelines: redis-py's cluster retries (after a
    timeout, a lost connection, or a pipeline's failed commands) all send the command again
    through ``_execute_command``; a write that ``Rules`` forbids to re-send stops there."""

    rules: Rules

    def _execute_command(self, target_node: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.rules.may_resend():
            raise NotResent("a write that may have run is not sent again")
        return super()._execute_command(target_node, *args, **kwargs)  # type: ignore[misc]


class ScriptRouting(BasePolicyResolver):
    """Route EVALSHA by the keys it names, as redis-py reads them from its numkeys.

    Without a policy for it, redis-py asks a node for every script's keys (COMMAND GETKEYS)
    before it sends the script: one more round trip per script on the hot paths.
    """

    def __init__(self, fallback: PolicyResolver | None = None) -> None:
        by_key = CommandPolicies(
            request_policy=RequestPolicy.DEFAULT_KEYED,
            response_policy=ResponsePolicy.DEFAULT_KEYED,
        )
        super().__init__({"core": {"evalsha": by_key}}, fallback or StaticPolicyResolver())

    def with_fallback(self, fallback: PolicyResolver) -> PolicyResolver:
        return ScriptRouting(fallback)


class GuardedClusterPipeline(_SendOnce, RedisClusterPipeline):
    """redis-py's cluster pipeline under ``Rules`` (built by ``GuardedCluster.pipeline``)."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """Queue a script run; redis-py routes it by its keys, which must share one slot.

        redis-py blocks ``evalsha`` in cluster pipelines (a script may name keys of several
        slots); its router accepts EVALSHA all the same and refuses keys of several slots.
        Every script of ours names keys of one experiment's hash tag only.
        """
        return self.execute_command(  # type: ignore[no-untyped-call]  # redis stub gap
            "EVALSHA", sha, numkeys, *keys_and_args
        )


class GuardedCluster(_SendOnce, RedisCluster):
    """redis-py's Redis Cluster client whose nodes' connections follow ``rules``."""

    def __init__(self, rules: Rules, **kwargs: Any) -> None:
        self.rules = rules
        super().__init__(
            connection_pool_class=bounded_pool_class(rules),
            policy_resolver=ScriptRouting(),
            **kwargs,
        )
        refresh = self.nodes_manager.initialize  # every topology refresh runs through it

        @functools.wraps(refresh)
        def refresh_aside(*args: Any, **kwargs: Any) -> Any:
            with rules.aside():
                return refresh(*args, **kwargs)

        # redis-py builds its NodesManager itself, without a class to name in its place
        self.nodes_manager.initialize = refresh_aside  # type: ignore[method-assign]

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """A pipeline like redis-py's (the same arguments as ``RedisCluster.pipeline``), under
        the same rules."""
        if shard_hint:
            raise redis.RedisError("shard_hint is not supported in cluster mode")
        pipe = GuardedClusterPipeline(
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            startup_nodes=self.nodes_manager.startup_nodes,  # type: ignore[arg-type]  # as redis-py
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=self.retry,
            lock=self._lock,
            transaction=transaction,
            event_dispatcher=self._event_dispatcher,
            policy_resolver=self._policy_resolver,
        )
        pipe.rules = self.rules
        return pipe
