"""The `ExchangeClient` role: everything services ask of an exchange, venue-neutral."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from core.exchange.models import (
    Balance,
    Candle,
    Market,
    Order,
    OrderRequest,
    PagedList,
    Position,
    Ticker,
)


class ExchangeClient(Protocol):
    """One account on one exchange (or the public market-data client of that exchange).

    Every method raises `core.exchange.errors.ExchangeError` subclasses only. A closed client
    refuses use. `fetch_tickers` returns the whole market in one request; positions and
    open orders are read to the end of the venue's pages (bounded: see `PagedList`).
    """

    @property
    def exchange(self) -> str: ...

    @property
    def account_type(self) -> str: ...

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]: ...

    async def fetch_tickers(self) -> Mapping[str, Ticker]: ...

    async def fetch_ticker(self, symbol: str) -> Ticker: ...

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", limit: int = 100, since: int | None = None
    ) -> list[Candle]:
        """Up to `limit` candles, oldest first: the latest ones, or from `since` (unix ms)."""
        ...

    async def fetch_balance(self) -> Balance: ...

    async def fetch_positions(self) -> PagedList[Position]: ...

    async def fetch_open_orders(self, symbol: str | None = None) -> PagedList[Order]: ...

    async def create_order(self, request: OrderRequest) -> Order: ...

    async def cancel_order(self, symbol: str, order_id: str) -> Order: ...

    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order: ...

    async def set_leverage(self, symbol: str, leverage: int) -> None: ...

    async def close(self) -> None: ...
