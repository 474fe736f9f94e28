"""The SDK's one catch-all: keeps SDK errors out of the host application, and logs them.

A bug in the SDK must never break a shop's checkout. Every public method after the
constructor is wrapped in ``swallow_errors``, which logs any ``Exception`` and returns the
method's fallback instead; background threads guard each round with ``ErrorGuard``.
``BaseException`` (``KeyboardInterrupt``, ``SystemExit``) always passes through.
"""

import functools
import logging
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def swallow_errors(fallback: Callable[P, R]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a public method: on any ``Exception``, log it and return ``fallback(...)``.

    ``fallback`` gets the same arguments and must not raise (keep it trivial). A decorator
    with a plain ``try`` rather than a ``with`` block: it sits on the hot path of
    ``Client.variant``, where a context manager's two extra calls cost a fifth of the time.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except Exception:
                log.exception(
                    "splitwerk: internal error in %s; using a fallback", function.__name__
                )
                return fallback(*args, **kwargs)

        return guarded

    return decorate


class ErrorGuard:
    """Context manager that logs and suppresses any ``Exception`` inside its block."""

    __slots__ = ("_context",)

    def __init__(self, context: str) -> None:
        self._context = context

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if not isinstance(exc, Exception):
            return False
        log.error("splitwerk: internal error in %s", self._context, exc_info=exc)
        return True
