"""The store: Splitwerk's reads and writes in Redis; every Redis failure becomes StorageUnavailable.

One Redis, a Sentinel service and a Redis Cluster are served by the same code: every Lua
script and transaction touches the keys of one hash slot (``keys``), and redis-py's cluster
client routes them. Where a cluster needs another way (the configuration's version key, the
readiness probe, the audit entry of a change), the method says so.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import hiredis
import redis
from redis.backoff import FullJitterBackoff
from redis.exceptions import MovedError, RedisClusterException
from redis.retry import Retry

from server.core.models import (
    Attribution,
    AuditEntry,
    Delivery,
    Enrolment,
    EnrolmentOutcome,
    Experiment,
    GoalValue,
    OrderRecord,
    RefundWrite,
)
from server.storage import codec, keys
from server.storage.clients import Client, PendingCluster
from server.storage.connection import (
    EvictingRedis,
    GuardedCluster,
    Rules,
    bind,
    packed_arguments,
    packed_command,
)
from server.storage.errors import OutcomeUnknown, RedisRefused, StorageUnavailable
from server.storage.nodes import NodeRoundTrip
from server.storage.scripts import LuaScript

log = logging.getLogger(__name__)

# What redis-py raises when Redis fails; its cluster client also raises RedisClusterException
# (no node reachable, a slot not covered), which is no RedisError.
FAILURES = (redis.RedisError, RedisClusterException)

OPTIMISTIC_ATTEMPTS = 8  # WATCH retries for a concurrent edit before giving up; edits are rare
# Between two WATCH attempts of a change: a random pause of up to 2 ms, 4 ms, … 128 ms, so that
# two editors who keep colliding fall out of step (about 0.25 s at most in all).
CONTENTION_BACKOFF = FullJitterBackoff(cap=0.128, base=0.002)
# The default value cap (issue 13): 1,000.00 in the shop's currency per visitor and value goal;
# server.config's VALUE_CAP sets it.
DEFAULT_VALUE_CAP_CENTS = 100_000
ORDER_FIELD_SEPARATOR = "\x1f"  # between the fields of an order record (see lua/record_event.lua)
SCAN_BATCH = 500  # keys per SCAN step when deleting an experiment's data
DIGEST_BITS = 24  # low bits of an idempotency score: the event's content digest (keys.py)
SECONDS_PER_MINUTE = 60  # idempotency scores count minutes: the window is days long
# seconds after a failed streamed batch on a cluster during which batches go through redis-py's
# cluster client, whose error handling refreshes the map of the nodes (Store._stream_on_nodes)
STREAM_PAUSE = 1.0


@contextmanager
def _guard(operation: str) -> Iterator[None]:
    """Translate every redis-py failure into StorageUnavailable, logged once here."""
    try:
        yield
    except FAILURES as error:
        log.warning("redis %s failed: %s", operation, error.__class__.__name__)
        raise StorageUnavailable(f"redis {operation} failed") from error


def _glob_escape(text: str) -> str:
    """Escape the glob characters of SCAN's MATCH, so ids match only themselves."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


def idempotency_score(now: float, digest: int) -> int:
    """The score of an idempotency member: the unix minute, then the 24-bit content digest."""
    return (int(now) // SECONDS_PER_MINUTE << DIGEST_BITS) | (digest & ((1 << DIGEST_BITS) - 1))


def _count(value: bytes | str) -> int | None:
    """A stored counter, or None when it is not an integer (written by hand or a bug)."""
    try:
        return int(value)
    except ValueError:
        return None


def _goal_triples(goals: Sequence[GoalValue], minute: int) -> list[Any]:
    """An event's goals as ``lua/record_event.lua`` reads them: key, kind letter, cents; a
    windowed goal's kind also names its window, settle time and the event's minute (issue 21)."""
    triples: list[Any] = []
    for goal in goals:
        kind = goal.kind.value[0]
        if goal.window_minutes:
            kind += f"/{goal.window_minutes}/{goal.settle_minutes}/{minute}"
        triples += [goal.goal, kind, goal.cents]
    return triples


def _text(value: bytes | str) -> str:
    """Redis answers bytes; keys and fields of ours are UTF-8."""
    return value.decode() if isinstance(value, bytes) else value


def _decode_experiments(
    documents: Mapping[bytes | str, bytes | str],
) -> dict[str, Experiment]:
    """The experiments of an HGETALL of the experiments hash, by key."""
    return {_text(key): codec.experiment_from_json(document) for key, document in documents.items()}


class ScriptCall(NamedTuple):
    """One call of a Lua script: its keys and arguments, and the whole EVALSHA command in
    Redis's protocol, made from parts packed once per event (``_record_call``) so that an
    event's arguments are not packed again for each experiment it counts in."""

    keys: Sequence[str]
    args: Sequence[Any]
    packed: bytes


class PinnedClients:
    """Clients that each keep one connection of a pool, lent to one thread at a time.

    The hot paths (/v1/assign, /v1/events) send one command per request. Through the pool,
    every command also pays a checkout: a lock, a fork check, pool metrics and a probe of the
    socket for stale data (three system calls): measured, 58 µs of client CPU per EVALSHA
    through the pool against 46 µs on a pinned connection. A pinned client skips all of that;
    redis-py still reconnects it after a failure and health-checks it when it was idle.

    Bounded: a thread borrows a client for one command and gives it back, so there are never
    more clients than threads that ran commands at the same time, and never more than half of
    the pool's connections, so that pipelines and the other commands always find one. Beyond
    that, commands go through the pool as usual. A forked child forgets the parent's clients
    (their sockets belong to the parent): ``take`` compares the process id it was made in.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pooled = client
        self._limit = client.connection_pool.max_connections // 2
        self._created = 0
        self._lock = threading.Lock()  # taken only to create a client
        self._idle: deque[redis.Redis] = deque()  # append and pop are atomic in CPython
        self._pid = os.getpid()

    def take(self) -> redis.Redis:
        """An idle pinned client, a new one, or the pooled client when the limit is reached.

        Raises:
            redis.RedisError: Redis refuses a new connection.
        """
        if self._pid != os.getpid():
            self._forget()
        try:
            return self._idle.pop()
        except IndexError:
            pass
        with self._lock:
            if self._created >= self._limit:
                return self._pooled
            self._created += 1
        try:
            return redis.Redis(
                connection_pool=self._pooled.connection_pool, single_connection_client=True
            )
        except redis.RedisError:
            with self._lock:
                self._created -= 1
            raise

    def lend(self) -> tuple[redis.Redis, Any] | None:
        """A pinned client with its connection, to send on directly and give back; None where
        there is none to lend (the limit is reached, or Redis refused a new connection) and
        the caller's fallback through the pool serves instead."""
        try:
            client = self.take()
        except redis.RedisError:
            return None
        if client is self._pooled:  # it has no connection of its own
            return None
        return client, client.connection

    def give_back(self, client: redis.Redis) -> None:
        """Return a client that ``take`` gave."""
        if client is not self._pooled:
            self._idle.append(client)

    def _forget(self) -> None:
        """Drop every idle client without closing it (after a fork: the parent owns them).

        The lock may have been held at the fork by a parent thread that the child does not
        have, so it is replaced, not taken.
        """
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._idle = deque()
        self._created = 0

    def close(self) -> None:
        """Return every idle client's connection to the pool."""
        while self._idle:
            self._idle.pop().close()
            with self._lock:
                self._created -= 1


class Store:
    """Reads and writes Splitwerk's data in Redis (see ``server.storage.keys``)."""

    def __init__(self, client: Client, value_cap_cents: int = DEFAULT_VALUE_CAP_CENTS) -> None:
        # redis.Redis, or a cluster client (built on first use): the commands used are common
        self._redis: Any
        self._pinned: PinnedClients | None
        if isinstance(client, PendingCluster):
            self._rules = client.rules  # the cluster's nodes were built under these rules
            self._redis = client
            self._pinned = None  # a pinned connection would reach one node only
            self._version_key = keys.CLUSTER_CONFIG_VERSION
        else:
            self._rules = Rules()
            configured = client.connection_pool.connection_kwargs.get("retry")
            retries = configured.get_retries() if isinstance(configured, Retry) else 0
            self._redis = bind(client, self._rules, retries)
            self._pinned = PinnedClients(client)
            self._version_key = keys.CONFIG_VERSION
        self._is_cluster = isinstance(client, PendingCluster)
        self._streams_paused_until = 0.0  # monotonic time; see STREAM_PAUSE
        # each visitor's total of a value goal counts at most this much in the capped sums
        self._value_cap_cents = value_cap_cents
        self._enrol = LuaScript("enrol", prelude="counters")  # square, for CUPED
        self._record_event = LuaScript("record_event", prelude="counters")
        self._refund = LuaScript("refund", prelude="counters")
        self._announce = LuaScript("announce")
        self._keep_turn = LuaScript("keep_turn")

    def close(self) -> None:
        """Close the connection pools."""
        if self._pinned is not None:
            self._pinned.close()
        self._redis.close()

    def ping(self) -> None:
        """Check that Redis answers; raises StorageUnavailable otherwise."""
        with _guard("ping"):
            self._redis.ping()

    def open_session(self, digest: str, lifetime: int) -> None:
        """Mark a dashboard session open for ``lifetime`` seconds."""
        with _guard("open session"):
            self._redis.set(keys.dashboard_session(digest), b"1", ex=lifetime)

    def is_session_open(self, digest: str) -> bool:
        """Whether a dashboard session is open (neither expired nor closed)."""
        with _guard("check session"):
            return bool(self._redis.exists(keys.dashboard_session(digest)))

    def close_session(self, digest: str) -> None:
        """Close a dashboard session at once (sign-out)."""
        with _guard("close session"):
            self._redis.delete(keys.dashboard_session(digest))

    def redis_state(self) -> str:
        """How Redis takes a small write: ``ok``, ``unreachable``, ``out_of_memory``,
        ``read_only`` (a replica), ``evicting`` (an allkeys-* policy), ``refusing_writes``, or
        in a cluster ``cluster_down``; a cluster is ``ok`` only when every master takes a write
        (one probe key in a slot of each)."""
        try:
            if self._is_cluster:
                pipe = self._redis.pipeline(transaction=False)
                for name in self._probe_keys():
                    pipe.set(name, "1", ex=keys.READINESS_PROBE_TTL)
                pipe.execute()
            else:
                self._redis.set(keys.READINESS_PROBE, "1", ex=keys.READINESS_PROBE_TTL)
        except redis.exceptions.ClusterDownError:
            return "cluster_down"
        except redis.exceptions.OutOfMemoryError:
            return "out_of_memory"
        except redis.exceptions.ReadOnlyError:
            return "read_only"
        except EvictingRedis:
            return "evicting"
        except redis.ResponseError:
            return "refusing_writes"  # e.g. MISCONF after a failed persistence write
        except FAILURES:
            return "unreachable"
        return "ok"

    def _probe_keys(self) -> list[str]:
        """One readiness probe key on each master of the cluster, as its slots stand now."""
        masters = {node.name for node in self._redis.get_primaries()}
        found: dict[str, str] = {}
        for number in range(keys.READINESS_PROBE_SEARCH):
            name = keys.readiness_probe(number)
            found.setdefault(self._redis.get_node_from_key(name).name, name)
            if masters <= found.keys():
                break
        return [found[name] for name in sorted(masters & found.keys())]

    def check_at_start(self) -> None:
        """Refuse a Redis (any master of a cluster) that would evict our keys; one that does
        not answer only degrades.

        Every later reconnect checks the memory policy again (see ``storage.connection``).

        Raises:
            RedisRefused: Redis runs an ``allkeys-*`` maxmemory-policy.
        """
        try:
            if self._is_cluster:  # every master: each connection checks its own node
                self._redis.ping(target_nodes=GuardedCluster.PRIMARIES)
            else:
                self._redis.ping()
        except EvictingRedis as error:
            raise RedisRefused(str(error)) from None
        except FAILURES as error:
            log.warning(
                "redis does not answer at start (%s); requests degrade until it does",
                error.__class__.__name__,
            )

    def budget(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        """Bound all Redis work of the calling thread inside the block, retries included."""
        return self._rules.budget(seconds)

    def versions(self) -> tuple[int, int]:
        """The counters of experiment changes (the /v1/config ETag) and of visitor erasures."""
        with _guard("versions"):
            pipe = self._redis.pipeline(transaction=False)  # two slots in a cluster: no MGET
            pipe.get(self._version_key)
            pipe.get(keys.ERASURES)
            config, erasures = pipe.execute()
        return int(config or 0), int(erasures or 0)

    def load_experiments(self) -> tuple[int, dict[str, Experiment]]:
        """Every experiment with the config version they belong to, read consistently.

        Not with MULTI/EXEC: Redis refuses to queue commands when it is out of memory, and the
        configuration must stay readable then. Every change bumps the version in the same
        transaction as the experiments, so a version that is equal before and after the read
        proves that no change happened in between; a concurrent change just reads again. In a
        cluster the version key shares the experiments' slot (``keys.CLUSTER_CONFIG_VERSION``),
        so the three reads go to one node in this order.
        """
        with _guard("load experiments"):
            for _ in range(OPTIMISTIC_ATTEMPTS):
                pipe = self._redis.pipeline(transaction=False)
                pipe.get(self._version_key)
                pipe.hgetall(keys.EXPERIMENTS)
                pipe.get(self._version_key)
                before, documents, after = pipe.execute()
                if before == after:
                    return int(before or 0), _decode_experiments(documents)
        raise StorageUnavailable("experiments changed concurrently too often; try again")

    def load_experiment(self, key: str) -> Experiment | None:
        """One experiment, or None."""
        with _guard("load experiment"):
            document = self._redis.hget(keys.EXPERIMENTS, key)
        return None if document is None else codec.experiment_from_json(document)

    def save_experiment(
        self,
        key: str,
        change: Callable[[Experiment | None, Mapping[str, Experiment]], Experiment],
        audit: AuditEntry,
    ) -> Experiment:
        """Replace one experiment by ``change(current, all)`` atomically, with an audit entry.

        ``change`` sees a consistent snapshot of every experiment (layers need it) and may
        raise a domain error to refuse. A concurrent edit makes the snapshot stale: the
        transaction is then retried with fresh data (optimistic locking with WATCH).

        In a cluster the audit entry lives in the experiment's slot, which no transaction with
        the experiments hash can reach: it is written right after the change (a crash in
        between loses the entry, never the change).
        """
        self._adopt_legacy_version()
        with _guard("save experiment"), self._redis.pipeline(transaction=True) as pipe:
            for attempt in range(OPTIMISTIC_ATTEMPTS):
                try:
                    pipe.watch(keys.EXPERIMENTS)
                    documents = pipe.hgetall(keys.EXPERIMENTS)
                    snapshot = _decode_experiments(documents)
                    updated = change(snapshot.get(key), snapshot)
                    pipe.multi()
                    pipe.hset(keys.EXPERIMENTS, key, codec.experiment_to_json(updated))
                    pipe.incr(self._version_key)
                    if not self._is_cluster:
                        self._push_audit(pipe, keys.audit(key), audit)
                    pipe.execute()
                    break
                except redis.WatchError:
                    time.sleep(CONTENTION_BACKOFF.compute(attempt))
            else:
                raise StorageUnavailable("experiment changed concurrently too often; try again")
            if self._is_cluster:
                self._write_audit(keys.audit(key), audit)
        return updated

    def _adopt_legacy_version(self) -> None:
        """In a cluster holding data of a single Redis, continue its configuration version
        (``sw:config-version``) in the cluster's version key, so that no ETag repeats."""
        if not self._is_cluster:
            return
        with _guard("adopt version"):
            legacy = self._redis.get(keys.CONFIG_VERSION)
            if legacy is not None:
                self._redis.set(self._version_key, legacy, nx=True)

    @staticmethod
    def _push_audit(pipe: Any, name: str, audit: AuditEntry) -> None:
        pipe.lpush(name, codec.audit_to_json(audit))
        pipe.ltrim(name, 0, keys.AUDIT_LIMIT - 1)

    def _write_audit(self, name: str, audit: AuditEntry) -> None:
        pipe = self._redis.pipeline(transaction=True)  # one key: one slot
        self._push_audit(pipe, name, audit)
        pipe.execute()

    def delete_experiment(self, key: str, check: Callable[[Experiment | None], AuditEntry]) -> None:
        """Delete an experiment and every key of it, after ``check`` approved its current state.

        ``check`` returns the entry for the deletion log, written in the same transaction: the
        experiment's own audit trail is deleted with it. In a cluster the entry is written
        right after the deletion (as in ``save_experiment``).
        """
        self._adopt_legacy_version()
        with _guard("delete experiment"), self._redis.pipeline(transaction=True) as pipe:
            for attempt in range(OPTIMISTIC_ATTEMPTS):
                try:
                    pipe.watch(keys.EXPERIMENTS)
                    document = pipe.hget(keys.EXPERIMENTS, key)
                    audit = check(
                        None if document is None else codec.experiment_from_json(document)
                    )
                    pipe.multi()
                    pipe.hdel(keys.EXPERIMENTS, key)
                    pipe.incr(self._version_key)
                    if not self._is_cluster:
                        self._push_audit(pipe, keys.DELETIONS, audit)
                    pipe.execute()
                    break
                except redis.WatchError:
                    time.sleep(CONTENTION_BACKOFF.compute(attempt))
            else:
                raise StorageUnavailable("experiment changed concurrently too often; try again")
            if self._is_cluster:
                self._write_audit(keys.DELETIONS, audit)
        self._delete_matching(keys.experiment_pattern(key))
        self._delete_matching(keys.sub_shard_pattern(key))

    def _delete_matching(self, pattern: str) -> None:
        with _guard("delete keys"):
            batch: list[Any] = []
            for name in self._redis.scan_iter(match=pattern, count=SCAN_BATCH):
                batch.append(name)
                if len(batch) >= SCAN_BATCH:
                    self._redis.unlink(*batch)
                    batch.clear()
            if batch:
                self._redis.unlink(*batch)

    def deletion_log(self, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` entries of the deletion log, newest first."""
        with _guard("deletion log"):
            documents = self._redis.lrange(keys.DELETIONS, 0, limit - 1)
        return [codec.audit_from_json(document) for document in documents]

    def audit_trail(self, key: str, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` audit entries of an experiment, newest first."""
        with _guard("audit trail"):
            documents = self._redis.lrange(keys.audit(key), 0, limit - 1)
        return [codec.audit_from_json(document) for document in documents]

    def _run_scripts(
        self,
        operation: str,
        script: LuaScript,
        calls: Sequence[tuple[Sequence[str], Sequence[Any]]] | Sequence[ScriptCall],
        *,
        is_idempotent: bool = False,
    ) -> list[Any]:
        """Run one script several times in a single round trip, loading it if Redis lost it.

        A script that is not idempotent (a second run answers "duplicate" for the first) is
        never re-sent once it left this process; an idempotent one (enrol: a second run reads
        what the first wrote) is retried like a read.

        Raises:
            OutcomeUnknown: the scripts were sent but their answer never came, or Redis
                refused some of them and ran the others.
            StorageUnavailable: nothing was written (Redis unreachable, or it refused the
                scripts up front, e.g. when out of memory).
        """
        for attempt in range(2):
            try:
                with self._rules.write(is_idempotent):
                    replies = self._send_scripts(script, calls)
            except FAILURES as error:
                raise self._round_trip_failure(operation, error) from error
            if attempt or not self._reloaded_if_lost(script, replies):
                return self._checked(operation, replies)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_scripts(
        self,
        script: LuaScript,
        calls: Sequence[tuple[Sequence[str], Sequence[Any]]] | Sequence[ScriptCall],
    ) -> list[Any]:
        """Each call's reply, or the error Redis answered it with (a script it refused)."""
        if len(calls) == 1:  # the common case; a pipeline would only add client work
            script_keys, args = calls[0][:2]
            # a cluster (no pinned connection): 60 µs of client CPU, 104 through a pipeline
            client = self._redis if self._pinned is None else self._pinned.take()
            try:
                return [client.evalsha(script.sha, len(script_keys), *script_keys, *args)]
            except redis.ResponseError as error:  # an answer: the script was refused
                return [error]
            finally:
                if self._pinned is not None:
                    self._pinned.give_back(client)
        pipe = self._redis.pipeline(transaction=False)
        for call in calls:
            script_keys, args = call[:2]
            pipe.evalsha(script.sha, len(script_keys), *script_keys, *args)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies

    def _round_trip_failure(self, operation: str, error: Exception) -> StorageUnavailable:
        """What a round trip of script calls that failed raises (logged here): OutcomeUnknown
        if a call may have left this process, else StorageUnavailable (nothing written)."""
        log.warning("redis %s failed: %s", operation, error.__class__.__name__)
        if self._rules.was_sent():
            return OutcomeUnknown(f"redis {operation}: outcome unknown")
        return StorageUnavailable(f"redis {operation} failed")

    def _reloaded_if_lost(self, script: LuaScript, replies: Sequence[Any]) -> bool:
        """Load ``script`` if Redis answered a call that it does not know it (Redis restarted
        or its script cache was flushed: none of those calls ran); whether it did."""
        if not any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
            return False
        # outside the write block: a cluster sends it to every master
        with _guard(f"load {script.name}"):
            script.load(self._redis)
        return True

    def _checked(self, operation: str, replies: list[Any]) -> list[Any]:
        """The replies of a round trip of script calls, if Redis ran every call.

        Raises:
            OutcomeUnknown: Redis refused some calls and ran the others, or some answers were
                lost (a cluster pipeline's node failed) after they had been sent.
            StorageUnavailable: Redis refused every call (out of memory: refused up front; a
                key of another type: refused before the script's first write).
        """
        failures = [reply for reply in replies if isinstance(reply, Exception)]
        if not failures:
            return replies
        log.warning("redis %s failed: %s", operation, failures[0])
        is_lost = any(not isinstance(failure, redis.ResponseError) for failure in failures)
        if len(failures) < len(replies) or (is_lost and self._rules.was_sent()):
            raise OutcomeUnknown(f"redis {operation}: outcome unknown") from failures[0]
        raise StorageUnavailable(f"redis {operation} failed") from failures[0]

    def _stream_scripts(
        self,
        operation: str,
        script: LuaScript,
        calls: Iterator[ScriptCall],
    ) -> list[Any]:
        """Run a script once per call of ``calls``, which builds each call when it is reached:
        each call is sent the moment it is built, and the replies are read when all are sent,
        so Redis runs a call while the next is built, on its own core. Still one round trip
        (per node of a cluster: ``_stream_on_nodes``): this thread waits only after the last
        send.

        The same guarantees as ``_run_scripts`` (not idempotent: never re-sent once it may
        have left this process), which it uses where there is no pinned connection (every
        pinned connection in use) and to run the calls again after Redis had lost the script;
        the calls that had run answer as replays then ("accepted").

        Raises:
            OutcomeUnknown: some calls were sent but their answers never came, or Redis refused
                some calls and ran the others.
            StorageUnavailable: nothing was written.
        """
        pinned = self._pinned
        if pinned is None:
            return self._stream_on_nodes(operation, script, calls)
        lent = pinned.lend()
        if lent is None:  # no connection to pin: the pipeline's retries and errors apply
            return self._run_scripts(operation, script, list(calls))
        client, connection = lent
        made: list[ScriptCall] = []
        try:
            with self._rules.write(is_idempotent=False):
                try:
                    for call in calls:
                        made.append(call)
                        # a retry only while nothing left this process (GuardedRetry)
                        connection.retry.call_with_retry(
                            functools.partial(connection.send_packed_command, [call.packed]),
                            lambda _: connection.disconnect(),
                        )
                    replies: list[Any] = []
                    for _ in made:
                        try:
                            replies.append(connection.read_response())
                        except redis.ResponseError as error:  # a reply: the next one follows
                            replies.append(error)
                except BaseException:
                    # replies may be on their way: this connection is out of step
                    connection.disconnect()
                    raise
        except FAILURES as error:
            raise self._round_trip_failure(operation, error) from error
        finally:
            pinned.give_back(client)
        if self._reloaded_if_lost(script, replies):
            # what ran before the script was lost answers as a replay in the second run
            return self._run_scripts(operation, script, made)
        return self._checked(operation, replies)

    def _stream_on_nodes(
        self,
        operation: str,
        script: LuaScript,
        calls: Iterator[ScriptCall],
    ) -> list[Any]:
        """``_stream_scripts`` on a Redis Cluster: each call is sent the moment it is built, on
        a connection of its slot's node (one per node and batch, from the node's pool), and the
        replies are read node by node when all are sent. Still one round trip per node, like a
        pipeline, without the cluster pipeline's client work per command: the cluster's extra
        server CPU per 50-event batch of five experiments, over one Redis's, fell from 0.7-1.3
        ms to 0.2-0.4 ms (bench_cluster.py, one worker), and the nodes start sooner.

        What redis-py's cluster client does for a command, this does as follows:
        - ``MOVED`` (the slot has another node now; the call did not run): the slot map is
          corrected, and those calls are sent again through the cluster client;
        - ``NOSCRIPT`` on some node: the script is loaded on every master and the batch runs
          again through the cluster client, as on one Redis;
        - a failed connect before anything left this process: the whole batch goes through
          the cluster client, which refreshes its map of the nodes and retries;
        - any later failure: ``OutcomeUnknown`` (never re-sent), and the next
          ``STREAM_PAUSE`` seconds of batches go through the cluster client, so that its
          error handling refreshes the map of the nodes.

        Raises:
            OutcomeUnknown: some calls were sent but their answers never came, or Redis refused
                some calls and ran the others.
            StorageUnavailable: nothing was written.
        """
        cluster = self._nodes_to_stream_on()
        if cluster is None:
            return self._run_scripts(operation, script, list(calls))
        made: list[ScriptCall] = []
        try:
            trip = NodeRoundTrip(cluster, self._rules)
            with self._rules.write(is_idempotent=False), trip:
                for call in calls:
                    made.append(call)
                    trip.send_packed(call.keys[0], call.packed)
                replies = trip.replies()
        except FAILURES as error:
            self._streams_paused_until = time.monotonic() + STREAM_PAUSE
            if not self._rules.was_sent():  # nothing left: the cluster client takes it all
                return self._run_scripts(operation, script, made + list(calls))
            raise self._round_trip_failure(operation, error) from error
        moved = [place for place, reply in enumerate(replies) if isinstance(reply, MovedError)]
        for place in moved:
            # the slot's new node, for every command after
            cluster.nodes_manager.move_slot(replies[place])
        if self._reloaded_if_lost(script, replies):
            # what ran before the script was lost answers as a replay in the second run
            return self._run_scripts(operation, script, made)
        if moved:
            try:
                again = self._run_scripts(operation, script, [made[place] for place in moved])
            except StorageUnavailable as error:
                if len(moved) < len(replies) and not isinstance(error, OutcomeUnknown):
                    raise OutcomeUnknown(f"redis {operation}: outcome unknown") from error
                raise
            for place, reply in zip(moved, again, strict=True):
                replies[place] = reply
        return self._checked(operation, replies)

    def _nodes_to_stream_on(self) -> GuardedCluster | None:
        """The cluster client whose nodes ``NodeRoundTrip`` may use now; None while a failed
        round trip's ``STREAM_PAUSE`` lasts, or while no node has answered yet: redis-py's
        cluster client (its retries, redirects and refreshes of the node map) serves then."""
        if time.monotonic() < self._streams_paused_until:
            return None
        try:
            cluster: GuardedCluster = self._redis.built()
        except FAILURES:
            return None
        return cluster

    def _read_on_nodes(self, commands: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any] | None:
        """The replies of read commands, each given with the key that routes it, in one round
        trip per cluster node (``NodeRoundTrip``); None when redis-py's cluster client must
        run them instead: an error reply (``MOVED`` included), a failure, or a failed batch on
        the nodes in the last ``STREAM_PAUSE`` seconds. Reads may run twice, so the cluster
        client's retries and redirects then apply as usual."""
        cluster = self._nodes_to_stream_on()
        if cluster is None:
            return None
        try:
            with NodeRoundTrip(cluster, self._rules) as trip:
                for key, command in commands:
                    trip.send(key, *command)
                replies = trip.replies()
        except FAILURES:
            self._streams_paused_until = time.monotonic() + STREAM_PAUSE
            return None
        if any(isinstance(reply, Exception) for reply in replies):
            return None
        return replies

    def enrol(
        self, enrolments: Sequence[Enrolment], day: str, value_limit: int
    ) -> list[EnrolmentOutcome]:
        """Record first enrolments (counted exactly once) and read existing ones, atomically
        per experiment (in the visitor's sub-shard), all in one round trip (per cluster node)."""
        calls = []
        for item in enrolments:
            shard = keys.visitor_shard(item.experiment, item.visitor, item.shards)
            script_keys = [
                keys.enrolments(shard, item.phase),
                keys.counts(shard, item.phase),
                *(keys.segment_values(shard, item.phase, name) for name in item.segments),
            ]
            variant = "" if item.variant_index is None else str(item.variant_index)
            args = [item.visitor, variant, day, value_limit, *item.segments, *item.segment_values]
            # per-visitor extras of the record (keys.py): the enrolment time of windowed goals
            args.append("" if item.minute is None else f"{keys.EXTRA}t:{item.minute}")
            args.append("" if item.covariate is None else item.covariate)  # CUPED, issue 20
            calls.append((script_keys, args))
        replies = self._run_scripts("enrol", self._enrol, calls, is_idempotent=True)
        return [
            EnrolmentOutcome(None if index < 0 else int(index), status == 1)
            for status, index in replies
        ]

    def expire_visitor_records(
        self, experiment: str, phase: int, seconds: int, shards: int = 1
    ) -> None:
        """Let every per-visitor record of a phase expire in ``seconds`` (retention limit)."""
        with _guard("expire visitor records"):
            pipe = self._redis.pipeline(transaction=False)
            for shard in range(shards):
                for name in keys.per_visitor(keys.sub_shard(experiment, shard, shards), phase):
                    pipe.expire(name, seconds)
            pipe.execute()

    def read_counts(self, experiment: str, phase: int, shards: int = 1) -> dict[str, int | None]:
        """Every aggregate counter of a phase (fields as documented in ``keys``), summed field
        by field over its sub-shards; None for a field that does not hold an integer (in any
        sub-shard), which the reader reports instead of failing on."""
        with _guard("read counts"):
            pipe = self._redis.pipeline(transaction=False)
            for shard in range(shards):
                pipe.hgetall(keys.counts(keys.sub_shard(experiment, shard, shards), phase))
            parts = pipe.execute()
        summed: dict[str, int | None] = {}
        for raw in parts:
            for name, value in raw.items():
                field, count = _text(name), _count(value)
                if field not in summed:
                    summed[field] = count
                else:
                    before = summed[field]
                    summed[field] = None if before is None or count is None else before + count
        return summed

    def record_events(
        self,
        groups: Iterable[Sequence[Attribution]],
        now: float,
        window: int,
        *,
        today: str,
        daily_conversions: int,
        total_limit: int,
    ) -> list[int]:
        """Count conversions and orders in the variants their visitors are enrolled in.

        ``groups``: the attributions, one experiment phase per group (an experiment may come in
        several). One script call per group and sub-shard, all in one round trip (per node of
        a cluster): each call leaves for Redis as soon as its group is built
        (``_stream_scripts``), so that Redis runs it while the caller builds the next. Each
        event is counted once. Returns per attribution, in the order of the groups, the reply
        of ``lua/record_event.lua``: 1 counted, 2 a replay of the same content, 0 duplicate,
        -1 visitor not enrolled, -3 the visitor's daily conversions are at
        ``daily_conversions``, -4 same id with other content, -5 a visitor total would leave
        ±``total_limit`` cents, -6 an odd stored counter; only 1 writes.
        """
        positions: list[list[int]] = []  # per call, the places of its attributions
        count = 0  # attributions so far

        packed: dict[Any, bytes] = {}  # each event's and goal shape's part, packed once

        def calls() -> Iterator[ScriptCall]:
            nonlocal count
            trim_below = idempotency_score(now - window, 0)
            for attributions in groups:
                by_shard: dict[tuple[str, int], list[int]] = {}
                for offset, item in enumerate(attributions):
                    shard = keys.visitor_shard(item.experiment, item.visitor, item.shards)
                    by_shard.setdefault((shard, item.phase), []).append(offset)
                for (shard, phase), offsets in by_shard.items():
                    positions.append([count + offset for offset in offsets])
                    yield self._record_call(
                        shard,
                        phase,
                        [attributions[offset] for offset in offsets],
                        now,
                        trim_below,
                        today,
                        daily_conversions,
                        total_limit,
                        packed,
                    )
                count += len(attributions)

        replies = self._stream_scripts("record events", self._record_event, calls())
        results = [0] * count
        for places, call_replies in zip(positions, replies, strict=True):
            for place, reply in zip(places, call_replies, strict=True):
                results[place] = int(reply)
        return results

    def _record_call(
        self,
        shard: str,
        phase: int,
        items: Sequence[Attribution],
        now: float,
        trim_below: int,
        today: str,
        daily_conversions: int,
        total_limit: int,
        packed: dict[Any, bytes],
    ) -> ScriptCall:
        """One ``lua/record_event.lua`` call: ``items`` of one experiment phase's sub-shard
        ``shard``. An event's arguments are the same in each experiment it counts in: they are
        packed once per batch (in ``packed``, by their values), and so are the goal triples of
        equal goal values within a call. hiredis packs about 160 ns per argument, and a batch
        of the shop mix has some 3,400 arguments in its five calls, 700 of them distinct."""
        segments = items[0].segments
        script_keys = [
            keys.enrolments(shard, phase),
            keys.totals(shard, phase),
            keys.counts(shard, phase),
            keys.seen(shard, phase),
            keys.orders(shard, phase),
        ]
        fixed = (
            trim_below,
            today,
            daily_conversions,
            total_limit,
            self._value_cap_cents,
            1 if items[0].capped_differences else 0,
            len(segments),
            *segments,
        )
        args: list[Any] = list(fixed)
        head = ("EVALSHA", self._record_event.sha, len(script_keys), *script_keys, *fixed)
        parts = [packed_arguments(head)]
        count = len(head)
        # the goal triples of equal goal values (most events of a batch share theirs), made
        # and packed once per call; the items keep their goals alive, so ids stay theirs
        triples: dict[tuple[int, int], tuple[list[Any], bytes]] = {}
        for item in items:
            event = (
                item.visitor,
                item.member,
                idempotency_score(now, item.digest),
                item.day,
                item.order_id,
                item.gross,
                item.net_revenue,
                len(item.goals),
            )
            shape = (id(item.goals), item.minute)
            goals = triples.get(shape)
            if goals is None:
                values = _goal_triples(item.goals, item.minute)
                part_of_goals = packed_arguments(tuple(values)) if values else b""
                goals = triples[shape] = (values, part_of_goals)
            args += event
            args += goals[0]
            part = packed.get(event)
            if part is None:
                part = packed[event] = packed_arguments(event)
            parts += (part, goals[1])
            count += len(event) + len(goals[0])
        return ScriptCall(script_keys, args, packed_command(count, parts))

    def _read_pinned(self, commands: Sequence[tuple[Any, ...]]) -> list[Any] | None:
        """The replies of read commands in one round trip on a pinned connection of one Redis,
        without a pipeline's client work per command (a batch's enrolment read: 5 HMGETs of
        50 fields each); None when the pipeline must run them instead: no pinned connection
        free, an error reply, or a failure (the pipeline's retries and errors then apply:
        reads may run twice)."""
        pinned = self._pinned
        lent = None if pinned is None or not commands else pinned.lend()
        if pinned is None or lent is None:
            return None
        client, connection = lent
        try:
            packed = b"".join(hiredis.pack_command(command) for command in commands)
            connection.send_packed_command([packed])
            return [connection.read_response() for _ in commands]
        except FAILURES:  # an error reply included: the replies after it are unread
            connection.disconnect()
            return None
        finally:
            pinned.give_back(client)

    def enrolled(self, wanted: Sequence[tuple[str, int, int, Sequence[str]]]) -> list[set[str]]:
        """Of each (experiment, phase, sub-shards, pseudonyms) of ``wanted``, the pseudonyms
        enrolled in that experiment phase right now.

        One HMGET per enrolment hash (each sub-shard of an experiment phase), all in one round
        trip (per node of a cluster). The pseudonyms come grouped by experiment phase, each
        once: an event batch's enrolment read costs one step per visitor and experiment here,
        not a tuple, a key and a look-up per event and experiment.
        """
        # (place in wanted, enrolment hash, pseudonyms)
        commands: list[tuple[int, str, Sequence[str]]] = []
        for place, (experiment, phase, shards, visitors) in enumerate(wanted):
            if shards == 1:
                if visitors:
                    commands.append((place, keys.enrolments(experiment, phase), visitors))
                continue
            by_shard: dict[str, list[str]] = {}
            for visitor in visitors:
                tag = keys.visitor_shard(experiment, visitor, shards)
                by_shard.setdefault(tag, []).append(visitor)
            commands += [
                (place, keys.enrolments(tag, phase), part) for tag, part in by_shard.items()
            ]
        if self._is_cluster:
            replies = self._read_on_nodes(
                [(key, ("HMGET", key, *visitors)) for _, key, visitors in commands]
            )
        else:
            replies = self._read_pinned(
                [("HMGET", key, *visitors) for _, key, visitors in commands]
            )
        if replies is None:
            with _guard("read enrolments"):
                pipe = self._redis.pipeline(transaction=False)
                for _, key, visitors in commands:
                    pipe.hmget(key, visitors)
                replies = pipe.execute()
        found: list[set[str]] = [set() for _ in wanted]
        for (place, _, visitors), records in zip(commands, replies, strict=True):
            found[place].update(
                visitor
                for visitor, record in zip(visitors, records, strict=True)
                if record is not None
            )
        return found

    def find_orders(
        self, places: Sequence[tuple[str, int, int]], order_id: str
    ) -> list[OrderRecord]:
        """The experiment phases (of ``places``: experiment, phase, sub-shards) where an order
        was counted; a refund names no visitor, so every sub-shard is asked."""
        spots = [
            (experiment, phase, shard, shards)
            for experiment, phase, shards in places
            for shard in range(shards)
        ]
        with _guard("find orders"):
            pipe = self._redis.pipeline(transaction=False)
            for experiment, phase, shard, shards in spots:
                pipe.hget(keys.orders(keys.sub_shard(experiment, shard, shards), phase), order_id)
            replies = pipe.execute()
        found = []
        for (experiment, phase, shard, shards), raw in zip(spots, replies, strict=True):
            if raw is not None:
                fields = _text(raw).split(ORDER_FIELD_SEPARATOR)
                found.append(
                    OrderRecord(experiment, phase, int(fields[2]), int(fields[3]), shard, shards)
                )
        return found

    def refund(
        self, refunds: Sequence[RefundWrite], now: float, window: int, *, total_limit: int
    ) -> list[int]:
        """Take refunds off their orders. Per item the reply of ``lua/refund.lua``: 1 applied,
        2 a replay of the same content, -1 no such order, -2 more than is left of the order,
        -4 same id with other content, -5 a visitor total would leave ±``total_limit``,
        -6 an odd stored figure; only 1 writes."""
        calls = []
        for item in refunds:
            order = item.order
            shard, phase = keys.sub_shard(order.experiment, order.shard, order.shards), order.phase
            script_keys = [
                keys.orders(shard, phase),
                keys.totals(shard, phase),
                keys.counts(shard, phase),
                keys.seen(shard, phase),
                keys.enrolments(shard, phase),  # the buyer's CUPED covariate
            ]
            args = [
                item.order_id,
                item.member,
                idempotency_score(now, item.digest),
                idempotency_score(now - window, 0),
                item.day,
                item.amount,
                item.reduction,
                total_limit,
                len(item.segments),
                *item.segments,
                self._value_cap_cents,
                1 if item.capped_differences else 0,
            ]
            calls.append((script_keys, args))
        if not calls:
            return []
        return [int(reply) for reply in self._run_scripts("refund", self._refund, calls)]

    def erase_visitor(self, visitor: str, places: Sequence[tuple[str, int, int]]) -> dict[str, int]:
        """Delete every per-visitor record of a pseudonym in the given experiment phases
        (experiment, phase, sub-shards), wherever their slots are.

        Aggregate counters stay. Returns how many records of each kind were removed.
        """
        removed = {"enrolments": 0, "totals": 0, "orders": 0, "idempotency_keys": 0}
        prefix = f"{visitor}:"  # of the visitor's older one-value fields in the totals hash
        with _guard("erase visitor"):
            for experiment, phase, shards in places:
                shard = keys.visitor_shard(experiment, visitor, shards)
                removed["enrolments"] += self._redis.hdel(keys.enrolments(shard, phase), visitor)
                totals_key = keys.totals(shard, phase)
                # totals of versions before (now they are part of the enrolment record)
                fields = [
                    name
                    for name, _ in self._redis.hscan_iter(
                        totals_key, match=_glob_escape(prefix) + "*", count=SCAN_BATCH
                    )
                ]
                if fields:
                    removed["totals"] += self._redis.hdel(totals_key, *fields)
                orders_key = keys.orders(shard, phase)
                owner = (visitor + ORDER_FIELD_SEPARATOR).encode()
                order_ids = [
                    _text(name)
                    for name, value in self._redis.hscan_iter(orders_key, count=SCAN_BATCH)
                    if value.startswith(owner)
                ]
                if order_ids:
                    removed["orders"] += self._redis.hdel(orders_key, *order_ids)
                seen_key = keys.seen(shard, phase)
                prefixes = [
                    keys.conversion_member_prefix(visitor),
                    keys.legacy_member_prefix(visitor),
                    *(keys.refund_member_prefix(order_id) for order_id in order_ids),
                ]
                members: list[Any] = [keys.order_member(order_id) for order_id in order_ids]
                members += [
                    member
                    for member_prefix in prefixes
                    for member, _ in self._redis.zscan_iter(
                        seen_key, match=_glob_escape(member_prefix) + "*", count=SCAN_BATCH
                    )
                ]
                if members:
                    # an order's member may be gone already (trimmed by age): ZREM counts
                    # only what it removed
                    removed["idempotency_keys"] += self._redis.zrem(seen_key, *members)
            self._redis.incr(keys.ERASURES)  # workers forget cached enrolments within a second
        return removed

    # --- evaluator and webhooks (issue 21): once a minute, never on a hot path; EVAL sends
    # the short scripts' source each time, which spares the NOSCRIPT fallback

    def take_turn(self, token: str, seconds: float) -> bool:
        """Take the evaluator's turn for ``seconds`` unless another worker holds it."""
        with _guard("take turn"):
            taken = self._redis.set(
                keys.EVALUATOR_TURN, token, nx=True, px=max(1, round(seconds * 1000))
            )
        return bool(taken)

    def keep_turn(self, token: str, seconds: float) -> bool:
        """Extend this worker's turn by ``seconds`` from now; False when it is no longer ours."""
        with _guard("keep turn"):
            kept = self._redis.eval(
                self._keep_turn.source,
                1,
                keys.EVALUATOR_TURN,
                token,
                max(1, round(seconds * 1000)),
            )
        return bool(kept)

    def is_announced(self, field: str) -> bool:
        """Whether an announcement (keys.announcement) was made before."""
        with _guard("read announcements"):
            return bool(self._redis.hexists(keys.ANNOUNCED, field))

    def announce(self, field: str, now: float, delivery: Delivery | None) -> int:
        """Remember an announcement once and queue its delivery (lua/announce.lua's answer:
        0 announced before, 1 done, 2 the outbox was full and the delivery dropped)."""
        args: list[Any] = [field, now, "", "", keys.OUTBOX_LIMIT]
        if delivery is not None:
            args[2:4] = [delivery.id, codec.delivery_to_json(delivery)]
        with _guard("announce"):
            return int(
                self._redis.eval(
                    self._announce.source,
                    3,
                    keys.ANNOUNCED,
                    keys.OUTBOX,
                    keys.DELIVERIES,
                    *args,
                )
            )

    def prune_announcements(self, experiments: Collection[str]) -> int:
        """Forget the announcements of experiments that no longer exist; how many went."""
        with _guard("prune announcements"):
            fields = [_text(name) for name in self._redis.hkeys(keys.ANNOUNCED)]
            gone = [name for name in fields if keys.announced_experiment(name) not in experiments]
            return int(self._redis.hdel(keys.ANNOUNCED, *gone)) if gone else 0

    def due_deliveries(self, now: float, limit: int) -> list[Delivery]:
        """Up to ``limit`` queued deliveries whose next attempt is due, the oldest first."""
        with _guard("read outbox"):
            ids: list[bytes] = self._redis.zrangebyscore(
                keys.OUTBOX, "-inf", now, start=0, num=limit
            )
            if not ids:
                return []
            documents = self._redis.hmget(keys.DELIVERIES, ids)
            lost = [name for name, document in zip(ids, documents, strict=True) if not document]
            if lost:  # an outbox entry without its document cannot be sent: drop it
                self._redis.zrem(keys.OUTBOX, *lost)
        return [
            codec.delivery_from_json(_text(name), document)
            for name, document in zip(ids, documents, strict=True)
            if document
        ]

    def retry_delivery(self, delivery: Delivery, due: float) -> None:
        """Keep a failed delivery, with its attempts counted, for another attempt at ``due``."""
        with _guard("retry delivery"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.DELIVERIES, delivery.id, codec.delivery_to_json(delivery))
            pipe.zadd(keys.OUTBOX, {delivery.id: due})
            pipe.execute()

    def finish_delivery(self, delivery_id: str) -> None:
        """Take a delivery out of the outbox (delivered, or given up)."""
        with _guard("finish delivery"), self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.OUTBOX, delivery_id)
            pipe.hdel(keys.DELIVERIES, delivery_id)
            pipe.execute()
