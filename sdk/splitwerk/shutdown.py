"""SIGTERM handling: send the queued events within a deadline, then do what was done before.

gunicorn, systemd, Kubernetes and Docker stop processes with SIGTERM. Python's default for it
ends the process at once, without ``atexit``, so queued orders would be lost. The SDK's
handler flushes first and then hands the signal on to the handler that was installed before:

- the default (``SIG_DFL``): close the client, restore the default and raise SIGTERM again,
  so the process ends exactly as it would have (exit status "terminated by SIGTERM");
- a host's own handler (a framework's graceful shutdown): flush, then call it; the client
  stays open for requests the host still finishes, and ``atexit`` closes it later;
- ignored (``SIG_IGN``): flush and carry on;
- a handler installed outside Python (``None``; uWSGI's) cannot be called from Python: the
  client is closed and the default runs. Only an explicit ``close_on_sigterm()`` does this;
  the automatic installation leaves such hosts alone.

The flush runs in a helper thread joined with the deadline: the signal may have interrupted
the main thread inside the SDK, holding a lock the flush needs, and must not wait for it
forever. Handlers can only be installed from the main thread.
"""

import contextlib
import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)

Handler = Callable[[int, FrameType | None], Any] | int | None  # what signal.getsignal returns


class Closable(Protocol):
    """What the handler needs of a client."""

    def flush(self, timeout: float = ...) -> bool: ...

    def close(self, timeout: float | None = None) -> None: ...


class SigtermHandler:
    """A SIGTERM handler for one client that chains to the one it replaced."""

    def __init__(self, client: Closable, timeout: float, previous: Handler) -> None:
        self._client = weakref.ref(client)
        self._timeout = timeout
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        previous = self.previous
        is_default = previous in (signal.SIG_DFL, None)
        client = self._client()
        if client is not None:
            work = client.close if is_default else client.flush
            worker = threading.Thread(target=work, args=(self._timeout,), daemon=True)
            worker.start()
            worker.join(self._timeout + 0.5)  # close() keeps to its own limit; this is slack
        if callable(previous):
            previous(signum, frame)
        elif is_default:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


def is_unmanaged() -> bool:
    """Tell whether nobody has taken SIGTERM in this process (and we may: the main thread).

    ``None`` means a handler installed outside Python (uWSGI's, in C): that host manages
    SIGTERM, and a Python handler could not hand the signal on to it.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    return signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def install(client: Closable, timeout: float) -> SigtermHandler | None:
    """Make SIGTERM flush ``client`` first; ``None`` (logged) where that is impossible."""
    try:
        handler = SigtermHandler(client, timeout, signal.getsignal(signal.SIGTERM))
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError) as error:  # not the main thread, or no SIGTERM here
        log.warning("splitwerk: cannot handle SIGTERM here: %s", error)
        return None
    return handler


def uninstall(handler: SigtermHandler) -> None:
    """Put the previous handler back if ours is still the one installed (else leave it)."""
    previous = handler.previous
    if previous is None:
        return  # installed outside Python: it cannot be put back, ours stays and chains
    with contextlib.suppress(ValueError, OSError):  # not the main thread: ours stays
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous)
