"""The per-trader token bucket and its setting."""

from __future__ import annotations

import pytest

from core.config import DEFAULT_FLOOD, load_settings
from core.errors import ConfigError
from core.throttle import FloodLimit, TraderThrottle, Verdict

LIMIT = FloodLimit(count=20, seconds=60.0, burst=5)


def test_burst_then_one_warning_then_drops() -> None:
    throttle = TraderThrottle(LIMIT)
    verdicts = [throttle.admit(1, 100.0) for _ in range(8)]
    assert verdicts == [Verdict.PASS] * 5 + [Verdict.WARN] + [Verdict.DROP] * 2
    assert throttle.wait_s(1, 100.0) == 3  # 20 a minute: a token every 3 s


def test_tokens_come_back_at_the_rate_and_the_warning_with_them() -> None:
    throttle = TraderThrottle(LIMIT)
    for _ in range(6):
        throttle.admit(1, 0.0)
    assert throttle.admit(1, 2.9) is Verdict.DROP
    assert throttle.admit(1, 3.0) is Verdict.PASS
    assert throttle.admit(1, 3.0) is Verdict.WARN  # a new flood is warned once more
    assert throttle.wait_s(1, 1_000.0) == 0


def test_a_steady_twenty_a_minute_is_never_refused() -> None:
    throttle = TraderThrottle(LIMIT)
    assert all(throttle.admit(1, i * 3.0) is Verdict.PASS for i in range(200))


def test_memory_is_bounded_by_max_users() -> None:
    throttle = TraderThrottle(LIMIT, max_users=100)
    for user in range(10_000):
        throttle.admit(user, 0.0)
    assert len(throttle) == 100
    # The most recent sender is remembered, so their flood is still refused.
    for _ in range(4):  # its first one was in the loop above
        throttle.admit(9_999, 0.0)
    assert throttle.admit(9_999, 0.0) is Verdict.WARN


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        TraderThrottle(FloodLimit(count=0, seconds=60.0, burst=5))


def test_the_setting_defaults_parses_and_turns_off() -> None:
    assert load_settings({}).flood == DEFAULT_FLOOD == LIMIT
    assert load_settings({"TRADEWIND_FLOOD": " 30 / 10 , 8 "}).flood == FloodLimit(30, 10.0, 8)
    assert load_settings({"TRADEWIND_FLOOD": "off"}).flood is None
    assert load_settings({"TRADEWIND_FLOOD": "0"}).flood is None


@pytest.mark.parametrize(
    "value", ["20", "20/60", "0/60,5", "20/0,5", "20/60,0", "a/b,c", "-1/60,5"]
)
def test_a_bad_setting_names_the_variable_and_the_form(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"TRADEWIND_FLOOD": value})
    assert "TRADEWIND_FLOOD" in str(err.value) and "COUNT/SECONDS,BURST" in str(err.value)
