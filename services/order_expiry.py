"""Limit order expiry: resting orders older than their owner's setting are cancelled.

Position sync tracks the limit orders Tradewind placed, each due at its creation plus the
owner's `limit_order_ttl_min`; this job cancels the due ones on the exchange, concurrently
under each venue's shared budget. An order the exchange no longer has (filled or cancelled
meanwhile) is closed without a cancel; one the exchange cannot be reached for stays due and
is tried again on the next run. An order that filled in part before its time keeps that
part (the position sync and fill ledger record it like any fill); the rest is cancelled and
the notice says how much filled. Outcomes, intents and notices commit in one transaction.

An entry that expires with a part filled is a position like any other: once the
transaction has committed, `when_part_filled` is told its client order id, and the
executor places its take-profit ladder and trail sized from the filled part. The expiry
commits once per order, so this happens once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from core.clock import Clock
from core.exchange.errors import ExchangeError, OrderNotFound
from core.exchange.models import ZERO, Order
from core.lifecycle import IntentStatus, LimitStatus
from db.repositories.intents import IntentRepository, IntentUpdate
from db.repositories.pending_orders import PendingOrder, PendingOrderRepository
from db.repositories.users import UserRepository
from services import notices
from services.exchanges import ExchangeGateway
from services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class OrderReader(Protocol):
    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order: ...


@dataclass(slots=True, frozen=True)
class _Outcome:
    status: LimitStatus
    order: Order | None = None  # as it ended, for an order Tradewind cancelled


def _filled(order: Order | None) -> tuple[Decimal, Decimal | None]:
    """How much of the order filled before its cancel, and at what average price."""
    if order is None or order.filled_qty <= 0:
        return ZERO, None
    return order.filled_qty, order.avg_price


@dataclass(slots=True, frozen=True)
class ExpiryReport:
    due: int
    cancelled: int
    gone: int  # filled or cancelled before their time
    failed: int  # exchange unreachable: tried again next run

    def __str__(self) -> str:
        return (
            f"{self.due} limit orders due: {self.cancelled} cancelled, {self.gone} already "
            f"gone, {self.failed} to retry"
        )


class OrderExpiry:
    """Cancels limit orders that outlived their owner's time-to-live."""

    def __init__(
        self,
        *,
        work: UnitOfWork,
        pending: PendingOrderRepository,
        intents: IntentRepository,
        users: UserRepository,
        gateway: ExchangeGateway,
        clock: Clock,
        batch: int = 500,
        concurrency: int = 50,
        when_part_filled: Callable[[Sequence[str]], Awaitable[object]] | None = None,
    ) -> None:
        self._work = work
        self._pending = pending
        self._intents = intents
        self._users = users
        self._gateway = gateway
        self._clock = clock
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._when_part_filled = when_part_filled

    async def expire_once(self) -> ExpiryReport:
        due = await self._pending.due(self._clock.now(), self._batch)
        if not due:
            return ExpiryReport(0, 0, 0, 0)
        outcomes = await asyncio.gather(*(self._cancel(order) for order in due))
        done = [(o, outcome) for o, outcome in zip(due, outcomes, strict=True) if outcome]
        await self._commit(done)
        cancelled = sum(1 for _, outcome in done if outcome.status == LimitStatus.EXPIRED)
        return ExpiryReport(len(due), cancelled, len(done) - cancelled, len(due) - len(done))

    async def _cancel(self, order: PendingOrder) -> _Outcome | None:
        """Expired once cancelled, closed if the exchange no longer has it, None to retry."""
        account = self._gateway.account(order.user_id, order.exchange, order.account_type)
        try:
            async with self._slots:
                cancelled = await account.cancel_order(order.symbol, order.exchange_order_id)
                final = await self._final(account, order, cancelled)
        except OrderNotFound:
            return _Outcome(LimitStatus.CLOSED)
        except ExchangeError as error:
            log.warning(
                "expiry of %s for user %s failed: %s",
                order.client_order_id,
                order.user_id,
                error.message,
            )
            return None
        return _Outcome(LimitStatus.EXPIRED, final)

    async def _final(self, account: OrderReader, order: PendingOrder, cancelled: Order) -> Order:
        """The order as it ended, with what filled before the cancel: venues answer a
        cancel with little more than the id, so it is read back once."""
        try:
            return await account.fetch_order(order.symbol, order_id=order.exchange_order_id)
        except ExchangeError as error:  # cancelled all the same; what filled is learnt later
            log.info("expired %s not read back: %s", order.client_order_id, error.message)
            return cancelled

    async def _commit(self, done: Sequence[tuple[PendingOrder, _Outcome]]) -> None:
        if not done:
            return
        expired = [(o, out.order) for o, out in done if out.status == LimitStatus.EXPIRED]
        users = await self._users.get_many(sorted({o.user_id for o, _ in expired}))
        told = [
            notices.order_expired(o, users[o.user_id].chat_id, *_filled(final))
            for o, final in expired
            if o.user_id in users
        ]
        now = self._clock.now()
        error = "expired: older than limit_order_ttl_min"
        change = IntentUpdate(IntentStatus.CANCELLED, error=error)
        untouched = [o.client_order_id for o, final in expired if not _filled(final)[0]]
        kept = [o.client_order_id for o, final in expired if _filled(final)[0]]
        async with self._work.begin() as work:
            tx = work.tx
            await self._pending.finish_many([(o.order_row_id, out.status) for o, out in done], tx)
            await self._intents.update_many(untouched, change, now, tx)
            for o, final in expired:
                if final is not None and final.filled_qty > 0:  # the intent keeps that part
                    part = replace(IntentUpdate.of_order(final), status=IntentStatus.CANCELLED)
                    await self._intents.update(
                        o.client_order_id, replace(part, error=error), now, tx
                    )
            await work.notify(told)
        await self._part_filled(kept)

    async def _part_filled(self, client_order_ids: Sequence[str]) -> None:
        if not client_order_ids or self._when_part_filled is None:
            return
        try:
            await self._when_part_filled(client_order_ids)
        except Exception:  # the expiry stands whatever follows it
            log.exception("after the expiry of %s", client_order_ids)
