"""The notification outbox: every message the bot sends on its own goes through here.

Producers (signals, fills, reports, broadcasts) write deliveries in their own transaction
through `services.unit_of_work`, so a signal and its notifications commit together or not at
all, with words from `services.notices`; the dispatcher sends them in the background, most
urgent lane first. Nobody else talks to Telegram for notifications.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from core.clock import Clock
from db.repositories.notifications import NewDelivery, NotificationRepository
from db.store import Tx
from services.sender import Buttons

MAX_TEXT = 4096


class NoticeKind(enum.StrEnum):
    FILL = "fill"
    STOP = "stop"
    SIGNAL = "signal"
    REPORT = "report"
    BROADCAST = "broadcast"
    SYSTEM = "system"


# Lower goes first: a stop-out must not wait behind ten thousand broadcast messages.
PRIORITY: dict[NoticeKind, int] = {
    NoticeKind.FILL: 0,
    NoticeKind.STOP: 0,
    NoticeKind.SYSTEM: 0,
    NoticeKind.SIGNAL: 1,
    NoticeKind.REPORT: 2,
    NoticeKind.BROADCAST: 3,
}
LANES = tuple(sorted(set(PRIORITY.values())))

# The users column that can turn a kind off or silent; None: always delivered.
SETTING: dict[NoticeKind, str | None] = {
    NoticeKind.FILL: "notify_fills",
    NoticeKind.STOP: "notify_fills",
    NoticeKind.SIGNAL: "notify_signals",
    NoticeKind.REPORT: "notify_reports",
    NoticeKind.BROADCAST: None,
    NoticeKind.SYSTEM: None,
}


@dataclass(slots=True, frozen=True)
class Notice:
    """One message for one user."""

    user_id: int
    chat_id: int
    kind: NoticeKind
    text: str  # HTML, already escaped, ≤ 4096 chars
    dedup_key: str  # unique per delivery, e.g. f"signal:{signal_id}:{user_id}"
    buttons: Buttons = ()  # rows of (label, callback_data)
    silent: bool = False
    signal_id: int | None = None
    broadcast_id: int | None = None


@dataclass(slots=True, frozen=True)
class BroadcastProgress:
    """Where one broadcast's deliveries stand."""

    sent: int
    dropped: int  # the user blocked the bot
    dead: int  # gave up after N tries
    pending: int

    @property
    def done(self) -> bool:
        return self.pending == 0


class Outbox:
    """Queue notifications durably and tell the dispatcher about them."""

    def __init__(self, repo: NotificationRepository, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock
        self._work = asyncio.Event()

    async def enqueue(self, notices: Sequence[Notice], tx: Tx | None = None) -> int:
        """Insert deliveries in the caller's transaction or its own; return rows inserted.

        Duplicates by dedup_key are ignored; users whose notify_<kind> setting is 'off' or who
        are inactive are skipped; 'silent' sends without sound. Without `tx` it wakes the
        dispatcher itself; with one, `wake()` follows the commit (`UnitOfWork` does both).
        """
        for notice in notices:
            if len(notice.text) > MAX_TEXT:
                raise ValueError(f"notice {notice.dedup_key} is longer than {MAX_TEXT} chars")
        deliveries = [_delivery(n) for n in notices]
        inserted = await self._repo.enqueue(deliveries, self._clock.now(), tx)
        if tx is None and inserted:
            self.wake()
        return inserted

    def wake(self) -> None:
        """Tell the dispatcher new rows are committed (call after your own transaction commits)."""
        self._work.set()

    async def broadcast_progress(self, broadcast_id: int) -> BroadcastProgress:
        """(sent, dropped, dead, pending) of one broadcast, from one indexed query."""
        counts = await self._repo.broadcast_counts(broadcast_id)
        return BroadcastProgress(counts.sent, counts.dropped, counts.dead, counts.pending)

    @property
    def repository(self) -> NotificationRepository:
        """The rows behind the outbox, for the dispatcher."""
        return self._repo

    async def depth(self) -> dict[int, int]:
        """Pending deliveries per priority lane."""
        return await self._repo.depth()

    def take_wakeup(self) -> None:
        """Forget earlier wake-ups; the caller is about to look at the queue itself."""
        self._work.clear()

    async def wait_for_work(self, seconds: float | None) -> None:
        """Sleep until `wake()` or for `seconds` (None: until woken)."""
        try:
            await asyncio.wait_for(self._work.wait(), seconds)
        except TimeoutError:
            return


def _delivery(notice: Notice) -> NewDelivery:
    kind = NoticeKind(notice.kind)
    return NewDelivery(
        dedup_key=notice.dedup_key,
        user_id=notice.user_id,
        chat_id=notice.chat_id,
        kind=kind.value,
        priority=PRIORITY[kind],
        text=notice.text,
        buttons=notice.buttons,
        silent=notice.silent,
        setting=SETTING[kind],
        signal_id=notice.signal_id,
        broadcast_id=notice.broadcast_id,
    )
