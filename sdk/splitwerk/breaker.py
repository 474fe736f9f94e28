"""A circuit breaker that stops calling a failing server, and probes it every second or so."""

import random
import threading


class CircuitBreaker:
    """Counts consecutive failures and opens after ``threshold`` of them.

    While open, ``is_allowed`` is false for ``cooldown`` seconds, so callers skip the network
    and answer with their fallback at once instead of waiting out a timeout per call. After
    the cool-down one caller is let through as a probe (half-open): success closes the
    breaker, failure opens it for another cool-down. The cool-down is short (the client's
    default is 1 s): a probe costs one caller at most one timeout, and a server that is back
    gets its traffic back within about a cool-down, not after a fixed wait. With ``rng``, each
    cool-down is shortened by up to 20 % at random, so pre-forked workers don't probe in
    lockstep. Times are ``time.monotonic()`` values passed in.
    """

    def __init__(self, threshold: int, cooldown: float, rng: random.Random | None = None) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._random = rng
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0  # monotonic seconds; 0.0 while closed

    def is_allowed(self, now: float) -> bool:
        """Tell whether a request may go out at ``now``; claims the probe when half-open."""
        if self._failures < self._threshold:
            return True  # closed: the common case, decided without the lock
        with self._lock:
            if now < self._open_until:
                return False
            # Half-open: this caller probes; the others wait for its result a cool-down long.
            self._open_until = now + self._next_cooldown()
            return True

    def record_success(self) -> None:
        """Close the breaker."""
        if self._failures:
            with self._lock:
                self._failures = 0
                self._open_until = 0.0

    def record_failure(self, now: float) -> bool:
        """Count a failure; return whether this one opened the breaker."""
        with self._lock:
            self._failures += 1
            if self._failures == self._threshold:
                self._open_until = now + self._next_cooldown()
                return True
            if self._failures > self._threshold:
                self._open_until = now + self._next_cooldown()
            return False

    def _next_cooldown(self) -> float:
        if self._random is None:
            return self._cooldown
        return self._cooldown * self._random.uniform(0.8, 1.0)

    def is_open(self, now: float) -> bool:
        """Tell whether requests are being skipped at ``now``."""
        return self._failures >= self._threshold and now < self._open_until

    def reset(self) -> None:
        """Forget all failures (used in a forked child, whose lock may be held)."""
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
