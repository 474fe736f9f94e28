"""The HTTP seam: the ``Transport`` protocol and its default, http.client with a deadline.

Failures surface as the standard library's own exceptions, which the client catches::

    OSError
    ├── TimeoutError           deadline passed (connect, send or read)
    └── ConnectionError        refused, reset, closed by the server
    http.client.HTTPException  malformed response (includes RemoteDisconnected)
"""

import http.client
import os
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from splitwerk.errors import ConfigError

TRANSPORT_ERRORS = (OSError, http.client.HTTPException)  # what a Transport may raise
READ_SIZE = 65_536  # bytes per read, so the deadline is checked between reads
# A kept-alive connection the server closed while idle fails with one of these on reuse;
# the request is then retried once on a fresh connection.
_STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response: status, headers with lower-case names, and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Sends requests to the Splitwerk server; tests replace it to inject failures."""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> Response:
        """Send one request and return its response within ``timeout`` seconds.

        ``path`` starts with ``/v1/``. Raises one of ``TRANSPORT_ERRORS`` on failure; any
        HTTP status, 5xx included, is a response, not an error.
        """
        ...

    def close(self) -> None:
        """Close open connections; later requests may open new ones."""
        ...


class HttpTransport:
    """The default transport: one kept-alive ``http.client`` connection per thread.

    ``timeout`` is a deadline for the whole request: connecting, sending and every read get
    what is left of it. (DNS resolution is the one step ``socket`` cannot bound; connections
    are kept alive, so it happens once per connection, and an IP address avoids it.)
    """

    def __init__(self, url: str) -> None:
        parts = check_url(url)
        self._port = parts.port
        self._is_https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._prefix = parts.path.rstrip("/")
        self._ssl_context = ssl.create_default_context() if self._is_https else None
        self._reset()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> Response:
        """Send one request over this thread's connection, reconnecting once if it went stale."""
        deadline = time.monotonic() + timeout
        if self._pid != os.getpid():
            self._reset()  # a forked child: the sockets and the lock are the parent's
        connection = self._connection()
        is_reused = connection.sock is not None
        try:
            return self._exchange(connection, method, path, body, headers, deadline)
        except _STALE_CONNECTION_ERRORS:
            connection.close()
            if not is_reused:
                raise
            with self._lock:
                self.reconnects += 1
        except TRANSPORT_ERRORS:
            connection.close()
            raise
        try:
            return self._exchange(connection, method, path, body, headers, deadline)
        except TRANSPORT_ERRORS:
            connection.close()
            raise

    def close(self) -> None:
        """Close every thread's connection (in a forked child: forget the parent's)."""
        if self._pid != os.getpid():
            self._reset()
            return
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()

    def _reset(self) -> None:
        # Also run in a forked child: the parent's lock may be held by a thread that does
        # not exist here, and its sockets must not be shared between two processes.
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()
        # requests resent on a new connection because the kept-alive one had been closed
        self.reconnects = 0

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._is_https:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, context=self._ssl_context
                )
            else:
                connection = http.client.HTTPConnection(self._host, self._port)
            self._local.connection = connection
            with self._lock:
                self._connections.add(connection)
        return connection

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        deadline: float,
    ) -> Response:
        if connection.sock is None:
            connection.timeout = _remaining(deadline)
            connection.connect()
        sock = connection.sock
        sock.settimeout(_remaining(deadline))
        connection.request(method, self._prefix + path, body=body, headers=dict(headers))
        sock.settimeout(_remaining(deadline))
        response = connection.getresponse()
        chunks = []
        # read(n), unlike read1(n), marks the response done at its end, which lets
        # http.client reuse the connection.
        while not response.isclosed():
            sock.settimeout(_remaining(deadline))
            chunk = response.read(READ_SIZE)
            if not chunk:
                break
            chunks.append(chunk)
        return Response(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            b"".join(chunks),
        )


def check_url(url: object) -> SplitResult:
    """Return the parts of a server URL, or raise ``ConfigError`` if it is not one."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"url must be http(s)://host[:port][/path], not {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"url must not have a query or fragment: {url!r}")
    try:
        parts.port  # noqa: B018  (parsing the port is the check)
    except ValueError as error:
        raise ConfigError(f"url has an invalid port: {url!r}") from error
    try:
        # What the socket layer does with the host name later, where it would fail every call.
        (parts.hostname or "").encode("idna")
    except UnicodeError as error:
        raise ConfigError(f"url has an invalid host name: {url!r}") from error
    return parts


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("splitwerk request deadline passed")
    return remaining
