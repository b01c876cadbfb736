"""Each Telegram update acts at most once, even when Telegram delivers it again.

Telegram re-sends every update the bot had not confirmed when it stopped (a crash, a kill
during a long poll). Before any handler runs, the update's id is written to SQLite; an id
already there means the update was handled (or was being handled when the process died) and
it is dropped. Claiming before acting makes it at most once: an update cut off mid-way is
not run again, as a half-done card or payment is settled by its own records.

Only the newest `window` ids are kept: Telegram's redeliveries are always among them.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from core.clock import Clock
from db.repositories.updates import UpdateRepository

log = logging.getLogger(__name__)


class UpdateGuard:
    """The `TypeHandler` callback (group -3, before everything) that drops repeats."""

    def __init__(self, window: int = 10_000) -> None:
        self.window = window
        self.latest = 0  # newest id handled, known once `open`ed (offline ids continue it)
        self.dropped = 0
        self._repo: UpdateRepository | None = None
        self._clock: Clock | None = None
        self._since_prune = 0

    async def open(self, repo: UpdateRepository, clock: Clock) -> None:
        self._repo, self._clock = repo, clock
        self.latest = await repo.latest()

    def close(self) -> None:
        self._repo = None

    async def check(self, update: object, context: object) -> None:
        """Let a first delivery through; stop a repeated one before any handler sees it."""
        if not isinstance(update, Update) or self._repo is None or self._clock is None:
            return
        if not await self._repo.claim(update.update_id, self._clock.now()):
            self.dropped += 1
            log.warning("update %s was delivered again: already handled, dropped", update.update_id)
            raise ApplicationHandlerStop
        self.latest = max(self.latest, update.update_id)
        self._since_prune += 1
        if self._since_prune >= max(1, self.window // 10):
            self._since_prune = 0
            await self._repo.prune(self.window)
