"""Exceptions of the storage layer; redis-py's own exceptions never leave server.storage.

StorageError
└── StorageUnavailable      Redis did not answer in time or refused the connection
"""


class StorageError(Exception):
    """Base of storage failures."""


class StorageUnavailable(StorageError):
    """Redis is unreachable or too slow; callers degrade or answer 503 with Retry-After."""
