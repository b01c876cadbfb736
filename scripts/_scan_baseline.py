"""The scan benchmark's baselines: the naive and the batched scanner and registry sync a
competent engineer would write first, over the same adapter and store as Tradewind."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from core.exchange.models import Market, Ticker
from core.exchange.protocol import ExchangeClient
from db.repositories.markets import TRADING, MarketRepository, MarketRow
from services.features import Bars, confirm
from services.scanner import BARS, TIMEFRAME, _series

BATCH_REQUESTS, BATCH_ROWS = 50, 100  # the batched baseline: tickers and rows per batch


def _row(market: Market, ticker: Ticker | None, now: datetime) -> MarketRow:
    return MarketRow(
        source="bybit", symbol=market.symbol, base=market.base, quote=market.quote,
        settle=market.settle, status=TRADING, is_new=False,
        listed_at=market.listed_at or now, delisted_at=None, tick_size=market.tick_size,
        lot_size=market.lot_size, min_qty=market.min_qty, min_notional=market.min_notional,
        max_leverage=market.max_leverage,
        last_price=float(ticker.last) if ticker else None,
        volume_24h=float(ticker.quote_volume_24h) if ticker else None,
        change_24h_pct=float(ticker.change_24h_pct) if ticker and ticker.change_24h_pct else None,
    )  # fmt: skip


class Baseline:
    """The naive and the batched scanner/registry over the same adapter and store; they
    confirm on candles as many candidates as Tradewind did (`top`)."""

    def __init__(
        self, feed: ExchangeClient, repo: MarketRepository, batched: bool, top: int
    ) -> None:
        self.feed, self.repo, self.batched, self.top = feed, repo, batched, top
        self.lock = asyncio.Lock()
        self.history: dict[str, list[float]] = {}
        self.snapshot: dict[str, MarketRow] = {}

    async def tickers(self, symbols: Sequence[str]) -> dict[str, Ticker]:
        found: dict[str, Ticker] = {}
        if not self.batched:
            for symbol in symbols:
                found[symbol] = await self.feed.fetch_ticker(symbol)
            return found
        for start in range(0, len(symbols), BATCH_REQUESTS):
            chunk = symbols[start : start + BATCH_REQUESTS]
            for symbol, ticker in zip(
                chunk,
                await asyncio.gather(*(self.feed.fetch_ticker(s) for s in chunk)),
                strict=True,
            ):
                found[symbol] = ticker
        return found

    async def scan(self) -> tuple[int, int, int]:
        markets = await self.feed.load_markets()
        tickers = await self.tickers(list(markets))
        scores: dict[str, float] = {}
        if self.batched:
            async with self.lock:
                for symbol, ticker in tickers.items():
                    self.history.setdefault(symbol, []).append(float(ticker.last))
        for symbol, ticker in tickers.items():
            if not self.batched:
                async with self.lock:
                    self.history.setdefault(symbol, []).append(float(ticker.last))
            prices = self.history[symbol][-360:]
            move = math.log(prices[-1] / prices[0]) if prices[0] > 0 else 0.0
            span = float((ticker.high_24h or ticker.last) - (ticker.low_24h or ticker.last))
            pos = float(ticker.last - (ticker.low_24h or ticker.last)) / span if span else 0.5
            scores[symbol] = abs(move) + abs(pos - 0.5)
        best = sorted(scores, key=scores.__getitem__, reverse=True)[: self.top]
        if self.batched:
            sets = await asyncio.gather(*(self.feed.fetch_ohlcv(s, TIMEFRAME, BARS) for s in best))
        else:
            sets = [await self.feed.fetch_ohlcv(symbol, TIMEFRAME, BARS) for symbol in best]
        verdicts = [
            confirm(Bars.stack([_series(candles)]), np.array([math.nan]))[0] for candles in sets
        ]
        checked = [v for v in verdicts if v is not None]
        return len(best), len(checked), sum(v.score >= 0.6 for v in checked)

    async def sync(self) -> tuple[int, int, int]:
        markets = await self.feed.load_markets(reload=True)
        tickers = await self.tickers([s for s, m in markets.items() if m.active])
        now = datetime.now(UTC)
        rows = [_row(m, tickers.get(s), now) for s, m in markets.items()]
        listed = sum(row.symbol not in self.snapshot for row in rows) if self.snapshot else 0
        delisted = len(self.snapshot.keys() - markets.keys())
        if self.batched:
            async with self.lock:
                self.snapshot = {row.symbol: row for row in rows}
            for start in range(0, len(rows), BATCH_ROWS):
                await self.repo.apply(rows[start : start + BATCH_ROWS], [], now)
            return listed, delisted, len(rows)
        for row in rows:
            async with self.lock:
                self.snapshot[row.symbol] = row
            await self.repo.upsert_one(row, now)
        return listed, delisted, len(rows)
