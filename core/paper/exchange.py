"""`PaperExchange`: one trader's simulated account behind the `ExchangeClient` role.

Market data comes from a `MarketSource`; the account lives in a `PaperLedger`, and every
change to it (an order, a cancel, a leverage change, a reset) is one ledger transaction.
Orders are checked the way a venue checks them (symbol, lot, minimums, TP/SL sides,
duplicate client ids) before anything is written. Resting orders, TP/SL and liquidations
are handled by the shared `PaperEngine` when prices move.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Self

from core.clock import Clock
from core.errors import StoreError
from core.exchange.errors import ExchangeUnavailable, InvalidOrder, OrderNotFound, UnknownOutcome
from core.exchange.key_info import KeyInfo
from core.exchange.models import (
    LIST_PAGES,
    ZERO,
    AccountType,
    AssetBalance,
    Balance,
    Candle,
    ClosedPnl,
    Fill,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    PagedList,
    Position,
    Side,
    Ticker,
    TradingStop,
)
from core.paper.book import EXCHANGE, AccountBook, new_order_id, trigger_of
from core.paper.ledger import (
    INITIAL_BALANCE,
    AccountChanges,
    AccountRecord,
    AccountState,
    FillRecord,
    OrderRecord,
    PaperLedger,
    PositionRecord,
    ledger_time,
    pnl,
)
from core.paper.market_source import MarketSource

FILL_PAGE = 100  # fills per page of the list a venue would serve
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True, frozen=True)
class _Checked:
    """An order request that passed the venue's checks, prices rounded to the tick."""

    qty: Decimal
    price: Decimal | None
    take_profit: Decimal | None
    stop_loss: Decimal | None


class PaperExchange:
    """The `ExchangeClient` of one user's paper account (10,000 USDT to start)."""

    def __init__(
        self,
        user_id: int,
        *,
        source: MarketSource,
        ledger: PaperLedger,
        clock: Clock,
        initial_balance: Decimal = INITIAL_BALANCE,
        new_id: Callable[[], str] = new_order_id,
    ) -> None:
        self.user_id = user_id
        self._source = source
        self._ledger = ledger
        self._clock = clock
        self._initial = initial_balance
        self._new_id = new_id
        self._closed = False
        # Candles are computed here, not fetched: ~10 ms of CPU each. Concurrent requests
        # (the scanner's ten candidates) take turns, one per event-loop turn, so chats are
        # answered in between instead of waiting for all ten.
        self._computing = asyncio.Lock()

    @property
    def exchange(self) -> str:
        return EXCHANGE

    @property
    def account_type(self) -> str:
        return AccountType.PAPER.value

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Refuse further use; idempotent (the ledger and source are shared, not closed)."""
        self._closed = True

    def healthy(self) -> bool:
        """Tell the client pool whether this client can still be used (no I/O)."""
        return not self._closed

    async def fetch_key_info(self) -> KeyInfo:
        """The paper account has no key to leak: it trades and can withdraw nothing."""
        self._check_open()
        return KeyInfo.healthy()

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        self._check_open()
        return self._source.markets()

    async def fetch_tickers(self) -> Mapping[str, Ticker]:
        self._check_open()
        return self._source.tickers()

    async def fetch_ticker(self, symbol: str) -> Ticker:
        self._check_open()
        return self._source.ticker(symbol)

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", limit: int = 100, since: int | None = None
    ) -> list[Candle]:
        self._check_open()
        async with self._computing:
            await asyncio.sleep(0)
            candles = self._source.ohlcv(symbol, timeframe, limit)
        return candles if since is None else [c for c in candles if c.ts >= since]

    async def fetch_balance(self) -> Balance:
        """Equity = wallet + uPnL; available = wallet − used margin (uPnL never adds to it)."""
        state, marks = await self._marked_state()
        book = AccountBook(state, ledger_time(self._clock.now()), self._new_id)
        upnl = sum((_upnl(p, marks) for p in state.positions.values()), ZERO)
        wallet, used = state.account.balance, book.used_margin()
        usdt = AssetBalance("USDT", total=wallet, free=wallet - used, used=used)
        return Balance(wallet + upnl, wallet - used, used, upnl, (usdt,))

    async def fetch_positions(self) -> PagedList[Position]:
        """Every position: the paper exchange has no pages, so the list is always whole."""
        state, marks = await self._marked_state()
        return PagedList(_position(p, marks) for _, p in sorted(state.positions.items()))

    async def fetch_open_orders(self, symbol: str | None = None) -> PagedList[Order]:
        self._check_open()
        async with self._guard():
            state = await self._ledger.load(self.user_id)
        orders = [] if state is None else list(state.open_orders.values())
        orders.sort(key=lambda o: (o.created_at, o.order_id))
        return PagedList(_order(o) for o in orders if symbol is None or o.symbol == symbol)

    async def fetch_fills(self, since: datetime | None = None) -> PagedList[Fill]:
        """Every fill at or after `since` (all of them when None), oldest first, as the
        fill ledger records them; at most `LIST_PAGES` × 100."""
        self._check_open()
        limit = LIST_PAGES * FILL_PAGE
        async with self._guard():
            found = await self._ledger.fills_since(self.user_id, since or _EPOCH, limit)
        return PagedList((_fill(f) for f in found), complete=len(found) < limit)

    async def fetch_closed_pnl(self, since: datetime | None = None) -> PagedList[ClosedPnl]:
        """The paper exchange keeps no closed-position records: the fills' realised PnL is
        the truth."""
        self._check_open()
        return PagedList()

    async def name_triggers(self, fills: Sequence[Fill]) -> list[Fill]:
        """The engine names its own triggers on every fill: as they are."""
        return list(fills)

    async def recent_fills(self, limit: int = 100) -> list[FillRecord]:
        """Return the most recent fills, newest first."""
        self._check_open()
        async with self._guard():
            return await self._ledger.fills(self.user_id, limit)

    async def create_order(self, request: OrderRequest) -> Order:
        self._check_open()
        market = self._market(request.symbol)
        last = self._source.ticker(request.symbol).last
        checked = _check(request, market, last)
        now = ledger_time(self._clock.now())

        def decide(state: AccountState) -> tuple[AccountChanges, OrderRecord]:
            if state.client_order is not None:
                # Like a real venue: the id is taken, so an order with it exists; the
                # executor settles this by looking the order up, never by sending again.
                raise UnknownOutcome(
                    EXCHANGE,
                    f"duplicate client order id {request.client_order_id!r}",
                    request.client_order_id,
                )
            book = AccountBook(state, now, self._new_id)
            draft = _draft(request, checked, state.account.account_id, self._new_id(), now)
            placed = book.place(draft, last)
            return book.changes, placed

        async with self._guard():
            placed = await self._ledger.mutate(
                self.user_id,
                now,
                decide,
                client_order_id=request.client_order_id,
                initial_balance=self._initial,
            )
        return _order(placed)

    async def cancel_order(self, symbol: str, order_id: str) -> Order:
        self._check_open()
        now = ledger_time(self._clock.now())

        def decide(state: AccountState) -> tuple[AccountChanges, OrderRecord]:
            order = state.open_orders.get(order_id)
            if order is None or order.symbol != symbol:
                raise OrderNotFound(EXCHANGE, f"no open order {order_id} on {symbol}")
            book = AccountBook(state, now, self._new_id)
            cancelled = book.cancel(order)
            return book.changes, cancelled

        async with self._guard():
            cancelled = await self._ledger.mutate(
                self.user_id, now, decide, initial_balance=self._initial
            )
        return _order(cancelled)

    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        self._check_open()
        if order_id is None and client_order_id is None:
            raise InvalidOrder(EXCHANGE, "fetch_order needs an order id or a client order id")
        async with self._guard():
            found = await self._ledger.find_order(
                self.user_id, order_id=order_id, client_order_id=client_order_id
            )
        if found is None or found.symbol != symbol:
            raise OrderNotFound(
                EXCHANGE, f"order {order_id or client_order_id} not found on {symbol}"
            )
        return _order(found)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set the symbol's leverage (1..market max); an open position is re-margined."""
        self._check_open()
        market = self._market(symbol)
        if not 1 <= leverage <= market.max_leverage:
            raise InvalidOrder(
                EXCHANGE,
                f"leverage must be between 1 and {market.max_leverage} for {symbol}, "
                f"not {leverage}",
            )
        last = self._source.ticker(symbol).last
        now = ledger_time(self._clock.now())

        def decide(state: AccountState) -> tuple[AccountChanges, None]:
            book = AccountBook(state, now, self._new_id)
            book.set_leverage(symbol, leverage, last)
            return book.changes, None

        async with self._guard():
            await self._ledger.mutate(self.user_id, now, decide, initial_balance=self._initial)

    async def set_trading_stop(self, stop: TradingStop) -> None:
        """Set, move or remove the open position's TP, SL and trailing stop; levels are
        rounded to the tick and checked against the last price."""
        self._check_open()
        market = self._market(stop.symbol)
        last = self._source.ticker(stop.symbol).last
        now = ledger_time(self._clock.now())
        rounded = replace(
            stop,
            take_profit=_kept(stop.take_profit, market),
            stop_loss=_kept(stop.stop_loss, market),
            trailing_activation=_kept(stop.trailing_activation, market),
        )

        def decide(state: AccountState) -> tuple[AccountChanges, None]:
            book = AccountBook(state, now, self._new_id)
            book.protect(rounded, last)
            return book.changes, None

        async with self._guard():
            await self._ledger.mutate(self.user_id, now, decide, initial_balance=self._initial)

    async def reset_account(self) -> Balance:
        """Start over: no positions, orders, fills or leverage settings; the initial balance."""
        self._check_open()
        async with self._guard():
            await self._ledger.reset(self.user_id, ledger_time(self._clock.now()), self._initial)
        return await self.fetch_balance()

    def _check_open(self) -> None:
        if self._closed:
            raise ExchangeUnavailable(EXCHANGE, "client is closed")

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Report a broken ledger the way any venue outage is reported."""
        try:
            yield
        except StoreError as exc:
            raise ExchangeUnavailable(EXCHANGE, f"paper ledger unavailable: {exc}") from exc

    def _market(self, symbol: str) -> Market:
        market = self._source.markets().get(symbol)
        if market is None:
            raise InvalidOrder(EXCHANGE, f"unknown symbol {symbol}")
        if not market.active:
            raise InvalidOrder(EXCHANGE, f"{symbol} is delisted")
        return market

    async def _marked_state(self) -> tuple[AccountState, dict[str, Decimal]]:
        """Return the account (a fresh one before first use) and its positions' mark prices."""
        self._check_open()
        async with self._guard():
            state = await self._ledger.load(self.user_id)
        if state is None:
            now = ledger_time(self._clock.now())
            state = AccountState(AccountRecord(0, self.user_id, self._initial, now))
        marks: dict[str, Decimal] = {}
        for symbol in state.positions:
            try:
                marks[symbol] = self._source.ticker(symbol).last
            except InvalidOrder:  # delisted: no price any more, marked at entry
                continue
        return state, marks


def _check(request: OrderRequest, market: Market, last: Decimal) -> _Checked:
    """Refuse what a venue would refuse; round prices to the tick."""
    symbol, qty = market.symbol, request.qty
    if qty <= 0:
        raise InvalidOrder(EXCHANGE, f"quantity must be positive, not {qty}")
    if qty % market.lot_size != 0:
        raise InvalidOrder(
            EXCHANGE, f"quantity {qty} is not a multiple of the {symbol} lot size {market.lot_size}"
        )
    if qty < market.min_qty:
        raise InvalidOrder(
            EXCHANGE, f"quantity {qty} is below the {symbol} minimum {market.min_qty}"
        )
    price = None
    if request.order_type is OrderType.LIMIT:
        if request.price is None or market.round_price(request.price) <= 0:
            raise InvalidOrder(EXCHANGE, "a limit order needs a positive price")
        price = market.round_price(request.price)
        if request.post_only and (price >= last if request.side is Side.BUY else price <= last):
            where = "at or above" if request.side is Side.BUY else "at or below"
            raise InvalidOrder(
                EXCHANGE,
                f"post-only {request.side} order refused: its price {price} is {where} the "
                f"last price {last}, so it would fill at once as taker",
            )
    value = qty * (price or last)
    if not request.reduce_only and value < market.min_notional:
        raise InvalidOrder(
            EXCHANGE,
            f"order value {value:.2f} USDT is below the {symbol} minimum "
            f"{market.min_notional} USDT",
        )
    tp, sl = _level(request.take_profit, market), _level(request.stop_loss, market)
    if request.reduce_only and (tp is not None or sl is not None):
        raise InvalidOrder(EXCHANGE, "a reduce-only order cannot carry a take profit or stop loss")
    ref, buy = price or last, request.side is Side.BUY
    if tp is not None and (tp <= ref if buy else tp >= ref):
        where = "above" if buy else "below"
        raise InvalidOrder(EXCHANGE, f"take profit {tp} must be {where} the entry price {ref}")
    if sl is not None and (sl >= ref if buy else sl <= ref):
        where = "below" if buy else "above"
        raise InvalidOrder(EXCHANGE, f"stop loss {sl} must be {where} the entry price {ref}")
    return _Checked(qty, price, tp, sl)


def _level(price: Decimal | None, market: Market) -> Decimal | None:
    if price is None:
        return None
    rounded = market.round_price(price)
    if rounded <= 0:
        raise InvalidOrder(EXCHANGE, f"take profit and stop loss must be positive, not {price}")
    return rounded


def _kept(price: Decimal | None, market: Market) -> Decimal | None:
    """A level on the tick; None (unchanged) and zero (remove) pass as they are."""
    return price if not price else _level(price, market)


def _draft(
    request: OrderRequest, checked: _Checked, account_id: int, order_id: str, now: datetime
) -> OrderRecord:
    return OrderRecord(
        order_id=order_id,
        account_id=account_id,
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        order_type=request.order_type,
        qty=checked.qty,
        price=checked.price,
        status=OrderStatus.OPEN,
        created_at=now,
        updated_at=now,
        reduce_only=request.reduce_only,
        take_profit=checked.take_profit,
        stop_loss=checked.stop_loss,
    )


def _fill(record: FillRecord) -> Fill:
    return Fill(
        fill_id=str(record.fill_id),
        order_id=record.order_id,
        client_order_id=record.client_order_id,
        symbol=record.symbol,
        side=record.side,
        price=record.price,
        qty=record.qty,
        fee=record.fee,
        fee_currency="USDT",
        ts=record.at,
        realised_pnl=record.realised_pnl,
        reduce_only=record.reduce_only,
        trigger=trigger_of(record.order_id),
    )


def _order(record: OrderRecord) -> Order:
    return Order(
        order_id=record.order_id,
        client_order_id=record.client_order_id,
        symbol=record.symbol,
        side=record.side,
        order_type=record.order_type,
        qty=record.qty,
        price=record.price,
        status=record.status,
        filled_qty=record.filled_qty,
        avg_price=record.avg_price,
        fee=record.fee,
        reduce_only=record.reduce_only,
        take_profit=record.take_profit,
        stop_loss=record.stop_loss,
        created_at=record.created_at,
    )


def _upnl(position: PositionRecord, marks: Mapping[str, Decimal]) -> Decimal:
    mark = marks.get(position.symbol, position.entry_price)
    return pnl(position.side, position.qty, position.entry_price, mark)


def _position(position: PositionRecord, marks: Mapping[str, Decimal]) -> Position:
    return Position(
        symbol=position.symbol,
        side=position.side,
        qty=position.qty,
        entry_price=position.entry_price,
        mark_price=marks.get(position.symbol, position.entry_price),
        unrealised_pnl=_upnl(position, marks),
        leverage=position.leverage,
        margin=position.margin,
        liquidation_price=position.liq_price,
        take_profit=position.take_profit,
        stop_loss=position.stop_loss,
        trailing_distance=position.trail_distance,
    )
