"""Circuit breaker states, with a controlled clock."""

from __future__ import annotations

import pytest

from collabdnn.transport.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_and_probes_after_reset():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_s=5.0, clock=clock)
    assert breaker.allow()
    breaker.record_failure("boom")
    assert breaker.state == CLOSED and breaker.allow()
    breaker.record_failure("boom")
    assert breaker.state == OPEN and not breaker.allow()
    assert breaker.seconds_until_probe() == 5.0
    clock.now = 5.0
    assert breaker.state == HALF_OPEN
    assert breaker.allow()  # one probe ...
    assert not breaker.allow()  # ... and only one
    breaker.record_failure("still down")
    assert breaker.state == OPEN and not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow() and breaker.allow()


def test_success_resets_the_failure_count():
    breaker = CircuitBreaker(failure_threshold=2, reset_s=1.0, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == CLOSED


def test_bad_settings():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
