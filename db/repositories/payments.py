"""Payments in Telegram Stars: one row per Telegram charge, so a redelivery records nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class PaymentEntry:
    user_id: int
    plan: str
    days: int
    currency: str
    amount: int
    telegram_charge_id: str
    provider_charge_id: str | None
    payload: str


@dataclass(slots=True, frozen=True)
class PaymentRecord:
    payment_id: int
    user_id: int
    plan: str
    days: int
    currency: str
    amount: int
    telegram_charge_id: str
    created_at: datetime


@dataclass(slots=True, frozen=True)
class ReceivedPayment:
    """A successful payment as Telegram delivered it, not credited yet."""

    user_id: int
    currency: str
    amount: int
    payload: str
    telegram_charge_id: str
    provider_charge_id: str | None


_COLUMNS = "id, user_id, plan, days, currency, amount, telegram_payment_charge_id, created_at"
_INSERT = """
INSERT INTO payments (user_id, plan, days, currency, amount, telegram_payment_charge_id,
                      provider_payment_charge_id, payload, created_at)
VALUES (:user_id, :plan, :days, :currency, :amount, :charge, :provider, :payload, :now)
ON CONFLICT (telegram_payment_charge_id) DO NOTHING
"""
_BY_CHARGE = f"SELECT {_COLUMNS} FROM payments WHERE telegram_payment_charge_id = ?"
_FOR_USER = f"SELECT {_COLUMNS} FROM payments WHERE user_id = ? ORDER BY id DESC LIMIT ?"

_RECEIVE = """
INSERT INTO payment_inbox (telegram_payment_charge_id, user_id, currency, amount, payload,
                           provider_payment_charge_id, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (telegram_payment_charge_id) DO NOTHING
"""
_RECEIVED = (
    "SELECT telegram_payment_charge_id, user_id, currency, amount, payload, "
    "provider_payment_charge_id FROM payment_inbox WHERE received_at < ? ORDER BY received_at"
)
_TAKEN = "DELETE FROM payment_inbox WHERE telegram_payment_charge_id = ?"

HOT_QUERIES = (
    HotQuery("payments.by_charge", _BY_CHARGE, ("stx1",)),
    HotQuery("payments.for_user", _FOR_USER, (1, 20)),
)


class PaymentRepository(Repository):
    """SQL for payments."""

    async def record(self, entry: PaymentEntry, now: datetime, tx: Tx | None = None) -> bool:
        """Store a payment; False if this Telegram charge was recorded before."""
        params = {
            "user_id": entry.user_id,
            "plan": entry.plan,
            "days": entry.days,
            "currency": entry.currency,
            "amount": entry.amount,
            "charge": entry.telegram_charge_id,
            "provider": entry.provider_charge_id,
            "payload": entry.payload,
            "now": to_ms(now),
        }
        async with self._tx(tx, durable=True) as t:
            return await t.execute("payments.record", _INSERT, params) == 1

    async def receive(self, payments: Sequence[ReceivedPayment], now: datetime) -> None:
        """Write down payments Telegram delivered (a redelivered one is kept once)."""
        rows = [
            (p.telegram_charge_id, p.user_id, p.currency, p.amount, p.payload,
             p.provider_charge_id, to_ms(now))
            for p in payments
        ]  # fmt: skip
        async with self.store.transaction(durable=True) as tx:
            await tx.executemany("payments.receive", _RECEIVE, rows)

    async def received(self, before: datetime) -> list[ReceivedPayment]:
        """Payments delivered before `before` but not credited: a crash came in between."""
        rows = await self.store.fetchall("payments.received", _RECEIVED, (to_ms(before),))
        return [
            ReceivedPayment(
                user_id=row["user_id"],
                currency=row["currency"],
                amount=row["amount"],
                payload=row["payload"],
                telegram_charge_id=row["telegram_payment_charge_id"],
                provider_charge_id=row["provider_payment_charge_id"],
            )
            for row in rows
        ]

    async def taken(self, telegram_charge_id: str, tx: Tx) -> None:
        """The delivered payment was handled (credited, or found credited before)."""
        await tx.execute("payments.taken", _TAKEN, (telegram_charge_id,))

    async def by_charge(self, telegram_charge_id: str) -> PaymentRecord | None:
        row = await self.store.fetchone("payments.by_charge", _BY_CHARGE, (telegram_charge_id,))
        return None if row is None else _record(row)

    async def for_user(self, user_id: int, limit: int = 20) -> list[PaymentRecord]:
        rows = await self.store.fetchall("payments.for_user", _FOR_USER, (user_id, limit))
        return [_record(row) for row in rows]


def _record(row: Row) -> PaymentRecord:
    return PaymentRecord(
        payment_id=row["id"],
        user_id=row["user_id"],
        plan=row["plan"],
        days=row["days"],
        currency=row["currency"],
        amount=row["amount"],
        telegram_charge_id=row["telegram_payment_charge_id"],
        created_at=from_ms_req(row["created_at"]),
    )
