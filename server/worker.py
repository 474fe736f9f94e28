"""The gunicorn worker of `splitwerk serve`: gthread, with /healthz on threads of its own.

gunicorn's gthread worker hands every request to one pool of ``threads`` threads. When Redis
stalls, each of them waits up to the request budget (REDIS_REQUEST_TIMEOUT), new requests
queue behind them, and a liveness probe queued there answers after seconds: issue 16
measured /healthz at 1.8 s, long enough for an orchestrator to restart healthy workers in the
middle of a Redis hiccup. Production servers keep health out of that queue (a separate
management pool or port); this worker does it on the same port: the main thread, which
already watches every connection for readability, peeks at the request line of each request
before it hands the connection on, and liveness probes go to a small pool of their own. They
are served by the same Flask app, so the answer is the same; only the queue differs.

A liveness probe needs the GIL for well under a millisecond; threads waiting on Redis do not
hold it, and busy ones hand it over every 5 ms (``sys.getswitchinterval()``).

Once the app is loaded, the worker freezes everything it holds (``gc.freeze``): the modules,
scipy's among them, are some 120,000 objects that live as long as the worker, and every full
collection of Python's cyclic garbage collector traversed them all, 57-69 ms on this machine,
holding the GIL in the middle of whatever requests were running. The shop load test's slowest
event batches (86-130 ms against a median of 20) were such collections (loadtests/README.md).
"""

from __future__ import annotations

import errno
import gc
import selectors
import socket
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

HEALTH_PATH = b"/healthz"  # the liveness route (server.api.configuration), never touches Redis
HEALTH_METHODS = frozenset({b"GET", b"HEAD"})  # what probes send
HEALTH_THREADS = 2  # probes take well under a millisecond; two, so one slow client blocks none
PEEK_BYTES = 64  # the start of the request line; it stays in the socket for the parser


def is_health_probe(head: bytes) -> bool:
    """Whether the first bytes of a request are a request line for the liveness route."""
    method, _, rest = head.partition(b" ")
    target, space, _ = rest.partition(b" ")
    path = target.partition(b"?")[0]
    return method in HEALTH_METHODS and bool(space) and path == HEALTH_PATH


class HealthFirstWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no types
    """gthread worker that answers liveness probes without queueing behind busy threads."""

    def init_process(self) -> None:
        self.health_pool = futures.ThreadPoolExecutor(
            max_workers=HEALTH_THREADS, thread_name_prefix="health"
        )
        super().init_process()

    def load_wsgi(self) -> None:
        """Load the app, then leave what it loaded out of every later garbage collection."""
        super().load_wsgi()
        gc.collect()  # what the imports left behind goes now, not frozen for ever
        gc.freeze()

    def enqueue_req(self, conn: Any) -> None:
        """Hand a connection to the health pool or the request pool by its request line.

        Called on the main thread, for a new connection and for a kept-alive one that became
        readable. A new connection whose request has not arrived yet waits in the poller
        (as gunicorn parks slow clients) instead of in a thread, so that its request line can
        be read here when it comes.
        """
        if self.cfg.is_ssl or (conn.parser is not None and conn.parser.unreader.buf.getvalue()):
            # encrypted bytes say nothing; bytes read ahead are in the parser, not the socket
            self._submit(self.tpool, conn)
            return
        try:
            head = conn.sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            self._wait_for_request(conn)
            return
        except OSError as error:
            if error.errno not in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE):
                raise
            head = b""  # the thread that handles it finds the connection gone and closes it
        self._submit(self.health_pool if is_health_probe(head) else self.tpool, conn)

    def _submit(self, pool: futures.ThreadPoolExecutor, conn: Any) -> None:
        done = pool.submit(self.handle, conn)
        done.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def _wait_for_request(self, conn: Any) -> None:
        """Park a connection in the poller until its first bytes arrive (gunicorn's own
        pending list: closed after ``keepalive`` seconds without data)."""
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.health_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)
