"""Licences: one row per user, extended in place, deactivated at the end date."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, from_ms_req, to_ms
from db.store import Row, Tx

DAY_MS = 86_400_000


@dataclass(slots=True, frozen=True)
class LicenseRecord:
    user_id: int
    plan: str
    start_at: datetime
    end_at: datetime
    active: bool
    source: str
    reminded_3d: bool
    reminded_1d: bool
    revoked_at: datetime | None
    revoke_reason: str | None

    def is_valid(self, now: datetime) -> bool:
        """Active and not past its end: the trader may open positions."""
        return self.active and self.end_at > now


_COLUMNS = (
    "user_id, plan, start_at, end_at, active, source, reminded_3d, reminded_1d, "
    "revoked_at, revoke_reason"
)
_GET = f"SELECT {_COLUMNS} FROM user_licenses WHERE user_id = ?"
# Extends from max(now, current end) when the licence is still running, otherwise from now.
_EXTEND = f"""
INSERT INTO user_licenses (user_id, plan, start_at, end_at, active, source, granted_by,
                           updated_at)
VALUES (:user_id, :plan, :now, :now + :days_ms, 1, :source, :granted_by, :now)
ON CONFLICT (user_id) DO UPDATE SET
    end_at = CASE WHEN active = 1 AND end_at > :now THEN end_at ELSE :now END + :days_ms,
    start_at = CASE WHEN active = 1 AND end_at > :now THEN start_at ELSE :now END,
    plan = excluded.plan, source = excluded.source, granted_by = excluded.granted_by,
    active = 1, reminded_3d = 0, reminded_1d = 0, revoked_at = NULL, revoke_reason = NULL,
    updated_at = :now
RETURNING {_COLUMNS}
"""
_DUE_REMINDER = (
    f"SELECT {_COLUMNS} FROM user_licenses WHERE active = 1 AND end_at > :now AND end_at <= :until"
)
# Claiming a reminder flags it in the same statement that finds it, so a reminder is
# queued once even if two runs overlap; the 1-day reminder also covers the 3-day one.
_CLAIM_1D = f"""
UPDATE user_licenses SET reminded_1d = 1, reminded_3d = 1
WHERE active = 1 AND end_at > :now AND end_at <= :until AND reminded_1d = 0
RETURNING {_COLUMNS}
"""
_CLAIM_3D = f"""
UPDATE user_licenses SET reminded_3d = 1
WHERE active = 1 AND end_at > :now AND end_at <= :until AND reminded_3d = 0
RETURNING {_COLUMNS}
"""
_EXPIRE = (
    "UPDATE user_licenses SET active = 0, updated_at = :now "
    f"WHERE active = 1 AND end_at <= :now RETURNING {_COLUMNS}"
)
_REVOKE = (
    "UPDATE user_licenses SET active = 0, revoked_at = :now, revoke_reason = :reason, "
    "updated_at = :now WHERE user_id = :user_id AND active = 1"
)
_COUNT_ACTIVE = "SELECT COUNT(*) FROM user_licenses WHERE active = 1 AND end_at > ?"
_LISTED = (
    "SELECT l.user_id, l.plan, l.end_at, l.active, l.revoked_at, u.username, u.first_name "
    "FROM user_licenses l JOIN users u ON u.id = l.user_id "
)
_LIST_RUNNING = (
    _LISTED + "WHERE l.active = 1 AND l.end_at > :now AND l.end_at <= :until "
    "ORDER BY l.end_at LIMIT :limit OFFSET :offset"
)
_LIST_ENDED = _LISTED + "WHERE l.active = 0 ORDER BY l.end_at DESC LIMIT :limit OFFSET :offset"
_COUNT_RUNNING = (
    "SELECT COUNT(*) FROM user_licenses WHERE active = 1 AND end_at > :now AND end_at <= :until"
)
# Counts every ended licence (over the partial index, not the table): fine for an admin's
# page header, so it is not listed among the hot queries.
_COUNT_ENDED = "SELECT COUNT(*) FROM user_licenses WHERE active = 0"
_PAGE = {"now": 0, "until": 1, "limit": 20, "offset": 0}

HOT_QUERIES = (
    HotQuery("licenses.get", _GET, (1,)),
    HotQuery("licenses.due_reminder", _DUE_REMINDER, {"now": 0, "until": 1}),
    HotQuery("licenses.claim_1d", _CLAIM_1D, {"now": 0, "until": 1}),
    HotQuery("licenses.claim_3d", _CLAIM_3D, {"now": 0, "until": 1}),
    HotQuery("licenses.expire", _EXPIRE, {"now": 0}),
    HotQuery("licenses.count_active", _COUNT_ACTIVE, (0,)),
    HotQuery("licenses.list_running", _LIST_RUNNING, _PAGE),
    HotQuery("licenses.list_ended", _LIST_ENDED, {"limit": 20, "offset": 0}),
    HotQuery("licenses.count_running", _COUNT_RUNNING, {"now": 0, "until": 1}),
)


@dataclass(slots=True, frozen=True)
class LicenseListing:
    """One line of the admin's licence list."""

    user_id: int
    username: str | None
    first_name: str
    plan: str
    end_at: datetime
    active: bool
    revoked: bool


class LicenseRepository(Repository):
    """SQL for user_licenses."""

    async def get(self, user_id: int) -> LicenseRecord | None:
        row = await self.store.fetchone("licenses.get", _GET, (user_id,))
        return None if row is None else _record(row)

    async def extend(
        self,
        user_id: int,
        days: int,
        plan: str,
        source: str,
        now: datetime,
        granted_by: int | None = None,
        tx: Tx | None = None,
    ) -> LicenseRecord:
        """Add `days` from max(now, current end) in one statement (race-free)."""
        params = {
            "user_id": user_id,
            "plan": plan,
            "source": source,
            "granted_by": granted_by,
            "now": to_ms(now),
            "days_ms": days * DAY_MS,
        }
        async with self._tx(tx, durable=True) as t:
            row = await t.fetchone("licenses.extend", _EXTEND, params)
        assert row is not None
        return _record(row)

    async def revoke(self, user_id: int, reason: str, now: datetime, tx: Tx | None = None) -> bool:
        """Deactivate a running licence now; False when there was none to revoke."""
        params = {"user_id": user_id, "reason": reason, "now": to_ms(now)}
        async with self._tx(tx, durable=True) as t:
            changed = await t.execute("licenses.revoke", _REVOKE, params)
        return changed == 1

    async def due_reminder(self, now: datetime, until: datetime) -> list[LicenseRecord]:
        """Active licences ending within (now, until]."""
        params = {"now": to_ms(now), "until": to_ms(until)}
        rows = await self.store.fetchall("licenses.due_reminder", _DUE_REMINDER, params)
        return [_record(row) for row in rows]

    async def mark_reminded_many(
        self, user_ids: Iterable[int], which: str, tx: Tx | None = None
    ) -> int:
        """Flag the 3-day or 1-day reminder as sent for many users at once."""
        column = {"3d": "reminded_3d", "1d": "reminded_1d"}[which]
        rows = [(user_id,) for user_id in user_ids]
        async with self._tx(tx) as t:
            return await t.executemany(
                f"licenses.mark_reminded_{which}",
                f"UPDATE user_licenses SET {column} = 1 WHERE user_id = ?",
                rows,
            )

    async def claim_reminders(
        self, which: str, now: datetime, until: datetime, tx: Tx | None = None
    ) -> list[LicenseRecord]:
        """Flag the `which` ("3d" or "1d") reminder of licences ending in (now, until] that
        have not had it yet; return them. Claimed and flagged in one statement."""
        sql = {"3d": _CLAIM_3D, "1d": _CLAIM_1D}[which]
        params = {"now": to_ms(now), "until": to_ms(until)}
        async with self._tx(tx) as t:
            rows = await t.fetchall(f"licenses.claim_{which}", sql, params)
        return [_record(row) for row in rows]

    async def expire_due(self, now: datetime, tx: Tx | None = None) -> list[int]:
        """Deactivate every licence past its end; return whose."""
        return [record.user_id for record in await self.deactivate_ended(now, tx)]

    async def deactivate_ended(self, now: datetime, tx: Tx | None = None) -> list[LicenseRecord]:
        """Deactivate every licence past its end; return them as they ended."""
        async with self._tx(tx) as t:
            rows = await t.fetchall("licenses.expire", _EXPIRE, {"now": to_ms(now)})
        return [_record(row) for row in rows]

    async def listing(
        self, ended: bool, now: datetime, until: datetime, limit: int, offset: int
    ) -> tuple[list[LicenseListing], int]:
        """A page of licences and the total: running ones ending in (now, until] soonest
        first, or ended ones (expired or revoked) latest first."""
        page = {"now": to_ms(now), "until": to_ms(until), "limit": limit, "offset": offset}
        if ended:
            rows = await self.store.fetchall("licenses.list_ended", _LIST_ENDED, page)
            total = await self.store.fetchval("licenses.count_ended", _COUNT_ENDED)
        else:
            rows = await self.store.fetchall("licenses.list_running", _LIST_RUNNING, page)
            span = {"now": page["now"], "until": page["until"]}
            total = await self.store.fetchval("licenses.count_running", _COUNT_RUNNING, span)
        return [_listing(row) for row in rows], int(total)

    async def count_active(self, now: datetime) -> int:
        value = await self.store.fetchval("licenses.count_active", _COUNT_ACTIVE, (to_ms(now),))
        return int(value)


def _listing(row: Row) -> LicenseListing:
    return LicenseListing(
        user_id=row["user_id"],
        username=row["username"],
        first_name=row["first_name"],
        plan=row["plan"],
        end_at=from_ms_req(row["end_at"]),
        active=bool(row["active"]),
        revoked=row["revoked_at"] is not None,
    )


def _record(row: Row) -> LicenseRecord:
    return LicenseRecord(
        user_id=row["user_id"],
        plan=row["plan"],
        start_at=from_ms_req(row["start_at"]),
        end_at=from_ms_req(row["end_at"]),
        active=bool(row["active"]),
        source=row["source"],
        reminded_3d=bool(row["reminded_3d"]),
        reminded_1d=bool(row["reminded_1d"]),
        revoked_at=from_ms(row["revoked_at"]),
        revoke_reason=row["revoke_reason"],
    )
