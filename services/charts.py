"""Charts as PNG pictures: the equity curve (cumulative realised PnL, with the recorded
balance drawn over it where snapshots exist) over 30 days, 90 days or the whole history, the
realised PnL per day as bars, and a symbol's candles on the scanner's market source with the
bot's signals and the trader's entries and exits, all in the trader's timezone.

Drawing takes a few hundred milliseconds of CPU, most of it in Python, so it runs in worker
processes (threads would still hold the GIL against the event loop): at most `workers` at
once, started on the first chart. matplotlib draws with its Agg canvas on a `Figure` of its
own (no pyplot state).

A rendered picture is kept until the trader's next closed trade: its key holds the trader's
latest trade (id and exit time), the hour of the newest balance snapshot (equity only) and
the local date, so a second press of a button costs one or two indexed reads, and a new
trade, balance hour or day draws afresh.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from cachetools import LRUCache

from core.errors import InvalidInput
from core.exchange.venues import title
from db.repositories.equity import EquityRepository
from db.repositories.signals import SignalRepository
from db.repositories.trades import PeriodTotals, TradeLog, TradeRepository
from services import periods
from services.chart_drawing import draw_bars, draw_candles, draw_curve
from services.equity import EquityRecorder
from services.equity_history import BalancePoint, balance_points
from services.exchanges import ExchangeGateway
from services.market import MarketService

SPANS = {"30d": 30, "90d": 90, "all": 0}
MAX_DAYS = 730  # a longer history is drawn per week
BAR_PERIODS = ("day", "week", "month", "all")  # what /pnl shows, as bars of its days
TIMEFRAMES = {"5m": 300, "1h": 3_600, "4h": 14_400, "1d": 86_400}  # seconds per candle
CANDLES = 100
TRADE_PAGE, TRADE_PAGES = 200, 5  # the trades a candle chart looks through, newest first
CHART_USAGE = (
    "Usage: /chart SYMBOL [5m|1h|4h|1d] (default 1h): the last 100 candles with the bot's "
    "signals and your entries and exits."
)
CACHED_CHARTS = 512  # pictures of 20-60 kB: a bounded ~25 MB at most


@dataclass(slots=True, frozen=True)
class Chart:
    """A rendered chart and the figures its caption states."""

    png: bytes
    span: str
    unit: str  # day | week
    points: int
    pnl: Decimal
    trades: int
    wins: int
    max_drawdown: Decimal  # the deepest fall of the curve from an earlier high (≤ 0)
    first: date | None
    balances: tuple[BalancePoint, ...] = ()  # the recorded balance, where there is one


@dataclass(slots=True, frozen=True)
class DayBars:
    """The realised PnL of each day of a span, drawn as bars."""

    png: bytes
    days: int
    first: date
    pnl: Decimal
    trades: int
    wins: int
    best: Decimal  # the best and the worst day's PnL (0 without trades)
    worst: Decimal


@dataclass(slots=True, frozen=True)
class CandleChart:
    """A symbol's candles drawn with the signals and trades that fall in them."""

    png: bytes
    symbol: str
    timeframe: str
    source: str
    candles: int
    first: datetime  # UTC open of the first candle
    last: Decimal  # the last close
    change_pct: Decimal  # from the first open to the last close
    signals: int
    entries: int
    exits: int


class ChartService:
    """Reads the trade log into curves and draws them off the event loop."""

    def __init__(
        self,
        trades: TradeRepository,
        workers: int = 2,
        *,
        market: MarketService | None = None,
        gateway: ExchangeGateway | None = None,
        signals: SignalRepository | None = None,
        snapshots: EquityRepository | None = None,
        recorder: EquityRecorder | None = None,
        cached: int = CACHED_CHARTS,
    ) -> None:
        self._trades = trades
        self._snapshots, self._recorder = snapshots, recorder
        self._market, self._gateway, self._signals = market, gateway, signals
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        # cached=0 draws every time (the benchmark measures drawing, not the cache)
        self._cache: LRUCache[tuple[Any, ...], Any] = LRUCache(max(cached, 1))
        self._caching = cached > 0
        self.renders = 0  # pictures drawn (the cache's misses), for tests and the benchmark

    async def aclose(self) -> None:
        """Stop the drawing processes; idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def equity(self, user_id: int, span: str, now: datetime, tz: tzinfo) -> Chart:
        """The cumulative realised PnL over `span` (30d, 90d or all), one point per day."""
        if span not in SPANS:
            raise InvalidInput("Usage: /equity [30d|90d|all] (default 30d).")
        if self._recorder is not None and self._recorder.waiting(user_id):
            await self._recorder.flush()  # the /balance just read belongs on this chart
        recorded = None if self._snapshots is None else await self._snapshots.latest_hour(user_id)
        key = await self._key(user_id, "equity", (span, recorded), now, tz)
        found = self._cache.get(key)
        if isinstance(found, Chart):
            return found
        chart = await self._equity(user_id, span, now, tz)
        self._keep(key, chart)
        return chart

    async def day_bars(self, user_id: int, days: int | str, now: datetime, tz: tzinfo) -> DayBars:
        """PnL per local day: the last `days` days, or the days of a /pnl period (today, this
        week, this month, all: from the first trade's day, at most MAX_DAYS)."""
        count = await self._days(user_id, days, now, tz)
        key = await self._key(user_id, "bars", count, now, tz)
        found = self._cache.get(key)
        if isinstance(found, DayBars):
            return found
        spans = list(reversed(periods.recent("day", count, now, tz)))
        rows = await self._trades.periods(user_id, [(p.start, p.end) for p in spans])
        values = [float(r.pnl) for r in rows]
        labels = [p.first for p in spans]
        png = await self._render(draw_bars, labels, values, str(tz))
        pnls = [r.pnl for r in rows if r.trades]
        bars = DayBars(
            png=png,
            days=count,
            first=labels[0],
            pnl=sum((r.pnl for r in rows), Decimal(0)),
            trades=sum(r.trades for r in rows),
            wins=sum(r.wins for r in rows),
            best=max(pnls, default=Decimal(0)),
            worst=min(pnls, default=Decimal(0)),
        )
        self._keep(key, bars)
        return bars

    async def candles(
        self, user_id: int, text: str, timeframe: str, now: datetime, tz: tzinfo
    ) -> CandleChart:
        """The last CANDLES candles of a symbol on the scanner's market source, with the
        signals published on it and the trader's own entries and exits in that window."""
        if timeframe not in TIMEFRAMES:
            raise InvalidInput(CHART_USAGE)
        if self._market is None or self._gateway is None or self._signals is None:
            raise InvalidInput("Market charts are not available here.")
        source = self._gateway.market_source
        symbol = (await self._market.resolve(source, text)).symbol
        feed = await self._gateway.market_feed()
        bars = await feed.fetch_ohlcv(symbol, timeframe, CANDLES)
        if not bars:
            raise InvalidInput(f"{symbol} has no candles on {title(source)} right now.")
        start = datetime.fromtimestamp(bars[0].ts / 1000, UTC)
        end = datetime.fromtimestamp(bars[-1].ts / 1000 + TIMEFRAMES[timeframe], UTC)
        signals = [
            s
            for s in await self._signals.since(start)
            if s.symbol == symbol and s.source == source and s.created_at < end
        ]
        trades = await self._trades_of(user_id, symbol, start)
        marks = [(s.created_at, float(s.price), s.side) for s in signals]
        entries = [t for t in trades if start <= t.entry_ts < end]
        exits = [t for t in trades if start <= t.exit_ts < end]
        marks += [(t.entry_ts, float(t.entry_price), "entry") for t in entries]
        marks += [(t.exit_ts, float(t.exit_price), "exit") for t in exits]
        args = (symbol, timeframe, bars[-1].ts, bars[-1].close, len(signals))
        key = await self._key(user_id, "candles", args, now, tz)
        found = self._cache.get(key)
        if isinstance(found, CandleChart):
            return found
        local = [datetime.fromtimestamp(b.ts / 1000, tz).replace(tzinfo=None) for b in bars]
        ohlc = [(float(b.open), float(b.high), float(b.low), float(b.close)) for b in bars]
        local_marks = [(_local(t, tz), p, kind) for t, p, kind in marks]
        heading = f"{symbol} · {timeframe} · {title(source)} ({tz})"
        width = TIMEFRAMES[timeframe] / 86_400
        png = await self._render(draw_candles, heading, local, ohlc, width, local_marks)
        first_open = bars[0].open
        chart = CandleChart(
            png=png,
            symbol=symbol,
            timeframe=timeframe,
            source=source,
            candles=len(bars),
            first=start,
            last=bars[-1].close,
            change_pct=(bars[-1].close - first_open) / first_open * 100
            if first_open
            else Decimal(0),
            signals=len(signals),
            entries=len(entries),
            exits=len(exits),
        )
        self._keep(key, chart)
        return chart

    async def _trades_of(self, user_id: int, symbol: str, start: datetime) -> list[TradeLog]:
        """The trader's trades of `symbol` that closed after `start` or opened before it and
        closed inside (newest first; a bounded look through the latest trades)."""
        found: list[TradeLog] = []
        for page in range(TRADE_PAGES):
            records = await self._trades.recent(user_id, TRADE_PAGE, page * TRADE_PAGE)
            found += [r.trade for r in records if r.trade.symbol == symbol]
            if len(records) < TRADE_PAGE or records[-1].trade.exit_ts < start:
                break
        return [t for t in found if t.exit_ts >= start]

    async def _days(self, user_id: int, days: int | str, now: datetime, tz: tzinfo) -> int:
        if isinstance(days, int):
            if not 1 <= days <= MAX_DAYS:
                raise InvalidInput(f"A bar chart shows 1 to {MAX_DAYS} days.")
            return days
        if days not in BAR_PERIODS:
            raise InvalidInput("Usage: /pnl [day|week|month|all].")
        today = now.astimezone(tz).date()
        if days == "all":
            started = await self._trades.first_exit(user_id)
            first = today if started is None else started.astimezone(tz).date()
        else:
            first = periods.first_of(days, today)
        return min((today - first).days + 1, MAX_DAYS)

    async def _key(
        self, user_id: int, kind: str, args: object, now: datetime, tz: tzinfo
    ) -> tuple[Any, ...]:
        """What a picture depends on: the trader's latest trade, and the local day it ends on."""
        latest = await self._trades.recent(user_id, 1)
        fill = (latest[0].trade_id, latest[0].trade.exit_ts) if latest else None
        return (user_id, kind, args, fill, str(tz), now.astimezone(tz).date())

    def _keep(self, key: tuple[Any, ...], chart: object) -> None:
        if self._caching:
            self._cache[key] = chart

    async def _render(self, draw: Any, *args: object) -> bytes:
        self.renders += 1
        png: bytes = await asyncio.get_running_loop().run_in_executor(self._executor(), draw, *args)
        return png

    async def _equity(self, user_id: int, span: str, now: datetime, tz: tzinfo) -> Chart:
        unit, count = "day", SPANS[span]
        if not count:
            started = await self._trades.first_exit(user_id)
            days = 1 if started is None else (now - started).days + 2
            unit, count = ("day", days) if days <= MAX_DAYS else ("week", days // 7 + 2)
        spans = list(reversed(periods.recent(unit, min(count, MAX_DAYS), now, tz)))
        rows = await self._trades.periods(user_id, [(p.start, p.end) for p in spans])
        curve = _cumulative(rows)
        labels = [p.first for p in spans]
        values = [float(v) for v in curve]
        balances = (
            [] if self._snapshots is None else await balance_points(self._snapshots, user_id, spans)
        )
        overlay = [(b.first, float(b.equity)) for b in balances]
        png = await self._render(draw_curve, labels, values, str(tz), overlay)
        return Chart(
            png=png,
            span=span,
            unit=unit,
            points=len(rows),
            pnl=curve[-1] if curve else Decimal(0),
            trades=sum(r.trades for r in rows),
            wins=sum(r.wins for r in rows),
            max_drawdown=_drawdown(curve),
            first=labels[0] if labels else None,
            balances=tuple(balances),
        )

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a forked child would inherit the bot's threads and open connections
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context)
        return self._pool


def _local(moment: datetime, tz: tzinfo) -> datetime:
    """A UTC instant as the trader's wall-clock time (the axis shows plain local times)."""
    return moment.astimezone(tz).replace(tzinfo=None)


def _cumulative(rows: list[PeriodTotals]) -> list[Decimal]:
    total, curve = Decimal(0), []
    for row in rows:
        total += row.pnl
        curve.append(total)
    return curve


def _drawdown(curve: list[Decimal]) -> Decimal:
    high, deepest = Decimal(0), Decimal(0)
    for value in curve:
        high = max(high, value)
        deepest = min(deepest, value - high)
    return deepest
