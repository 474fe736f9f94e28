"""The SDK's entry point: ``Client`` assigns variants and records events, never failing the shop.

Only the constructor raises (``ConfigError``, on bad arguments). Afterwards every public
method catches its own failures, logs them under ``splitwerk`` and answers with a fallback:
the control variant of the last fetched config, else the caller's ``default``, else
``"control"``.
"""

import atexit
import functools
import json
import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from splitwerk import events, shutdown
from splitwerk.batcher import MAX_BATCH_SIZE, Batcher
from splitwerk.breaker import CircuitBreaker
from splitwerk.conditions import Attributes
from splitwerk.errors import ConfigError
from splitwerk.evaluation import EMPTY_CONFIG, UNKNOWN, Assignment, Config, Experiment
from splitwerk.events import MAX_VISITOR_LENGTH, is_valid_visitor
from splitwerk.guard import swallow_errors
from splitwerk.memory import RecentAssignments
from splitwerk.poller import ConfigPoller
from splitwerk.reasons import Reason
from splitwerk.spool import Spool, check_folder
from splitwerk.transport import TRANSPORT_ERRORS, HttpTransport, Transport, check_url

log = logging.getLogger(__name__)

VERSION = "0.1.0"  # also the distribution's version: setup.cfg reads it from here
CONTROL = "control"  # the answer when nothing better is known
ASSIGN_PATH = "/v1/assign"
MAX_SEEN_EXPOSURES = 100_000  # visitors per experiment remembered as reported; ~10 MB
_EMPTY: Attributes = {}  # shared stand-in for "no attributes"; never mutated
_COUNTERS = ("invalid", "exposures", "assign_errors", "circuit_skips", "circuit_opened")


class Client:
    """Assigns visitors to variants and sends conversions, orders and refunds to Splitwerk.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8000"`` (``make run``).
        timeout: seconds that a remote-mode ``variant()``/``assign()`` may take, all in.
        ingest_key: the ``X-Splitwerk-Ingest-Key``; needed for ``order()`` and ``refund()``.
        mode: ``"remote"`` asks the server per call; ``"local"`` evaluates a polled config
            in-process and reports exposures in batches.
        poll_interval: seconds between config polls (jittered ±10 %); ``None`` turns polling
            off in remote mode, where the config only supplies fallbacks.
        flush_interval: seconds after which queued events are sent (jittered ±20 %).
        batch_size: events per request, 1..500; a full batch is sent at once.
        max_queue: events kept while the server is away; beyond it conversions are dropped
            first, then exposures, orders and refunds last (each drop counted and logged).
        retry_deadline: seconds an event is retried, counted from when it was queued; only
            then is it given up. Default one hour: a restart, a deploy, most outages.
        max_retries: optionally, also give an event up after this many resends.
        retry_backoff: seconds before the first retry (jittered), doubling for each next one
            up to 30 s; a server's ``Retry-After`` replaces it.
        spool_dir: a folder for the durable spool: orders and refunds are kept there (SQLite)
            until the server has them, and a later process sends what a crashed one left.
            Processes may share the folder. ``None`` keeps everything in memory only.
        background_timeout: seconds for one background request (events, config).
        close_timeout: seconds ``close()``, the exit hook and SIGTERM may spend flushing.
        handle_sigterm: ``True`` makes SIGTERM flush first, then chain to the handler that was
            there (see ``close_on_sigterm``); ``False`` never touches signals; ``None`` (the
            default) does it only if nobody handles SIGTERM yet and this is the main thread,
            so hosts with their own handling (gunicorn, uWSGI, Celery) are left alone.
        failure_threshold: consecutive remote failures that open the circuit breaker.
        circuit_cooldown: seconds between probes while the breaker is open (jittered): one
            call per cool-down tries the server, and its success closes the breaker.
        remembered_assignments: remote answers kept (least recently used out) so that a
            visitor seen before keeps their variant while the server is unreachable.
        transport: replaces the default ``HttpTransport`` (tests inject failures here).

    Raises:
        ConfigError: an argument is invalid. Nothing else, here or in any later call.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.1,
        ingest_key: str | None = None,
        mode: Literal["remote", "local"] = "remote",
        poll_interval: float | None = 30.0,
        flush_interval: float = 5.0,
        batch_size: int = 100,
        max_queue: int = 10_000,
        retry_deadline: float = 3600.0,
        max_retries: int | None = None,
        retry_backoff: float = 0.5,
        spool_dir: str | os.PathLike[str] | None = None,
        background_timeout: float = 2.0,
        close_timeout: float = 2.0,
        handle_sigterm: bool | None = None,
        failure_threshold: int = 5,
        circuit_cooldown: float = 1.0,
        remembered_assignments: int = 50_000,
        transport: Transport | None = None,
    ) -> None:
        check_url(url)
        if mode not in ("remote", "local"):
            raise ConfigError(f"mode must be 'remote' or 'local', not {mode!r}")
        if ingest_key is not None and (not isinstance(ingest_key, str) or not ingest_key):
            raise ConfigError("ingest_key must be a non-empty string or None")
        if ingest_key is not None and not (ingest_key.isascii() and ingest_key.isprintable()):
            # It travels in an HTTP header: anything else would fail every send, later.
            raise ConfigError("ingest_key must be printable ASCII")
        if poll_interval is None and mode == "local":
            raise ConfigError("local mode needs a poll_interval")
        for name, value in (
            ("timeout", timeout),
            ("poll_interval", 1.0 if poll_interval is None else poll_interval),
            ("flush_interval", flush_interval),
            ("background_timeout", background_timeout),
            ("circuit_cooldown", circuit_cooldown),
            ("retry_backoff", retry_backoff),
            ("retry_deadline", retry_deadline),
        ):
            _check_positive(name, value)
        _check_positive("close_timeout", close_timeout, allow_zero=True)
        _check_count("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        _check_count("max_queue", max_queue, 1, None)
        if max_retries is not None:
            _check_count("max_retries", max_retries, 0, None)
        spool = Spool(check_folder(spool_dir)) if spool_dir is not None else None
        _check_count("failure_threshold", failure_threshold, 1, None)
        _check_count("remembered_assignments", remembered_assignments, 0, None)
        if transport is not None and not (
            callable(getattr(transport, "request", None))
            and callable(getattr(transport, "close", None))
        ):
            raise ConfigError("transport must have request() and close() methods")

        self._is_local = mode == "local"
        self._timeout = timeout
        self._ingest_key = ingest_key
        self._close_timeout = close_timeout
        self._is_polling = poll_interval is not None
        self._transport: Transport = transport if transport is not None else HttpTransport(url)
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"splitwerk-python/{VERSION}",
        }
        self._headers = headers
        event_headers = dict(headers)
        if ingest_key is not None:
            event_headers["X-Splitwerk-Ingest-Key"] = ingest_key
        rng = random.Random()
        self._config: Config = EMPTY_CONFIG
        self._experiments = EMPTY_CONFIG.experiments  # the config's, kept for the hot path
        self._has_config = False
        self._batcher = Batcher(
            self._transport,
            event_headers,
            timeout=background_timeout,
            batch_size=batch_size,
            max_queue=max_queue,
            flush_interval=flush_interval,
            retry_deadline=retry_deadline,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            rng=rng,
            spool=spool,
        )
        self._poller = ConfigPoller(
            self._transport,
            headers,
            timeout=background_timeout,
            interval=poll_interval if poll_interval is not None else math.inf,
            rng=rng,
            on_config=self._use_config,
        )
        self._breaker = CircuitBreaker(failure_threshold, circuit_cooldown, rng)
        self._remembered = RecentAssignments(remembered_assignments)
        self._is_closed = False
        self._reset_process_state()
        self._exit_hook = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._exit_hook)
        self._sigterm: shutdown.SigtermHandler | None = None
        if handle_sigterm or (handle_sigterm is None and shutdown.is_unmanaged()):
            self._sigterm = shutdown.install(self, close_timeout)
        self._start_background()

    # --- assignment -----------------------------------------------------------------

    @swallow_errors(lambda *args, **kwargs: _variant_fallback(*args, **kwargs))
    def variant(
        self,
        experiment: str,
        visitor: str,
        attributes: Attributes | None = None,
        default: str | None = None,
        *,
        consent: bool = True,
        force: str | None = None,
        covariate: float | None = None,
    ) -> str:
        """Return the variant key that ``visitor`` sees in ``experiment``; never raises.

        ``attributes`` feed targeting conditions and segments. With ``consent=False`` the
        visitor gets their variant but is never enrolled or recorded (reason ``no_consent``).
        ``force`` names a variant to show for QA (not enrolled). ``covariate`` is a number
        known about the visitor before the experiment (CUPED, e.g. their margin over the last
        90 days; at most 2 decimals, within ±1,000,000), recorded at the first enrolment; an
        invalid one is left out (and counted as ``invalid``). If no answer is possible in
        time, the fallback is the config's control, else ``default``, else ``"control"``.
        """
        # The local path is written out here, not in helpers: each call level costs ~5 % of
        # a local assignment, and the benchmark holds it to a tenth of GrowthBook's run().
        if not self._is_local_and_started:
            self._check_process()
            if not self._is_started:
                self._start_background()
            if not self._is_local:
                return self._remote_variant(
                    experiment, visitor, attributes, default, consent, force, covariate
                )
        compiled = self._experiments.get(experiment)
        if compiled is None:
            return default if type(default) is str else CONTROL
        if (
            type(visitor) is not str
            or not 0 < len(visitor) <= MAX_VISITOR_LENGTH
            or not (visitor.isascii() or is_valid_visitor(visitor))
        ):
            self._check_process()
            self._count("invalid")
            return compiled.fallback.variant or CONTROL
        answer = compiled.evaluate(visitor, attributes, consent, force)
        if answer.enrolled:
            seen = self._seen.get(experiment)
            if seen is None or visitor not in seen:
                self._report_exposure(compiled, visitor, answer, attributes, covariate)
        return answer.variant or CONTROL

    @swallow_errors(lambda *args, **kwargs: {})
    def assign(
        self,
        visitor: str,
        experiments: Iterable[str] | None = None,
        attributes: Attributes | None = None,
        *,
        consent: bool = True,
        force: Mapping[str, str] | None = None,
        covariate: float | None = None,
    ) -> dict[str, Assignment]:
        """Return ``visitor``'s assignments with payloads, by experiment key; never raises.

        ``experiments=None`` means every running experiment whose conditions match. Unknown
        keys get ``variant=None`` and reason ``unknown_experiment``; when the server does not
        answer in time, each gets its fallback with reason ``unavailable``. ``covariate`` as
        in ``variant``.
        """
        self._check_process()
        if not self._is_started:
            self._start_background()
        keys = list(experiments) if experiments is not None else None
        if not self._is_local:
            return self._remote_assignments(visitor, keys, attributes, consent, force, covariate)
        return self._local_assignments(visitor, keys, attributes, consent, force, covariate)

    @swallow_errors(lambda *args, **kwargs: False)
    def wait_for_config(self, timeout: float = 1.0) -> bool:
        """Wait up to ``timeout`` seconds for the first config; True once one is in use."""
        self._check_process()
        return self._poller.wait_ready(_time_limit("wait_for_config", timeout))

    # --- events -----------------------------------------------------------------------

    @swallow_errors(lambda *args, **kwargs: None)
    def track(
        self,
        goal: str,
        visitor: str,
        value: object = None,
        *,
        ts: float | None = None,
    ) -> None:
        """Queue a conversion of ``visitor`` on ``goal``; returns at once, never raises.

        ``value`` is money: ``Decimal``, ``int`` or a decimal string, never ``float``.
        ``ts`` is the conversion time in unix seconds, default now.
        """
        self._queue(lambda: events.conversion(goal, visitor, value, ts))

    @swallow_errors(lambda *args, **kwargs: None)
    def order(
        self,
        visitor: str,
        order_id: str,
        revenue: object,
        *,
        tax: object = None,
        shipping: object = None,
        discount: object = None,
        cost_of_goods: object = None,
        payment_fee: object = None,
        currency: str | None = None,
        goal: str = "purchase",
    ) -> None:
        """Queue an order with its money figures (``Decimal``/``int``/``str``, not float).

        Needs ``ingest_key``. Amounts left as ``None`` are not sent; ``currency`` (ISO 4217)
        defaults to the server's. Returns at once and never raises.
        """
        amounts = {
            "revenue": revenue,
            "tax": tax,
            "shipping": shipping,
            "discount": discount,
            "cost_of_goods": cost_of_goods,
            "payment_fee": payment_fee,
        }
        self._queue(lambda: events.order(visitor, order_id, amounts, goal, currency), True)

    @swallow_errors(lambda *args, **kwargs: None)
    def refund(self, order_id: str, amount: object) -> None:
        """Queue a refund of ``amount`` on an earlier order; needs ``ingest_key``."""
        self._queue(lambda: events.refund(order_id, amount), True)

    @swallow_errors(lambda *args, **kwargs: False)
    def flush(self, timeout: float = 2.0) -> bool:
        """Send queued events now; wait at most ``timeout`` seconds. True if all were sent."""
        self._check_process()
        return self._batcher.flush(_time_limit("flush", timeout))

    @swallow_errors(lambda *args, **kwargs: {})
    def stats(self) -> dict[str, int]:
        """Return this process's counters.

        ``sent`` events the server answered for (``accepted``/``duplicate``/``ignored``/
        ``rejected`` say how), ``queued`` waiting now, ``dropped`` pushed out of the full queue
        or queued after ``close()``, ``failed`` given up after retries, ``retried`` resends,
        ``invalid`` refused by the SDK (logged), ``exposures`` reported in local mode,
        ``assign_errors`` remote calls without an answer, ``circuit_skips`` calls answered
        without the network, ``circuit_opened`` times the breaker opened, and the config
        poll counters ``config_updates``, ``config_not_modified``, ``config_errors``; with the
        default transport also ``reconnects``, requests resent on a new connection because
        the server had closed the kept-alive one (its keep-alive is shorter than the idle time).
        """
        self._check_process()
        with self._lock:
            counters = dict(self._counters)
        if isinstance(self._transport, HttpTransport):
            counters["reconnects"] = self._transport.reconnects
        return {**self._batcher.stats(), **self._poller.stats(), **counters}

    # --- lifecycle --------------------------------------------------------------------

    @swallow_errors(lambda *args, **kwargs: None)
    def close(self, timeout: float | None = None) -> None:
        """Flush events for at most ``timeout`` seconds (default ``close_timeout``), stop.

        Idempotent. Later ``variant()`` calls still answer (local mode from the last config);
        later events are dropped and counted.
        """
        self._check_process()
        if self._is_closed:
            return
        self._is_closed = True
        atexit.unregister(self._exit_hook)
        if self._sigterm is not None:
            shutdown.uninstall(self._sigterm)
        limit = self._close_timeout if timeout is None else _time_limit("close", timeout)
        deadline = time.monotonic() + limit
        self._poller.stop(0.0)
        self._batcher.close(limit)
        self._poller.stop(max(0.0, deadline - time.monotonic()))
        self._transport.close()

    @swallow_errors(lambda *args, **kwargs: False)
    def close_on_sigterm(self, timeout: float | None = None) -> bool:
        """Make SIGTERM send queued events (``timeout`` seconds at most), then chain on.

        The handler that was installed before runs afterwards: the default ends the process
        as usual (after ``close()``); a host's own handler is called (after ``flush()``).
        Call it from the main thread; returns False (and logs) where that is impossible.
        """
        limit = self._close_timeout if timeout is None else _time_limit("close_on_sigterm", timeout)
        handler = shutdown.install(self, limit)
        if handler is None:
            return False
        self._sigterm = handler
        return True

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals --------------------------------------------------------------------

    def _check_process(self) -> None:
        """Start over if this is a forked child: threads, locks and sockets are the parent's.

        A stored pid compared on use, rather than an ``os.register_at_fork`` hook per client
        (which could never be removed). ``os.getpid()`` costs ~0.4 µs, so the local-mode hot
        path (a visitor already reported) skips it; every other call, and the first sight of
        a new visitor, checks.
        """
        if self._pid != os.getpid():
            self._after_fork()

    def _reset_process_state(self) -> None:
        """Fresh per-process state: at construction and in a forked child."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._seen: dict[str, set[str]] = {}  # experiment key → visitors reported
        self._is_started = False
        self._is_local_and_started = False  # both flags in one, for the hot path

    def _after_fork(self) -> None:
        self._reset_process_state()
        self._breaker.reset()
        self._remembered.reset()
        self._batcher.reset()
        self._poller.reset()
        if self._has_config:
            self._poller.mark_ready()
        if self._is_closed:
            self._start_background()  # starts nothing: a closed client stays closed

    def _start_background(self) -> None:
        # Threads don't survive fork(); this runs at construction and on first use in a child.
        self._is_started = True
        self._is_local_and_started = self._is_local
        if self._is_polling and not self._is_closed:
            self._poller.start()

    def _use_config(self, config: Config) -> None:
        # Reference swaps: a reader sees the old or the new config, never a mix. A new phase
        # (new salt) must be reported again, so the record of reported exposures starts over.
        self._seen = {}
        self._experiments = config.experiments
        self._config = config
        self._has_config = True

    def _remote_variant(
        self,
        experiment: str,
        visitor: str,
        attributes: Attributes | None,
        default: str | None,
        consent: bool,
        force: str | None,
        covariate: float | None = None,
    ) -> str:
        forced = {experiment: force} if force else None
        answers = self._remote_assign(visitor, [experiment], attributes, consent, forced, covariate)
        answer = answers.get(experiment) if answers is not None else None
        if answer is not None and answer.variant is not None:
            return answer.variant
        if answers is None and not forced:
            remembered = self._remembered.recall(visitor, experiment)
            if remembered is not None:
                return remembered.variant or CONTROL
        return self._fallback(experiment, default).variant or CONTROL

    def _remote_assignments(
        self,
        visitor: str,
        keys: list[str] | None,
        attributes: Attributes | None,
        consent: bool,
        force: Mapping[str, str] | None,
        covariate: float | None = None,
    ) -> dict[str, Assignment]:
        answers = self._remote_assign(visitor, keys, attributes, consent, force, covariate)
        if answers is not None:
            return answers
        is_valid = is_valid_visitor(visitor)
        reason = Reason.UNAVAILABLE if is_valid else Reason.INVALID_VISITOR
        fallback_keys = keys if keys is not None else list(self._experiments)
        fallbacks = {}
        for key in fallback_keys:
            remembered = None
            if is_valid and not (force and key in force):
                remembered = self._remembered.recall(visitor, key)
            fallbacks[key] = remembered or self._fallback(key, None, reason)
        return fallbacks

    def _local_assignments(
        self,
        visitor: str,
        keys: list[str] | None,
        attributes: Attributes | None,
        consent: bool,
        force: Mapping[str, str] | None,
        covariate: float | None = None,
    ) -> dict[str, Assignment]:
        experiments = self._experiments
        given = attributes if attributes is not None else _EMPTY
        if keys is None:
            keys = [
                key
                for key, compiled in experiments.items()
                if compiled.is_running and (compiled.condition is None or compiled.condition(given))
            ]
        is_valid = is_valid_visitor(visitor)
        if not is_valid:
            self._count("invalid")
        forced = force or {}
        answers: dict[str, Assignment] = {}
        for key in keys:
            compiled = experiments.get(key)
            if compiled is None:
                answers[key] = UNKNOWN if self._has_config else self._fallback(key, None)
            elif not is_valid:
                answers[key] = self._fallback(key, None, Reason.INVALID_VISITOR)
            else:
                answer = compiled.evaluate(visitor, given, consent, forced.get(key))
                if answer.enrolled:
                    self._report_exposure(compiled, visitor, answer, attributes, covariate)
                answers[key] = answer
        return answers

    def _remote_assign(
        self,
        visitor: str,
        experiments: list[str] | None,
        attributes: Attributes | None,
        consent: bool,
        force: Mapping[str, str] | None,
        covariate: float | None = None,
    ) -> dict[str, Assignment] | None:
        """Ask the server; ``None`` if it gave no usable answer within the timeout."""
        if not is_valid_visitor(visitor):
            self._count("invalid")
            return None
        if not self._breaker.is_allowed(time.monotonic()):
            self._count("circuit_skips")
            return None
        document: dict[str, Any] = {"visitor": visitor}
        if experiments is not None:
            document["experiments"] = experiments
        if attributes:
            document["attributes"] = attributes
        if not consent:
            document["consent"] = False
        if force:
            document["force"] = dict(force)
        if covariate is not None:
            checked = self._checked_covariate(covariate)
            if checked is not None:
                document["covariate"] = checked
        body = json.dumps(document, separators=(",", ":"), default=str).encode()
        try:
            response = self._transport.request(
                "POST", ASSIGN_PATH, body, self._headers, self._timeout
            )
        except TRANSPORT_ERRORS as error:
            log.debug("splitwerk: assign failed: %r", error)
            self._remote_failed()
            return None
        if response.status == 429 or response.status >= 500:
            log.debug("splitwerk: assign answered HTTP %d", response.status)
            self._remote_failed()
            return None
        answers = _parse_assignments(response.body) if 200 <= response.status < 300 else None
        if answers is None:
            # A 4xx or a garbled body: the server is up, so the breaker stays closed.
            log.warning("splitwerk: assign gave no usable answer (HTTP %d)", response.status)
            self._count("assign_errors")
            return None
        self._breaker.record_success()
        if force:
            answers_to_keep = {key: a for key, a in answers.items() if key not in force}
        else:
            answers_to_keep = answers
        self._remembered.remember(visitor, answers_to_keep)
        return answers

    def _remote_failed(self) -> None:
        self._count("assign_errors")
        if self._breaker.record_failure(time.monotonic()):
            self._count("circuit_opened")
            log.warning("splitwerk: server unreachable; answering with fallbacks for a while")

    def _fallback(self, experiment: str, default: str | None, reason: str = "") -> Assignment:
        compiled = self._experiments.get(experiment)
        if compiled is not None:
            answer = compiled.fallback
            if reason and answer.reason == Reason.UNAVAILABLE:
                return Assignment(answer.variant, answer.payload, False, reason)
            return answer
        return Assignment(
            default if type(default) is str else CONTROL, None, False, reason or Reason.UNAVAILABLE
        )

    def _report_exposure(
        self,
        compiled: Experiment,
        visitor: str,
        answer: Assignment,
        attributes: Attributes | None,
        covariate: float | None = None,
    ) -> None:
        # Report each visitor once per experiment, config and process; the server enrols once
        # anyway, so forgetting everyone when the set is full only costs duplicates.
        self._check_process()
        seen = self._seen.get(compiled.key)
        if seen is None:
            seen = self._seen[compiled.key] = set()
        elif visitor in seen:
            return
        elif len(seen) >= MAX_SEEN_EXPOSURES:
            seen.clear()
        seen.add(visitor)
        names = compiled.attribute_names
        reported = (
            {name: attributes[name] for name in names if name in attributes}
            if attributes and names
            else {}
        )
        checked = None if covariate is None else self._checked_covariate(covariate)
        try:
            self._batcher.put(
                events.exposure(visitor, compiled.key, answer.variant or CONTROL, reported, checked)
            )
        except ValueError as error:
            # The visitor still gets their answer; only the report is refused.
            self._count("invalid")
            log.warning("splitwerk: exposure of %r dropped: %s", compiled.key, error)
            return
        self._count("exposures")

    def _checked_covariate(self, covariate: object) -> float | None:
        """The covariate if the server will take it, else None (counted as ``invalid``): a
        refused one would cost the visitor's whole answer, so it is left out instead."""
        if events.is_valid_covariate(covariate):
            return covariate
        self._count("invalid")
        log.warning(
            "splitwerk: covariate %r left out: not a number within ±1e6 with 2 decimals", covariate
        )
        return None

    def _queue(self, build: Callable[[], events.Event], needs_key: bool = False) -> None:
        self._check_process()
        if needs_key and self._ingest_key is None:
            self._count("invalid")
            log.warning("splitwerk: order and refund events need an ingest_key; event dropped")
            return
        try:
            self._batcher.put(build())
        except ValueError as error:
            self._count("invalid")
            log.warning("splitwerk: event dropped: %s", error)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counters[name] += 1


def _variant_fallback(
    client: Client,
    experiment: str,
    visitor: str,
    attributes: Attributes | None = None,
    default: str | None = None,
    **options: object,
) -> str:
    return default if isinstance(default, str) else CONTROL


def _parse_assignments(body: bytes) -> dict[str, Assignment] | None:
    """Read ``/v1/assign``'s answer; ``None`` unless it has the documented shape."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    raw = document.get("assignments") if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        return None
    answers = {}
    for key, item in raw.items():
        if not isinstance(item, dict):
            return None
        variant = item.get("variant")
        if variant is not None and not isinstance(variant, str):
            return None
        answers[key] = Assignment(
            variant,
            item.get("payload"),
            item.get("enrolled") is True,
            str(item.get("reason", "")),
        )
    return answers


def _time_limit(method: str, timeout: object) -> float:
    """A caller's timeout in seconds; not a finite number ≥ 0 counts as 0 (and is logged).

    A public method must not raise, nor wait without a limit: ``None``, NaN, infinity or a
    negative number would do one or the other.
    """
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout) if abs(timeout) < 1e300 else math.inf  # huge ints: no overflow
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    log.warning("splitwerk: %s(timeout=%.40r): not seconds; using 0", method, timeout)
    return 0.0


def _check_positive(name: str, value: object, allow_zero: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")


def _check_count(name: str, value: object, lowest: int, highest: int | None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < lowest
        or (highest is not None and value > highest)
    ):
        upper = highest if highest is not None else "∞"
        raise ConfigError(f"{name} must be an integer in {lowest}..{upper}, not {value!r}")


def _close_at_exit(reference: "weakref.ref[Client]") -> None:
    client = reference()
    if client is not None:
        client.close()
