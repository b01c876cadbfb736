"""`ExchangeClient` over one `ccxt.async_support` exchange instance.

Each call is measured, its failures mapped to domain errors, and reads retried; the venue
(`core.exchange.ccxt_venue`) supplies what clients of one exchange share. A venue's quirks
live in its own subclass (`core.exchange.bybit`), named in the venue table.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, Protocol, TypeVar

from core.exchange import ccxt_parse as parse
from core.exchange.breaker import BreakerBoard, CircuitBreaker
from core.exchange.ccxt_errors import is_outage, map_error
from core.exchange.errors import (
    ExchangeError,
    ExchangeUnavailable,
    InvalidOrder,
    OrderNotFound,
    UnknownOutcome,
)
from core.exchange.key_info import KeyInfo
from core.exchange.models import (
    LIST_PAGES,
    Balance,
    Candle,
    ClosedPnl,
    Fill,
    Market,
    Order,
    OrderRequest,
    OrderType,
    PagedList,
    Position,
    Ticker,
    TradingStop,
)
from core.exchange.retry import RetryPolicy, with_retries
from core.exchange.venues import Venue
from core.metrics import Metrics

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# One page of a list read: the raw ccxt items and the cursor of the next page, None at the end.
Page = tuple[list[Any], str | None]


class VenueContext(Protocol):
    """What a client needs from its venue (`CcxtVenue` provides it)."""

    venue: Venue
    metrics: Metrics | None
    retry: RetryPolicy
    breakers: BreakerBoard | None
    markets_version: int

    @property
    def name(self) -> str: ...

    def markets(self) -> Mapping[str, Market]: ...

    def symbols_by_id(self) -> Mapping[str, str]: ...

    async def public(self) -> CcxtClient: ...

    async def reload_markets(self) -> Mapping[str, Market]: ...


class CcxtClient:
    """One account (or the public data feed) on one exchange, through ccxt."""

    def __init__(self, venue: VenueContext, api: Any, account_type: str, public: bool = False):
        self._venue = venue
        self.api = api
        self._account_type = account_type
        self._public = public
        self._markets_version = -1
        self._source: CcxtClient | None = None
        self.closed = False
        self.last_used = time.monotonic()
        self._leverage: dict[str, int] = {}  # symbol → leverage this client set
        self.list_pages = LIST_PAGES  # most pages one list read follows

    # A venue that accepts a finished order's client id again (Binance, OKX) gets a lookup
    # before each placement, so a resend can never become a second order.
    ids_free_after_fill = False

    @classmethod
    def configure(cls, api: Any) -> None:
        """Adjust a venue's freshly built ccxt template; a venue's subclass adds its quirks."""

    @property
    def exchange(self) -> str:
        return self._venue.name

    @property
    def account_type(self) -> str:
        return self._account_type

    def share_markets(self, source: CcxtClient) -> None:
        self._source = source
        self.api.set_markets_from_exchange(source.api)
        self._markets_version = self._venue.markets_version

    def healthy(self) -> bool:
        """Cheap check before reuse: open, and its HTTP session still usable."""
        session = self.api.session
        return not self.closed and (session is None or not session.closed)

    async def call(
        self,
        method: str,
        fn: Callable[[], Awaitable[T]],
        *,
        retry: bool = True,
        placing: OrderRequest | None = None,
    ) -> T:
        """Run one ccxt call: metrics, error mapping, retries for reads only."""
        if self.closed:
            raise ExchangeUnavailable(self.exchange, "this exchange client is closed")
        if self._source is not None and self._markets_version != self._venue.markets_version:
            self.share_markets(self._source)  # markets were reloaded: borrow the new table
        self.last_used = time.monotonic()

        breaker = self._breaker()

        async def once() -> T:
            if breaker is not None:
                breaker.admit()  # an open breaker raises VenueDown: nothing is sent
            start = time.perf_counter()
            verdict = False
            try:
                result = await fn()
                if breaker is not None:
                    verdict = True
                    breaker.answered()
            except Exception as exc:
                if breaker is not None:
                    verdict = True
                    if is_outage(self.exchange, exc):
                        breaker.failed()
                    else:
                        breaker.answered()  # a refusal is an answer: the venue is there
                error = map_error(
                    self.exchange,
                    exc,
                    placing_order=placing is not None,
                    retry_after=self._retry_after(),
                    client_order_id=placing.client_order_id if placing else None,
                )
                self._observe(method, start, error)
                raise error from exc
            finally:
                if breaker is not None and not verdict:
                    breaker.abandoned()  # cancelled mid-request: no verdict on the venue
            self._observe(method, start, None)
            return result

        if not retry or placing is not None:
            return await once()
        return await with_retries(once, self._venue.retry)

    def _breaker(self) -> CircuitBreaker | None:
        board = self._venue.breakers
        return None if board is None else board.breaker(self.exchange, self._account_type)

    def _observe(self, method: str, start: float, error: ExchangeError | None) -> None:
        metrics = self._venue.metrics
        if metrics is not None:
            kind = None if error is None else error.kind
            metrics.observe_exchange(self.exchange, method, time.perf_counter() - start, kind)

    def _retry_after(self) -> float | None:
        headers = getattr(self.api, "last_response_headers", None) or {}
        lowered = {str(k).lower(): v for k, v in dict(headers).items()}
        value = lowered.get("retry-after")
        if value is not None and str(value).replace(".", "", 1).isdigit():
            return float(value)
        reset = lowered.get("x-bapi-limit-reset-timestamp")
        if reset is not None and str(reset).isdigit():
            return max(0.0, int(reset) / 1000 - time.time())
        return None

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        if reload:
            return await self._venue.reload_markets()
        if not self._venue.markets():
            await self._venue.public()
        return self._venue.markets()

    async def fetch_tickers(self) -> Mapping[str, Ticker]:
        """Every ticker in one request."""
        raw = await self._with_markets(self.call("fetch_tickers", lambda: self.api.fetch_tickers()))
        markets = self._venue.markets()
        parsed = (parse.ticker(t) for s, t in raw.items() if s in markets)
        return {t.symbol: t for t in parsed if t.last > 0}  # no price, nothing to quote

    async def _with_markets(self, request: Awaitable[T]) -> T:
        """Await a whole-market read; on a fresh feed the markets, which its parse needs,
        load meanwhile."""
        if self._venue.markets():
            return await request
        answer, _ = await asyncio.gather(request, self.load_markets())
        return answer

    async def fetch_markets_lean(self) -> dict[str, Market]:
        """Every linear USDT perpetual, fresh from the exchange, as `Market`."""
        raw = await self.call("load_markets", lambda: self.api.load_markets(reload=True))
        return {s: parse.market(m) for s, m in raw.items() if parse.is_linear_usdt_perp(m)}

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return parse.ticker(await self.call("fetch_ticker", lambda: self.api.fetch_ticker(symbol)))

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", limit: int = 100, since: int | None = None
    ) -> list[Candle]:
        rows = await self.call(
            "fetch_ohlcv",
            lambda: self.api.fetch_ohlcv(symbol, timeframe, since=since, limit=limit),
        )
        return [parse.candle(row) for row in rows]

    async def fetch_balance(self) -> Balance:
        raw = await self.call("fetch_balance", lambda: self.api.fetch_balance())
        return parse.balance(raw)

    async def fetch_positions(self) -> PagedList[Position]:
        """Every open position, page after page to the end (or `list_pages` pages)."""
        params = dict(self._venue.venue.linear_params)
        raw, complete = await self._read_pages(
            "fetch_positions", lambda cursor: self._positions_page(params, cursor)
        )
        parsed = (parse.position(p) for p in raw)
        positions = _unique([p for p in parsed if p is not None], _position_key)
        for position in positions:  # what the exchange says beats what we remember
            self._leverage[position.symbol] = position.leverage
        return PagedList(positions, complete)

    async def fetch_open_orders(self, symbol: str | None = None) -> PagedList[Order]:
        """Every resting order, page after page to the end (or `list_pages` pages)."""
        params = {} if symbol else dict(self._venue.venue.linear_params)
        raw, complete = await self._read_pages(
            "fetch_open_orders", lambda cursor: self._orders_page(symbol, params, cursor)
        )
        orders = _unique([self._order(o) for o in raw], lambda o: o.order_id)
        return PagedList(_oldest_first(orders), complete)

    async def _read_pages(
        self, method: str, page: Callable[[str | None], Awaitable[Page]]
    ) -> tuple[list[Any], bool]:
        """Follow a list's cursor: stop at the end, at a cursor seen before (a venue that
        stopped advancing), or after `list_pages` pages; True when the end was reached."""
        rows: list[Any] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(self.list_pages):
            found, following = await self.call(method, partial(page, cursor))
            rows.extend(found)
            if not found or not following or following in seen:
                return rows, True
            seen.add(following)
            cursor = following
        return rows, False

    async def _positions_page(self, params: dict[str, Any], cursor: str | None) -> Page:
        """Binance and OKX answer every position at once: one page."""
        return await self.api.fetch_positions(None, dict(params)), None

    async def _orders_page(
        self, symbol: str | None, params: dict[str, Any], cursor: str | None
    ) -> Page:
        """Open orders on a venue that answers them all at once (Binance): one page. A
        venue that pages (Bybit, OKX) overrides this with its own cursor."""
        return await self.api.fetch_open_orders(symbol, None, None, dict(params)), None

    async def fetch_fills(self, since: datetime | None = None) -> PagedList[Fill]:
        """The account's executions since `since` through ccxt's `fetch_my_trades` (one
        page: a venue that pages its history overrides this), oldest first."""
        ms = None if since is None else int(since.timestamp() * 1000)
        params = dict(self._venue.venue.linear_params)
        raw = await self.call(
            "fetch_fills", lambda: self.api.fetch_my_trades(None, ms, None, dict(params))
        )
        found = [parse.fill(t, self._contract_size(t.get("symbol") or "")) for t in raw]
        return PagedList(sorted(_unique(found, _fill_key), key=lambda f: f.ts))

    async def fetch_closed_pnl(self, since: datetime | None = None) -> PagedList[ClosedPnl]:
        """A venue without closed-position records: none (the ledger computes PnL from the
        fills and their realised PnL)."""
        return PagedList()

    async def name_triggers(self, fills: Sequence[Fill]) -> list[Fill]:
        """Bybit's and Binance's pushes name what sent an order themselves: as they are."""
        return list(fills)

    async def create_order(self, request: OrderRequest) -> Order:
        if self.ids_free_after_fill:
            await self._refuse_reuse(request)
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if request.reduce_only:
            params["reduceOnly"] = True
        if request.post_only and request.order_type is OrderType.LIMIT:
            # ccxt's unified flag: Bybit timeInForce PostOnly, Binance GTX, OKX post_only.
            params["postOnly"] = True
        if request.take_profit is not None:
            params["takeProfit"] = {"triggerPrice": float(request.take_profit)}
        if request.stop_loss is not None:
            params["stopLoss"] = {"triggerPrice": float(request.stop_loss)}
        price = (
            float(request.price)
            if request.order_type is OrderType.LIMIT and request.price
            else None
        )
        raw = await self.call(
            "create_order",
            lambda: self.api.create_order(
                request.symbol,
                request.order_type.value,
                request.side.value,
                float(request.qty / self._contract_size(request.symbol)),
                price,
                params,
            ),
            placing=request,
        )
        if not raw.get("id"):  # an answer without an order id proves nothing either way
            raise UnknownOutcome(
                self.exchange, "the exchange's answer had no order id", request.client_order_id
            )
        placed = self._order({**raw, "symbol": raw.get("symbol") or request.symbol})
        return placed if placed.client_order_id else _with_cid(placed, request.client_order_id)

    async def _refuse_reuse(self, request: OrderRequest) -> None:
        """Where a finished order's id is accepted again, an id already used must not reach
        the venue: it is an `UnknownOutcome`, resolved by lookup like a venue's refusal."""
        try:
            await self._lookup(request.symbol, None, request.client_order_id)
        except OrderNotFound:
            return
        raise UnknownOutcome(
            self.exchange,
            f"{self._venue.venue.title} already has an order with this id; checking it",
            request.client_order_id,
        )

    def _contract_size(self, symbol: str) -> Decimal:
        """Base units per contract: ccxt sizes orders in contracts (OKX: 0.01 BTC each)."""
        market = (self.api.markets or {}).get(symbol) or {}
        return parse.dec(market.get("contractSize")) or Decimal(1)

    def _order(self, raw: Mapping[str, Any]) -> Order:
        """A ccxt order with its sizes in base units."""
        order = parse.order(raw)
        size = self._contract_size(order.symbol)
        if size == 1:
            return order
        return replace(order, qty=order.qty * size, filled_qty=order.filled_qty * size)

    async def cancel_order(self, symbol: str, order_id: str) -> Order:
        raw = await self.call("cancel_order", lambda: self.api.cancel_order(order_id, symbol))
        return self._order({**raw, "symbol": raw.get("symbol") or symbol})

    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        if order_id is None and client_order_id is None:
            raise InvalidOrder(self.exchange, "an order id or client order id is required")
        return await self._lookup(symbol, order_id, client_order_id)

    async def _lookup(
        self, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> Order:
        params: dict[str, Any] = {}
        if client_order_id is not None:
            params["clientOrderId"] = client_order_id
        raw = await self.call(
            "fetch_order", lambda: self.api.fetch_order(order_id or "", symbol, params)
        )
        return self._order(raw)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set a symbol's leverage; a value this client already set costs no request.

        Every leverage change of the account made through Tradewind goes through its one
        pooled client, so the remembered value holds while the client lives.
        """
        if self._leverage.get(symbol) == leverage:
            return
        try:
            await self.call("set_leverage", lambda: self.api.set_leverage(leverage, symbol))
        except InvalidOrder as error:
            if "not modified" not in error.message.lower():
                self._leverage.pop(symbol, None)
                raise
            # already at this leverage: Bybit answers 110043
        self._leverage[symbol] = leverage

    async def set_trading_stop(self, stop: TradingStop) -> None:
        """Position-level TP/SL where a venue's subclass sends them; elsewhere a refusal
        that names the venue (the bot then keeps a trailing stop itself)."""
        raise InvalidOrder(
            self.exchange,
            f"Changing TP/SL of an open position is not supported on "
            f"{self._venue.venue.title} yet; set them on the exchange's own site.",
        )

    async def check_account(self) -> None:
        """Raise `AccountSetupRequired` when the account cannot be traded as it is set up;
        a venue whose accounts need no check (Bybit's one-way default) has nothing to do."""

    async def fetch_key_info(self) -> KeyInfo:
        """The key's permissions; a venue's subclass reads them where the venue reports
        them, and this generic client claims nothing."""
        return KeyInfo.unreported()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.api.close()


def _oldest_first(orders: list[Order]) -> list[Order]:
    """Oldest first, as one page always came. The venues page newest first and ccxt sorts
    each page oldest first, keeping the venue's order among orders of one millisecond; a
    stable newest-first sort of the pages in turn restores the venue's order, reversed."""
    newest = sorted(orders, key=lambda o: o.created_at or _EPOCH, reverse=True)
    return newest[::-1]


def _fill_key(fill: Fill) -> str:
    return fill.fill_id


def _position_key(position: Position) -> tuple[str, str]:
    return position.symbol, position.side.value


def _unique(items: list[T], key: Callable[[T], object]) -> list[T]:
    """Items in order, each once: a list that changed between two pages may repeat one."""
    seen: set[object] = set()
    kept = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return kept


def _with_cid(order: Order, client_order_id: str) -> Order:
    return replace(order, client_order_id=client_order_id)
