"""The Redis store: the only redis importer; its failures become StorageUnavailable."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.core.models import AuditEntry, Experiment
from server.storage import codec, keys
from server.storage.errors import StorageUnavailable

log = logging.getLogger(__name__)

OPTIMISTIC_ATTEMPTS = 5  # WATCH retries for a concurrent edit before giving up; edits are rare
SCAN_BATCH = 500  # keys per SCAN step when deleting an experiment's data


@contextmanager
def _guard(operation: str) -> Iterator[None]:
    """Translate every redis-py failure into StorageUnavailable, logged once here."""
    try:
        yield
    except redis.RedisError as error:
        log.warning("redis %s failed: %s", operation, error.__class__.__name__)
        raise StorageUnavailable(f"redis {operation} failed") from error


def _text(value: bytes | str) -> str:
    """Redis answers bytes; keys and fields of ours are UTF-8."""
    return value.decode() if isinstance(value, bytes) else value


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


class Store:
    """Reads and writes Splitwerk's data in one Redis (see ``server.storage.keys``)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()

    def ping(self) -> None:
        """Check that Redis answers; raises StorageUnavailable otherwise."""
        with _guard("ping"):
            self._redis.ping()

    def config_version(self) -> int:
        """The counter that changes with every experiment change (the /v1/config ETag)."""
        with _guard("config version"):
            raw = self._redis.get(keys.CONFIG_VERSION)
        return int(raw or 0)

    def load_experiments(self) -> tuple[int, dict[str, Experiment]]:
        """Every experiment with the config version they belong to, read atomically."""
        with _guard("load experiments"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(keys.CONFIG_VERSION)
            pipe.hgetall(keys.EXPERIMENTS)
            version, documents = pipe.execute()
        experiments = {
            _text(key): codec.experiment_from_json(document) for key, document in documents.items()
        }
        return int(version or 0), experiments

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
                    snapshot = {
                        _text(name): codec.experiment_from_json(document)
                        for name, document in documents.items()
                    }
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

    def delete_experiment(self, key: str, check: Callable[[Experiment | None], None]) -> None:
        """Delete an experiment and every key of it, after ``check`` approved its current state."""
        with _guard("delete experiment"), self._redis.pipeline(transaction=True) as pipe:
            for _ in range(OPTIMISTIC_ATTEMPTS):
                try:
                    pipe.watch(keys.EXPERIMENTS)  # type: ignore[no-untyped-call]  # redis stub gap
                    document = pipe.hget(keys.EXPERIMENTS, key)
                    check(None if document is None else codec.experiment_from_json(document))
                    pipe.multi()
                    pipe.hdel(keys.EXPERIMENTS, key)
                    pipe.incr(keys.CONFIG_VERSION)
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

    def audit_trail(self, key: str, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` audit entries of an experiment, newest first."""
        with _guard("audit trail"):
            documents = self._redis.lrange(keys.audit(key), 0, limit - 1)
        return [codec.audit_from_json(document) for document in documents]
