"""The audit log: who did what to whom, and whether it was allowed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class AuditEntry:
    action: str
    actor_id: int | None
    target: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    ok: bool = True


@dataclass(slots=True, frozen=True)
class AuditRecord:
    audit_id: int
    at: datetime
    actor_id: int | None
    action: str
    target: str | None
    details: dict[str, object]
    ok: bool


_INSERT = (
    "INSERT INTO audit_log (at, actor_id, action, target, details, ok) VALUES (?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "id, at, actor_id, action, target, details, ok"
_RECENT = f"SELECT {_COLUMNS} FROM audit_log ORDER BY at DESC LIMIT ?"
_BY_ACTOR = f"SELECT {_COLUMNS} FROM audit_log WHERE actor_id = ? ORDER BY at DESC LIMIT ?"
_BY_ACTION = f"SELECT {_COLUMNS} FROM audit_log WHERE action = ? ORDER BY at DESC LIMIT ?"

HOT_QUERIES = (
    HotQuery("audit.recent", _RECENT, (20,)),
    HotQuery("audit.by_actor", _BY_ACTOR, (1, 20)),
    HotQuery("audit.by_action", _BY_ACTION, ("grant", 20)),
)


class AuditRepository(Repository):
    """SQL for audit_log."""

    async def record(self, entry: AuditEntry, now: datetime, tx: Tx | None = None) -> None:
        async with self._tx(tx) as t:
            await t.execute("audit.record", _INSERT, _params(entry, now))

    async def record_many(
        self, entries: Sequence[AuditEntry], now: datetime, tx: Tx | None = None
    ) -> int:
        """Write many entries in one statement (a job auditing a batch)."""
        async with self._tx(tx) as t:
            return await t.executemany(
                "audit.record_many", _INSERT, [_params(e, now) for e in entries]
            )

    async def recent(self, limit: int = 20) -> list[AuditRecord]:
        rows = await self.store.fetchall("audit.recent", _RECENT, (limit,))
        return [_record(row) for row in rows]

    async def by_actor(self, actor_id: int, limit: int = 20) -> list[AuditRecord]:
        rows = await self.store.fetchall("audit.by_actor", _BY_ACTOR, (actor_id, limit))
        return [_record(row) for row in rows]

    async def by_action(self, action: str, limit: int = 20) -> list[AuditRecord]:
        rows = await self.store.fetchall("audit.by_action", _BY_ACTION, (action, limit))
        return [_record(row) for row in rows]


def _params(entry: AuditEntry, now: datetime) -> tuple[object, ...]:
    details = json.dumps(dict(entry.details), default=str, sort_keys=True)
    return (to_ms(now), entry.actor_id, entry.action, entry.target, details, int(entry.ok))


def _record(row: Row) -> AuditRecord:
    return AuditRecord(
        audit_id=row["id"],
        at=from_ms_req(row["at"]),
        actor_id=row["actor_id"],
        action=row["action"],
        target=row["target"],
        details=json.loads(row["details"]),
        ok=bool(row["ok"]),
    )
