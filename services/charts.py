"""Charts as PNG pictures: the equity curve (cumulative realised PnL) over 30 days, 90 days
or the whole history, and the realised PnL per day as bars, in the trader's timezone.

Drawing takes a few hundred milliseconds of CPU, most of it in Python, so it runs in worker
processes (threads would still hold the GIL against the event loop): at most `workers` at
once, started on the first chart. matplotlib draws with its Agg canvas on a `Figure` of its
own (no pyplot state).

A rendered picture is kept until the trader's next closed trade: its key holds the trader's
latest trade (id and exit time) and the local date, so a second press of a button costs one
indexed read, and a new trade or a new day draws afresh.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

import numpy
from cachetools import LRUCache

from core.errors import InvalidInput
from db.repositories.trades import PeriodTotals, TradeRepository
from services import periods

SPANS = {"30d": 30, "90d": 90, "all": 0}
MAX_DAYS = 730  # a longer history is drawn per week
BAR_PERIODS = ("day", "week", "month", "all")  # what /pnl shows, as bars of its days
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


class ChartService:
    """Reads the trade log into curves and draws them off the event loop."""

    def __init__(self, trades: TradeRepository, workers: int = 2) -> None:
        self._trades = trades
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._cache: LRUCache[tuple[Any, ...], Any] = LRUCache(CACHED_CHARTS)
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
        key = await self._key(user_id, "equity", span, now, tz)
        found = self._cache.get(key)
        if isinstance(found, Chart):
            return found
        chart = await self._equity(user_id, span, now, tz)
        self._cache[key] = chart
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
        png = await self._render(_draw_bars, labels, values, str(tz))
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
        self._cache[key] = bars
        return bars

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
        png = await self._render(_draw, labels, values, str(tz))
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
        )

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a forked child would inherit the bot's threads and open connections
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context)
        return self._pool


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


def _draw(labels: list[date], values: list[float], zone: str) -> bytes:
    """The curve as a PNG (runs in a worker process)."""
    # Imported here, in the worker: matplotlib reads its fonts and settings when imported,
    # which would be I/O at the bot's import time and seconds of start-up for a rare command.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    color = "#1a7f37" if values and values[-1] >= 0 else "#cf222e"
    days = numpy.array(labels, dtype="datetime64[D]")
    axes.plot(days, values, color=color, linewidth=1.8)
    axes.fill_between(days, values, 0, color=color, alpha=0.12)
    axes.axhline(0, color="#888888", linewidth=0.8)
    axes.set_title(f"Realised PnL, cumulative ({zone})")
    axes.set_ylabel("USDT")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    # Fixed margins: tight_layout would draw the figure twice to measure it (a third of the time).
    figure.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.2)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _draw_bars(labels: list[date], values: list[float], zone: str) -> bytes:
    """One bar per day, green for a gain and red for a loss (runs in a worker process)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    days = numpy.array(labels, dtype="datetime64[D]")
    colors = ["#1a7f37" if v >= 0 else "#cf222e" for v in values]
    axes.bar(days, values, width=0.8, color=colors)
    axes.axhline(0, color="#888888", linewidth=0.8)
    axes.set_title(f"Realised PnL per day ({zone})")
    axes.set_ylabel("USDT")
    axes.grid(axis="y", alpha=0.3)
    figure.autofmt_xdate()
    figure.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.2)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
