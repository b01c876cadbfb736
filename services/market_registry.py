"""The market registry: which symbols the market source lists, since when, and in what state.

A sync fetches markets and tickers in one round trip, diffs them against the in-memory
snapshot, writes the changed rows and their history in one transaction, then swaps the new
snapshot in with a single reference assignment: readers never wait and never see half a
sync. A failed fetch leaves the old snapshot serving; the failure is logged and counted.

The first sync of an installation imports the market as it is (no "listed" events for the
whole universe); afterwards a symbol that appears is a listing, one that disappears (or
stays inactive without a price) is a delisting, and one inactive with a price is halted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from core.clock import Clock
from core.exchange.errors import ExchangeError
from core.exchange.models import Market, Ticker
from core.metrics import Metrics
from core.pause_points import pause
from db.repositories.markets import (
    DELISTED,
    HALTED,
    TRADING,
    MarketEvent,
    MarketRepository,
    MarketRow,
)
from services.exchanges import ExchangeGateway

log = logging.getLogger(__name__)

NEW_FOR = timedelta(days=3)  # a listing younger than this is flagged `is_new`


@dataclass(slots=True, frozen=True)
class RegistrySnapshot:
    """Every symbol the registry knows on one source; never mutated once published."""

    source: str
    rows: Mapping[str, MarketRow] = field(default_factory=dict)
    taken_at: datetime | None = None
    live: int = 0  # symbols trading

    def listed_at(self, symbol: str) -> datetime | None:
        row = self.rows.get(symbol)
        return None if row is None else row.listed_at


@dataclass(slots=True, frozen=True)
class SyncReport:
    """One sync's phases (ms) and what changed; `error` is set when the fetch failed."""

    fetch_ms: float
    diff_ms: float = 0.0
    write_ms: float = 0.0
    swap_ms: float = 0.0
    symbols: int = 0
    listed: int = 0
    delisted: int = 0
    status_changes: int = 0
    written: int = 0
    imported: bool = False
    error: str | None = None

    def line(self) -> str:
        if self.error is not None:
            return f"registry sync failed after {self.fetch_ms:.0f} ms: {self.error}"
        return (
            f"registry sync: fetch {self.fetch_ms:.0f} ms, diff {self.diff_ms:.0f} ms, "
            f"write {self.write_ms:.0f} ms, swap {self.swap_ms:.1f} ms — {self.symbols} "
            f"symbols, +{self.listed} listed, -{self.delisted} delisted"
        )


class MarketRegistry:
    """Keeps the live snapshot of the market source; `sync` refreshes it."""

    def __init__(
        self,
        gateway: ExchangeGateway,
        markets: MarketRepository,
        clock: Clock,
        metrics: Metrics | None = None,
        *,
        interval_s: float = 300.0,
    ) -> None:
        self._gateway = gateway
        self.interval_s = interval_s  # how often the sync job runs
        self._markets = markets
        self._clock = clock
        self.snapshot = RegistrySnapshot(gateway.market_source)
        self.failures = 0
        self.syncs = 0
        self._loaded = False
        self._lock = asyncio.Lock()  # one sync at a time; readers never take it
        if metrics is not None:
            metrics.watch_gauges(
                "tradewind_market_registry",
                "Market registry: symbols trading, syncs and failed fetches since start",
                lambda: {"symbols": self.snapshot.live, "syncs": self.syncs,
                         "failures": self.failures},
            )  # fmt: skip

    def size(self) -> int:
        """Symbols trading in the live snapshot (/health `markets`)."""
        return self.snapshot.live

    async def sync(self) -> SyncReport:
        async with self._lock:
            return await self._sync()

    async def _sync(self) -> SyncReport:
        start = time.perf_counter()
        source = self.snapshot.source
        try:
            if not self._loaded:
                baseline = {row.symbol: row for row in await self._markets.all(source)}
                self.snapshot = _snapshot(source, baseline, self.snapshot.taken_at)
                self._loaded = True
            feed = await self._gateway.market_feed()
            markets, tickers = await asyncio.gather(
                feed.load_markets(reload=True), self._gateway.tickers(source)
            )
        except ExchangeError as error:
            self.failures += 1
            report = SyncReport((time.perf_counter() - start) * 1000, error=error.message)
            log.warning("%s; keeping %d symbols", report.line(), self.snapshot.live)
            return report
        await pause("registry.fetched")
        fetched = time.perf_counter()
        now = self._clock.now()
        old = self.snapshot.rows
        imported = not old
        rows, changed, events = _diff(source, old, markets, tickers, now, imported)
        diffed = time.perf_counter()
        written = await self._markets.apply(changed, events, now)
        wrote = time.perf_counter()
        self.snapshot = _snapshot(source, rows, now)  # the swap: one reference assignment
        swapped = time.perf_counter()
        self.syncs += 1
        return SyncReport(
            fetch_ms=(fetched - start) * 1000,
            diff_ms=(diffed - fetched) * 1000,
            write_ms=(wrote - diffed) * 1000,
            swap_ms=(swapped - wrote) * 1000,
            symbols=self.snapshot.live,
            listed=sum(e.event == "listed" for e in events),
            delisted=sum(e.event == "delisted" for e in events),
            status_changes=sum(e.event == "status" for e in events),
            written=written,
            imported=imported,
        )


def _snapshot(source: str, rows: Mapping[str, MarketRow], at: datetime | None) -> RegistrySnapshot:
    live = sum(row.status == TRADING for row in rows.values())
    return RegistrySnapshot(source, rows, at, live)


def _diff(
    source: str,
    old: Mapping[str, MarketRow],
    markets: Mapping[str, Market],
    tickers: Mapping[str, Ticker],
    now: datetime,
    imported: bool,
) -> tuple[dict[str, MarketRow], list[MarketRow], list[MarketEvent]]:
    """The new rows of every symbol, the ones that changed, and the history events."""
    rows: dict[str, MarketRow] = {}
    changed: list[MarketRow] = []
    events: list[MarketEvent] = []
    young = now - NEW_FOR
    for symbol, market in markets.items():
        ticker = tickers.get(symbol)
        status = _status(market.active, ticker is not None)
        before = old.get(symbol)
        if before is not None and _unchanged(before, market, ticker, status, young):
            rows[symbol] = before  # the common case: no new row, no event
            continue
        row = _row(source, market, ticker, status, before, now, young)
        rows[symbol] = row
        if row != before:
            changed.append(row)
        if imported:
            continue
        if before is None or (before.status == DELISTED and status != DELISTED):
            if status != DELISTED:
                events.append(MarketEvent(source, symbol, "listed", None, status, now))
        elif before.status != status:
            kind = "delisted" if status == DELISTED else "status"
            events.append(MarketEvent(source, symbol, kind, before.status, status, now))
    for symbol, before in old.items():
        if symbol in rows:
            continue
        row = before if before.status == DELISTED else _delisted(before, now)
        rows[symbol] = row
        if row is not before:
            changed.append(row)
            events.append(MarketEvent(source, symbol, "delisted", before.status, DELISTED, now))
    return rows, changed, events


def _status(active: bool, priced: bool) -> str:
    """Trading; inactive but still quoted: halted; inactive without a price: delisted."""
    if active:
        return TRADING
    return HALTED if priced else DELISTED


def _row(
    source: str,
    market: Market,
    ticker: Ticker | None,
    status: str,
    before: MarketRow | None,
    now: datetime,
    young: datetime,
) -> MarketRow:
    listed_at = market.listed_at or (before.listed_at if before is not None else now)
    delisted_at = None
    if status == DELISTED:
        delisted_at = before.delisted_at if before is not None and before.delisted_at else now
    return MarketRow(
        source=source,
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        settle=market.settle,
        status=status,
        is_new=status == TRADING and listed_at > young,
        listed_at=listed_at.astimezone(UTC),
        delisted_at=delisted_at,
        tick_size=market.tick_size,
        lot_size=market.lot_size,
        min_qty=market.min_qty,
        min_notional=market.min_notional,
        max_leverage=market.max_leverage,
        last_price=None if ticker is None else float(ticker.last),
        volume_24h=None if ticker is None else float(ticker.quote_volume_24h),
        change_24h_pct=(
            None if ticker is None or ticker.change_24h_pct is None
            else float(ticker.change_24h_pct)
        ),
    )  # fmt: skip


def _unchanged(
    row: MarketRow, market: Market, ticker: Ticker | None, status: str, young: datetime
) -> bool:
    """Would `_row` rebuild `row` as it is? Field by field, without building it."""
    if row.status != status or status == DELISTED:
        return False
    listed_at = market.listed_at or row.listed_at
    if ticker is None:
        stats: tuple[float | None, ...] = (None, None, None)
    else:
        pct = ticker.change_24h_pct
        stats = (
            float(ticker.last),
            float(ticker.quote_volume_24h),
            None if pct is None else float(pct),
        )
    return (
        row.delisted_at is None
        and row.listed_at == listed_at
        and row.is_new == (status == TRADING and listed_at > young)
        and (row.last_price, row.volume_24h, row.change_24h_pct) == stats
        and row.tick_size == market.tick_size
        and row.lot_size == market.lot_size
        and row.min_qty == market.min_qty
        and row.min_notional == market.min_notional
        and row.max_leverage == market.max_leverage
        and (row.base, row.quote, row.settle) == (market.base, market.quote, market.settle)
    )


def _delisted(row: MarketRow, now: datetime) -> MarketRow:
    return replace(row, status=DELISTED, is_new=False, delisted_at=now)
