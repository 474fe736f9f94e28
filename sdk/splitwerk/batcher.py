"""Sends events in the background: bounded queue, batches, retries with the same event ids.

``put`` never waits on the network: it appends to a bounded queue (dropping and counting the
oldest event when full) and returns. One daemon thread per process sends a batch when
``batch_size`` events are waiting or ``flush_interval`` (jittered) has passed. A batch that
fails with a timeout, a connection error, 429 or 5xx is retried up to ``max_retries`` times
after an exponential, jittered back-off or the server's ``Retry-After``, always with the
same event ids, so the server counts each event once however often it arrives. After the
last retry the batch is dropped and counted as ``failed``.
"""

import email.utils
import json
import logging
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from splitwerk.events import Event
from splitwerk.guard import ErrorGuard
from splitwerk.transport import TRANSPORT_ERRORS, Response, Transport

log = logging.getLogger(__name__)

EVENTS_PATH = "/v1/events"
MAX_BATCH_SIZE = 500  # the server's limit per request
BACKOFF_MAX = 30.0  # seconds; longer waits only let the queue overflow
RETRY_AFTER_MAX = 600.0  # seconds; a longer Retry-After is more likely a bug than a plan
JITTER = 0.2  # ±20 % on the flush interval, so pre-forked workers don't send in lockstep
COUNTERS = ("sent", "accepted", "duplicate", "ignored", "rejected", "dropped", "failed", "retried")


class Batcher:
    """The bounded event queue and the thread that drains it."""

    def __init__(
        self,
        transport: Transport,
        headers: Mapping[str, str],
        *,
        timeout: float,
        batch_size: int,
        max_queue: int,
        flush_interval: float,
        max_retries: int,
        retry_backoff: float,
        rng: random.Random,
    ) -> None:
        self._transport = transport
        self._headers = dict(headers)
        self._timeout = timeout
        self._batch_size = batch_size
        self._max_queue = max_queue
        self._flush_interval = flush_interval
        self._max_retries = max_retries
        self._retry_backoff = retry_backoff
        self._random = rng
        self.reset()

    def reset(self) -> None:
        """Start empty with no thread: at construction and in a forked child.

        The child must not send the parent's queued events (the parent sends them) and must
        not touch the parent's lock, which another thread may have held at fork time.
        """
        self._condition = threading.Condition(threading.Lock())
        self._queue: deque[Event] = deque(maxlen=self._max_queue)
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._is_flushing = False
        self._is_closing = False
        self._close_deadline = 0.0
        self._counters = dict.fromkeys(COUNTERS, 0)

    def put(self, event: Event) -> None:
        """Queue an event for sending; drops the oldest queued event if the queue is full."""
        with self._condition:
            if self._is_closing:
                self._counters["dropped"] += 1
                return
            if len(self._queue) == self._max_queue:
                self._counters["dropped"] += 1  # the deque drops the oldest by itself
            self._queue.append(event)
            if self._thread is None:
                self._start()
            if len(self._queue) >= self._batch_size:
                self._condition.notify_all()

    def flush(self, timeout: float) -> bool:
        """Send everything queued now; wait at most ``timeout`` seconds. True if all sent."""
        deadline = time.monotonic() + timeout
        with self._condition:
            if self._thread is None and self._queue:
                self._start()
            self._is_flushing = True
            self._condition.notify_all()
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def close(self, timeout: float) -> bool:
        """Send what is queued within ``timeout`` seconds, then stop the thread."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._is_closing = True
            self._close_deadline = deadline
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._condition:
            unsent = len(self._queue) + self._in_flight
        if unsent:
            log.warning("splitwerk: %d events not sent before the close timeout", unsent)
        return unsent == 0

    def stats(self) -> dict[str, int]:
        """Return the counters and the current queue length."""
        with self._condition:
            return {**self._counters, "queued": len(self._queue)}

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="splitwerk-events", daemon=True)
        self._thread.start()

    def _next_flush(self) -> float:
        jitter = 1 + self._random.uniform(-JITTER, JITTER)
        return time.monotonic() + self._flush_interval * jitter

    def _run(self) -> None:
        next_flush = self._next_flush()
        while True:
            with self._condition:
                while (
                    len(self._queue) < self._batch_size
                    and not self._is_flushing
                    and not self._is_closing
                ):
                    remaining = next_flush - time.monotonic()
                    if remaining <= 0:
                        break
                    self._condition.wait(remaining)
                if time.monotonic() >= next_flush:
                    next_flush = self._next_flush()
                batch = [
                    self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))
                ]
                if not batch:
                    self._is_flushing = False
                    self._condition.notify_all()
                    if self._is_closing:
                        return
                    continue
                self._in_flight = len(batch)
            try:
                with ErrorGuard("sending events"):
                    self._deliver(batch)
            finally:
                with self._condition:
                    self._in_flight = 0
                    self._condition.notify_all()

    def _deliver(self, batch: list[Event]) -> None:
        # Ids are given once, here, so every retry of this batch carries the same ones.
        for event in batch:
            event["id"] = str(uuid.uuid4())
        # default=str: attribute values such as Decimal or datetime must not sink a batch.
        body = json.dumps({"events": batch}, separators=(",", ":"), default=str).encode()
        for attempt in range(self._max_retries + 1):
            if attempt:
                self._count("retried", len(batch))
            try:
                response = self._transport.request(
                    "POST", EVENTS_PATH, body, self._headers, self._timeout
                )
            except TRANSPORT_ERRORS as error:
                log.debug("splitwerk: sending %d events failed: %r", len(batch), error)
                delay = self._backoff(attempt)
            else:
                if 200 <= response.status < 300:
                    self._record(response, len(batch))
                    return
                if response.status != 429 and response.status < 500:
                    log.warning(
                        "splitwerk: server refused %d events with HTTP %d: %.200r",
                        len(batch),
                        response.status,
                        response.body,
                    )
                    break
                retry_after = _retry_after(response)
                delay = retry_after if retry_after is not None else self._backoff(attempt)
            if attempt == self._max_retries or not self._pause(delay):
                break
        log.warning("splitwerk: dropped %d events after failed sends", len(batch))
        self._count("failed", len(batch))

    def _backoff(self, attempt: int) -> float:
        delay = min(BACKOFF_MAX, self._retry_backoff * 2.0**attempt)
        return delay * self._random.uniform(0.5, 1.0)

    def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; False if closing leaves no time for it."""
        end = time.monotonic() + delay
        with self._condition:
            while True:
                now = time.monotonic()
                if self._is_closing and end > self._close_deadline:
                    return False
                if now >= end:
                    return True
                self._condition.wait(end - now)

    def _record(self, response: Response, size: int) -> None:
        try:
            answer: Any = json.loads(response.body)
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        with self._condition:
            self._counters["sent"] += size
            for name in ("accepted", "duplicate", "ignored", "rejected"):
                count = answer.get(name)
                if isinstance(count, int):
                    self._counters[name] += count
        if answer.get("rejected"):
            errors = [
                result.get("errors")
                for result in answer.get("results") or []
                if isinstance(result, dict) and result.get("status") == "rejected"
            ]
            log.warning(
                "splitwerk: server rejected %s events, first: %.300r",
                answer["rejected"],
                errors[:1],
            )

    def _count(self, name: str, amount: int) -> None:
        with self._condition:
            self._counters[name] += amount


def _retry_after(response: Response) -> float | None:
    """Return the response's ``Retry-After`` in seconds (number or HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return float(min(max(seconds, 0.0), RETRY_AFTER_MAX))
