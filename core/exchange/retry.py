"""Bounded retries for reads: exponential backoff with full jitter, honouring retry-after.

Only `TemporaryError` is retried, and never for order placement: a write whose outcome is
unknown is resolved by lookup, not by sending it again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from core.exchange.errors import RateLimited, TemporaryError, VenueDown

T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_retry_after: float = 10.0  # a longer wait is surfaced to the user instead

    def delay(self, attempt: int, error: TemporaryError, rng: random.Random) -> float | None:
        """Seconds to wait before retry number `attempt` (1-based), or None to give up."""
        if attempt >= self.attempts or isinstance(error, VenueDown):
            return None
        backoff = rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        if isinstance(error, RateLimited) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            return max(error.retry_after, backoff)
        return backoff


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[TemporaryError], None] | None = None,
) -> T:
    """Run `call`, retrying temporary failures per `policy`; the last failure propagates."""
    rng = rng or random.Random()
    attempt = 1
    while True:
        try:
            return await call()
        except TemporaryError as error:
            delay = policy.delay(attempt, error, rng)
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(error)
            await sleep(delay)
            attempt += 1
