"""Throttling of admin alerts, so a failure storm becomes one message a minute, not a flood."""

from __future__ import annotations

from dataclasses import dataclass

from core.clock import Clock


@dataclass(slots=True)
class _Window:
    opened_at: float
    suppressed: int = 0


class AlertThrottle:
    """Lets one alert per key through per window and counts the ones it held back."""

    def __init__(self, clock: Clock, window_s: float = 60.0) -> None:
        self._clock = clock
        self._window_s = window_s
        self._windows: dict[str, _Window] = {}

    def admit(self, key: str) -> int | None:
        """Return None to stay quiet, or how many alerts of this key were held back before."""
        now = self._clock.monotonic()
        window = self._windows.get(key)
        if window is not None and now - window.opened_at < self._window_s:
            window.suppressed += 1
            return None
        held_back = window.suppressed if window is not None else 0
        self._windows[key] = _Window(opened_at=now)
        if len(self._windows) > 1000:  # keys are error types; bound them anyway
            oldest = min(self._windows, key=lambda k: self._windows[k].opened_at)
            del self._windows[oldest]
        return held_back
