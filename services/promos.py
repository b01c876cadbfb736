"""Promo codes: admins create and disable them, traders redeem them for licence days.

A redemption is one transaction: a conditional UPDATE takes a use (active, unexpired, not
used up), a unique (code, user) row records who redeemed, and the licence is extended.
Whatever fails rolls all three back; only afterwards is the reason worked out for the reply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import Clock
from core.errors import DomainError, InvalidInput, NotFound
from core.pause_points import pause
from db.repositories.licenses import LicenseRepository
from db.repositories.promos import PromoRecord, PromoRepository
from services.audit import AuditService
from services.licenses import LicenseState, describe
from services.plans import PlanCatalog
from services.unit_of_work import UnitOfWork

__all__ = [
    "PromoAlreadyRedeemed",
    "PromoDisabled",
    "PromoExpired",
    "PromoPage",
    "PromoRecord",  # handlers render it
    "PromoRefused",
    "PromoService",
    "PromoUnknown",
    "PromoUsedUp",
    "Redemption",
]

CODE_RE = re.compile(r"^[A-Za-z0-9_-]{3,32}$")
MAX_DAYS = 3650
MAX_USES = 1_000_000
MAX_VALID_DAYS = 3650
PAGE_SIZE = 20


class PromoRefused(DomainError):
    """A code that cannot be redeemed; the subclass says why."""


class PromoUnknown(PromoRefused):
    def __init__(self, code: str) -> None:
        super().__init__(f"There is no promo code {code}. Check the spelling and try again.")


class PromoExpired(PromoRefused):
    def __init__(self, code: str) -> None:
        super().__init__(f"The promo code {code} has expired.")


class PromoDisabled(PromoRefused):
    def __init__(self, code: str) -> None:
        super().__init__(f"The promo code {code} has been disabled.")


class PromoUsedUp(PromoRefused):
    def __init__(self, code: str) -> None:
        super().__init__(f"The promo code {code} has been used up.")


class PromoAlreadyRedeemed(PromoRefused):
    def __init__(self, code: str) -> None:
        super().__init__(f"You have already redeemed the promo code {code}.")


@dataclass(slots=True, frozen=True)
class Redemption:
    code: str
    plan: str
    days: int
    license: LicenseState


@dataclass(slots=True, frozen=True)
class PromoPage:
    codes: list[PromoRecord]
    total: int
    page: int
    pages: int


class PromoService:
    """Creates, lists, disables and redeems promo codes."""

    def __init__(
        self,
        promos: PromoRepository,
        licenses: LicenseRepository,
        audit: AuditService,
        work: UnitOfWork,
        plans: PlanCatalog,
        clock: Clock,
    ) -> None:
        """A licence extended here runs `work`'s after-commit hooks (stale analytics)."""
        self._promos = promos
        self._licenses = licenses
        self._audit = audit
        self._plans = plans
        self._clock = clock
        self._work = work

    async def create(
        self,
        actor_id: int,
        code: str,
        days: int,
        max_uses: int,
        valid_days: int | None = None,
        plan: str | None = None,
    ) -> PromoRecord:
        """A new code worth `days` of `plan`, for `max_uses` traders, valid `valid_days`."""
        if not CODE_RE.match(code):
            raise InvalidInput("A code is 3 to 32 letters, digits, _ or -.")
        _check_range("Days", days, MAX_DAYS)
        _check_range("Max uses", max_uses, MAX_USES)
        if valid_days is not None:
            _check_range("Valid days", valid_days, MAX_VALID_DAYS)
        chosen = self._plans.get(plan or self._plans.default)
        now = self._clock.now()
        until = None if valid_days is None else now + timedelta(days=valid_days)
        code = code.upper()
        async with self._promos.store.transaction() as tx:
            created = await self._promos.create(
                code, chosen.name, days, max_uses, until, actor_id, now, tx
            )
            if not created:
                raise InvalidInput(f"The promo code {code} already exists.")
            details = {"days": days, "max_uses": max_uses, "plan": chosen.name, "until": until}
            await self._audit.record(actor_id, "promo_create", f"promo:{code}", details, tx=tx)
        record = await self._promos.get(code)
        assert record is not None
        return record

    async def disable(self, actor_id: int, code: str) -> PromoRecord:
        """Stop a code from being redeemed (uses so far stay counted)."""
        async with self._promos.store.transaction() as tx:
            if not await self._promos.disable(code, tx):
                known = await self._promos.get(code)
                if known is None:
                    raise NotFound(f"There is no promo code {code.upper()}.")
                raise InvalidInput(f"The promo code {known.code} is already disabled.")
            await self._audit.record(actor_id, "promo_disable", f"promo:{code.upper()}", tx=tx)
        record = await self._promos.get(code)
        assert record is not None
        return record

    async def page(self, page: int = 0) -> PromoPage:
        page = max(0, page)
        codes, total = await self._promos.page(PAGE_SIZE, page * PAGE_SIZE)
        return PromoPage(codes, total, page, max(1, math.ceil(total / PAGE_SIZE)))

    async def redeem(self, user_id: int, code: str) -> Redemption:
        """Grant the code's days to `user_id` atomically, or say exactly why not."""
        code = code.strip()
        if not CODE_RE.match(code):
            raise PromoUnknown(code.upper()[:32])
        now = self._clock.now()
        try:
            async with self._work.begin(durable=True) as work:
                promo = await self._promos.take_use(code, now, work.tx)
                if promo is None:
                    raise PromoRefused  # diagnosed below, after the rollback
                if not await self._promos.add_redemption(promo.code, user_id, now, work.tx):
                    raise PromoAlreadyRedeemed(promo.code)  # rolls the use back
                record = await self._licenses.extend(
                    user_id, promo.days, promo.plan, "promo", now, tx=work.tx
                )
                work.changed()
                await pause("promo.redeemed")
        except PromoRefused as refused:
            if type(refused) is PromoRefused:
                raise await self._why_not(code, user_id, now) from None
            raise
        return Redemption(promo.code, promo.plan, promo.days, describe(record, now))

    async def _why_not(self, code: str, user_id: int, now: datetime) -> PromoRefused:
        promo = await self._promos.get(code)
        if promo is None:
            return PromoUnknown(code.upper())
        if await self._promos.redeemed_by(promo.code, user_id):
            return PromoAlreadyRedeemed(promo.code)
        if not promo.active:
            return PromoDisabled(promo.code)
        if promo.expired(now):
            return PromoExpired(promo.code)
        return PromoUsedUp(promo.code)


def _check_range(what: str, value: int, high: int) -> None:
    if not 1 <= value <= high:
        raise InvalidInput(f"{what} must be a whole number from 1 to {high:,}.")
