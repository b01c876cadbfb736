"""Placing orders so that nothing is ever placed twice.

1. The intent, with its deterministic client order id, is in `order_intents` before anything
   is sent; it is marked `sent` (committed) just before the request leaves.
2. The request is sent once. A clear answer settles the intent.
3. No answer (timeout, dropped connection, 5xx, garbled body) or a duplicate-id refusal makes
   the outcome unknown: the order is looked up by its client id. Found → settled. Only a
   confirmed absence allows sending again, with the same id, a bounded number of times.
4. If even the lookup fails, the intent stays `unknown` and `settle_unresolved` (run at
   start-up for everything an earlier run left, then by a job for what is 30 s old) finishes
   the work later; the trader is told the order is being checked, and then how it ended.

Concurrent calls for the same client order id (a double tap, a redelivered update) are
serialised, and an intent already settled is answered from the record without sending.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Protocol

from core.clock import Clock
from core.exchange.errors import (
    ExchangeError,
    OrderNotFound,
    TemporaryError,
    UnknownOutcome,
)
from core.exchange.models import Order, OrderRequest, OrderStatus, OrderType, Side
from core.lifecycle import FINAL, UNRESOLVED, IntentStatus
from core.pause_points import pause
from db.repositories.intents import IntentRecord, IntentRepository, IntentUpdate, NewIntent

log = logging.getLogger(__name__)

# An opening order the fill ledger may still complete: resting, or placed with its answer lost.
_AWAITING_FILLS = (UNRESOLVED - {IntentStatus.PENDING}) | {IntentStatus.OPEN}


class OrderPlacer(Protocol):
    """What placing needs of an account: send an order, look one up by its client id."""

    async def create_order(self, request: OrderRequest) -> Order: ...

    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order: ...


ClientLease = Callable[[IntentRecord], AbstractAsyncContextManager[OrderPlacer]]


@dataclass(slots=True, frozen=True)
class FilledSoFar:
    """What the fill ledger knows one of our orders has filled so far (all its executions)."""

    client_order_id: str
    order_id: str
    qty: Decimal
    avg_price: Decimal  # volume-weighted
    fee: Decimal


@dataclass(slots=True, frozen=True)
class Execution:
    """What happened to one intent."""

    intent: IntentRecord
    order: Order | None
    already_done: bool = False  # settled earlier; nothing was sent this time


class OrderExecutor:
    """Sends recorded intents to exchanges exactly once."""

    def __init__(self, intents: IntentRepository, clock: Clock, max_attempts: int = 3) -> None:
        self._intents = intents
        self._clock = clock
        self._max_attempts = max_attempts
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Whatever was left unresolved before this start has no sender any more: no age floor.
        self._started = clock.now()
        self._on_opened: list[Callable[[IntentRecord], Awaitable[object]]] = []

    def when_opening_fills(self, listener: Callable[[IntentRecord], Awaitable[object]]) -> None:
        """Call `listener` with each opening order this executor sees fill (take-profit
        ladders); its failure is logged, never the placement's."""
        self._on_opened.append(listener)

    async def settle_fills(self, orders: Sequence[FilledSoFar]) -> list[IntentRecord]:
        """Settle opening orders from their recorded executions; return those now filled.

        A resting limit fills long after `place` returned, seen only by the fill ledger.
        Once its executions add up to its size the intent is FILLED and the opening
        listeners run, once: an intent already settled as filled (by `place`, or by an
        earlier record of the same executions) is left alone. Short of its size, the
        intent keeps resting with what filled so far.
        """
        filled: list[IntentRecord] = []
        for order in orders:  # an order not placed by Tradewind has no intent
            async with self._lock(order.client_order_id):
                intent = await self._intents.get(order.client_order_id)
                if intent is None or intent.reduce_only or intent.status not in _AWAITING_FILLS:
                    continue
                complete = order.qty >= intent.qty
                status = IntentStatus.FILLED if complete else IntentStatus.OPEN
                change = IntentUpdate(
                    status, order.order_id, order.qty, order.avg_price, order.fee
                )  # fmt: skip
                await self._update(intent, change)
                if complete:
                    settled = await self._require(order.client_order_id)
                    await self._tell_opened(settled)
                    filled.append(settled)
        return filled

    async def settle_cancelled(self, client_order_ids: Sequence[str]) -> list[IntentRecord]:
        """Run the opening listeners for entries cancelled with a part filled (at expiry, or
        by the trader's /cancel): that part is a position like any other and gets its ladder
        and trail, sized from it.

        Called once per cancel, after it committed; the intents say what filled.
        """
        opened: list[IntentRecord] = []
        for cid in client_order_ids:
            async with self._lock(cid):
                intent = await self._intents.get(cid)
                if intent is None or intent.reduce_only or not intent.filled_qty:
                    continue
                if intent.status != IntentStatus.CANCELLED:  # resting still, or filled whole
                    continue
                await self._tell_opened(intent)
                opened.append(intent)
        return opened

    async def record(self, intent: NewIntent) -> bool:
        """Write the intent down; False if it already exists (same client order id)."""
        return await self._intents.create(intent, self._clock.now())

    def _lock(self, client_order_id: str) -> asyncio.Lock:
        lock = self._locks.get(client_order_id)
        if lock is None:
            lock = self._locks[client_order_id] = asyncio.Lock()
        return lock

    async def place(
        self, client: OrderPlacer, client_order_id: str, *, await_fill: bool = False
    ) -> Execution:
        """Send the recorded intent unless it is settled; resolve any unknown outcome.

        `await_fill`: an order the venue reports as just accepted is looked up once, so the
        intent settles with its fill (a trader waiting on a card wants the price), or, for a
        limit, as resting, filled at once, or cancelled (a post-only that would have taken).
        """
        async with self._lock(client_order_id):
            intent = await self._require(client_order_id)
            if intent.status in FINAL:
                return Execution(intent, None, already_done=True)
            order = None
            if intent.status in (IntentStatus.SENT, IntentStatus.UNKNOWN):
                order = await self._lookup(client, intent)  # it may already exist
            if order is None:
                order = await self._send(client, intent)
            await pause("order.placed")
            if await_fill:
                order = await self._fill_of(client, intent, order)
            return await self._settle(intent, order)

    async def resolve_pending(self, lease: ClientLease, older_than_s: float = 30) -> int:
        """Settle intents left `sent`/`unknown` by a crash or a failed lookup; return how many."""
        return len(await self.settle_unresolved(lease, older_than_s))

    async def settle_unresolved(
        self, lease: ClientLease, older_than_s: float = 30
    ) -> list[IntentRecord]:
        """Settle intents left `pending`/`sent`/`unknown`; return them as settled.

        Those from before this start are all taken; later ones once `older_than_s` old (a
        younger one may still be in its sender's hands).
        """
        cutoff = max(self._clock.now() - timedelta(seconds=older_than_s), self._started)
        settled: list[IntentRecord] = []
        for found in await self._intents.unresolved(cutoff):
            async with self._lock(found.client_order_id):  # never beside a sender of it
                intent = await self._require(found.client_order_id)
                if intent.status not in UNRESOLVED:
                    continue
                done = await self._settle_one(lease, intent)
            if done is not None:
                settled.append(done)
        return settled

    async def _settle_one(self, lease: ClientLease, intent: IntentRecord) -> IntentRecord | None:
        if intent.status == IntentStatus.PENDING:
            # Recorded but never sent: the sender died before the request left.
            await self._update(intent, IntentUpdate(IntentStatus.REJECTED, error="not sent"))
            return await self._require(intent.client_order_id)
        try:
            async with lease(intent) as client:
                order = await self._lookup(client, intent)
        except ExchangeError as error:
            log.warning("intent %s still unresolved: %s", intent.client_order_id, error)
            return None
        if order is None:
            change = IntentUpdate(IntentStatus.REJECTED, error="never reached the exchange")
            await self._update(intent, change)
            return await self._require(intent.client_order_id)
        return (await self._settle(intent, order)).intent

    async def _send(self, client: OrderPlacer, intent: IntentRecord) -> Order:
        """The exchange's answer to the order, sent at most until it is known to exist."""
        request = _request(intent)
        for attempt in range(intent.attempts + 1, self._max_attempts + 1):
            await self._intents.mark_sent(intent.client_order_id, self._clock.now())
            try:
                return await client.create_order(request)
            except UnknownOutcome:
                found = await self._lookup(client, intent)
                if found is not None:
                    return found
                log.info(
                    "order %s confirmed absent after attempt %d", request.client_order_id, attempt
                )
                continue  # confirmed absence: the one case where sending again is safe
            except ExchangeError as error:  # refused, rate limited, auth...: nothing placed
                await self._update(intent, IntentUpdate(IntentStatus.REJECTED, error=error.message))
                raise
        await self._update(
            intent, IntentUpdate(IntentStatus.REJECTED, error="not accepted after retries")
        )
        raise UnknownOutcome(
            intent.exchange, "The exchange did not accept the order; nothing was placed."
        )

    async def _fill_of(self, client: OrderPlacer, intent: IntentRecord, order: Order) -> Order:
        """An order some venues report as just accepted: look up what became of it once."""
        if order.status is not OrderStatus.OPEN:
            return order
        try:
            return await client.fetch_order(intent.symbol, client_order_id=intent.client_order_id)
        except ExchangeError as error:  # the order stands; its fill is learnt later
            log.info("fill of %s not known yet: %s", intent.client_order_id, error.message)
            return order

    async def _lookup(self, client: OrderPlacer, intent: IntentRecord) -> Order | None:
        """Find the order by client id: the order, None for a confirmed absence.

        A lookup that itself fails leaves the intent `unknown` and raises `UnknownOutcome`.
        """
        try:
            return await client.fetch_order(intent.symbol, client_order_id=intent.client_order_id)
        except OrderNotFound:
            return None
        except TemporaryError as error:
            await self._update(intent, IntentUpdate(IntentStatus.UNKNOWN, error=error.message))
            raise UnknownOutcome(
                intent.exchange,
                "The exchange did not confirm the order and cannot be reached to check; "
                "it will be checked again shortly.",
                intent.client_order_id,
            ) from error

    async def _settle(self, intent: IntentRecord, order: Order) -> Execution:
        await self._update(intent, IntentUpdate.of_order(order))
        settled = await self._require(intent.client_order_id)
        if settled.status == IntentStatus.FILLED != intent.status and not settled.reduce_only:
            await self._tell_opened(settled)
        return Execution(settled, order)

    async def _tell_opened(self, entry: IntentRecord) -> None:
        for listener in self._on_opened:
            try:
                await listener(entry)
            except Exception:  # the entry stands whatever a follow-up does
                log.exception("after the fill of %s", entry.client_order_id)

    async def _update(self, intent: IntentRecord, change: IntentUpdate) -> None:
        await self._intents.update(intent.client_order_id, change, self._clock.now())

    async def _require(self, client_order_id: str) -> IntentRecord:
        intent = await self._intents.get(client_order_id)
        if intent is None:
            raise LookupError(f"no order intent {client_order_id}")
        return intent


def _request(intent: IntentRecord) -> OrderRequest:
    return OrderRequest(
        symbol=intent.symbol,
        side=Side(intent.side),
        order_type=OrderType(intent.order_type),
        qty=intent.qty,
        client_order_id=intent.client_order_id,
        price=intent.price,
        reduce_only=intent.reduce_only,
        take_profit=intent.take_profit,
        stop_loss=intent.stop_loss,
        post_only=intent.post_only,
    )
