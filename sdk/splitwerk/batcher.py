"""Sends events in the background: a bounded queue, batches, retries until a deadline.

``put`` never waits on the network: it gives the event its id, appends it to a bounded queue
and returns. One daemon thread per process sends a batch when ``batch_size`` events are
waiting or ``flush_interval`` (jittered) has passed. When a send fails with a timeout, a
connection error, 408, 425, 429 or 5xx, the batch goes back to the head of the queue and the
thread waits: exponential back-off with jitter (capped at ``BACKOFF_MAX``), or the server's
``Retry-After``. Every event carries the same id each time, so the server counts it once
however often it arrives. An event is given up (counted ``failed``, logged) only when it has
waited ``retry_deadline`` seconds since it was queued, or after ``max_retries`` resends if set.

The queue keeps events in order (an exposure before the order of its visitor, an order before
its refund), but when it is full it drops by worth: conversions first, then exposures, and
orders and refunds last; oldest first within a kind. Every drop is counted; a dropped order or
refund is logged with its order id, other drops in a summary at most every
``DROP_LOG_INTERVAL`` seconds. With a ``Spool``, orders and refunds are also written to disk
when queued and deleted once the server has answered for them (see ``splitwerk.spool``).
"""

import email.utils
import json
import logging
import math
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from splitwerk.events import Event
from splitwerk.guard import ErrorGuard
from splitwerk.spool import Spool
from splitwerk.transport import TRANSPORT_ERRORS, Response, Transport

log = logging.getLogger(__name__)

EVENTS_PATH = "/v1/events"
MAX_BATCH_SIZE = 500  # the server's limit per request
MAX_BATCH_BYTES = 1_000_000  # half the server's 2 MB body limit: a batch never gets a 413
# An event beyond this is refused when queued: the server takes 8 KB of attributes, and the
# bound keeps a full queue of 10,000 events under ~160 MB even if every one were this large.
MAX_EVENT_BYTES = 16_384
BACKOFF_MAX = 30.0  # seconds; the longest wait once the server is back
RETRY_AFTER_MAX = 600.0  # seconds; a longer Retry-After is more likely a bug than a plan
JITTER = 0.2  # ±20 % on the flush interval, so pre-forked workers don't send in lockstep
ADOPT_INTERVAL = 60.0  # seconds between looks for spools of ended processes (jittered)
DROP_LOG_INTERVAL = 10.0  # seconds between summaries of dropped conversions and exposures
RETRYABLE = frozenset({408, 425, 429})  # besides 5xx: the server may take the batch later
# A whole batch refused with one of these may hold one bad event among good ones (orders!):
# its events are then sent one by one, so only the bad one is given up.
ISOLATE = frozenset({400, 413, 422})
# Worth when the queue is full: the lowest is dropped first. Money is what must not be lost;
# an exposure enrols a local-mode visitor, without which that visitor's orders count nowhere.
PRIORITY = {"conversion": 0, "exposure": 1, "order": 2, "refund": 2}
MONEY = 2  # the priority of orders and refunds, the events a spool keeps
COUNTERS = (
    "sent",
    "accepted",
    "duplicate",
    "ignored",
    "rejected",
    "dropped",
    "dropped_money",
    "failed",
    "retried",
)


@dataclass(slots=True)
class Entry:
    """A queued event: its JSON, its place in the queue and its history."""

    sequence: int  # queue order, across the per-priority deques
    priority: int
    body: bytes  # the event as JSON, id included; the same bytes on every attempt
    queued_at: float  # unix seconds when first queued (in any process, for spooled events)
    label: str  # for log lines: the kind, and the order id for money
    attempts: int = 0
    spool_id: int | None = None
    is_alone: bool = False  # sent in a batch of its own (its batch was refused as a whole)


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
        retry_deadline: float,
        max_retries: int | None,
        retry_backoff: float,
        rng: random.Random,
        spool: Spool | None = None,
    ) -> None:
        self._transport = transport
        self._headers = dict(headers)
        self._timeout = timeout
        self._batch_size = batch_size
        self._max_queue = max_queue
        self._flush_interval = flush_interval
        self._retry_deadline = retry_deadline
        self._max_retries = max_retries
        self._retry_backoff = retry_backoff
        self._random = rng
        self._spool = spool
        self.reset()

    def reset(self) -> None:
        """Start empty with no thread: at construction and in a forked child.

        The child must not send the parent's queued events (the parent sends them) and must
        not touch the parent's lock, which another thread may have held at fork time.
        """
        self._pid = os.getpid()
        self._condition = threading.Condition(threading.Lock())
        self._tiers: tuple[deque[Entry], ...] = (deque(), deque(), deque())
        self._size = 0
        self._sequence = 0
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._failures = 0  # consecutive failed sends: the back-off's exponent
        self._retry_at = 0.0  # monotonic time before which the thread does not send
        self._is_flushing = False
        self._is_closing = False
        self._close_deadline = 0.0
        # Until the thread has looked at the spool once, flush() cannot know what is left.
        self._has_adopted = self._spool is None
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._unlogged_drops: dict[str, int] = {}
        self._drops_logged_at = 0.0

    def check_process(self) -> None:
        """Start over if this is a forked child (a pid compared lazily, no fork hook)."""
        if self._pid != os.getpid():
            self.reset()

    def put(self, event: Event) -> None:
        """Queue an event for sending; when the queue is full, drop the least worth.

        Raises ``ValueError`` (the client counts it as invalid) if the event cannot be sent
        as JSON or is larger than ``MAX_EVENT_BYTES``.
        """
        self.check_process()
        event["id"] = str(uuid.uuid4())  # given once: every resend carries the same id
        try:
            # default=str: attribute values such as Decimal or datetime must not sink the
            # event; allow_nan=False: NaN is not JSON, and would make the server refuse the
            # whole batch. A cycle or absurd nesting in attributes is refused here too.
            text = json.dumps(event, separators=(",", ":"), default=str, allow_nan=False)
        except (ValueError, TypeError, RecursionError) as error:
            raise ValueError(f"the event cannot be sent as JSON: {error}") from None
        body = text.encode()  # ASCII: json.dumps escapes the rest, lone surrogates included
        if len(body) > MAX_EVENT_BYTES:
            raise ValueError(f"the event has {len(body)} bytes; at most {MAX_EVENT_BYTES}")
        kind = event.get("type", "")
        priority = PRIORITY.get(kind, 0)
        label = f"{kind} {event['order_id']}" if priority == MONEY else kind
        entry = Entry(0, priority, body, time.time(), label)
        if priority == MONEY and self._spool is not None and not self._is_closing:
            entry.spool_id = self._spool.add(priority, body, entry.queued_at)
        with self._condition:
            if self._is_closing:
                self._drop(entry, "queued after close")
                return
            self._enqueue(entry)
            if self._thread is None:
                self._start()
            if self._size >= self._batch_size:
                self._condition.notify_all()

    def flush(self, timeout: float) -> bool:
        """Send everything queued now; wait at most ``timeout`` seconds. True if all sent."""
        self.check_process()
        deadline = time.monotonic() + timeout
        with self._condition:
            if self._thread is None and (self._size or self._spool is not None):
                self._start()
            self._is_flushing = True
            self._condition.notify_all()
            while self._size or self._in_flight or not self._has_adopted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def close(self, timeout: float) -> bool:
        """Send what is queued within ``timeout`` seconds, then stop the thread."""
        self.check_process()
        deadline = time.monotonic() + timeout
        with self._condition:
            self._is_closing = True
            self._close_deadline = deadline
            self._condition.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._condition:
            unsent = self._size + self._in_flight
            money = len(self._tiers[MONEY])
            self._log_drops()  # the last summary, however recent the previous one
        if unsent:
            where = "kept in the spool for the next start" if self._spool else "lost"
            log.warning(
                "splitwerk: %d events (%d orders and refunds) not sent before the close "
                "timeout; orders and refunds are %s",
                unsent,
                money,
                where,
            )
        if self._spool is not None:
            self._spool.close()
        return unsent == 0

    def stats(self) -> dict[str, int]:
        """Return the counters and the current queue length."""
        self.check_process()
        with self._condition:
            return {**self._counters, "queued": self._size + self._in_flight}

    # --- the queue (callers hold the condition's lock) --------------------------------

    def _enqueue(self, entry: Entry) -> None:
        if self._size >= self._max_queue:
            lowest = next(i for i, tier in enumerate(self._tiers) if tier)
            if entry.priority < lowest:
                self._drop(entry, "queue full")
                return
            self._drop(self._pop(lowest), "queue full")
        self._sequence += 1
        entry.sequence = self._sequence
        self._tiers[entry.priority].append(entry)
        self._size += 1

    def _pop(self, priority: int) -> Entry:
        self._size -= 1
        return self._tiers[priority].popleft()

    def _take_batch(self) -> list[Entry]:
        """The oldest queued events, in queue order, within the batch limits."""
        batch: list[Entry] = []
        size = 0
        now = time.time()
        while self._size and len(batch) < self._batch_size:
            heads = [(tier[0].sequence, i) for i, tier in enumerate(self._tiers) if tier]
            _, priority = min(heads)
            head = self._tiers[priority][0]
            if batch and (head.is_alone or size + len(head.body) + 1 > MAX_BATCH_BYTES):
                break
            entry = self._pop(priority)
            if now - entry.queued_at > self._retry_deadline:
                self._give_up(entry, f"not delivered within {self._retry_deadline:.0f}s")
                continue
            batch.append(entry)
            size += len(entry.body) + 1
            if entry.is_alone:
                break
        return batch

    def _put_back(self, batch: list[Entry]) -> None:
        """Return a failed batch to the head of the queue, then drop what no longer fits."""
        for entry in reversed(batch):
            self._tiers[entry.priority].appendleft(entry)
            self._size += 1
        while self._size > self._max_queue:
            lowest = next(i for i, tier in enumerate(self._tiers) if tier)
            self._drop(self._pop(lowest), "queue full")

    def _drop(self, entry: Entry, why: str) -> None:
        self._counters["dropped"] += 1
        if entry.priority == MONEY:
            self._counters["dropped_money"] += 1
            log.error("splitwerk: %s dropped (%s); it will not be counted", entry.label, why)
            self._forget([entry])
            return
        what = f"{entry.label} ({why})"
        self._unlogged_drops[what] = self._unlogged_drops.get(what, 0) + 1
        if time.monotonic() - self._drops_logged_at >= DROP_LOG_INTERVAL:
            self._log_drops()

    def _log_drops(self) -> None:
        if self._unlogged_drops:
            self._drops_logged_at = time.monotonic()
            summary = ", ".join(f"{n} {what}" for what, n in sorted(self._unlogged_drops.items()))
            self._unlogged_drops = {}
            log.warning("splitwerk: dropped events: %s", summary)

    def _give_up(self, entry: Entry, why: str) -> None:
        self._counters["failed"] += 1
        level = logging.ERROR if entry.priority == MONEY else logging.WARNING
        log.log(level, "splitwerk: %s given up: %s", entry.label, why)
        self._forget([entry])

    def _forget(self, entries: list[Entry]) -> None:
        if self._spool is not None:
            self._spool.remove([e.spool_id for e in entries if e.spool_id is not None])

    # --- the sending thread -----------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="splitwerk-events", daemon=True)
        self._thread.start()

    def _next_flush(self) -> float:
        jitter = 1 + self._random.uniform(-JITTER, JITTER)
        return time.monotonic() + self._flush_interval * jitter

    def _adopt(self) -> None:
        """Queue the spooled events of ended processes (first thing the thread does)."""
        if self._spool is None:
            return
        rows = self._spool.adopt()
        with self._condition:
            for spool_id, priority, body, queued_at in rows:
                label = "spooled event"
                try:
                    document = json.loads(body)
                    label = f"{document.get('type')} {document.get('order_id')}"
                except ValueError:
                    pass
                entry = Entry(0, min(max(priority, 0), MONEY), body, queued_at, label)
                entry.spool_id = spool_id
                self._enqueue(entry)
            if rows:
                self._condition.notify_all()

    def _run(self) -> None:
        next_flush = self._next_flush()
        next_adoption = 0.0  # at once: a restarted shop resends what its last run left
        while True:
            now = time.monotonic()
            if self._spool is not None and now >= next_adoption:
                with ErrorGuard("adopting spooled events"):
                    self._adopt()
                with self._condition:
                    self._has_adopted = True
                    self._condition.notify_all()
                next_adoption = now + ADOPT_INTERVAL * (1 + self._random.uniform(-JITTER, JITTER))
            with self._condition:
                batch = self._wait_for_batch(next_flush, next_adoption)
                if batch is None:
                    return
                if time.monotonic() >= next_flush:
                    next_flush = self._next_flush()
                self._in_flight = len(batch)
            if not batch:
                continue
            is_handled = False
            try:
                with ErrorGuard("sending events"):
                    self._send(batch)
                    is_handled = True
            finally:
                with self._condition:
                    self._in_flight = 0
                    if not is_handled:
                        # A bug, or a custom transport raising what it should not: the
                        # events are kept and retried like after any other failure.
                        self._failures += 1
                        self._retry_at = time.monotonic() + self._backoff()
                        self._put_back(batch)
                    self._condition.notify_all()

    def _wait_for_batch(self, next_flush: float, next_adoption: float) -> list[Entry] | None:
        """Wait (holding the lock) until a batch is due; ``None`` when the thread must end."""
        while True:
            now = time.monotonic()
            if self._is_closing:
                if not self._size or self._retry_at > self._close_deadline:
                    self._is_flushing = False
                    self._condition.notify_all()
                    return None
                if now >= self._retry_at:
                    return self._take_batch()
                self._condition.wait(self._retry_at - now)
                continue
            if not self._size and self._is_flushing:
                self._is_flushing = False
                self._condition.notify_all()
            is_due = self._size >= self._batch_size or self._is_flushing or now >= next_flush
            if self._size and is_due and now >= self._retry_at:
                return self._take_batch()
            wake = next_adoption if self._spool is not None else math.inf
            if self._size:
                wake = min(wake, max(next_flush, self._retry_at) if not is_due else self._retry_at)
            elif now >= next_flush:
                return []  # nothing to send: let the caller start a new flush interval
            else:
                wake = min(wake, next_flush)
            if wake <= now:
                return []
            self._condition.wait(min(wake - now, RETRY_AFTER_MAX))

    def _send(self, batch: list[Entry]) -> None:
        retried = sum(1 for entry in batch if entry.attempts)
        for entry in batch:
            entry.attempts += 1
        if retried:
            self._count("retried", retried)
        body = b'{"events":[' + b",".join(entry.body for entry in batch) + b"]}"
        timeout = self._timeout
        if self._is_closing:
            timeout = max(0.001, min(timeout, self._close_deadline - time.monotonic()))
        delay: float | None = None
        try:
            response = self._transport.request("POST", EVENTS_PATH, body, self._headers, timeout)
        except TRANSPORT_ERRORS as error:
            log.debug("splitwerk: sending %d events failed: %r", len(batch), error)
            delay = self._backoff()
        else:
            if 200 <= response.status < 300:
                self._record(response, len(batch))
                with self._condition:
                    self._failures = 0
                    self._retry_at = 0.0
                self._forget(batch)
                return
            if response.status in ISOLATE and len(batch) > 1:
                log.warning(
                    "splitwerk: server refused a batch of %d events with HTTP %d; "
                    "sending them one by one",
                    len(batch),
                    response.status,
                )
                with self._condition:
                    for entry in batch:
                        entry.is_alone = True
                        entry.attempts -= 1  # not their fault (yet)
                    self._put_back(batch)
                    self._condition.notify_all()
                return
            if response.status not in RETRYABLE and response.status < 500:
                log.error(
                    "splitwerk: server refused %d events with HTTP %d: %.200r",
                    len(batch),
                    response.status,
                    response.body,
                )
                with self._condition:
                    for entry in batch:
                        self._give_up(entry, f"refused with HTTP {response.status}")
                return
            retry_after = _retry_after(response)
            delay = retry_after if retry_after is not None else self._backoff()
        with self._condition:
            self._failures += 1
            self._retry_at = time.monotonic() + delay
            keep = []
            for entry in batch:
                if self._max_retries is not None and entry.attempts > self._max_retries:
                    self._give_up(entry, f"still failing after {self._max_retries} retries")
                else:
                    keep.append(entry)
            self._put_back(keep)
            self._condition.notify_all()

    def _backoff(self) -> float:
        delay = min(BACKOFF_MAX, self._retry_backoff * 2.0**self._failures)
        return delay * self._random.uniform(0.5, 1.0)

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
