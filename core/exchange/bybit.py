"""Bybit's quirks over the generic ccxt client.

Whole-market reads skip ccxt's parsers: the bulk tickers and the instruments pages are read
raw and parsed by `core.exchange.lean_tickers` and `core.exchange.lean_markets` (tickers ~6x
faster than ccxt's parse_tickers; markets without ccxt's tables, which for 5,000 contracts
cost ~1 s and tens of MB). An order is looked up among open orders, then history, by
orderId or orderLinkId. Positions, open orders, executions and closed PnL follow
`nextPageCursor` with the largest pages Bybit serves (200 positions, 50 orders, 100 rows).
The venue table (`core.exchange.venues`) names this class for Bybit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient, Page, VenueContext
from core.exchange.errors import AccountSetupRequired, ExchangeError, OrderNotFound
from core.exchange.key_info import KeyInfo
from core.exchange.lean_markets import PAGE_LIMIT, InstrumentParser, page_rows
from core.exchange.lean_tickers import parse_rows, ticker_rows
from core.exchange.models import (
    ZERO,
    Candle,
    ClosedPnl,
    Fill,
    Market,
    Order,
    PagedList,
    PositionSide,
    Side,
    Ticker,
    TradingStop,
)

TICKER_PART = 500  # rows of the bulk tickers parsed between two turns of the event loop
POSITION_PAGE = 200  # the most /v5/position/list serves at once
ORDER_PAGE = 50  # the most /v5/order/realtime serves at once
HISTORY_PAGE = 100  # the most /v5/execution/list and /v5/position/closed-pnl serve at once
HISTORY_DAYS_MS = 7 * 86_400_000 - 60_000  # one read's window, less a minute of clock skew
# Executions that moved a position; funding, settlement and delivery rows did not.
_FILL_TYPES = frozenset({"Trade", "BustTrade", "AdlTrade", "BlockTrade"})
_TRIGGERS = {
    "TakeProfit": "take_profit",
    "PartialTakeProfit": "take_profit",
    "StopLoss": "stop_loss",
    "PartialStopLoss": "stop_loss",
    "TrailingStop": "stop_loss",
}
PROBE = "BTCUSDT"  # the position mode is set per settle coin: one USDT contract tells


class BybitClient(CcxtClient):
    """A Bybit account (or its public feed) through ccxt, whole-market reads parsed raw."""

    def __init__(self, venue: VenueContext, api: Any, account_type: str, public: bool = False):
        super().__init__(venue, api, account_type, public)
        self._instruments = InstrumentParser()  # the contracts as last loaded
        self.position_page, self.order_page = POSITION_PAGE, ORDER_PAGE

    @classmethod
    def configure(cls, api: Any) -> None:
        api.has["fetchCurrencies"] = False  # not needed for perpetuals; one request less

    async def fetch_tickers(self) -> Mapping[str, Ticker]:
        """Every ticker in one request: the raw endpoint and our own parse."""
        raw = await self._with_markets(
            self.call(
                "fetch_tickers", lambda: self.api.publicGetV5MarketTickers({"category": "linear"})
            )
        )
        return await _parse_in_parts(raw, self._venue.symbols_by_id())

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", limit: int = 100, since: int | None = None
    ) -> list[Candle]:
        """Candles of a known linear contract from the raw kline endpoint, parsed from its
        strings (ccxt's parse goes through floats and safe_number and then back to Decimal:
        ~3 ms of event-loop time per 48 candles, for each of the scanner's candidates)."""
        market = self._venue.markets().get(symbol)
        interval = self.api.timeframes.get(timeframe)
        if market is None or interval is None:
            return await super().fetch_ohlcv(symbol, timeframe, limit, since)
        request = {
            "category": "linear", "symbol": market.exchange_id, "interval": interval,
            "limit": limit,
        }  # fmt: skip
        if since is not None:
            request["start"] = since
        raw = await self.call("fetch_ohlcv", lambda: self.api.publicGetV5MarketKline(request))
        return candles_from_bybit(raw)

    async def fetch_markets_lean(self) -> dict[str, Market]:
        """The requests ccxt's fetch_markets sends for linear contracts: the first page and
        the pre-launch list at once, then the further pages, each parsed on arrival."""
        request: dict[str, Any] = {"category": "linear", "limit": PAGE_LIMIT}

        def page(params: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
            return lambda: self.api.publicGetV5MarketInstrumentsInfo(dict(params))

        first, pre = await asyncio.gather(
            self.call("load_markets", page(request)),
            self.call("load_markets", page({**request, "status": "PreLaunch"})),
        )
        category, rows, cursor = page_rows(first)
        parser = self._instruments
        pre_launch = parser.parse_page(page_rows(pre)[1], category)
        pages: list[list[Market]] = []
        while True:
            following = None
            if cursor is not None:  # ask for the next page first, parse this one meanwhile
                params = {**request, "cursor": cursor}
                following = asyncio.ensure_future(self.call("load_markets", page(params)))
            try:
                pages.append(parser.parse_page(rows, category))
            except BaseException:
                if following is not None:
                    following.cancel()
                raise
            if following is None:
                break
            _, rows, cursor = page_rows(await following)
            if not rows:  # ccxt stops at an empty page whatever its cursor says
                break
        return parser.combine(pages, pre_launch)

    async def _positions_page(self, params: dict[str, Any], cursor: str | None) -> Page:
        asked = {**params, "limit": self.position_page, **({"cursor": cursor} if cursor else {})}
        found = await self.api.fetch_positions(None, asked)
        return found, _following(found, self.position_page)

    async def _orders_page(
        self, symbol: str | None, params: dict[str, Any], cursor: str | None
    ) -> Page:
        asked = {**params, **({"cursor": cursor} if cursor else {})}
        found = await self.api.fetch_open_orders(symbol, None, self.order_page, asked)
        return found, _following(found, self.order_page)

    async def set_trading_stop(self, stop: TradingStop) -> None:
        """`/v5/position/trading-stop` in Full mode: "0" removes a level, a level left out
        stays; `trailingStop` is a price distance, `activePrice` where trailing begins."""
        market = self._venue.markets().get(stop.symbol)
        symbol_id = market.exchange_id if market else self.api.market_id(stop.symbol)
        request: dict[str, Any] = {
            "category": "linear", "symbol": symbol_id, "tpslMode": "Full", "positionIdx": 0,
        }  # fmt: skip
        for key, value in (
            ("takeProfit", stop.take_profit),
            ("stopLoss", stop.stop_loss),
            ("trailingStop", stop.trailing_distance),
        ):
            if value is not None:
                request[key] = "0" if value == ZERO else format(value, "f")
        if stop.trailing_distance and stop.trailing_activation:
            request["activePrice"] = format(stop.trailing_activation, "f")
        try:
            await self.call(
                "set_trading_stop",
                lambda: self.api.privatePostV5PositionTradingStop(request),
                retry=False,
            )
        except ExchangeError as error:  # ccxt files 34040 as a plain error
            if "not modified" not in error.message.lower():
                raise
            # the levels are already so: Bybit answers 34040 "not modified"

    async def fetch_fills(self, since: datetime | None = None) -> PagedList[Fill]:
        """Executions from `/v5/execution/list`, parsed from its strings (execId, execPnl
        and what triggered the order are not in ccxt's unified trade), oldest first."""
        rows, complete = await self._history("fetch_fills", "privateGetV5ExecutionList", since)
        names = await self._symbol_names()
        fills = [fill_from_bybit(r, names) for r in rows if r.get("execType") in _FILL_TYPES]
        found = [f for f in fills if f is not None]
        return PagedList(sorted(found[::-1], key=lambda f: f.ts), complete)

    async def fetch_closed_pnl(self, since: datetime | None = None) -> PagedList[ClosedPnl]:
        """Closed-position records from `/v5/position/closed-pnl`, oldest first."""
        rows, complete = await self._history(
            "fetch_closed_pnl", "privateGetV5PositionClosedPnl", since
        )
        names = await self._symbol_names()
        parsed = (closed_pnl_from_bybit(r, names) for r in rows)
        found = [c for c in parsed if c is not None]
        return PagedList(sorted(found[::-1], key=lambda c: c.ts), complete)

    async def _history(
        self, method: str, endpoint: str, since: datetime | None
    ) -> tuple[list[Any], bool]:
        """A history list newest first, every page (or `list_pages` of them). With no
        `since`, Bybit answers the last seven days."""
        request: dict[str, Any] = {"category": "linear", "limit": HISTORY_PAGE}
        if since is not None:
            # Bybit answers [startTime, startTime + 7 days]: an older start would stop there.
            oldest = int(time.time() * 1000) - HISTORY_DAYS_MS
            request["startTime"] = max(int(since.timestamp() * 1000), oldest)
        call = getattr(self.api, endpoint)

        async def page(cursor: str | None) -> Page:
            answer = await call({**request, **({"cursor": cursor} if cursor else {})})
            result = answer.get("result") or {}
            rows = result.get("list") or []
            following = result.get("nextPageCursor") if len(rows) >= HISTORY_PAGE else None
            return rows, str(following) if following else None

        return await self._read_pages(method, page)

    async def _symbol_names(self) -> Mapping[str, str]:
        if not self._venue.symbols_by_id():
            await self.load_markets()
        return self._venue.symbols_by_id()

    async def check_account(self) -> None:
        """Tradewind trades one-way: in hedge mode Bybit lists a contract once per side
        (positionIdx 1 and 2) and refuses orders without one."""
        answer = await self.call(
            "fetch_positions",
            lambda: self.api.privateGetV5PositionList({"category": "linear", "symbol": PROBE}),
        )
        rows = (answer.get("result") or {}).get("list") or []
        if any(str(row.get("positionIdx") or "0") != "0" for row in rows):
            raise AccountSetupRequired(
                self.exchange,
                "Your Bybit account trades USDT perpetuals in Hedge Mode; Tradewind trades in "
                "One-Way Mode. Switch it in Derivatives → Preferences → Position Mode (with no "
                "open positions or orders), then /connect again.",
            )

    async def fetch_key_info(self) -> KeyInfo:
        """`GET /v5/user/query-api`, through ccxt's implicit API: the key's own permissions."""
        answer = await self.call("fetch_key_info", lambda: self.api.privateGetV5UserQueryApi({}))
        return key_info_from_bybit(answer.get("result") or {})

    async def _lookup(
        self, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> Order:
        """Search open orders, then history, by orderId or orderLinkId."""
        params = {"orderId": order_id} if order_id else {"orderLinkId": client_order_id}
        found = await self.call(
            "fetch_order", lambda: self.api.fetch_open_orders(symbol, None, None, dict(params))
        )
        if not found:
            found = await self.call(
                "fetch_order",
                lambda: self.api.fetch_closed_orders(symbol, None, None, dict(params)),
            )
        if not found:
            raise OrderNotFound(self.exchange, f"{self._venue.venue.title} has no such order")
        return self._order(found[0])


def key_info_from_bybit(result: Mapping[str, Any]) -> KeyInfo:
    """A query-api result: `readOnly` 1 cannot trade at all; USDT perpetuals need an order
    permission (ContractTrade "Order" on a classic account, Derivatives "DerivativesTrade"
    on a unified one); Wallet "Withdraw" can move funds out; `ips` ["*"] (or none) is no
    whitelist."""
    permissions = result.get("permissions") or {}
    contract = permissions.get("ContractTrade") or []
    derivatives = permissions.get("Derivatives") or []
    read_only = str(result.get("readOnly", "0")) == "1"
    ips = [str(ip).strip() for ip in result.get("ips") or [] if str(ip).strip()]
    return KeyInfo(
        reported=True,
        can_trade=not read_only and ("Order" in contract or "DerivativesTrade" in derivatives),
        can_withdraw="Withdraw" in (permissions.get("Wallet") or []),
        ip_restricted=bool(ips) and "*" not in ips,
    )


def _following(found: list[Any], size: int) -> str | None:
    """The next page's cursor, None at the end. Bybit names a cursor on every page that has
    rows, the last one too; a page shorter than asked is the last, which saves the request
    that would only find it empty. ccxt leaves the cursor in one item's `info` (it sorts the
    page, so not always the first)."""
    if len(found) < size:
        return None
    cursors = (item.get("info", {}).get("nextPageCursor") for item in found)
    return next((str(c) for c in cursors if c), None)


def fill_from_bybit(row: Mapping[str, Any], names: Mapping[str, str]) -> Fill | None:
    """One `/v5/execution/list` row as a `Fill` (None for a contract Tradewind does not
    know). `closedSize` > 0 marks an execution that reduced a position."""
    symbol = names.get(str(row.get("symbol")))
    stamp = parse.utc(row.get("execTime"))
    if symbol is None or stamp is None:
        return None
    pnl = parse.dec(row.get("execPnl"))
    return Fill(
        fill_id=str(row["execId"]),
        order_id=str(row.get("orderId") or ""),
        client_order_id=str(row.get("orderLinkId") or "") or None,
        symbol=symbol,
        side=Side.BUY if row.get("side") == "Buy" else Side.SELL,
        price=parse.dec0(row.get("execPrice")),
        qty=parse.dec0(row.get("execQty")),
        fee=parse.dec0(row.get("execFee")),
        fee_currency=str(row.get("feeCurrency") or "USDT"),
        ts=stamp,
        realised_pnl=pnl,
        reduce_only=parse.dec0(row.get("closedSize")) > 0,
        trigger=execution_trigger(row),
    )


def execution_trigger(row: Mapping[str, Any]) -> str | None:
    """What sent an execution's order when the trader did not (a TP, an SL, a trailing
    stop, liquidation), from the same fields in REST rows and pushed `execution` frames."""
    if row.get("execType") == "BustTrade" or row.get("createType") == "CreateByLiq":
        return "liquidation"
    return _TRIGGERS.get(str(row.get("stopOrderType") or ""))


def closed_pnl_from_bybit(row: Mapping[str, Any], names: Mapping[str, str]) -> ClosedPnl | None:
    """One `/v5/position/closed-pnl` row; its `side` is the closing order's, so the
    position's is the other one."""
    symbol = names.get(str(row.get("symbol")))
    stamp = parse.utc(row.get("updatedTime") or row.get("createdTime"))
    if symbol is None or stamp is None:
        return None
    return ClosedPnl(
        order_id=str(row.get("orderId") or ""),
        symbol=symbol,
        side=PositionSide.SHORT if row.get("side") == "Buy" else PositionSide.LONG,
        qty=parse.dec0(row.get("closedSize") or row.get("qty")),
        entry_price=parse.dec0(row.get("avgEntryPrice")),
        exit_price=parse.dec0(row.get("avgExitPrice")),
        closed_pnl=parse.dec0(row.get("closedPnl")),
        ts=stamp,
        open_fee=parse.dec(row.get("openFee")),
        close_fee=parse.dec(row.get("closeFee")),
    )


def candles_from_bybit(payload: Any) -> list[Candle]:
    """A kline answer's rows (newest first: start, open, high, low, close, volume, turnover)
    as candles, oldest first, as ccxt returns them."""
    rows = payload.get("result", {}).get("list") or []
    candles = [Candle(int(row[0]), *(parse.dec0(value) for value in row[1:6])) for row in rows]
    candles.sort(key=lambda candle: candle.ts)
    return candles


async def _parse_in_parts(payload: Any, symbols_by_id: Mapping[str, str]) -> dict[str, Ticker]:
    """`tickers_from_bybit` in parts of `TICKER_PART` rows with the event loop let in between:
    5,000 tickers are ~60 ms of parsing that would otherwise hold up every other request's
    answer (a registry sync's market pages, a trader's order) for that long."""
    rows, stamp = ticker_rows(payload)
    tickers: dict[str, Ticker] = {}
    for start in range(0, len(rows), TICKER_PART):
        if start:
            await asyncio.sleep(0)
        tickers.update(parse_rows(rows[start : start + TICKER_PART], symbols_by_id, stamp))
    return tickers
