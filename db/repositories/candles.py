"""SQL of the candle store: series ids, batched idempotent inserts, the newest bar of each
series, retention, and the block reads of a backtest.

The backtest reads in a worker process, which has no event loop and no `Store`: `read_block`
opens its own read-only `sqlite3` connection (WAL lets it read while the bot writes).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from db.repositories import HotQuery
from db.repositories.base import Repository
from db.store import Tx

CandleRow = tuple[int, float, float, float, float, float]  # ts ms, open, high, low, close, volume

_SERIES = "SELECT id, symbol FROM candle_series WHERE source = ? AND timeframe = ?"
_ADD_SERIES = (
    "INSERT INTO candle_series (source, symbol, timeframe) VALUES (?, ?, ?) "
    "ON CONFLICT (source, symbol, timeframe) DO NOTHING"
)
_INSERT = (
    "INSERT INTO candles (series, ts, open, high, low, close, volume) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (series, ts) DO NOTHING"
)
_NEWEST = "SELECT MAX(ts) FROM candles WHERE series = ?"
_OLDEST = "SELECT MIN(ts) FROM candles WHERE series = ?"
_COUNT = "SELECT COUNT(*) FROM candles WHERE series = ? AND ts >= ? AND ts < ?"
_PRUNE = "DELETE FROM candles WHERE series = ? AND ts < ?"
_BLOCK = (
    "SELECT ts, high, low, close, volume FROM candles WHERE series = ? AND ts >= ? AND ts < ? "
    "ORDER BY ts"
)

HOT_QUERIES = (
    HotQuery("candles.newest", _NEWEST, (1,)),
    HotQuery("candles.count", _COUNT, (1, 0, 1)),
    HotQuery("candles.block", _BLOCK, (1, 0, 1)),
)


class CandleRepository(Repository):
    """SQL for candle_series and candles."""

    async def series(self, source: str, timeframe: str, symbols: Sequence[str]) -> dict[str, int]:
        """Series id of each symbol, created for the new ones in one transaction."""
        known = await self._known(source, timeframe)
        missing = [s for s in symbols if s not in known]
        if missing:
            async with self.store.transaction() as tx:
                await tx.executemany(
                    "candles.add_series", _ADD_SERIES, [(source, s, timeframe) for s in missing]
                )
            known = await self._known(source, timeframe)
        return {s: known[s] for s in symbols}

    async def insert(
        self, batch: Sequence[tuple[int, Sequence[CandleRow]]], tx: Tx | None = None
    ) -> int:
        """Store candles of many series in one transaction; a candle already stored stays as
        it is (a re-run inserts nothing). Return the rows added."""
        rows = [(series, *row) for series, candles in batch for row in candles]
        if not rows:
            return 0
        async with self._tx(tx) as t:
            return await t.executemany("candles.insert", _INSERT, rows)

    async def newest(self, series: Sequence[int]) -> dict[int, int | None]:
        """The newest bar's open time (ms) of each series, None when it has none."""
        found: dict[int, int | None] = {}
        for sid in series:  # one indexed MAX per series: the end of its primary key
            found[sid] = await self.store.fetchval("candles.newest", _NEWEST, (sid,))
        return found

    async def oldest(self, sid: int) -> int | None:
        value = await self.store.fetchval("candles.oldest", _OLDEST, (sid,))
        return None if value is None else int(value)

    async def count(self, sid: int, start_ms: int, end_ms: int) -> int:
        return int(await self.store.fetchval("candles.count", _COUNT, (sid, start_ms, end_ms)))

    async def prune(self, series: Sequence[int], before_ms: int) -> int:
        """Delete the candles older than `before_ms` of every series, in one transaction."""
        if not series:
            return 0
        async with self.store.transaction() as tx:
            return await tx.executemany("candles.prune", _PRUNE, [(s, before_ms) for s in series])

    async def _known(self, source: str, timeframe: str) -> dict[str, int]:
        rows = await self.store.fetchall("candles.series", _SERIES, (source, timeframe))
        return {str(symbol): int(sid) for sid, symbol in rows}


def read_block(
    path: Path | str, series: Sequence[int], start_ms: int, end_ms: int, step_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """(bar open times in ms, values) of `series` over [start, end) on the grid of `step_ms`:
    values are (4 × series × bars) — high, low, close, volume — NaN where no candle is stored.

    One query for the whole block, its rows flattened straight into one float array
    (sqlite3 makes a tuple per row; building a list of them first costs a third more)."""
    times = np.arange(start_ms, end_ms, step_ms, dtype=np.int64)
    values = np.full((4, len(series), times.size), np.nan)
    if not series:
        return times, values
    marks = ",".join("?" * len(series))
    sql = (
        f"SELECT series, ts, high, low, close, volume FROM candles "
        f"WHERE series IN ({marks}) AND ts >= ? AND ts < ?"
    )
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA mmap_size = 268435456")  # pages straight from the file cache
        cursor = conn.execute(sql, (*series, start_ms, end_ms))
        flat = np.fromiter(itertools.chain.from_iterable(cursor), np.float64).reshape(-1, 6)
    finally:
        conn.close()
    row_of = np.full(max(series) + 1, -1, dtype=np.int64)
    row_of[np.asarray(series, dtype=np.int64)] = np.arange(len(series))
    rows = row_of[flat[:, 0].astype(np.int64)]
    slot = (flat[:, 1].astype(np.int64) - start_ms) // step_ms
    values[:, rows, slot] = flat[:, 2:].T
    return times, values
