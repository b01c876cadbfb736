"""The paper exchange's pushes: what every paper mutation changed, as an `AccountFeed`.

`EmittingLedger` wraps the paper ledger: each mutation (an order placed or cancelled, a
leverage change, the engine's fills, TP/SL and liquidations) hands the changes it
persisted to `PaperEvents`, which passes them to the feeds of that trader. So paper
accounts are streamed through the same interface, and the same manager, as real ones.

Fills are the exception: a paper fill gets its id (the one the fill ledger keys it by)
only when it is stored, so the feed names none; it reports them as a gap instead, and the
reader's catch-up records them from the paper ledger with their ids, at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from core.exchange.feed import GapHandler, PositionUpdate
from core.exchange.models import Balance, Fill, Order, OrderStatus
from core.paper.exchange import _order, _position  # the paper exchange's own conversions
from core.paper.ledger import (
    INITIAL_BALANCE,
    AccountChanges,
    AccountRecord,
    AccountState,
    FillRecord,
    OrderRecord,
    PaperLedger,
    Watch,
)

R = TypeVar("R")
BalanceReader = Callable[[int], Awaitable[Balance]]
PriceReader = Callable[[str], Decimal | None]


class PaperFeed:
    """One paper account's pushes (an `AccountFeed`)."""

    def __init__(self, user_id: int, events: PaperEvents, on_gap: GapHandler) -> None:
        self.user_id = user_id
        self.on_gap = on_gap
        self._events = events
        self._never = asyncio.Event()
        self.orders: asyncio.Queue[list[Order]] = asyncio.Queue()
        self.positions: asyncio.Queue[list[PositionUpdate]] = asyncio.Queue()
        self.balance_changed = asyncio.Event()

    @property
    def exchange(self) -> str:
        return "paper"

    async def ready(self) -> None:
        self._events.subscribe(self)

    async def next_orders(self) -> Sequence[Order]:
        return await self.orders.get()

    async def next_fills(self) -> Sequence[Fill]:
        await self._never.wait()  # fills are announced through `on_gap` (see the module)
        return ()

    async def next_positions(self) -> Sequence[PositionUpdate]:
        return await self.positions.get()

    async def next_balance(self) -> Balance:
        await self.balance_changed.wait()
        self.balance_changed.clear()
        return await self._events.balance_of(self.user_id)

    async def aclose(self) -> None:
        self._events.unsubscribe(self)


class PaperEvents:
    """Routes each paper account's changes to its open feeds."""

    def __init__(
        self, balance_of: BalanceReader | None = None, price: PriceReader | None = None
    ) -> None:
        self._balance_of = balance_of
        self._price = price or (lambda symbol: None)
        self._feeds: dict[int, set[PaperFeed]] = {}

    def bind(self, balance_of: BalanceReader, price: PriceReader) -> None:
        """Name the readers once the paper exchange they read exists (it is built over the
        ledger that emits here)."""
        self._balance_of, self._price = balance_of, price

    async def balance_of(self, user_id: int) -> Balance:
        if self._balance_of is None:
            raise RuntimeError("PaperEvents has no balance reader yet")
        return await self._balance_of(user_id)

    def feed(self, user_id: int, on_gap: GapHandler) -> PaperFeed:
        return PaperFeed(user_id, self, on_gap)

    def subscribe(self, feed: PaperFeed) -> None:
        self._feeds.setdefault(feed.user_id, set()).add(feed)

    def unsubscribe(self, feed: PaperFeed) -> None:
        feeds = self._feeds.get(feed.user_id)
        if feeds is not None:
            feeds.discard(feed)
            if not feeds:
                del self._feeds[feed.user_id]

    def listening(self, user_id: int) -> bool:
        return user_id in self._feeds

    def changed(self, user_id: int, changes: AccountChanges) -> None:
        feeds = self._feeds.get(user_id)
        if not feeds or not changes:
            return
        orders = [_order(o) for o in changes.orders]
        marks = {p.symbol: self._price(p.symbol) or p.entry_price for p in changes.positions}
        positions: list[PositionUpdate] = [
            (p.symbol, _position(p, marks)) for p in changes.positions
        ]
        positions += [(symbol, None) for symbol in changes.closed]
        for feed in feeds:
            if changes.fills:
                feed.on_gap("paper_fills")
            if orders:
                feed.orders.put_nowait(orders)
            if positions:
                feed.positions.put_nowait(positions)
            feed.balance_changed.set()

    def reset(self, user_id: int, orders: Sequence[OrderRecord], symbols: Collection[str]) -> None:
        """The account started over: its orders and positions are gone."""
        changes = AccountChanges(0, orders=list(orders), closed=list(symbols))
        self.changed(user_id, changes)


class EmittingLedger:
    """A `PaperLedger` that tells `PaperEvents` what each mutation persisted."""

    def __init__(self, inner: PaperLedger, events: PaperEvents) -> None:
        self._inner = inner
        self.events = events

    async def load(self, user_id: int) -> AccountState | None:
        return await self._inner.load(user_id)

    async def find_order(
        self, user_id: int, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> OrderRecord | None:
        return await self._inner.find_order(
            user_id, order_id=order_id, client_order_id=client_order_id
        )

    async def fills(self, user_id: int, limit: int = 100) -> list[FillRecord]:
        return await self._inner.fills(user_id, limit)

    async def fills_since(self, user_id: int, since: datetime, limit: int) -> list[FillRecord]:
        # Part of the ledger protocol where the fill ledger reads paper fills back.
        inner: Any = self._inner
        found: list[FillRecord] = await inner.fills_since(user_id, since, limit)
        return found

    async def mutate(
        self,
        user_id: int,
        now: datetime,
        decide: Callable[[AccountState], tuple[AccountChanges, R]],
        *,
        client_order_id: str | None = None,
        initial_balance: Decimal = INITIAL_BALANCE,
    ) -> R:
        decided: list[AccountChanges] = []

        def capture(state: AccountState) -> tuple[AccountChanges, R]:
            changes, result = decide(state)
            decided[:] = [changes]
            return changes, result

        result = await self._inner.mutate(
            user_id,
            now,
            capture,
            client_order_id=client_order_id,
            initial_balance=initial_balance,
        )
        for changes in decided:
            self.events.changed(user_id, changes)
        return result

    async def mutate_many(
        self,
        account_ids: Collection[int],
        now: datetime,
        decide: Callable[[Mapping[int, AccountState]], tuple[list[AccountChanges], R]],
    ) -> R:
        decided: list[tuple[int, AccountChanges]] = []

        def capture(states: Mapping[int, AccountState]) -> tuple[list[AccountChanges], R]:
            all_changes, result = decide(states)
            decided[:] = [
                (states[c.account_id].account.user_id, c)
                for c in all_changes
                if c.account_id in states
            ]
            return all_changes, result

        result = await self._inner.mutate_many(account_ids, now, capture)
        for user_id, changes in decided:
            self.events.changed(user_id, changes)
        return result

    async def reset(self, user_id: int, now: datetime, initial_balance: Decimal) -> AccountRecord:
        before = await self._inner.load(user_id) if self.events.listening(user_id) else None
        record = await self._inner.reset(user_id, now, initial_balance)
        if before is not None:
            gone = [_cancelled(o, now) for o in before.open_orders.values()]
            self.events.reset(user_id, gone, list(before.positions))
        return record

    async def watches(self, symbols: Collection[str]) -> list[Watch]:
        return await self._inner.watches(symbols)


def _cancelled(order: OrderRecord, now: datetime) -> OrderRecord:
    return replace(order, status=OrderStatus.CANCELLED, updated_at=now)
