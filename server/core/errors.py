"""Exceptions of the domain layer, raised by core and services, mapped to HTTP in server.errors.

DomainError                 anything the domain refuses
├── NotFound                no experiment (or other resource) with that key
├── Conflict                the request contradicts the current state
│   └── TransitionRefused   a lifecycle action not allowed from the current status
└── InvalidInput            a value the schema accepts but the domain does not;
                            ``errors`` maps field names to messages
"""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """Base of every domain refusal; ``message`` is safe to show to the caller."""

    def __init__(self, message: str, errors: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: Mapping[str, object] = errors or {}


class NotFound(DomainError):
    """No resource with that key."""


class Conflict(DomainError):
    """The request contradicts the stored state (duplicate key, overlap, running experiment)."""


class TransitionRefused(Conflict):
    """A lifecycle action that the experiment's status does not allow."""


class InvalidInput(DomainError):
    """Input that passed the schema but breaks a domain rule; ``errors`` names the fields."""
