"""The market registry's rows: every symbol of a market source, its status and last stats,
and the history of listings, delistings and status changes.

A registry sync writes only the rows that changed, with their history events, in one
transaction (two `executemany` statements however many symbols changed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, from_ms_req, to_ms
from db.store import Row, Tx

TRADING, HALTED, DELISTED = "trading", "halted", "delisted"


@dataclass(slots=True, frozen=True)
class MarketRow:
    """One symbol of one market source as the registry knows it."""

    source: str
    symbol: str
    base: str
    quote: str
    settle: str
    status: str  # trading | halted | delisted
    is_new: bool
    listed_at: datetime
    delisted_at: datetime | None
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_leverage: int
    last_price: float | None
    volume_24h: float | None
    change_24h_pct: float | None


@dataclass(slots=True, frozen=True)
class MarketEvent:
    """A line of market history: `listed`, `delisted` or `status`."""

    source: str
    symbol: str
    event: str
    old_status: str | None
    new_status: str | None
    at: datetime


_COLUMNS = (
    "source, symbol, base, quote, settle, status, is_new, listed_at, delisted_at, tick_size, "
    "lot_size, min_qty, min_notional, max_leverage, last_price, volume_24h, change_24h_pct"
)
_ALL = f"SELECT {_COLUMNS} FROM markets WHERE source = ?"
_BY_STATUS = f"SELECT {_COLUMNS} FROM markets WHERE source = ? AND status = ?"
_NEW = f"SELECT {_COLUMNS} FROM markets WHERE source = ? AND is_new = 1 ORDER BY listed_at DESC"
_HISTORY = (
    "SELECT source, symbol, event, old_status, new_status, at FROM market_history "
    "WHERE symbol = ? ORDER BY at DESC LIMIT ?"
)
_UPSERT = f"""
INSERT INTO markets ({_COLUMNS}, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, symbol) DO UPDATE SET
    base = excluded.base, quote = excluded.quote, settle = excluded.settle,
    status = excluded.status, is_new = excluded.is_new, listed_at = excluded.listed_at,
    delisted_at = excluded.delisted_at, tick_size = excluded.tick_size,
    lot_size = excluded.lot_size, min_qty = excluded.min_qty,
    min_notional = excluded.min_notional, max_leverage = excluded.max_leverage,
    last_price = excluded.last_price, volume_24h = excluded.volume_24h,
    change_24h_pct = excluded.change_24h_pct, updated_at = excluded.updated_at
"""
_EVENT = (
    "INSERT INTO market_history (source, symbol, event, old_status, new_status, at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)

HOT_QUERIES = (
    HotQuery("markets.all", _ALL, ("paper",)),
    HotQuery("markets.by_status", _BY_STATUS, ("paper", TRADING)),
    HotQuery("markets.new", _NEW, ("paper",)),
    HotQuery("markets.history", _HISTORY, ("BTC/USDT:USDT", 20)),
)


class MarketRepository(Repository):
    """SQL for markets and market_history."""

    async def all(self, source: str) -> list[MarketRow]:
        """Every symbol the registry ever saw on `source`, delisted ones included."""
        return [_row(r) for r in await self.store.fetchall("markets.all", _ALL, (source,))]

    async def by_status(self, source: str, status: str) -> list[MarketRow]:
        rows = await self.store.fetchall("markets.by_status", _BY_STATUS, (source, status))
        return [_row(r) for r in rows]

    async def new_listings(self, source: str) -> list[MarketRow]:
        """Symbols still flagged new, newest listing first."""
        return [_row(r) for r in await self.store.fetchall("markets.new", _NEW, (source,))]

    async def history(self, symbol: str, limit: int = 20) -> list[MarketEvent]:
        rows = await self.store.fetchall("markets.history", _HISTORY, (symbol, limit))
        return [
            MarketEvent(
                r["source"], r["symbol"], r["event"], r["old_status"], r["new_status"],
                from_ms_req(r["at"]),
            )
            for r in rows
        ]  # fmt: skip

    async def apply(
        self,
        changed: Sequence[MarketRow],
        events: Sequence[MarketEvent],
        now: datetime,
        tx: Tx | None = None,
    ) -> int:
        """Upsert the changed rows and append their events: one statement each."""
        if not changed and not events:
            return 0
        stamp = to_ms(now)
        async with self._tx(tx) as t:
            if changed:
                await t.executemany(
                    "markets.upsert", _UPSERT, [(*_params(row), stamp) for row in changed]
                )
            if events:
                await t.executemany("markets.history_add", _EVENT, [_event(e) for e in events])
        return len(changed)

    async def upsert_one(self, row: MarketRow, now: datetime) -> None:
        """One row in its own transaction (maintenance, and the benchmark's naive baseline)."""
        await self.store.execute("markets.upsert", _UPSERT, (*_params(row), to_ms(now)))


def _params(row: MarketRow) -> tuple[object, ...]:
    return (
        row.source,
        row.symbol,
        row.base,
        row.quote,
        row.settle,
        row.status,
        int(row.is_new),
        to_ms(row.listed_at),
        None if row.delisted_at is None else to_ms(row.delisted_at),
        str(row.tick_size),
        str(row.lot_size),
        str(row.min_qty),
        str(row.min_notional),
        row.max_leverage,
        row.last_price,
        row.volume_24h,
        row.change_24h_pct,
    )


def _event(event: MarketEvent) -> tuple[object, ...]:
    return (
        event.source,
        event.symbol,
        event.event,
        event.old_status,
        event.new_status,
        to_ms(event.at),
    )


def _row(r: Row) -> MarketRow:
    return MarketRow(
        source=r["source"],
        symbol=r["symbol"],
        base=r["base"],
        quote=r["quote"],
        settle=r["settle"],
        status=r["status"],
        is_new=bool(r["is_new"]),
        listed_at=from_ms_req(r["listed_at"]),
        delisted_at=from_ms(r["delisted_at"]),
        tick_size=Decimal(r["tick_size"]),
        lot_size=Decimal(r["lot_size"]),
        min_qty=Decimal(r["min_qty"]),
        min_notional=Decimal(r["min_notional"]),
        max_leverage=r["max_leverage"],
        last_price=r["last_price"],
        volume_24h=r["volume_24h"],
        change_24h_pct=r["change_24h_pct"],
    )
