"""Licences as a trader sees them: active or not, which plan, how many days left."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

from core.clock import Clock
from db.repositories.licenses import LicenseRecord, LicenseRepository


class LicenseStatus(enum.StrEnum):
    NONE = "none"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(slots=True, frozen=True)
class LicenseState:
    status: LicenseStatus
    plan: str | None = None
    end_at: datetime | None = None
    days_left: int = 0

    @property
    def can_open_positions(self) -> bool:
        return self.status is LicenseStatus.ACTIVE


class LicenseService:
    """Reads licence state; granting and expiry build on the same repository."""

    def __init__(self, licenses: LicenseRepository, clock: Clock) -> None:
        self._licenses = licenses
        self._clock = clock

    async def state(self, user_id: int) -> LicenseState:
        """The caller's licence: status, plan, end and whole days left (rounded up)."""
        record = await self._licenses.get(user_id)
        return describe(record, self._clock.now())


def describe(record: LicenseRecord | None, now: datetime) -> LicenseState:
    """Turn a stored licence into what the trader is told."""
    if record is None:
        return LicenseState(LicenseStatus.NONE)
    if record.is_valid(now):
        days = math.ceil((record.end_at - now).total_seconds() / 86_400)
        return LicenseState(LicenseStatus.ACTIVE, record.plan, record.end_at, days)
    status = LicenseStatus.REVOKED if record.revoked_at is not None else LicenseStatus.EXPIRED
    return LicenseState(status, record.plan, record.end_at, 0)
