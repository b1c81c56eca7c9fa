"""CircuitBreaker, CallPermit and ManualClock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import octrix
from octrix import BreakerState

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
CONFIG = {
    "consecutive_failures": 2,
    "failure_rate_threshold": None,
    "window": {"type": "count", "calls": 10},
    "minimum_calls": 1,
    "open_timeout": timedelta(seconds=30),
    "half_open_trial_calls": 1,
}


def boom() -> None:
    raise ConnectionError("timeout")


def test_breaker_opens_rejects_and_recovers() -> None:
    clock = octrix.ManualClock(T0)
    breaker = octrix.CircuitBreaker("payments", CONFIG, clock=clock)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.call(lambda x, y=1: x + y, 2, y=5) == 7
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(boom)
    assert breaker.state is BreakerState.OPEN
    called = []
    with pytest.raises(octrix.CircuitOpenError) as caught:
        breaker.call(called.append, 1)
    assert called == []
    assert caught.value.service == "payments"
    assert caught.value.state == "open"
    assert caught.value.retry_at == T0 + timedelta(seconds=30)
    snapshot = breaker.snapshot()
    assert snapshot["state"] == "open" and snapshot["opened_at"] == T0

    clock.advance(timedelta(seconds=30))
    with breaker.acquire() as permit:
        assert permit.is_trial and permit.pending
    assert not permit.pending
    assert breaker.state is BreakerState.CLOSED
    transitions = breaker.drain_transitions()
    assert [(t["from"], t["to"]) for t in transitions] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert transitions[0]["reason"] == {"type": "consecutive_failures", "count": 2}
    assert transitions[0]["at"] == T0 and transitions[1]["at"] == T0 + timedelta(seconds=30)
    assert breaker.drain_transitions() == []


def test_permits_record_once_and_context_managers_count_exceptions() -> None:
    breaker = octrix.CircuitBreaker("api", CONFIG, clock=octrix.ManualClock(T0))
    permit = breaker.acquire()
    assert permit.failure() is True
    assert permit.success() is False  # already recorded
    with pytest.raises(ValueError):
        with breaker.acquire():
            raise ValueError("bad answer")
    assert breaker.state is BreakerState.OPEN
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    ignored = breaker.acquire()
    assert ignored.record("ignored") is True
    assert breaker.snapshot()["window_calls"] == 0
    with pytest.raises(octrix.ValidationError):
        breaker.acquire().record("maybe")
    breaker.force_open()
    with pytest.raises(octrix.CircuitOpenError):
        breaker.acquire()


def test_unrecorded_trial_permits_give_their_slot_back() -> None:
    clock = octrix.ManualClock(T0)
    breaker = octrix.CircuitBreaker("svc", CONFIG, clock=clock)
    breaker.force_open()
    clock.advance(timedelta(seconds=31))
    trial = breaker.acquire()
    with pytest.raises(octrix.CircuitOpenError) as caught:
        breaker.acquire()
    assert caught.value.state == "half_open"
    del trial
    breaker.acquire().success()
    assert breaker.state is BreakerState.CLOSED


def test_configuration_defaults_and_errors() -> None:
    breaker = octrix.CircuitBreaker("svc")
    assert breaker.config["consecutive_failures"] == 5
    assert breaker.config["window"] == {"type": "count", "calls": 100}
    assert breaker.service == "svc"
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.CircuitBreaker("svc", {"failure_rate_threshold": 1.5})
    assert caught.value.field == "failure_rate_threshold"
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.CircuitBreaker("svc", {"window": {"type": "count", "calls": 0}})
    assert caught.value.field == "window.calls"
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.CircuitBreaker("svc", {"consecutive_failures": None, "failure_rate_threshold": None})
    assert "no trip condition" in str(caught.value)
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.CircuitBreaker("svc", {"open_timout": "5s"})
    assert caught.value.field == "open_timout"


def test_manual_clock() -> None:
    clock = octrix.ManualClock(T0)
    clock.advance(timedelta(minutes=1))
    assert clock.now() == T0 + timedelta(minutes=1)
    clock.set(T0)
    assert clock.now() == T0
    with pytest.raises(octrix.ValidationError):
        clock.set(datetime(2026, 1, 1))
