"""Client-side flood control that cannot trip a sliding-window limit, whatever the latency.

Telegram counts messages in sliding windows (about 30 per second overall, 1 per second per
chat). A leaky bucket on the client is not enough: network jitter bunches requests up at the
server. So a message holds its slot from the moment it is sent until `window` seconds after
its reply arrived; the server stamped it before the reply, so at most `limit` stamps can ever
fall in one server-side window. The cost is one round trip per `window`, a few percent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

from core.clock import Clock


@dataclass(slots=True)
class _Lane:
    in_flight: int = 0
    done: deque[float] = field(default_factory=deque)

    def busy(self, now: float, window: float) -> int:
        while self.done and self.done[0] <= now - window:
            self.done.popleft()
        return self.in_flight + len(self.done)


class FloodWindow:
    """At most `limit` messages per `window` overall and `per_chat` per chat, and at most
    `concurrency` awaiting their reply (an HTTP pool degrades when requests queue in it)."""

    def __init__(
        self,
        clock: Clock,
        limit: int,
        per_chat: int,
        window: float = 1.0,
        concurrency: int | None = None,
    ) -> None:
        if limit < 1 or per_chat < 1 or window <= 0 or (concurrency or 1) < 1:
            raise ValueError("limits must be positive")
        self.limit, self.per_chat, self.window = limit, per_chat, window
        self.concurrency = concurrency or limit
        self._clock = clock
        self._all = _Lane()
        self._chats: dict[int, _Lane] = {}
        self._freed = asyncio.Event()
        self._paused_until = 0.0

    def chat_ready_in(self, chat_id: int) -> float:
        """Seconds until `chat_id` may receive another message (0: now)."""
        lane = self._chats.get(chat_id)
        now = self._clock.monotonic()
        if lane is None or lane.busy(now, self.window) < self.per_chat:
            return 0.0
        if lane.in_flight and len(lane.done) < self.per_chat:
            return self.window  # its reply is not back yet; a window after it at the earliest
        return max(0.0, lane.done[0] + self.window - now)

    def pause(self, seconds: float) -> None:
        """Hold every new message for `seconds` (Telegram's RetryAfter)."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock.monotonic())

    async def acquire(self, chat_id: int) -> None:
        """Wait for an overall slot (and the end of any pause), then take it for `chat_id`."""
        while True:
            now = self._clock.monotonic()
            wait: float | None = self._paused_until - now
            if wait is not None and wait <= 0:
                if self._all.in_flight >= self.concurrency:
                    wait = None  # until a reply frees one
                elif self._all.busy(now, self.window) < self.limit:
                    break
                else:
                    wait = self._all.done[0] + self.window - now if self._all.done else None
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), wait)
        self._all.in_flight += 1
        self._chats.setdefault(chat_id, _Lane()).in_flight += 1

    def release(self, chat_id: int) -> None:
        """The reply for a message to `chat_id` arrived (or the send failed)."""
        now = self._clock.monotonic()
        self._all.in_flight -= 1
        self._all.done.append(now)
        lane = self._chats.get(chat_id)
        if lane is not None:
            lane.in_flight -= 1
            lane.done.append(now)
        if len(self._chats) > 4 * self.limit:
            self._prune(now)
        self._freed.set()

    def _prune(self, now: float) -> None:
        """Forget chats with nothing in flight or in the window, so memory stays bounded."""
        idle = [c for c, lane in self._chats.items() if lane.busy(now, self.window) == 0]
        for chat_id in idle:
            del self._chats[chat_id]
