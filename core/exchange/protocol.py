"""The `ExchangeClient` role: everything services ask of an exchange, venue-neutral."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from core.exchange.key_info import KeyInfo
from core.exchange.models import (
    Balance,
    Candle,
    ClosedPnl,
    Fill,
    Market,
    Order,
    OrderRequest,
    PagedList,
    Position,
    Ticker,
    TradingStop,
)


class ExchangeClient(Protocol):
    """One account on one exchange (or the public market-data client of that exchange).

    Every method raises `core.exchange.errors.ExchangeError` subclasses only. A closed client
    refuses use. `fetch_tickers` returns the whole market in one request; positions and
    open orders, executions and closed PnL are read to the end of the venue's pages
    (bounded: see `PagedList`).
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

    async def fetch_key_info(self) -> KeyInfo:
        """The key's own permissions (trade, withdraw, IP whitelist), where the venue says."""
        ...

    async def set_trading_stop(self, stop: TradingStop) -> None:
        """Set, move or remove an open position's TP, SL and trailing stop.

        A venue without position-level levels refuses with `InvalidOrder`, saying so.
        """
        ...

    async def fetch_fills(self, since: datetime | None = None) -> PagedList[Fill]:
        """Every execution at or after `since` (the venue's recent history when None),
        oldest first, page after page to the end (bounded: see `PagedList`)."""
        ...

    async def fetch_closed_pnl(self, since: datetime | None = None) -> PagedList[ClosedPnl]:
        """The venue's closed-position records at or after `since`, oldest first; empty
        where the venue keeps none (the ledger then computes PnL from the fills)."""
        ...

    async def name_triggers(self, fills: Sequence[Fill]) -> list[Fill]:
        """`fills` (pushed ones, which may not say what sent their order), with the TP, SL
        or liquidation behind each close named where the venue's records tell; a venue
        whose pushes name it already hands them back as they are."""
        ...

    async def close(self) -> None: ...
