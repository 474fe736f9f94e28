"""The Redis store: the only redis importer; its failures become StorageUnavailable."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.core.models import (
    Attribution,
    AuditEntry,
    Enrolment,
    EnrolmentOutcome,
    Experiment,
    OrderRecord,
    RefundWrite,
)
from server.storage import codec, keys
from server.storage.errors import StorageUnavailable

log = logging.getLogger(__name__)

LUA_FOLDER = Path(__file__).with_name("lua")
OPTIMISTIC_ATTEMPTS = 5  # WATCH retries for a concurrent edit before giving up; edits are rare
ORDER_FIELD_SEPARATOR = "\x1f"  # between the fields of an order record (see lua/record_event.lua)
SCAN_BATCH = 500  # keys per SCAN step when deleting an experiment's data


@contextmanager
def _guard(operation: str) -> Iterator[None]:
    """Translate every redis-py failure into StorageUnavailable, logged once here."""
    try:
        yield
    except redis.RedisError as error:
        log.warning("redis %s failed: %s", operation, error.__class__.__name__)
        raise StorageUnavailable(f"redis {operation} failed") from error


def _glob_escape(text: str) -> str:
    """Escape the glob characters of SCAN's MATCH, so ids match only themselves."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


def _text(value: bytes | str) -> str:
    """Redis answers bytes; keys and fields of ours are UTF-8."""
    return value.decode() if isinstance(value, bytes) else value


def _decode_experiments(
    documents: Mapping[bytes | str, bytes | str],
) -> dict[str, Experiment]:
    """The experiments of an HGETALL of the experiments hash, by key."""
    return {_text(key): codec.experiment_from_json(document) for key, document in documents.items()}


def connect(
    url: str,
    *,
    socket_timeout: float,
    connect_timeout: float,
    retries: int,
    max_connections: int,
) -> redis.Redis:
    """Build a Redis client with explicit timeouts and retries (never the library defaults)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), retries),
        retry_on_timeout=retries > 0,
        max_connections=max_connections,
        health_check_interval=30,  # seconds; revalidates idle pooled connections before use
    )


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
    (their sockets belong to the parent).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pooled = client
        self._limit = client.connection_pool.max_connections // 2
        self._created = 0
        self._lock = threading.Lock()  # taken only to create a client
        self._idle: deque[redis.Redis] = deque()  # append and pop are atomic in CPython
        _ALL_PINNED.add(self)

    def take(self) -> redis.Redis:
        """An idle pinned client, a new one, or the pooled client when the limit is reached.

        Raises:
            redis.RedisError: Redis refuses a new connection.
        """
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
        except BaseException:
            with self._lock:
                self._created -= 1
            raise

    def give_back(self, client: redis.Redis) -> None:
        """Return a client that ``take`` gave."""
        if client is not self._pooled:
            self._idle.append(client)

    def forget(self) -> None:
        """Drop every idle client without closing it (after a fork: the parent owns them).

        Runs in the forked child, where only the forking thread exists: the lock may have
        been held by a thread that is gone, so it is replaced, not taken.
        """
        self._lock = threading.Lock()
        self._idle = deque()
        self._created = 0

    def close(self) -> None:
        """Return every idle client's connection to the pool."""
        while self._idle:
            self._idle.pop().close()
            with self._lock:
                self._created -= 1


_ALL_PINNED: weakref.WeakSet[PinnedClients] = weakref.WeakSet()


def _forget_pinned_after_fork() -> None:
    for pinned in list(_ALL_PINNED):
        pinned.forget()


os.register_at_fork(after_in_child=_forget_pinned_after_fork)


class LuaScript:
    """A Lua script from ``lua/``, run by EVALSHA and loaded on demand.

    redis-py's own Script objects check every script with SCRIPT EXISTS before each pipeline
    runs: one more round trip on the hot path, which this avoids.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = (LUA_FOLDER / f"{name}.lua").read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()  # Redis's id

    def load(self, client: redis.Redis) -> None:
        """Load the script into Redis's script cache (after a restart or SCRIPT FLUSH)."""
        client.script_load(self.source)


class Store:
    """Reads and writes Splitwerk's data in one Redis (see ``server.storage.keys``)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._pinned = PinnedClients(client)
        self._enrol = LuaScript("enrol")
        self._record_event = LuaScript("record_event")
        self._refund = LuaScript("refund")

    def close(self) -> None:
        """Close the connection pool."""
        self._pinned.close()
        self._redis.close()

    def ping(self) -> None:
        """Check that Redis answers; raises StorageUnavailable otherwise."""
        with _guard("ping"):
            self._redis.ping()

    def versions(self) -> tuple[int, int]:
        """The counters of experiment changes (the /v1/config ETag) and of visitor erasures."""
        with _guard("versions"):
            config, erasures = self._redis.mget(keys.CONFIG_VERSION, keys.ERASURES)
        return int(config or 0), int(erasures or 0)

    def load_experiments(self) -> tuple[int, dict[str, Experiment]]:
        """Every experiment with the config version they belong to, read atomically."""
        with _guard("load experiments"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(keys.CONFIG_VERSION)
            pipe.hgetall(keys.EXPERIMENTS)
            version, documents = pipe.execute()
        return int(version or 0), _decode_experiments(documents)

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
        """
        with _guard("save experiment"), self._redis.pipeline(transaction=True) as pipe:
            for _ in range(OPTIMISTIC_ATTEMPTS):
                try:
                    pipe.watch(keys.EXPERIMENTS)  # type: ignore[no-untyped-call]  # redis stub gap
                    documents = pipe.hgetall(keys.EXPERIMENTS)
                    snapshot = _decode_experiments(documents)
                    updated = change(snapshot.get(key), snapshot)
                    pipe.multi()
                    pipe.hset(keys.EXPERIMENTS, key, codec.experiment_to_json(updated))
                    pipe.incr(keys.CONFIG_VERSION)
                    pipe.lpush(keys.audit(key), codec.audit_to_json(audit))
                    pipe.ltrim(keys.audit(key), 0, keys.AUDIT_LIMIT - 1)
                    pipe.execute()
                    return updated
                except redis.WatchError:
                    continue
        raise StorageUnavailable("experiment changed concurrently too often; try again")

    def delete_experiment(self, key: str, check: Callable[[Experiment | None], AuditEntry]) -> None:
        """Delete an experiment and every key of it, after ``check`` approved its current state.

        ``check`` returns the entry for the deletion log, written in the same transaction: the
        experiment's own audit trail is deleted with it.
        """
        with _guard("delete experiment"), self._redis.pipeline(transaction=True) as pipe:
            for _ in range(OPTIMISTIC_ATTEMPTS):
                try:
                    pipe.watch(keys.EXPERIMENTS)  # type: ignore[no-untyped-call]  # redis stub gap
                    document = pipe.hget(keys.EXPERIMENTS, key)
                    audit = check(
                        None if document is None else codec.experiment_from_json(document)
                    )
                    pipe.multi()
                    pipe.hdel(keys.EXPERIMENTS, key)
                    pipe.incr(keys.CONFIG_VERSION)
                    pipe.lpush(keys.DELETIONS, codec.audit_to_json(audit))
                    pipe.ltrim(keys.DELETIONS, 0, keys.AUDIT_LIMIT - 1)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
            else:
                raise StorageUnavailable("experiment changed concurrently too often; try again")
        self._delete_matching(keys.experiment_pattern(key))

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
        self, script: LuaScript, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """Run one script several times in a single round trip, loading it if Redis lost it."""
        for attempt in range(2):
            try:
                if len(calls) == 1:  # the common case; a pipeline would only add client work
                    script_keys, args = calls[0]
                    client = self._pinned.take()
                    try:
                        reply = client.evalsha(script.sha, len(script_keys), *script_keys, *args)
                    finally:
                        self._pinned.give_back(client)
                    return [reply]
                pipe = self._redis.pipeline(transaction=False)
                for script_keys, args in calls:
                    pipe.evalsha(script.sha, len(script_keys), *script_keys, *args)
                return pipe.execute()
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                script.load(self._redis)  # Redis restarted or its script cache was flushed
        raise AssertionError("unreachable")  # pragma: no cover

    def enrol(
        self, enrolments: Sequence[Enrolment], day: str, value_limit: int
    ) -> list[EnrolmentOutcome]:
        """Record first enrolments (counted exactly once) and read existing ones, atomically
        per experiment, all in one round trip."""
        calls = []
        for item in enrolments:
            script_keys = [
                keys.enrolments(item.experiment, item.phase),
                keys.counts(item.experiment, item.phase),
                *(keys.segment_values(item.experiment, item.phase, name) for name in item.segments),
            ]
            variant = "" if item.variant_index is None else str(item.variant_index)
            args = [item.visitor, variant, day, value_limit, *item.segments, *item.segment_values]
            calls.append((script_keys, args))
        with _guard("enrol"):
            replies = self._run_scripts(self._enrol, calls)
        return [
            EnrolmentOutcome(None if index < 0 else int(index), status == 1)
            for status, index in replies
        ]

    def expire_visitor_records(self, experiment: str, phase: int, seconds: int) -> None:
        """Let every per-visitor record of a phase expire in ``seconds`` (retention limit)."""
        with _guard("expire visitor records"):
            pipe = self._redis.pipeline(transaction=False)
            for name in keys.per_visitor(experiment, phase):
                pipe.expire(name, seconds)
            pipe.execute()

    def read_counts(self, experiment: str, phase: int) -> dict[str, int]:
        """Every aggregate counter of a phase (fields as documented in ``keys``)."""
        with _guard("read counts"):
            raw = self._redis.hgetall(keys.counts(experiment, phase))
        return {_text(name): int(value) for name, value in raw.items()}

    def record_events(
        self, attributions: Sequence[Attribution], now: float, window: int
    ) -> list[int]:
        """Count conversions and orders in the variants their visitors are enrolled in.

        One script call per experiment phase, all in one round trip; each event is counted
        once. Returns per item: 1 counted, 0 duplicate, -1 visitor not enrolled.
        """
        groups: dict[tuple[str, int], list[int]] = {}
        for position, item in enumerate(attributions):
            groups.setdefault((item.experiment, item.phase), []).append(position)
        calls = []
        for (experiment, phase), positions in groups.items():
            segments = attributions[positions[0]].segments
            args: list[Any] = [now, now - window, len(segments), *segments]
            for position in positions:
                item = attributions[position]
                args += [
                    item.visitor,
                    item.member,
                    item.day,
                    item.order_id,
                    item.gross,
                    item.net_revenue,
                    len(item.goals),
                ]
                for goal in item.goals:
                    args += [goal.goal, goal.kind.value[0], goal.cents]
            script_keys = [
                keys.enrolments(experiment, phase),
                keys.totals(experiment, phase),
                keys.counts(experiment, phase),
                keys.seen(experiment, phase),
                keys.orders(experiment, phase),
            ]
            calls.append((script_keys, args))
        if not calls:
            return []
        with _guard("record events"):
            replies = self._run_scripts(self._record_event, calls)
        results = [0] * len(attributions)
        for positions, group_replies in zip(groups.values(), replies, strict=True):
            for position, reply in zip(positions, group_replies, strict=True):
                results[position] = int(reply)
        return results

    def find_orders(self, places: Sequence[tuple[str, int]], order_id: str) -> list[OrderRecord]:
        """The experiment phases (of ``places``) where an order was counted."""
        with _guard("find orders"):
            pipe = self._redis.pipeline(transaction=False)
            for experiment, phase in places:
                pipe.hget(keys.orders(experiment, phase), order_id)
            replies = pipe.execute()
        found = []
        for (experiment, phase), raw in zip(places, replies, strict=True):
            if raw is not None:
                fields = _text(raw).split(ORDER_FIELD_SEPARATOR)
                found.append(OrderRecord(experiment, phase, int(fields[2]), int(fields[3])))
        return found

    def refund(self, refunds: Sequence[RefundWrite], now: float, window: int) -> list[int]:
        """Take refunds off their orders. Per item: 1 applied, 0 duplicate, -1 no such order,
        -2 more than is left of the order."""
        calls = []
        for item in refunds:
            experiment, phase = item.order.experiment, item.order.phase
            script_keys = [
                keys.orders(experiment, phase),
                keys.totals(experiment, phase),
                keys.counts(experiment, phase),
                keys.seen(experiment, phase),
            ]
            args = [
                item.order_id,
                item.member,
                now,
                window,
                item.day,
                item.amount,
                item.reduction,
                len(item.segments),
                *item.segments,
            ]
            calls.append((script_keys, args))
        if not calls:
            return []
        with _guard("refund"):
            return [int(reply) for reply in self._run_scripts(self._refund, calls)]

    def erase_visitor(self, visitor: str, places: Sequence[tuple[str, int]]) -> dict[str, int]:
        """Delete every per-visitor record of a pseudonym in the given experiment phases.

        Aggregate counters stay. Returns how many records of each kind were removed.
        """
        removed = {"enrolments": 0, "totals": 0, "orders": 0, "idempotency_keys": 0}
        prefix = f"{visitor}:"
        with _guard("erase visitor"):
            for experiment, phase in places:
                removed["enrolments"] += self._redis.hdel(
                    keys.enrolments(experiment, phase), visitor
                )
                totals_key = keys.totals(experiment, phase)
                fields = [
                    name
                    for name, _ in self._redis.hscan_iter(
                        totals_key, match=_glob_escape(prefix) + "*", count=SCAN_BATCH
                    )
                ]
                if fields:
                    removed["totals"] += self._redis.hdel(totals_key, *fields)
                orders_key = keys.orders(experiment, phase)
                owner = (visitor + ORDER_FIELD_SEPARATOR).encode()
                order_ids = [
                    _text(name)
                    for name, value in self._redis.hscan_iter(orders_key, count=SCAN_BATCH)
                    if value.startswith(owner)
                ]
                if order_ids:
                    removed["orders"] += self._redis.hdel(orders_key, *order_ids)
                seen_key = keys.seen(experiment, phase)
                patterns = [_glob_escape(prefix) + "*"]
                patterns += [_glob_escape(f"r:{order_id}:") + "*" for order_id in order_ids]
                members = [
                    member
                    for pattern in patterns
                    for member, _ in self._redis.zscan_iter(
                        seen_key, match=pattern, count=SCAN_BATCH
                    )
                ]
                if members:
                    removed["idempotency_keys"] += self._redis.zrem(seen_key, *members)
            self._redis.incr(keys.ERASURES)  # workers forget cached enrolments within a second
        return removed
