"""The market scanner: the whole market from one bulk tickers request, scored at once, the
best few confirmed on their candles, the strong ones published as signals.

Per scan: one tickers request; one column appended to the ring buffers; features and a
pre-score for every symbol in a handful of numpy operations (`services.features`); the top
K candidates (default 10) get one OHLCV request each, concurrently and through the venue's
shared rate limiter; a candidate whose candles confirm it (score ≥ `min_score`) and that is
not in cooldown becomes a signal, at most `max_per_scan` per scan, best first.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from core.clock import Clock
from core.exchange.errors import ExchangeError
from core.exchange.models import Candle, Ticker
from core.exchange.protocol import ExchangeClient
from db.repositories.markets import TRADING, MarketRow
from services.exchanges import ExchangeGateway
from services.features import F64, Bars, RingBook, confirm, scan_features, suggest, top_k
from services.market_registry import MarketRegistry
from services.signals import SignalDraft, SignalRecord, SignalService

log = logging.getLogger(__name__)

TIMEFRAME, BARS, BAR_MINUTES = "5m", 48, 5  # 4 hours of 5-minute candles per candidate
FLOOR = 0.05  # a pre-score at or below this is never a candidate


@dataclass(slots=True, frozen=True)
class ScanReport:
    """One scan's phases (ms), its funnel and the signals it stored."""

    fetch_ms: float
    features_ms: float
    confirm_ms: float
    store_ms: float
    symbols: int
    candidates: int
    confirmed: int
    checked: int = 0  # candidates whose candles were fetched and judged
    signals: list[SignalRecord] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"market scan: fetch {self.fetch_ms:.0f} ms, features {self.features_ms:.1f} ms, "
            f"confirm {self.confirm_ms:.0f} ms, store {self.store_ms:.0f} ms — "
            f"{self.symbols} symbols, {self.candidates} candidates, {self.checked} checked on "
            f"candles, {self.confirmed} confirmed, "
            f"{len(self.signals)} signals"
        )


class Scanner:
    """Scans the market source; keeps its ring buffers between scans."""

    def __init__(
        self,
        gateway: ExchangeGateway,
        registry: MarketRegistry,
        signals: SignalService,
        clock: Clock,
        *,
        top: int = 10,
        min_score: float = 0.6,
        max_per_scan: int = 3,
        history: int = 360,
        recheck_s: float = 60.0,
        interval_s: float = 10.0,
    ) -> None:
        self._gateway = gateway
        self._registry = registry
        self._signals = signals
        self._clock = clock
        self.top = top
        self.min_score = min_score
        self.max_per_scan = max_per_scan
        self.recheck_s = recheck_s
        self.interval_s = interval_s  # how often the scan job runs
        self.book = RingBook(history)
        self._checked: dict[str, float] = {}  # symbol → when its candles last said no

    async def scan(self) -> ScanReport:
        start = time.perf_counter()
        feed = await self._gateway.market_feed()
        tickers = _tradable(
            await self._gateway.tickers(self._gateway.market_source), self._registry
        )
        fetched = time.perf_counter()
        now = self._clock.now().timestamp()
        symbols = tuple(tickers)
        rows = self._registry.snapshot.rows
        quotes = list(tickers.values())
        last = _column(quotes, "last")
        features = scan_features(
            self.book,
            self.book.append(now, symbols, last, _column(quotes, "quote_volume_24h")),
            symbols,
            now,
            last,
            _column(quotes, "low_24h", last),
            _column(quotes, "high_24h", last),
            np.fromiter((_listed(rows.get(s)) for s in symbols), np.float64, len(symbols)),
        )
        scores = features.score.copy()
        short = np.nan_to_num(features.ret_long) < 0
        # Only a symbol above the floor can be picked: the others need no cooldown lookup.
        for i in np.flatnonzero(scores > FLOOR).tolist():
            symbol = symbols[i]
            checked = self._checked.get(symbol)
            recent = checked is not None and now - checked < self.recheck_s
            if recent or self._signals.cooling(symbol, "short" if short[i] else "long"):
                scores[i] = 0.0
        picks = top_k(scores, self.top, floor=FLOOR)
        scored = time.perf_counter()
        candles = await self._candles(feed, [symbols[i] for i in picks])
        kept = [k for k, c in enumerate(candles) if c]
        verdicts = confirm(
            Bars.stack([_series(candles[k]) for k in kept]),
            features.age_h[picks[kept]],
            BAR_MINUTES,
        )
        drafts: list[SignalDraft] = []
        for k, verdict in zip(kept, verdicts, strict=True):
            symbol = symbols[picks[k]]
            if verdict is None or verdict.score < self.min_score:
                self._checked[symbol] = now
                continue
            if self._signals.cooling(symbol, verdict.side):
                continue
            row = rows.get(symbol)
            leverage, tp, sl = suggest(verdict.atr_pct, row.max_leverage if row else 20)
            drafts.append(
                SignalDraft(
                    source=self._gateway.market_source,
                    symbol=symbol,
                    side=verdict.side,
                    score=verdict.score,
                    price=tickers[symbol].last,
                    leverage=leverage,
                    tp_pct=Decimal(str(tp)),
                    sl_pct=Decimal(str(sl)),
                    reasons=verdict.reasons,
                )
            )
        drafts.sort(key=lambda d: d.score, reverse=True)
        confirmed = time.perf_counter()
        stored = await self._signals.publish(drafts[: self.max_per_scan])
        self._forget(now)
        return ScanReport(
            fetch_ms=(fetched - start) * 1000,
            features_ms=(scored - fetched) * 1000,
            confirm_ms=(confirmed - scored) * 1000,
            store_ms=(time.perf_counter() - confirmed) * 1000,
            symbols=len(symbols),
            candidates=len(picks),
            confirmed=len(drafts),
            checked=sum(verdict is not None for verdict in verdicts),
            signals=stored,
        )

    async def _candles(self, feed: ExchangeClient, symbols: Sequence[str]) -> list[list[Candle]]:
        """Candles of each candidate, concurrently (ccxt venues pace them through their one
        shared rate limiter); a candidate whose request fails is skipped this scan."""

        async def one(symbol: str) -> list[Candle]:
            try:
                return await feed.fetch_ohlcv(symbol, TIMEFRAME, BARS)
            except ExchangeError as error:
                log.debug("no candles for %s: %s", symbol, error)
                return []

        return list(await asyncio.gather(*(one(s) for s in symbols)))

    def _forget(self, now: float) -> None:
        if len(self._checked) > 4 * self.top:
            self._checked = {s: t for s, t in self._checked.items() if now - t < self.recheck_s}


def _tradable(tickers: Mapping[str, Ticker], registry: MarketRegistry) -> dict[str, Ticker]:
    """Tickers of symbols trading (all of them until the registry has synced once)."""
    rows = registry.snapshot.rows
    if not rows:
        return dict(tickers)
    return {s: t for s, t in tickers.items() if (r := rows.get(s)) is None or r.status == TRADING}


def _column(tickers: Sequence[Ticker], name: str, fallback: F64 | None = None) -> F64:
    """One ticker field of every symbol as floats (None → `fallback`, or NaN)."""
    values = [getattr(t, name) for t in tickers]
    out: F64 = np.fromiter(
        (math.nan if v is None else float(v) for v in values), np.float64, len(values)
    )
    if fallback is not None:
        out = np.where(np.isnan(out), fallback, out)
    return out


def _listed(row: MarketRow | None) -> float:
    return math.nan if row is None else row.listed_at.timestamp()


def _series(candles: Sequence[Candle]) -> dict[str, list[float]]:
    return {
        "high": [float(c.high) for c in candles],
        "low": [float(c.low) for c in candles],
        "close": [float(c.close) for c in candles],
        "volume": [float(c.volume) for c in candles],
    }
