"""Licences: what a trader may do, how admins grant and revoke them, and how they run out.

A grant, a revoke and each expiry step write the licence, its audit row and the trader's
notice in one transaction, so a notice is never sent for a change that did not happen and
never sent twice (the outbox ignores a repeated dedup key).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from core.clock import Clock
from core.errors import InvalidInput, NotFound
from db.repositories.licenses import LicenseListing, LicenseRecord, LicenseRepository
from db.repositories.users import UserRecord, UserRepository
from db.store import Tx
from services.audit import AuditService
from services.outbox import Notice, NoticeKind, Outbox
from services.plans import PlanCatalog

MAX_DAYS = 3650
PAGE_SIZE = 20
EXPIRING_WITHIN = timedelta(days=3)
LISTS = ("active", "expiring", "expired")
WHAT_STILL_WORKS = (
    "You can no longer open new positions and auto-trading is paused. Closing positions, "
    "cancelling orders, managing TP/SL and viewing everything keep working."
)
RENEW = "Renew with /buy or /redeem a promo code."


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
        outbox: Outbox,
        plans: PlanCatalog,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """`on_change` runs after a licence changed (grant, revoke, expiry): stale caches."""
        self._licenses = licenses
        self._clock = clock
        self._users = users
        self._audit = audit
        self._outbox = outbox
        self.plans = plans
        self._on_change = on_change or (lambda: None)

    async def state(self, user_id: int) -> LicenseState:
        """The caller's licence: status, plan, end and whole days left (rounded up)."""
        record = await self._licenses.get(user_id)
        return describe(record, self._clock.now())

    async def find_user(self, ref: str) -> UserRecord:
        """The user an admin means by `ref`: a numeric id or an @username."""
        ref = ref.strip()
        if ref.isdigit():
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
        async with self._licenses.store.transaction(durable=True) as tx:
            record = await self._licenses.extend(
                user_id, days, chosen.name, source, now, granted_by=actor_id, tx=tx
            )
            details = {"days": days, "plan": chosen.name, "source": source, "end": record.end_at}
            await self._audit.record(actor_id, "grant", f"user:{user_id}", details, tx=tx)
            text = (
                f"🎉 You were granted {_days(days)} of <b>{escape(chosen.name)}</b>. "
                f"Your licence is active until {_when(record.end_at)}."
            )
            key = f"licence:grant:{user_id}:{_ms(record.end_at)}"
            await self._outbox.enqueue([_notice(user, text, key)], tx)
        self._outbox.wake()
        self._on_change()
        return describe(record, now)

    async def revoke(self, actor_id: int, user_id: int, reason: str = "") -> LicenseState:
        """End the trader's licence now, audited, and tell them what still works."""
        user = await self._require_user(user_id)
        now = self._clock.now()
        async with self._licenses.store.transaction(durable=True) as tx:
            if not await self._licenses.revoke(user_id, reason, now, tx):
                raise NotFound(f"User {user_id} has no active licence to revoke.")
            details = {"reason": reason} if reason else {}
            await self._audit.record(actor_id, "revoke", f"user:{user_id}", details, tx=tx)
            why = f" ({escape(reason)})" if reason else ""
            text = f"Your licence was revoked by an admin{why}. {WHAT_STILL_WORKS} {RENEW}"
            key = f"licence:revoked:{user_id}:{_ms(now)}"
            await self._outbox.enqueue([_notice(user, text, key)], tx)
        self._outbox.wake()
        self._on_change()
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
        async with self._licenses.store.transaction(durable=True) as tx:
            one = await self._licenses.claim_reminders("1d", now, now + timedelta(days=1), tx)
            three = await self._licenses.claim_reminders("3d", now, now + EXPIRING_WITHIN, tx)
            ended = await self._licenses.deactivate_ended(now, tx)
            await self._notify(tx, now, [("1d", r) for r in one] + [("3d", r) for r in three])
            await self._notify(tx, now, [("expired", r) for r in ended])
        if one or three or ended:
            self._outbox.wake()
        if ended:
            self._on_change()
        return ExpiryReport(len(three), len(one), len(ended))

    async def _notify(self, tx: Tx, now: datetime, events: list[tuple[str, LicenseRecord]]) -> None:
        if not events:
            return
        users = await self._users.get_many([record.user_id for _, record in events])
        notices = [
            _notice(users[r.user_id], _expiry_text(which, r, now), _expiry_key(which, r))
            for which, r in events
            if r.user_id in users
        ]
        await self._outbox.enqueue(notices, tx)

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


def _expiry_text(which: str, record: LicenseRecord, now: datetime) -> str:
    plan = f"<b>{escape(record.plan)}</b>"
    if which == "expired":
        return f"⌛ Your {plan} licence has ended. {WHAT_STILL_WORKS} {RENEW}"
    left = record.end_at - now
    if left < timedelta(days=1):
        hours = max(1, math.floor(left.total_seconds() / 3600))
        span = "1 hour" if hours == 1 else f"{hours} hours"
    else:
        span = _days(math.ceil(left.total_seconds() / 86_400))
    return (
        f"⏳ Your {plan} licence ends {_when(record.end_at)} (in {span}). After that you can't "
        f"open new positions and auto-trading pauses; closing, cancelling, TP/SL and viewing "
        f"keep working. {RENEW}"
    )


def _expiry_key(which: str, record: LicenseRecord) -> str:
    return f"licence:{which}:{record.user_id}:{_ms(record.end_at)}"


def _notice(user: UserRecord, text: str, dedup_key: str) -> Notice:
    return Notice(user.user_id, user.chat_id, NoticeKind.SYSTEM, text, dedup_key)


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
