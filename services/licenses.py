"""Licences: what a trader may do, how admins grant and revoke them, and how they run out.

A grant, a revoke and each expiry step write the licence, its audit row and the trader's
notice in one transaction, so a notice is never sent for a change that did not happen and
never sent twice (the outbox ignores a repeated dedup key).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import Clock
from core.errors import InvalidInput, NotFound
from db.repositories.licenses import LicenseListing, LicenseRecord, LicenseRepository
from db.repositories.users import UserRecord, UserRepository
from services import notices
from services.audit import AuditService
from services.plans import PlanCatalog
from services.unit_of_work import UnitOfWork, Work

MAX_DAYS = 3650
PAGE_SIZE = 20
EXPIRING_WITHIN = timedelta(days=3)
LISTS = ("active", "expiring", "expired")


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


@dataclass(slots=True, frozen=True)
class LicensePage:
    """One page of the admin's licence list."""

    kind: str
    entries: list[LicenseListing]
    total: int
    page: int
    pages: int


@dataclass(slots=True, frozen=True)
class ExpiryReport:
    reminded_3d: int
    reminded_1d: int
    deactivated: int

    @property
    def total(self) -> int:
        return self.reminded_3d + self.reminded_1d + self.deactivated

    def __str__(self) -> str:
        return (
            f"{self.reminded_3d} reminded 3 d ahead, {self.reminded_1d} reminded 1 d ahead, "
            f"{self.deactivated} deactivated"
        )


class LicenseService:
    """Reads licence state, grants and revokes (audited), and runs expiry and reminders."""

    def __init__(
        self,
        licenses: LicenseRepository,
        clock: Clock,
        *,
        users: UserRepository,
        audit: AuditService,
        work: UnitOfWork,
        plans: PlanCatalog,
    ) -> None:
        """A licence change (grant, revoke, expiry) runs `work`'s after-commit hooks."""
        self._licenses = licenses
        self._clock = clock
        self._users = users
        self._audit = audit
        self._work = work
        self.plans = plans

    async def state(self, user_id: int) -> LicenseState:
        """The caller's licence: status, plan, end and whole days left (rounded up)."""
        record = await self._licenses.get(user_id)
        return describe(record, self._clock.now())

    async def find_user(self, ref: str) -> UserRecord:
        """The user an admin means by `ref`: a numeric id or an @username."""
        ref = ref.strip()
        if ref.isascii() and ref.isdigit() and len(ref) <= 18:  # an int SQLite can hold
            user = await self._users.get(int(ref))
            if user is None:
                raise NotFound(f"No user with id {ref} has talked to the bot yet.")
            return user
        if not ref.startswith("@") or len(ref) < 2:
            raise InvalidInput(f"{ref!r} is not a user: give a numeric id or an @username.")
        found = await self._users.find_by_username(ref[1:])
        if not found:
            raise NotFound(f"No user {ref} has talked to the bot yet.")
        if len(found) > 1:
            raise InvalidInput(f"Several users are called {ref}; use the numeric id.")
        return found[0]

    async def grant(
        self, actor_id: int, user_id: int, days: int, plan: str = "pro", source: str = "grant"
    ) -> LicenseState:
        """Add `days` of `plan` from max(now, current end), audited, and tell the trader."""
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput(f"Days must be a whole number from 1 to {MAX_DAYS}.")
        chosen = self.plans.get(plan)
        user = await self._require_user(user_id)
        now = self._clock.now()
        async with self._work.begin(durable=True) as work:
            record = await self._licenses.extend(
                user_id, days, chosen.name, source, now, granted_by=actor_id, tx=work.tx
            )
            details = {"days": days, "plan": chosen.name, "source": source, "end": record.end_at}
            await self._audit.record(actor_id, "grant", f"user:{user_id}", details, tx=work.tx)
            await work.notify([notices.licence_granted(user, days, chosen.name, record.end_at)])
            work.changed()
        return describe(record, now)

    async def revoke(self, actor_id: int, user_id: int, reason: str = "") -> LicenseState:
        """End the trader's licence now, audited, and tell them what still works."""
        user = await self._require_user(user_id)
        now = self._clock.now()
        async with self._work.begin(durable=True) as work:
            if not await self._licenses.revoke(user_id, reason, now, work.tx):
                raise NotFound(f"User {user_id} has no active licence to revoke.")
            details = {"reason": reason} if reason else {}
            await self._audit.record(actor_id, "revoke", f"user:{user_id}", details, tx=work.tx)
            await work.notify([notices.licence_revoked(user, reason, now)])
            work.changed()
        return await self.state(user_id)

    async def listing(self, kind: str, page: int = 0) -> LicensePage:
        """A page of active, expiring (within 3 days) or expired/revoked licences."""
        if kind not in LISTS:
            raise InvalidInput(f"Choose one of: {', '.join(LISTS)}.")
        now = self._clock.now()
        until = now + (EXPIRING_WITHIN if kind == "expiring" else timedelta(days=100 * 365))
        page = max(0, page)
        entries, total = await self._licenses.listing(
            kind == "expired", now, until, PAGE_SIZE, page * PAGE_SIZE
        )
        return LicensePage(kind, entries, total, page, max(1, math.ceil(total / PAGE_SIZE)))

    async def run_expiry(self) -> ExpiryReport:
        """Queue the 1-day and 3-day reminders (each once) and deactivate ended licences."""
        now = self._clock.now()
        async with self._work.begin(durable=True) as work:
            tx = work.tx
            one = await self._licenses.claim_reminders("1d", now, now + timedelta(days=1), tx)
            three = await self._licenses.claim_reminders("3d", now, now + EXPIRING_WITHIN, tx)
            ended = await self._licenses.deactivate_ended(now, tx)
            await self._notify(work, now, [("1d", r) for r in one] + [("3d", r) for r in three])
            await self._notify(work, now, [("expired", r) for r in ended])
            if ended:
                work.changed()
        return ExpiryReport(len(three), len(one), len(ended))

    async def _notify(
        self, work: Work, now: datetime, events: list[tuple[str, LicenseRecord]]
    ) -> None:
        if not events:
            return
        users = await self._users.get_many([record.user_id for _, record in events])
        await work.notify(
            [
                notices.licence_expiry(which, users[r.user_id], r, now)
                for which, r in events
                if r.user_id in users
            ]
        )

    async def _require_user(self, user_id: int) -> UserRecord:
        user = await self._users.get(user_id)
        if user is None:
            raise NotFound(f"No user with id {user_id} has talked to the bot yet.")
        return user


def describe(record: LicenseRecord | None, now: datetime) -> LicenseState:
    """Turn a stored licence into what the trader is told."""
    if record is None:
        return LicenseState(LicenseStatus.NONE)
    if record.is_valid(now):
        days = math.ceil((record.end_at - now).total_seconds() / 86_400)
        return LicenseState(LicenseStatus.ACTIVE, record.plan, record.end_at, days)
    status = LicenseStatus.REVOKED if record.revoked_at is not None else LicenseStatus.EXPIRED
    return LicenseState(status, record.plan, record.end_at, 0)
