"""Admin alerts: one per error kind per minute, with a count of what was held back."""

from __future__ import annotations

from services.alerts import AlertThrottle
from tests.fakes.clock import FakeClock


def test_throttle_admits_once_per_window_and_counts_the_rest() -> None:
    clock = FakeClock()
    throttle = AlertThrottle(clock, window_s=60)
    assert throttle.admit("ZeroDivisionError") == 0
    assert throttle.admit("ZeroDivisionError") is None
    assert throttle.admit("ZeroDivisionError") is None
    assert throttle.admit("KeyError") == 0  # other kinds are independent
    clock.advance(61)
    assert throttle.admit("ZeroDivisionError") == 2
