"""The window of Telegram update ids already handled (redelivered updates never act twice)."""

from __future__ import annotations

from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, to_ms

_LATEST = "SELECT coalesce(max(update_id), 0) FROM processed_updates"
_CLAIM = (
    "INSERT INTO processed_updates (update_id, seen_at) VALUES (?, ?) "
    "ON CONFLICT (update_id) DO NOTHING"
)
# Everything below the `keep` newest ids; the subquery walks the primary key backwards.
_PRUNE = (
    "DELETE FROM processed_updates WHERE update_id < ("
    "SELECT update_id FROM processed_updates ORDER BY update_id DESC LIMIT 1 OFFSET ?)"
)

HOT_QUERIES = (HotQuery("updates.latest", _LATEST),)


class UpdateRepository(Repository):
    """SQL for processed_updates."""

    async def claim(self, update_id: int, now: datetime) -> bool:
        """Record the update as handled; False when it already was."""
        return await self.store.execute("updates.claim", _CLAIM, (update_id, to_ms(now))) == 1

    async def latest(self) -> int:
        """The newest id handled (0: none yet)."""
        return int(await self.store.fetchval("updates.latest", _LATEST))

    async def prune(self, keep: int) -> int:
        """Forget all but the `keep` newest ids; return how many were forgotten."""
        return await self.store.execute("updates.prune", _PRUNE, (keep - 1,))
