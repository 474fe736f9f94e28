"""Keeps the experiment config fresh: polls ``GET /v1/config`` with ETags in a thread."""

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping

from splitwerk.evaluation import Config, parse_config
from splitwerk.guard import ErrorGuard
from splitwerk.transport import TRANSPORT_ERRORS, Transport

log = logging.getLogger(__name__)

CONFIG_PATH = "/v1/config"
JITTER = 0.1  # ±10 % on the poll interval, so pre-forked workers don't poll in lockstep
FIRST_CONFIG_RETRY_INTERVAL = 5.0  # seconds between attempts until a first config arrives
COUNTERS = ("config_updates", "config_not_modified", "config_errors")


class ConfigPoller:
    """Fetches the config now and then every ``interval`` seconds, and hands new ones on.

    ``If-None-Match`` with the last ``ETag`` makes an unchanged config a cheap 304. A failed
    or refused fetch keeps the config in use; until a first config arrives, attempts come
    every ``FIRST_CONFIG_RETRY_INTERVAL`` seconds at most.
    """

    def __init__(
        self,
        transport: Transport,
        headers: Mapping[str, str],
        *,
        timeout: float,
        interval: float,
        rng: random.Random,
        on_config: Callable[[Config], None],
    ) -> None:
        self._transport = transport
        self._headers = dict(headers)
        self._timeout = timeout
        self._interval = interval
        self._random = rng
        self._on_config = on_config
        self.etag: str | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the thread (at construction and in a forked child); keep the ETag."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._counters = dict.fromkeys(COUNTERS, 0)

    def start(self) -> None:
        """Start the polling thread unless it runs already."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="splitwerk-config", daemon=True
                )
                self._thread.start()

    @property
    def is_started(self) -> bool:
        """Whether the polling thread has been started in this process."""
        return self._thread is not None

    def stop(self, timeout: float) -> None:
        """Stop polling; wait at most ``timeout`` seconds for a fetch in progress."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a first config; True once there is one."""
        return self._ready.wait(timeout)

    def mark_ready(self) -> None:
        """Record that a config is in use (one inherited across a fork counts)."""
        self._ready.set()

    def stats(self) -> dict[str, int]:
        """Return the fetch counters."""
        return dict(self._counters)

    def fetch(self) -> bool:
        """Fetch the config once; True if the one in use is now current (new or 304)."""
        headers = dict(self._headers)
        if self.etag is not None:
            headers["If-None-Match"] = self.etag
        try:
            response = self._transport.request("GET", CONFIG_PATH, None, headers, self._timeout)
        except TRANSPORT_ERRORS as error:
            log.debug("splitwerk: fetching the config failed: %r", error)
            self._counters["config_errors"] += 1
            return False
        if response.status == 304 and self._ready.is_set():
            self._counters["config_not_modified"] += 1
            return True
        config = None
        if response.status == 200:
            try:
                config = parse_config(json.loads(response.body))
            except ValueError:
                log.warning("splitwerk: the config is not valid JSON")
        if config is None:
            log.debug("splitwerk: no usable config (HTTP %d)", response.status)
            self._counters["config_errors"] += 1
            return False
        self._on_config(config)
        self.etag = response.headers.get("etag")
        self._counters["config_updates"] += 1
        self._ready.set()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            with ErrorGuard("fetching the config"):
                self.fetch()
            interval = self._interval
            if not self._ready.is_set():
                interval = min(interval, FIRST_CONFIG_RETRY_INTERVAL)
            self._stop.wait(interval * (1 + self._random.uniform(-JITTER, JITTER)))
