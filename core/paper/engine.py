"""The paper engine: new prices fill every account's resting orders and fire its stop
losses, take profits and liquidations, in one transaction (`core.paper.book` holds the
rules of one account's fills, margin and triggers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.clock import Clock
from core.exchange.models import ZERO
from core.paper.book import AccountBook, EventKind, new_order_id
from core.paper.ledger import AccountChanges, AccountState, PaperLedger, ledger_time


@dataclass(slots=True, frozen=True)
class EngineEvent:
    """Something a price did to one trader's account, for notifications."""

    user_id: int
    symbol: str
    kind: EventKind
    order_id: str
    qty: Decimal
    price: Decimal | None
    realised_pnl: Decimal


@dataclass(slots=True, frozen=True)
class EngineReport:
    events: tuple[EngineEvent, ...] = ()

    def count(self, kind: EventKind) -> int:
        return sum(1 for event in self.events if event.kind is kind)

    @property
    def orders_filled(self) -> int:
        return self.count(EventKind.ORDER_FILLED)

    @property
    def tp_hits(self) -> int:
        return self.count(EventKind.TAKE_PROFIT)

    @property
    def sl_hits(self) -> int:
        return self.count(EventKind.STOP_LOSS)

    @property
    def liquidations(self) -> int:
        return self.count(EventKind.LIQUIDATION)

    @property
    def affected(self) -> list[tuple[int, str, EventKind]]:
        return [(e.user_id, e.symbol, e.kind) for e in self.events]


class PaperEngine:
    """Fills resting orders and fires TP/SL/liquidations of every paper account on new prices."""

    def __init__(
        self, ledger: PaperLedger, clock: Clock, new_id: Callable[[], str] = new_order_id
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._new_id = new_id

    async def on_prices(self, prices: Mapping[str, Decimal]) -> EngineReport:
        """Apply `prices` to every account in one transaction; cheap when nothing triggers."""
        if not prices:
            return EngineReport()
        watches = await self._ledger.watches(prices.keys())
        accounts = {w.account_id for w in watches if w.fires(prices[w.symbol])}
        if not accounts:
            return EngineReport()
        now = ledger_time(self._clock.now())
        return await self._ledger.mutate_many(
            sorted(accounts), now, lambda states: self._decide(states, prices, now)
        )

    def _decide(
        self, states: Mapping[int, AccountState], prices: Mapping[str, Decimal], now: datetime
    ) -> tuple[list[AccountChanges], EngineReport]:
        """Re-check every trigger on the fresh state: the watches were read outside it."""
        changes: list[AccountChanges] = []
        events: list[EngineEvent] = []
        for account_id in sorted(states):
            state = states[account_id]
            book = AccountBook(state, now, self._new_id)
            symbols = {o.symbol for o in state.open_orders.values()} | set(state.positions)
            for symbol in sorted(symbols & prices.keys()):
                for done in book.settle(symbol, prices[symbol]):
                    events.append(
                        EngineEvent(
                            user_id=state.account.user_id,
                            symbol=symbol,
                            kind=done.kind,
                            order_id=done.order.order_id,
                            qty=done.fill.qty if done.fill else ZERO,
                            price=done.fill.price if done.fill else None,
                            realised_pnl=done.fill.realised_pnl if done.fill else ZERO,
                        )
                    )
            if book.changes:
                changes.append(book.changes)
        return changes, EngineReport(tuple(events))
