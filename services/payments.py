"""Buying licence days with Telegram Stars (currency XTR).

The invoice payload names the plan, its days, its price and the buyer. Before Telegram takes
the Stars, the pre-checkout check refuses a plan no longer sold, a changed price or days, a
different buyer, or another currency. After payment the licence is extended exactly once
per `telegram_payment_charge_id`: the payment row (unique on it) and the extension commit
together, so a redelivered update finds the row and extends nothing. A payment is written to
an inbox as soon as Telegram delivers it (before PTB confirms the update) and leaves it in the
crediting transaction; `recover` credits what a crash left there, at the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from core.clock import Clock
from core.errors import InvalidInput
from core.pause_points import pause
from db.repositories.licenses import LicenseRecord, LicenseRepository
from db.repositories.payments import PaymentEntry, PaymentRepository, ReceivedPayment
from services import notices
from services.audit import AuditService
from services.licenses import LicenseState, describe
from services.plans import Plan, PlanCatalog
from services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

CURRENCY = "XTR"
_PREFIX = "lic"


@dataclass(slots=True, frozen=True)
class Invoice:
    """What the handler sends as a Stars invoice."""

    plan: str
    title: str
    description: str
    payload: str
    currency: str
    amount: int


@dataclass(slots=True, frozen=True)
class PaymentOutcome:
    plan: str
    days: int
    amount: int
    credited: bool  # False: this charge was credited before (a redelivered update)
    license: LicenseState


@dataclass(slots=True, frozen=True)
class _Order:
    plan: str
    days: int
    amount: int
    user_id: int


class PaymentService:
    """Offers plans for Stars, checks checkouts, and credits successful payments once."""

    def __init__(
        self,
        payments: PaymentRepository,
        licenses: LicenseRepository,
        audit: AuditService,
        work: UnitOfWork,
        plans: PlanCatalog,
        clock: Clock,
    ) -> None:
        """A licence extended here runs `work`'s after-commit hooks (stale analytics)."""
        self._payments = payments
        self._licenses = licenses
        self._audit = audit
        self._plans = plans
        self._clock = clock
        self._work = work
        # What is in the inbox from before this start has no handler any more.
        self._started = clock.now()

    def offers(self) -> list[Plan]:
        """Plans for sale, in configured order."""
        return self._plans.for_sale()

    def invoice(self, user_id: int, plan_name: str) -> Invoice:
        """The invoice for one plan, bound to the buyer and the current price."""
        plan = self._plans.find(plan_name)
        if plan is None or plan.stars <= 0:
            raise InvalidInput("That plan is not for sale any more; send /buy to see the plans.")
        days = "1 day" if plan.days == 1 else f"{plan.days} days"
        return Invoice(
            plan=plan.name,
            title=f"Tradewind {plan.name} — {days}",
            description=f"{days} of the {plan.name} licence: open positions and auto-trade.",
            payload=f"{_PREFIX}:{plan.name}:{plan.days}:{plan.stars}:{user_id}",
            currency=CURRENCY,
            amount=plan.stars,
        )

    def check_checkout(self, user_id: int, payload: str, currency: str, amount: int) -> None:
        """Refuse a checkout that no longer matches what is offered (with the reason)."""
        order = _parse(payload)
        if order is None or order.user_id != user_id:
            raise InvalidInput("This invoice is not valid; send /buy for a new one.")
        if currency != CURRENCY:
            raise InvalidInput("Only Telegram Stars are accepted.")
        plan = self._plans.find(order.plan)
        if plan is None or plan.stars <= 0:
            raise InvalidInput("That plan is not for sale any more; send /buy to see the plans.")
        if (plan.stars, plan.days) != (order.amount, order.days) or amount != plan.stars:
            raise InvalidInput("The price has changed; send /buy for a new invoice.")

    async def complete(
        self,
        user_id: int,
        payload: str,
        currency: str,
        amount: int,
        telegram_charge_id: str,
        provider_charge_id: str | None = None,
        *,
        recovered: bool = False,
    ) -> PaymentOutcome:
        """Record the payment and extend the licence by what was paid for, once per charge.

        `recovered`: credited at a start after a crash; the trader is told through the outbox
        (nobody is waiting on a reply)."""
        order = _parse(payload)
        if order is None or not telegram_charge_id:
            raise InvalidInput("This payment does not match any invoice; contact an admin.")
        entry = PaymentEntry(
            user_id=user_id,
            plan=order.plan,
            days=order.days,
            currency=currency,
            amount=amount,
            telegram_charge_id=telegram_charge_id,
            provider_charge_id=provider_charge_id or None,
            payload=payload,
        )
        now = self._clock.now()
        record: LicenseRecord | None = None
        async with self._work.begin(durable=True) as work:
            await self._payments.taken(telegram_charge_id, work.tx)
            credited = await self._payments.record(entry, now, work.tx)
            if credited:
                record = await self._licenses.extend(
                    user_id, order.days, order.plan, "payment", now, tx=work.tx
                )
                details = {"plan": order.plan, "days": order.days, "amount": amount}
                target = f"charge:{telegram_charge_id}"
                await self._audit.record(user_id, "payment", target, details, tx=work.tx)
                work.changed()
                if recovered:
                    told = notices.payment_recovered(
                        user_id, order.plan, order.days, amount, telegram_charge_id
                    )
                    await work.notify([told])
                await pause("payment.credited")
        if not credited:  # a redelivered update: the licence as the first delivery left it
            record = await self._licenses.get(user_id)
        return PaymentOutcome(order.plan, order.days, amount, credited, describe(record, now))

    async def receive(self, payments: Sequence[ReceivedPayment]) -> None:
        """Write down payments Telegram just delivered, before anything else happens."""
        await self._payments.receive(payments, self._clock.now())

    async def recover(self) -> list[tuple[ReceivedPayment, PaymentOutcome]]:
        """Credit the payments delivered before a crash that never got credited."""
        done = []
        for paid in await self._payments.received(self._started):
            try:
                outcome = await self.complete(
                    paid.user_id,
                    paid.payload,
                    paid.currency,
                    paid.amount,
                    paid.telegram_charge_id,
                    paid.provider_charge_id,
                    recovered=True,
                )
            except InvalidInput as err:  # kept in the inbox for an admin to look at
                log.warning("payment %s not credited: %s", paid.telegram_charge_id, err)
                continue
            done.append((paid, outcome))
        return done


def _parse(payload: str) -> _Order | None:
    parts = payload.split(":")
    if (
        len(parts) != 5
        or parts[0] != _PREFIX
        # ASCII digits SQLite can hold: "²" passes isdigit() but not int()
        or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts[2:])
    ):
        return None
    return _Order(parts[1], int(parts[2]), int(parts[3]), int(parts[4]))
