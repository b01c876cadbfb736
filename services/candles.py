"""The candle store: 5-minute and 1-hour candles of the scanner's market, kept in SQLite for
backtests.

The collector job brings every trading symbol up to date from its newest stored bar (so a
gap left by downtime is filled on the next run) and deletes what is older than the
retention. A backtest asks `ensure` for its range first: what is missing is fetched then.
A fetch is remembered by (symbol, timeframe, range), so a second backtest over the same
range sends nothing.

Where candles come from (`CandleFeed`): on the synthetic paper market, the generator itself
(`SyntheticMarket.history`, computed in a thread, no network); on a live market source, the
venue's OHLCV pages of up to 1,000 candles, a few at a time through its shared rate limiter,
at most `max_requests` per run so the collector never takes the scanner's budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cachetools import LRUCache

from core.clock import Clock
from core.exchange.errors import ExchangeError
from core.exchange.models import Candle
from core.paper.market_source import TIMEFRAMES
from core.paper.synthetic import SyntheticMarket
from db.repositories.candles import CandleRepository, CandleRow
from db.repositories.markets import TRADING
from services.exchanges import ExchangeGateway
from services.market_registry import MarketRegistry

log = logging.getLogger(__name__)

STORED = ("5m", "1h")
PAGE = 1_000  # candles per request (the venues' largest page)
BATCH = 32  # symbols fetched, then written in one transaction


class CandleFeed(Protocol):
    """Completed candles of one symbol from `since_ms` on, at most `limit`."""

    source: str

    async def candles(
        self, symbol: str, timeframe: str, since_ms: int, limit: int
    ) -> list[CandleRow]: ...


class MarketCandles:
    """The scanner market's candles: the synthetic generator's own history on the paper
    market (computed in a thread, no network), the venue's OHLCV pages otherwise (the
    forming bar dropped: it is stored once complete)."""

    def __init__(self, gateway: ExchangeGateway, clock: Clock) -> None:
        self._gateway = gateway
        self._clock = clock
        self.source = gateway.market_source

    async def candles(
        self, symbol: str, timeframe: str, since_ms: int, limit: int
    ) -> list[CandleRow]:
        if self.source == "paper":
            market = await self._gateway.paper_source()
            if isinstance(market, SyntheticMarket):
                return await asyncio.to_thread(market.history, symbol, timeframe, since_ms, limit)
        feed = await self._gateway.market_feed()
        found = await feed.fetch_ohlcv(symbol, timeframe, limit, since=since_ms)
        step = TIMEFRAMES[timeframe] * 1000
        now = int(self._clock.now().timestamp() * 1000)
        return [_row(c) for c in found if c.ts >= since_ms and c.ts + step <= now]


@dataclass(slots=True, frozen=True)
class CollectReport:
    """One run of the collector (or one `ensure`): phases in ms and what moved."""

    symbols: int
    requests: int
    added: int
    pruned: int
    fetch_ms: float
    store_ms: float
    prune_ms: float
    behind: int = 0  # symbols still behind: the request budget ran out, next run goes on

    def line(self) -> str:
        behind = f", {self.behind} still behind" if self.behind else ""
        return (
            f"candles: fetch {self.fetch_ms:.0f} ms, store {self.store_ms:.0f} ms, prune "
            f"{self.prune_ms:.0f} ms — {self.symbols} symbols, {self.requests} requests, "
            f"+{self.added} candles, -{self.pruned} old{behind}"
        )


class CandleStore:
    """Collects candles into the store and answers which series a backtest reads."""

    def __init__(
        self,
        candles: CandleRepository,
        listed: Callable[[], Iterable[str]],
        feed: CandleFeed,
        clock: Clock,
        *,
        retention_days: int = 90,
        backfill_days: int = 7,
        max_requests: int = 600,
        concurrency: int = 4,
    ) -> None:
        self._candles = candles
        self._listed = listed
        self.feed = feed
        self._clock = clock
        self.retention_days = retention_days
        self.backfill_days = backfill_days
        self.max_requests = max_requests
        self._slots = asyncio.Semaphore(concurrency)
        self._fetched: LRUCache[tuple[str, str, int, int], bool] = LRUCache(maxsize=20_000)
        self._lock = asyncio.Lock()  # the job and a backtest's fill never fetch the same gap
        self.requests = 0  # sent since start (tests and /health read it)

    @property
    def source(self) -> str:
        return self.feed.source

    def symbols(self) -> list[str]:
        """The market source's symbols trading now, by name."""
        return sorted(self._listed())

    async def collect(self) -> CollectReport:
        """Bring every trading symbol's 5m and 1h candles up to now; prune the old ones."""
        now = self._now_ms()
        since = now - self.backfill_days * 86_400_000
        cutoff = now - self.retention_days * 86_400_000
        reports = [
            await self._fill(self.symbols(), tf, since, now, floor_ms=cutoff) for tf in STORED
        ]
        start = time.perf_counter()
        pruned = 0
        for tf in STORED:
            series = await self._candles.series(self.source, tf, self.symbols())
            pruned += await self._candles.prune(list(series.values()), cutoff)
        prune_ms = (time.perf_counter() - start) * 1000
        return CollectReport(
            symbols=reports[0].symbols,
            requests=sum(r.requests for r in reports),
            added=sum(r.added for r in reports),
            pruned=pruned,
            fetch_ms=sum(r.fetch_ms for r in reports),
            store_ms=sum(r.store_ms for r in reports),
            prune_ms=prune_ms,
            behind=max(r.behind for r in reports),
        )

    async def ensure(
        self,
        symbols: Sequence[str],
        timeframe: str,
        start_ms: int,
        end_ms: int,
        progress: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> tuple[dict[str, int], CollectReport]:
        """Series ids of `symbols`, with their candles over [start, end) fetched if missing
        (all of them: the trader is waiting, `progress(done, total)` tells how far it got).
        A range fetched once is not asked for again (the key is symbol, timeframe, range)."""
        wanted = [s for s in symbols if (s, timeframe, start_ms, end_ms) not in self._fetched]
        report = await self._fill(
            wanted, timeframe, start_ms, end_ms, from_start=True, budget=None, progress=progress
        )
        if not report.behind:
            for symbol in wanted:
                self._fetched[(symbol, timeframe, start_ms, end_ms)] = True
        return await self._candles.series(self.source, timeframe, symbols), report

    async def _fill(
        self,
        symbols: Sequence[str],
        timeframe: str,
        since_ms: int,
        end_ms: int,
        *,
        from_start: bool = False,
        floor_ms: int | None = None,
        budget: int | None = 0,
        progress: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> CollectReport:
        """Fetch each symbol's missing candles: from `since_ms` when it has none; after its
        newest stored one otherwise (however long ago, down to `floor_ms`: a gap left by
        downtime is filled); before its oldest one too when `from_start`. At most `budget`
        requests (0: the collector's `max_requests`, None: no limit)."""
        limit = self.max_requests if budget == 0 else budget
        floor = since_ms if floor_ms is None else floor_ms
        step = TIMEFRAMES[timeframe] * 1000
        fetch_s = store_s = 0.0
        requests = added = 0
        async with self._lock:
            series = await self._candles.series(self.source, timeframe, symbols)
            newest = await self._candles.newest(list(series.values()))
            pending: list[tuple[str, int, int]] = []  # (symbol, from, to) still missing
            for symbol, sid in series.items():
                last = newest[sid]
                if last is None:
                    pending.append((symbol, since_ms, end_ms))
                    continue
                if from_start:
                    oldest = await self._candles.oldest(sid)
                    if oldest is not None and oldest > since_ms + step:
                        pending.append((symbol, since_ms, oldest))  # before what is stored
                if max(floor, last + step) + step <= end_ms:
                    pending.append((symbol, max(floor, last + step), end_ms))
            behind = 0
            for first in range(0, len(pending), BATCH):
                if limit is not None and requests >= limit:
                    behind = len({s for s, _, _ in pending[first:]})
                    break
                chunk = pending[first : first + BATCH]
                t0 = time.perf_counter()
                got = await asyncio.gather(
                    *(self._series_since(s, timeframe, lo, hi) for s, lo, hi in chunk)
                )
                t1 = time.perf_counter()
                requests += sum(n for n, _ in got)
                batch = [(series[s], rows) for (s, _, _), (_, rows) in zip(chunk, got, strict=True)]
                added += await self._candles.insert(batch)
                fetch_s += t1 - t0
                store_s += time.perf_counter() - t1
                if progress is not None:
                    await progress(min(first + BATCH, len(pending)), len(pending))
        self.requests += requests
        return CollectReport(
            len(symbols), requests, added, 0, fetch_s * 1000, store_s * 1000, 0.0, behind
        )

    async def _series_since(
        self, symbol: str, timeframe: str, since_ms: int, end_ms: int
    ) -> tuple[int, list[CandleRow]]:
        """(requests sent, rows) of one symbol from `since_ms` to `end_ms`, page by page."""
        step = TIMEFRAMES[timeframe] * 1000
        rows: list[CandleRow] = []
        requests = 0
        cursor = since_ms
        while cursor + step <= end_ms:
            limit = min(PAGE, (end_ms - cursor) // step)
            try:
                async with self._slots:
                    page = await self.feed.candles(symbol, timeframe, cursor, limit)
            except ExchangeError as error:
                log.debug("no %s candles for %s: %s", timeframe, symbol, error)
                break
            requests += 1
            page = [c for c in page if cursor <= c[0] < end_ms]
            if not page:
                break
            rows.extend(page)
            cursor = page[-1][0] + step
        return requests, rows

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

    def span(self, days: int) -> tuple[int, int]:
        """[start, end) in ms of the last `days` days of completed 5-minute bars."""
        step = TIMEFRAMES["5m"] * 1000
        end = self._now_ms() // step * step
        return end - days * 86_400_000, end


def trading(registry: MarketRegistry) -> Callable[[], list[str]]:
    """The registry's symbols trading now (what the collector keeps candles of)."""
    return lambda: [s for s, r in registry.snapshot.rows.items() if r.status == TRADING]


def _row(c: Candle) -> CandleRow:
    return (c.ts, float(c.open), float(c.high), float(c.low), float(c.close), float(c.volume))
