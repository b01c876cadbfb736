"""Key/value facts of the running installation that must survive restarts."""

from __future__ import annotations

from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, to_ms

_GET = "SELECT value FROM app_state WHERE key = ?"

HOT_QUERIES = (HotQuery("app_state.get", _GET, ("k",)),)


class AppStateRepository(Repository):
    """SQL for app_state."""

    async def get(self, key: str) -> str | None:
        value = await self.store.fetchval("app_state.get", _GET, (key,))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, now: datetime) -> None:
        await self.store.execute(
            "app_state.set",
            "INSERT INTO app_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, value, to_ms(now)),
        )

    async def get_or_create(self, key: str, value: str, now: datetime) -> str:
        """Return the stored value, storing `value` first if there was none (race-free)."""
        async with self.store.transaction() as tx:
            await tx.execute(
                "app_state.insert",
                "INSERT INTO app_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, value, to_ms(now)),
            )
            row = await tx.fetchone("app_state.get", _GET, (key,))
        assert row is not None
        return str(row[0])
