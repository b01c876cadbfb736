"""Broadcasts: a draft an admin confirms, then deliveries through the outbox until done.

`draft → sending → done`, or `draft → cancelled`. The admin's progress message is stored
with the broadcast, so a restarted bot finds it again and keeps editing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class BroadcastRecord:
    broadcast_id: int
    admin_id: int
    text: str
    status: str
    total: int
    progress_chat_id: int | None
    progress_message_id: int | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(slots=True, frozen=True)
class Recipient:
    user_id: int
    chat_id: int


_COLUMNS = (
    "id, admin_id, text, status, total, progress_chat_id, progress_message_id, created_at, "
    "finished_at"
)
_GET = f"SELECT {_COLUMNS} FROM broadcasts WHERE id = ?"
# `id > 0` keeps this a search of the small partial index, never a scan of every broadcast.
_SENDING = f"SELECT {_COLUMNS} FROM broadcasts WHERE status = 'sending' AND id > 0"
# Every reachable user: a broadcast is the one job that really reads them all.
_RECIPIENTS = "SELECT id, chat_id FROM users WHERE is_active = 1 AND is_blocked = 0"
_START = (
    "UPDATE broadcasts SET status = 'sending', total = ?, progress_chat_id = ?, "
    "progress_message_id = ? WHERE id = ? AND status = 'draft'"
)

HOT_QUERIES = (
    HotQuery("broadcasts.get", _GET, (1,)),
    HotQuery("broadcasts.sending", _SENDING),
)


class BroadcastRepository(Repository):
    """SQL for the broadcasts table."""

    async def create(self, admin_id: int, text: str, now: datetime) -> int:
        async with self.store.transaction() as t:
            return await t.insert(
                "broadcasts.create",
                "INSERT INTO broadcasts (admin_id, text, status, created_at) "
                "VALUES (?, ?, 'draft', ?)",
                (admin_id, text, to_ms(now)),
            )

    async def get(self, broadcast_id: int) -> BroadcastRecord | None:
        row = await self.store.fetchone("broadcasts.get", _GET, (broadcast_id,))
        return None if row is None else _record(row)

    async def sending(self) -> list[BroadcastRecord]:
        rows = await self.store.fetchall("broadcasts.sending", _SENDING)
        return [_record(row) for row in rows]

    async def count_recipients(self) -> int:
        sql = _RECIPIENTS.replace("id, chat_id", "COUNT(*)")
        return int(await self.store.fetchval("broadcasts.count_recipients", sql))

    async def recipients(self, tx: Tx) -> list[Recipient]:
        """Everyone a broadcast goes to, read inside the transaction that queues it."""
        rows = await tx.fetchall("broadcasts.recipients", _RECIPIENTS)
        return [Recipient(row[0], row[1]) for row in rows]

    async def start(
        self, broadcast_id: int, total: int, chat_id: int, message_id: int, tx: Tx
    ) -> bool:
        """Draft → sending, remembering the progress message; False if it was not a draft."""
        changed = await tx.execute(
            "broadcasts.start", _START, (total, chat_id, message_id, broadcast_id)
        )
        return changed == 1

    async def cancel(self, broadcast_id: int, now: datetime, tx: Tx | None = None) -> bool:
        async with self._tx(tx) as t:
            changed = await t.execute(
                "broadcasts.cancel",
                "UPDATE broadcasts SET status = 'cancelled', finished_at = ? "
                "WHERE id = ? AND status = 'draft'",
                (to_ms(now), broadcast_id),
            )
        return changed == 1

    async def finish(self, broadcast_id: int, now: datetime) -> bool:
        changed = await self.store.execute(
            "broadcasts.finish",
            "UPDATE broadcasts SET status = 'done', finished_at = ? "
            "WHERE id = ? AND status = 'sending'",
            (to_ms(now), broadcast_id),
        )
        return changed == 1


def _record(row: Row) -> BroadcastRecord:
    return BroadcastRecord(
        broadcast_id=row["id"],
        admin_id=row["admin_id"],
        text=row["text"],
        status=row["status"],
        total=row["total"],
        progress_chat_id=row["progress_chat_id"],
        progress_message_id=row["progress_message_id"],
        created_at=from_ms_req(row["created_at"]),
        finished_at=from_ms(row["finished_at"]),
    )
