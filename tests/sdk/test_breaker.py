"""The circuit breaker's states, driven by explicit times."""

from splitwerk.breaker import CircuitBreaker


def test_breaker_opens_after_threshold_and_probes_after_cooldown() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=10.0)
    assert breaker.is_allowed(0.0)
    assert not breaker.record_failure(0.0)
    assert breaker.record_failure(1.0)
    assert not breaker.is_allowed(5.0)
    assert breaker.is_open(5.0)
    assert breaker.is_allowed(11.0)  # the probe
    assert not breaker.is_allowed(11.5)  # only one probe per cool-down
    breaker.record_success()
    assert breaker.is_allowed(11.6) and not breaker.is_open(11.6)


def test_failed_probe_reopens_for_another_cooldown() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=10.0)
    breaker.record_failure(0.0)
    assert breaker.is_allowed(10.0)
    breaker.record_failure(10.0)
    assert not breaker.is_allowed(19.0)
    assert breaker.is_allowed(20.0)


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=10.0)
    breaker.record_failure(0.0)
    breaker.record_success()
    breaker.record_failure(0.0)
    assert breaker.is_allowed(0.0)
