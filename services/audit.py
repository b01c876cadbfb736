"""Audit: every admin action and every refusal, with who, what, whom and when."""

from __future__ import annotations

from collections.abc import Mapping

from core.clock import Clock
from db.repositories.audit import AuditEntry, AuditRecord, AuditRepository
from db.store import Tx


class AuditService:
    """Writes audit rows stamped with the service clock."""

    def __init__(self, audit: AuditRepository, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

    async def record(
        self,
        actor_id: int | None,
        action: str,
        target: str | None = None,
        details: Mapping[str, object] | None = None,
        ok: bool = True,
        tx: Tx | None = None,
    ) -> None:
        """Write one row, in the caller's transaction when given (audited with the change)."""
        entry = AuditEntry(action, actor_id, target, dict(details or {}), ok)
        await self._audit.record(entry, self._clock.now(), tx)

    async def refused(self, actor_id: int | None, what: str) -> None:
        """A non-admin tried an admin command or button."""
        await self.record(actor_id, "refused", what, ok=False)

    async def recent(self, limit: int = 20) -> list[AuditRecord]:
        return await self._audit.recent(limit)
