"""Time as a role, so tests can move it by hand.

Wall time is always timezone-aware UTC; durations and TTLs use the monotonic clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What the rest of the code asks of time."""

    def now(self) -> datetime:
        """Return the current wall time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes backwards."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()
