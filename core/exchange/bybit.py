"""Bybit's quirks over the generic ccxt client.

Whole-market reads skip ccxt's parsers: the bulk tickers and the instruments pages are read
raw and parsed by `core.exchange.lean_tickers` and `core.exchange.lean_markets` (tickers ~6x
faster than ccxt's parse_tickers; markets without ccxt's tables, which for 5,000 contracts
cost ~1 s and tens of MB). An order is looked up among open orders, then history, by
orderId or orderLinkId. Positions and open orders follow `nextPageCursor` with the largest
pages Bybit serves (200 positions, 50 orders). The venue table (`core.exchange.venues`)
names this class for Bybit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient, Page, VenueContext
from core.exchange.errors import AccountSetupRequired, OrderNotFound
from core.exchange.lean_markets import PAGE_LIMIT, InstrumentParser, page_rows
from core.exchange.lean_tickers import parse_rows, ticker_rows
from core.exchange.models import Candle, Market, Order, Ticker

TICKER_PART = 500  # rows of the bulk tickers parsed between two turns of the event loop
POSITION_PAGE = 200  # the most /v5/position/list serves at once
ORDER_PAGE = 50  # the most /v5/order/realtime serves at once
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


def _following(found: list[Any], size: int) -> str | None:
    """The next page's cursor, None at the end. Bybit names a cursor on every page that has
    rows, the last one too; a page shorter than asked is the last, which saves the request
    that would only find it empty. ccxt leaves the cursor in one item's `info` (it sorts the
    page, so not always the first)."""
    if len(found) < size:
        return None
    cursors = (item.get("info", {}).get("nextPageCursor") for item in found)
    return next((str(c) for c in cursors if c), None)


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
