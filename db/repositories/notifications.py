"""The notification outbox: deliveries waiting for, being and having been sent.

Rows move `pending → sending → sent`, back to `pending` for a retry, or end `dead` (gave up
after N tries) or `dropped` (the user blocked the bot). A row stuck in `sending` was claimed
by a process that died before recording the outcome; `recover` returns it to `pending`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class NewDelivery:
    """One delivery to insert; `setting` names the users column that may turn it off."""

    dedup_key: str
    user_id: int
    chat_id: int
    kind: str
    priority: int
    text: str
    buttons: Sequence[Sequence[tuple[str, str]]]
    silent: bool
    setting: str | None
    signal_id: int | None = None
    broadcast_id: int | None = None


@dataclass(slots=True, frozen=True)
class Delivery:
    """A claimed row, ready to send."""

    id: int
    user_id: int
    chat_id: int
    kind: str
    priority: int
    text: str
    buttons: tuple[tuple[tuple[str, str], ...], ...]
    silent: bool
    attempts: int


@dataclass(slots=True, frozen=True)
class Retry:
    """A failed delivery to try again at `at`, or to bury when `dead`."""

    id: int
    error: str
    at: datetime
    dead: bool


@dataclass(slots=True, frozen=True)
class BroadcastCounts:
    sent: int
    dropped: int
    dead: int
    pending: int


# One row per notice; the users join applies is_active/is_blocked and the per-kind setting
# ('off' skips the row, 'silent' turns the notification sound off) inside the same statement.
_ENQUEUE = """
INSERT OR IGNORE INTO notifications
    (dedup_key, user_id, chat_id, kind, priority, payload, next_attempt_at,
     broadcast_id, signal_id, created_at)
SELECT :dedup_key, u.id, :chat_id, :kind, :priority,
       json_object('text', :text, 'buttons', json(:buttons),
                   'silent', json(CASE WHEN :silent OR u.mode = 'silent'
                                       THEN 'true' ELSE 'false' END)),
       :now, :broadcast_id, :signal_id, :now
FROM (SELECT id, CASE :setting WHEN 'notify_signals' THEN notify_signals
                               WHEN 'notify_fills' THEN notify_fills
                               WHEN 'notify_reports' THEN notify_reports
                               ELSE 'on' END AS mode
      FROM users WHERE id = :user_id AND is_active = 1 AND is_blocked = 0) AS u
WHERE u.mode != 'off'
"""

_DUE = """
SELECT id FROM notifications
WHERE status = 'pending' AND next_attempt_at <= ?
ORDER BY priority, next_attempt_at LIMIT ?
"""

_CLAIM = f"""
UPDATE notifications SET status = 'sending', claimed_at = ?
WHERE id IN ({_DUE})
RETURNING id, user_id, chat_id, kind, priority, payload, attempts
"""

# MIN over each lane separately: each one is a single seek into ix_notifications_due.
_NEXT_DUE = """
SELECT MIN(at) FROM (
    SELECT MIN(next_attempt_at) AS at FROM notifications WHERE status = 'pending' AND priority = 0
    UNION ALL
    SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending' AND priority = 1
    UNION ALL
    SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending' AND priority = 2
    UNION ALL
    SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending' AND priority = 3
)
"""

_LANES = (0, 1, 2, 3)

# Counted per lane so each count is a seek into ix_notifications_due, never a walk of it all.
_DEPTH = " UNION ALL ".join(
    f"SELECT {lane} AS priority, COUNT(*) AS n FROM notifications "
    f"WHERE status = 'pending' AND priority = {lane}"
    for lane in _LANES
)

_BROADCAST = """
SELECT status, COUNT(*) AS n FROM notifications
WHERE broadcast_id = ? GROUP BY status
"""

_RECOVER = """
UPDATE notifications SET status = 'pending', claimed_at = NULL
WHERE status = 'sending' AND claimed_at IS NOT NULL
"""

HOT_QUERIES = (
    HotQuery("notifications.claim", _CLAIM, (0, 0, 100)),
    HotQuery("notifications.next_due", _NEXT_DUE),
    HotQuery("notifications.depth", _DEPTH),
    HotQuery("notifications.broadcast", _BROADCAST, (1,)),
    HotQuery("notifications.recover", _RECOVER),
)


class NotificationRepository(Repository):
    """SQL for the notifications table."""

    async def enqueue(
        self, deliveries: Sequence[NewDelivery], now: datetime, tx: Tx | None = None
    ) -> int:
        """Insert many deliveries in one statement run; return how many were new and allowed."""
        if not deliveries:
            return 0
        at = to_ms(now)
        rows = [
            {
                "dedup_key": d.dedup_key,
                "user_id": d.user_id,
                "chat_id": d.chat_id,
                "kind": d.kind,
                "priority": d.priority,
                "text": d.text,
                "buttons": json.dumps([[list(b) for b in row] for row in d.buttons]),
                "silent": int(d.silent),
                "setting": d.setting,
                "signal_id": d.signal_id,
                "broadcast_id": d.broadcast_id,
                "now": at,
            }
            for d in deliveries
        ]
        async with self._tx(tx) as t:
            return await t.executemany("notifications.enqueue", _ENQUEUE, rows)

    async def claim(self, now: datetime, limit: int) -> list[Delivery]:
        """Mark the most urgent due rows `sending` and return them, lane first."""
        at = to_ms(now)
        async with self.store.transaction() as t:
            rows = await t.fetchall("notifications.claim", _CLAIM, (at, at, limit))
        return sorted((_delivery(row) for row in rows), key=lambda d: (d.priority, d.id))

    async def recover(self) -> int:
        """Return rows claimed by a process that stopped mid-send to `pending`."""
        return await self.store.execute("notifications.recover", _RECOVER)

    async def mark_sent(self, ids: Iterable[int], now: datetime) -> int:
        rows = [(to_ms(now), i) for i in ids]
        sql = (
            "UPDATE notifications SET status = 'sent', sent_at = ?, claimed_at = NULL WHERE id = ?"
        )
        return await self.store.executemany("notifications.mark_sent", sql, rows)

    async def release(self, ids: Iterable[int], at: datetime) -> int:
        """Put claimed rows back to `pending`, due at `at`, without counting an attempt."""
        return await self.release_each((i, at) for i in ids)

    async def release_each(self, due: Iterable[tuple[int, datetime]]) -> int:
        """Like `release`, each row due at its own time, in one statement batch."""
        rows = [(to_ms(at), i) for i, at in due]
        sql = (
            "UPDATE notifications SET status = 'pending', claimed_at = NULL, "
            "next_attempt_at = ? WHERE id = ?"
        )
        return await self.store.executemany("notifications.release", sql, rows)

    async def retry(self, retries: Sequence[Retry]) -> int:
        """Count a failed attempt per row; schedule it again or mark it dead."""
        rows = [("dead" if r.dead else "pending", r.error, to_ms(r.at), r.id) for r in retries]
        sql = (
            "UPDATE notifications SET status = ?, attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = ?, claimed_at = NULL WHERE id = ?"
        )
        return await self.store.executemany("notifications.retry", sql, rows)

    async def drop_users(self, user_ids: Iterable[int], error: str) -> int:
        """Users who blocked the bot: mark them inactive and drop everything still queued."""
        users = [(u,) for u in set(user_ids)]
        if not users:
            return 0
        drop = (
            "UPDATE notifications SET status = 'dropped', claimed_at = NULL, last_error = ? "
            "WHERE user_id = ? AND status IN ('pending', 'sending')"
        )
        async with self.store.transaction() as t:
            await t.executemany(
                "notifications.deactivate", "UPDATE users SET is_active = 0 WHERE id = ?", users
            )
            return await t.executemany(
                "notifications.drop_user", drop, [(error, u) for (u,) in users]
            )

    async def next_due(self) -> datetime | None:
        """When the earliest pending row becomes due, or None when nothing is pending."""
        value = await self.store.fetchval("notifications.next_due", _NEXT_DUE)
        return None if value is None else from_ms_req(value)

    async def depth(self) -> dict[int, int]:
        """Pending rows per priority lane."""
        rows = await self.store.fetchall("notifications.depth", _DEPTH)
        return {row["priority"]: row["n"] for row in rows}

    async def broadcast_counts(self, broadcast_id: int) -> BroadcastCounts:
        rows = await self.store.fetchall("notifications.broadcast", _BROADCAST, (broadcast_id,))
        by_status = {row["status"]: row["n"] for row in rows}
        return BroadcastCounts(
            sent=by_status.get("sent", 0),
            dropped=by_status.get("dropped", 0),
            dead=by_status.get("dead", 0),
            pending=by_status.get("pending", 0) + by_status.get("sending", 0),
        )


def _delivery(row: Row) -> Delivery:
    payload = json.loads(row["payload"])
    return Delivery(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        kind=row["kind"],
        priority=row["priority"],
        text=payload["text"],
        buttons=tuple(tuple((b[0], b[1]) for b in r) for r in payload.get("buttons", ())),
        silent=bool(payload.get("silent", False)),
        attempts=row["attempts"],
    )
