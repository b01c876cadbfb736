"""Per-trader anti-flood: a token bucket per user, in memory, bounded in size.

Each user may send `burst` updates at once and `count` per `seconds` on average. Past that,
the first refused update earns one warning and the rest are dropped silently until a token
is back, so a flooding client gets one answer, not one per message. Buckets live in an LRU
of at most `max_users`: forgetting the least recent user only gives them a fresh burst, and
memory cannot grow with the number of senders.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass

_EPSILON = 1e-9


class Verdict(enum.Enum):
    PASS = "pass"  # act on the update
    WARN = "warn"  # the first refused one: say "slow down" once
    DROP = "drop"  # refused again before a token is back: say nothing


@dataclass(slots=True, frozen=True)
class FloodLimit:
    """`count` updates per `seconds` on average, `burst` at once."""

    count: int
    seconds: float
    burst: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def describe(self) -> str:
        per = "a minute" if self.seconds == 60 else f"per {self.seconds:g} s"
        return f"{self.count} commands {per}"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


class TraderThrottle:
    """Decides, per user, whether an update is within `limit`; time is passed in."""

    def __init__(self, limit: FloodLimit, max_users: int = 10_000) -> None:
        if limit.count < 1 or limit.seconds <= 0 or limit.burst < 1 or max_users < 1:
            raise ValueError("limits must be positive")
        self.limit = limit
        self.max_users = max_users
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def admit(self, user_id: int, now: float) -> Verdict:
        """Spend one of `user_id`'s tokens at monotonic time `now`, or refuse."""
        bucket = self._bucket(user_id, now)
        bucket.tokens = min(
            self.limit.burst, bucket.tokens + (now - bucket.updated) * self.limit.rate
        )
        bucket.updated = now
        if bucket.tokens >= 1 - _EPSILON:  # a token refilled in float steps may read 0.999…
            bucket.tokens -= 1
            bucket.warned = False
            return Verdict.PASS
        if bucket.warned:
            return Verdict.DROP
        bucket.warned = True
        return Verdict.WARN

    def wait_s(self, user_id: int, now: float) -> int:
        """Whole seconds until `user_id` has a token again (0: now)."""
        bucket = self._buckets.get(user_id)
        if bucket is None:
            return 0
        tokens = bucket.tokens + (now - bucket.updated) * self.limit.rate
        return max(0, math.ceil((1 - _EPSILON - tokens) / self.limit.rate))

    def _bucket(self, user_id: int, now: float) -> _Bucket:
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = _Bucket(float(self.limit.burst), now)
            if len(self._buckets) > self.max_users:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(user_id)
        return bucket
