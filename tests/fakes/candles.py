"""A candle feed whose candles are a formula of (symbol, time), counting what it is asked, and
a market that replays fixed candle arrays."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import numpy.typing as npt

from core.clock import Clock
from core.exchange.models import Candle, Market, Ticker
from core.paper.market_source import TIMEFRAMES
from db.repositories.candles import CandleRow


class FakeCandleFeed:
    """Implements `services.candles.CandleFeed`: every complete bar exists, priced
    `100 + symbol index + bar number / 1000`, and every request is recorded."""

    source = "fake"

    def __init__(self, clock: Clock, symbols: list[str]) -> None:
        self._clock = clock
        self._index = {s: i for i, s in enumerate(symbols)}
        self.requests: list[tuple[str, str, int, int]] = []

    async def candles(
        self, symbol: str, timeframe: str, since_ms: int, limit: int
    ) -> list[CandleRow]:
        self.requests.append((symbol, timeframe, since_ms, limit))
        step = TIMEFRAMES[timeframe] * 1000
        now = int(self._clock.now().timestamp() * 1000)
        first = -(-since_ms // step) * step
        rows: list[CandleRow] = []
        for ts in range(first, now - step + 1, step):
            if len(rows) == limit:
                break
            price = 100 + self._index[symbol] + ts / step / 1000
            rows.append((ts, price, price + 1, price - 1, price, 10.0))
        return rows


class ReplayMarket:
    """Implements `core.paper.market_source.MarketSource` over fixed candle arrays
    (symbols × bars, bars `bar_s` apart from `start_s`): at any moment the bar ending at or
    after it is the forming one, shown with its final values; the ticker's last price is
    its close, at the top of a 24 h range (so every symbol pre-scores as a candidate)."""

    def __init__(
        self,
        clock: Clock,
        markets: list[Market],
        start_s: int,
        values: npt.NDArray[np.float64],  # (open, high, low, close, volume) × symbols × bars
        bar_s: int = 300,
    ) -> None:
        self._clock = clock
        self._markets = {m.symbol: m for m in markets}
        self._row = {m.symbol: i for i, m in enumerate(markets)}
        self._start, self._values, self._bar_s = start_s, values, bar_s

    def bar(self) -> int:
        """The forming bar now."""
        return -(-(int(self._clock.now().timestamp()) - self._start) // self._bar_s) - 1

    def markets(self) -> dict[str, Market]:
        return dict(self._markets)

    def tickers(self) -> dict[str, Ticker]:
        return {s: self.ticker(s) for s in self._markets}

    def ticker(self, symbol: str) -> Ticker:
        last = _dec(self._values[3, self._row[symbol], self.bar()])
        return Ticker(
            symbol, last, last, last, last, last, last * Decimal("0.9"), Decimal(1000),
            Decimal(1000) * last, Decimal(0), self._clock.now(),
        )  # fmt: skip

    def ohlcv(self, symbol: str, timeframe: str = "1m", limit: int = 100) -> list[Candle]:
        t, i = self.bar(), self._row[symbol]
        first = max(0, t - limit + 1)
        return [
            Candle(
                (self._start + b * self._bar_s) * 1000,
                *(_dec(self._values[k, i, b]) for k in range(5)),
            )
            for b in range(first, t + 1)
        ]


def _dec(value: float) -> Decimal:
    """The float's shortest repr: float(Decimal) gives the very same float back."""
    return Decimal(repr(float(value)))
