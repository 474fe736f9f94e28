"""Exceptions of the storage layer; redis-py's own exceptions never leave server.storage.

StorageError
└── StorageUnavailable      Redis did not answer in time or refused the connection
    └── RedisRefused        Redis is set up to lose our data (allkeys-* eviction): never start
"""


class StorageError(Exception):
    """Base of storage failures."""


class StorageUnavailable(StorageError):
    """Redis is unreachable or too slow; callers degrade or answer 503 with Retry-After."""


class RedisRefused(StorageUnavailable):
    """Redis would delete our keys when full (``maxmemory-policy allkeys-*``); the message says
    which setting to change. Raised at start-up, so the server does not start."""
