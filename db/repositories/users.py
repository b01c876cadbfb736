"""Users: who talks to the bot, whether we can still reach them, and their chat settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class UserProfile:
    """What Telegram tells us about a user on each update."""

    user_id: int
    chat_id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None


@dataclass(slots=True, frozen=True)
class UserRecord:
    user_id: int
    chat_id: int
    first_name: str
    username: str | None
    is_active: bool
    is_blocked: bool
    active_credential_id: int | None
    signals_subscribed: bool
    signals_min_score: float
    notify_signals: str
    notify_fills: str
    notify_reports: str
    created_at: datetime
    last_seen_at: datetime


_COLUMNS = (
    "id, chat_id, first_name, username, is_active, is_blocked, active_credential_id, "
    "signals_subscribed, signals_min_score, notify_signals, notify_fills, notify_reports, "
    "created_at, last_seen_at"
)

_UPSERT = f"""
INSERT INTO users (id, chat_id, username, first_name, last_name, language_code,
                   created_at, last_seen_at)
VALUES (:id, :chat_id, :username, :first_name, :last_name, :language_code, :now, :now)
ON CONFLICT (id) DO UPDATE SET
    chat_id = excluded.chat_id, username = excluded.username,
    first_name = excluded.first_name, last_name = excluded.last_name,
    language_code = excluded.language_code, last_seen_at = excluded.last_seen_at,
    is_active = 1
RETURNING {_COLUMNS}
"""

NOTIFY_COLUMNS = frozenset({"notify_signals", "notify_fills", "notify_reports"})

_GET = f"SELECT {_COLUMNS} FROM users WHERE id = ?"
_BY_USERNAME = f"SELECT {_COLUMNS} FROM users WHERE username = ? COLLATE NOCASE LIMIT 20"
_LAST_SEEN_SINCE = "SELECT id, last_seen_at FROM users WHERE last_seen_at >= ? AND is_active = 1"

HOT_QUERIES = (
    HotQuery("users.get", _GET, (1,)),
    HotQuery("users.by_username", _BY_USERNAME, ("alice",)),
    HotQuery("users.last_seen_since", _LAST_SEEN_SINCE, (0,)),
)


class UserRepository(Repository):
    """SQL for the users table."""

    async def upsert(
        self, profile: UserProfile, now: datetime, tx: Tx | None = None
    ) -> tuple[UserRecord, bool]:
        """Register or refresh a user in one statement; return it and whether it is new."""
        params = {
            "id": profile.user_id,
            "chat_id": profile.chat_id,
            "username": profile.username,
            "first_name": profile.first_name,
            "last_name": profile.last_name,
            "language_code": profile.language_code,
            "now": to_ms(now),
        }
        async with self._tx(tx) as t:
            row = await t.fetchone("users.upsert", _UPSERT, params)
        assert row is not None  # RETURNING always yields the row
        record = _record(row)
        return record, row["created_at"] == params["now"]

    async def get(self, user_id: int) -> UserRecord | None:
        row = await self.store.fetchone("users.get", _GET, (user_id,))
        return None if row is None else _record(row)

    async def get_many(self, user_ids: Sequence[int]) -> dict[int, UserRecord]:
        """Fetch many users in one query (never a loop of `get`)."""
        if not user_ids:
            return {}
        found: dict[int, UserRecord] = {}
        for chunk in _chunks(list(dict.fromkeys(user_ids)), 500):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_COLUMNS} FROM users WHERE id IN ({marks})"
            for row in await self.store.fetchall("users.get_many", sql, chunk):
                found[row["id"]] = _record(row)
        return found

    async def find_by_username(self, username: str) -> list[UserRecord]:
        rows = await self.store.fetchall("users.by_username", _BY_USERNAME, (username,))
        return [_record(row) for row in rows]

    async def last_seen_since(self, since: datetime) -> list[tuple[int, datetime]]:
        """Users seen since `since`, with when (cache warming favours the most recent)."""
        rows = await self.store.fetchall("users.last_seen_since", _LAST_SEEN_SINCE, (to_ms(since),))
        return [(row[0], from_ms_req(row[1])) for row in rows]

    async def touch_many(self, seen: Iterable[tuple[int, datetime]]) -> int:
        """Record last-seen times for many users in one transaction."""
        rows = [(to_ms(at), user_id) for user_id, at in seen]
        sql = "UPDATE users SET last_seen_at = MAX(last_seen_at, ?) WHERE id = ?"
        return await self.store.executemany("users.touch_many", sql, rows)

    async def mark_unreachable_many(self, user_ids: Iterable[int], tx: Tx | None = None) -> int:
        """Users who blocked the bot: stop sending to them (one statement for all)."""
        rows = [(user_id,) for user_id in user_ids]
        async with self._tx(tx) as t:
            return await t.executemany(
                "users.mark_unreachable", "UPDATE users SET is_active = 0 WHERE id = ?", rows
            )

    async def set_notify(
        self, user_id: int, column: str, mode: str, tx: Tx | None = None
    ) -> UserRecord | None:
        """Set one notify_* column ('on', 'off' or 'silent'); return the updated user."""
        if column not in NOTIFY_COLUMNS:
            raise ValueError(f"not a notification setting: {column}")
        sql = f"UPDATE users SET {column} = ? WHERE id = ? RETURNING {_COLUMNS}"
        async with self._tx(tx) as t:
            row = await t.fetchone("users.set_notify", sql, (mode, user_id))
        return None if row is None else _record(row)

    async def set_blocked(self, user_id: int, blocked: bool, tx: Tx | None = None) -> bool:
        async with self._tx(tx) as t:
            changed = await t.execute(
                "users.set_blocked",
                "UPDATE users SET is_blocked = ? WHERE id = ?",
                (int(blocked), user_id),
            )
        return changed == 1

    async def set_active_credential(
        self, user_id: int, credential_id: int | None, tx: Tx | None = None
    ) -> None:
        async with self._tx(tx) as t:
            await t.execute(
                "users.set_active_credential",
                "UPDATE users SET active_credential_id = ? WHERE id = ?",
                (credential_id, user_id),
            )

    async def count(self) -> int:
        return int(await self.store.fetchval("users.count", "SELECT COUNT(*) FROM users"))


def _record(row: Row) -> UserRecord:
    return UserRecord(
        user_id=row["id"],
        chat_id=row["chat_id"],
        first_name=row["first_name"],
        username=row["username"],
        is_active=bool(row["is_active"]),
        is_blocked=bool(row["is_blocked"]),
        active_credential_id=row["active_credential_id"],
        signals_subscribed=bool(row["signals_subscribed"]),
        signals_min_score=row["signals_min_score"],
        notify_signals=row["notify_signals"],
        notify_fills=row["notify_fills"],
        notify_reports=row["notify_reports"],
        created_at=from_ms_req(row["created_at"]),
        last_seen_at=from_ms_req(row["last_seen_at"]),
    )


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
