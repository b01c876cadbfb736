"""Paper trading on live prices: a real exchange's public data as a `MarketSource`.

The source answers from a snapshot held in memory, so a paper order never waits on the
network; `refresh` (run by the price job) replaces the snapshot with the market's tickers
(one bulk request, or the tape the scanner already read when `tickers` is given), and
markets are reloaded only when asked. Candles are fetched on demand through
`prefetch_ohlcv` and served from that cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from core.exchange.errors import InvalidOrder, TemporaryError
from core.exchange.models import Candle, Market, Ticker
from core.exchange.protocol import ExchangeClient


@dataclass(slots=True)
class _Snapshot:
    markets: Mapping[str, Market] = field(default_factory=dict)
    tickers: Mapping[str, Ticker] = field(default_factory=dict)


class LiveMarketSource:
    """A `MarketSource` over an exchange's public client, refreshed by a job."""

    def __init__(
        self,
        public: ExchangeClient,
        *,
        tickers: Callable[[], Awaitable[Mapping[str, Ticker]]] | None = None,
    ) -> None:
        self._public = public
        self._read_tickers = tickers or public.fetch_tickers
        self._snap = _Snapshot()
        self._candles: dict[tuple[str, str], list[Candle]] = {}

    @property
    def exchange(self) -> str:
        return self._public.exchange

    async def refresh(self, reload_markets: bool = False) -> int:
        """Take a new snapshot of the market's tickers; return how many symbols it holds."""
        markets = self._snap.markets
        if reload_markets or not markets:
            markets = await self._public.load_markets(reload=reload_markets)
        tickers = await self._read_tickers()
        # One reference assignment: readers see the old snapshot or the new one, never a mix.
        self._snap = _Snapshot(markets, {s: t for s, t in tickers.items() if s in markets})
        return len(self._snap.tickers)

    async def prefetch_ohlcv(self, symbol: str, timeframe: str = "1m", limit: int = 100) -> None:
        self._candles[(symbol, timeframe)] = await self._public.fetch_ohlcv(
            symbol, timeframe, limit
        )

    def markets(self) -> Mapping[str, Market]:
        return self._snap.markets

    def tickers(self) -> Mapping[str, Ticker]:
        return self._snap.tickers

    def ticker(self, symbol: str) -> Ticker:
        found = self._snap.tickers.get(symbol)
        if found is None:
            if not self._snap.tickers:
                raise TemporaryError(self.exchange, "Live prices are still loading, try again")
            raise InvalidOrder(self.exchange, f"{symbol} is not traded on {self.exchange}")
        return found

    def ohlcv(self, symbol: str, timeframe: str = "1m", limit: int = 100) -> list[Candle]:
        candles = self._candles.get((symbol, timeframe))
        if candles is None:
            raise TemporaryError(self.exchange, f"Candles for {symbol} are still loading")
        return candles[-limit:]
