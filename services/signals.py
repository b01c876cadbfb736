"""Signals: stored once per move, announced to every subscriber whose filters match.

A signal and its deliveries commit together: the cooldown check (one indexed read per
symbol and side), the signal rows and one outbox row per matching subscriber are written in
one transaction, and the dispatcher is woken after the commit. Either everybody who should
hear of a signal will, or the signal does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.clock import Clock
from core.errors import InvalidInput, NotFound
from db.repositories.signals import SignalDraft, SignalRecord, SignalRepository, Subscriber
from services import notices
from services.outbox import Notice
from services.unit_of_work import UnitOfWork

__all__ = ["SignalDraft", "SignalPage", "SignalRecord", "SignalService"]

log = logging.getLogger(__name__)

COOLDOWN = timedelta(hours=1)  # one move of one symbol in one direction is signalled once
PAGE_SIZE = 5
MAX_PAGES = 20
SCORE_USAGE = "Usage: /subscribe [MIN_SCORE], a score from 0 to 1 such as 0.7 (default 0.6)."


@dataclass(slots=True, frozen=True)
class SignalPage:
    """A page of the latest signals, newest first."""

    signals: list[SignalRecord]
    page: int
    has_older: bool


class SignalService:
    """Publishes the scanner's signals and manages who is subscribed to them."""

    def __init__(
        self,
        signals: SignalRepository,
        work: UnitOfWork,
        clock: Clock,
        cooldown: timedelta = COOLDOWN,
    ) -> None:
        self._signals = signals
        self._work = work
        self._clock = clock
        self.cooldown = cooldown
        self._recent: dict[tuple[str, str], datetime] = {}  # what this process signalled

    def cooling(self, symbol: str, side: str) -> bool:
        """Signalled within the cooldown by this process (the store has the final word)."""
        at = self._recent.get((symbol, side))
        return at is not None and self._clock.now() - at < self.cooldown

    async def publish(self, drafts: Sequence[SignalDraft]) -> list[SignalRecord]:
        """Store the drafts not in cooldown and queue their deliveries, in one transaction."""
        if not drafts:
            return []
        now = self._clock.now()
        stored: list[SignalRecord] = []
        async with self._work.begin() as work:
            for draft in drafts:
                last = await self._signals.last_at(draft.symbol, draft.side, work.tx)
                if last is not None and now - last < self.cooldown:
                    self._recent[(draft.symbol, draft.side)] = last
                    continue
                stored.append(await self._signals.insert(draft, now, work.tx))
            if stored:
                audience = await self._signals.audience(min(s.score for s in stored), work.tx)
                await work.notify(_notices(stored, audience))
        for record in stored:
            self._recent[(record.symbol, record.side)] = now
        self._forget(now)
        return stored

    async def page(self, page: int = 0) -> SignalPage:
        """Page `page` (0 = newest) of the latest signals."""
        if not 0 <= page < MAX_PAGES:
            raise NotFound("That page of signals is too far back; send /signals again.")
        rows = await self._signals.recent(PAGE_SIZE + 1, page * PAGE_SIZE)
        more = len(rows) > PAGE_SIZE and page + 1 < MAX_PAGES
        return SignalPage(rows[:PAGE_SIZE], page, more)

    async def subscribe(self, user_id: int, min_score: str | None = None) -> float:
        """Turn signals on; return the threshold in force (validated 0..1)."""
        score = None if min_score is None else parse_score(min_score)
        found = await self._signals.subscribe(user_id, score)
        if found is None:
            raise NotFound("Send /start first.")
        return found

    async def unsubscribe(self, user_id: int) -> bool:
        """Turn signals off; False if they were not on."""
        state = await self._signals.subscription(user_id)
        if state is None or not state[0]:
            return False
        await self._signals.unsubscribe(user_id)
        return True

    async def subscription(self, user_id: int) -> tuple[bool, float] | None:
        return await self._signals.subscription(user_id)

    def _forget(self, now: datetime) -> None:
        if len(self._recent) > 10_000:
            self._recent = {k: at for k, at in self._recent.items() if now - at < self.cooldown}


def parse_score(text: str) -> float:
    """A score from 0 to 1 (`0.7`, `.7`, `70%`), two decimals kept."""
    raw = text.strip().lower()
    percent = raw.endswith("%")
    try:
        value = Decimal(raw.rstrip("%").strip())
    except ArithmeticError:
        raise InvalidInput(SCORE_USAGE) from None
    if not value.is_finite():
        raise InvalidInput(SCORE_USAGE)
    if percent:
        value /= 100
    if not Decimal(0) <= value <= Decimal(1):
        raise InvalidInput(SCORE_USAGE)
    return float(value.quantize(Decimal("0.01")))


def _notices(signals: Sequence[SignalRecord], audience: Sequence[Subscriber]) -> list[Notice]:
    return [
        notices.signal(signal, user)
        for signal in signals
        for user in audience
        if user.wants(signal.symbol, signal.score)
    ]
