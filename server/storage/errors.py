"""Exceptions of the storage layer; redis-py's own exceptions never leave server.storage.

StorageError
└── StorageUnavailable      Redis did not answer in time or refused the connection
    ├── OutcomeUnknown      a write was sent, its answer never came: it may have happened
    ├── RedisRefused        Redis is set up to lose our data (allkeys-* eviction): never start
    └── NotReady            a readiness check failed; names the Redis state
"""


class StorageError(Exception):
    """Base of storage failures."""


class StorageUnavailable(StorageError):
    """Redis is unreachable or too slow; callers degrade or answer 503 with Retry-After."""


class RedisRefused(StorageUnavailable):
    """Redis would delete our keys when full (``maxmemory-policy allkeys-*``); the message says
    which setting to change. Raised at start-up, so the server does not start."""


class NotReady(StorageUnavailable):
    """The worker cannot answer, or (strict readiness) Redis does not take writes."""

    def __init__(self, redis_state: str) -> None:
        super().__init__(f"not ready: redis {redis_state}")
        self.redis_state = redis_state


class OutcomeUnknown(StorageUnavailable):
    """A write left for Redis but its answer never came (a timeout, a lost connection), or
    Redis refused only part of a batch's writes: it may or may not have happened. Plain
    ``StorageUnavailable`` from a write means nothing was written."""
