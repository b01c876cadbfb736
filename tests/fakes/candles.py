"""A candle feed whose candles are a formula of (symbol, time), counting what it is asked."""

from __future__ import annotations

from core.clock import Clock
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
