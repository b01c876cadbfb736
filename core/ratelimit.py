"""A shared token bucket: one per exchange, so all users' requests together respect the
venue's per-IP limit.

Scheduling is by reservation (GCRA): each caller takes its slot at once and sleeps exactly
until it, so there is no polling loop and callers are served in arrival order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.clock import Clock, SystemClock


class TokenBucket:
    """`rate` requests per second on average, bursts of up to `burst`."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock or SystemClock()
        self._sleep = sleep or asyncio.sleep
        self._tokens = self.burst
        self._updated = self._clock.monotonic()
        self.waited_s = 0.0  # total time callers spent waiting, for metrics
        self.acquired = 0

    def reserve(self, cost: float = 1.0) -> float:
        """Take `cost` tokens now; return how long the caller must wait before using them."""
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= cost
        self.acquired += 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait for a slot (ccxt calls this as its `throttle(cost)` hook; cost is counted as 1)."""
        wait = self.reserve(1.0)
        if wait > 0:
            self.waited_s += wait
            result = self._sleep(wait)
            if asyncio.iscoroutine(result):
                await result
