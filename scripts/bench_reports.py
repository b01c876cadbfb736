"""/pnl and the period tables on one trader with 100,000 closed trades, cold.

Usage: .venv/bin/python -m scripts.bench_reports [--trades N] [--runs N] [--write]

Builds a fresh database with the trader's history (one executemany in one transaction, so
the migration's triggers keep their totals as they would in production), then times each
report as the bot serves it, cold: every run opens a new store, so SQLite's page cache is
empty (the OS file cache is warm, as on a running server) and no application cache exists;
the connections have read the schema, as long-lived connections have. Every figure is checked
against a plain Python sum over the same rows, so the table proves the work was done.
Goals: /pnl day|week|month ≤ 2 ms, /pnl all ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from db.repositories.base import to_ms
from db.repositories.trades import TradeRepository
from db.store import Store
from scripts import _bench as bench
from services.history import HistoryService, PnlReport, period_start

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)  # a Sunday late in a month: the long periods
DAYS = 386  # 100,000 trades over 386 days is ~259 a day, the history of the issue
SYMBOLS = [f"C{i:03d}/USDT:USDT" for i in range(60)]
GOALS_MS = {"day": 2.0, "week": 2.0, "month": 2.0, "all": 20.0}
T = TypeVar("T")
FREQTRADE = "Freqtrade 2026.9 on the same trades: /profit 5.1 s (766 MB peak), /daily 365 12.3 s"


@dataclass(slots=True, frozen=True)
class Row:
    symbol: str
    pnl: Decimal
    fee: Decimal
    exit_ms: int


def history(count: int) -> list[Row]:
    """`count` trades of one trader; about 2% close at exactly zero (breakeven)."""
    rng = random.Random(14)
    now = to_ms(NOW)
    rows = []
    for _ in range(count):
        pnl = Decimal(0) if rng.random() < 0.02 else Decimal(f"{rng.gauss(0, 5):.4f}")
        symbol = SYMBOLS[int(rng.paretovariate(1.2)) % len(SYMBOLS)]
        rows.append(
            Row(
                symbol,
                pnl,
                Decimal(f"{rng.uniform(0.01, 0.5):.4f}"),
                now - rng.randrange(DAYS * 86_400_000),
            )
        )
    return rows


async def build(path: Path, rows: list[Row]) -> float:
    async with Store(path) as store:
        await store.execute(
            "bench.user",
            "INSERT INTO users (id, chat_id, username, first_name, created_at, last_seen_at) "
            "VALUES (1, 1, 'trader', 'Trader', 0, 0)",
        )
        start = time.perf_counter()
        async with store.transaction() as tx:
            await tx.executemany(
                "bench.trades",
                "INSERT INTO trade_logs (user_id, exchange, account_type, symbol, side, qty, "
                "entry_price, exit_price, notional, pnl, fee, entry_ts, exit_ts) "
                "VALUES (1, 'paper', 'paper', ?, 'long', '1', '1', '1', 10, ?, ?, ?, ?)",
                (
                    (r.symbol, float(r.pnl), float(r.fee), r.exit_ms - 3_600_000, r.exit_ms)
                    for r in rows
                ),
            )
        return time.perf_counter() - start


def expected(rows: list[Row], since: datetime) -> tuple[int, int, int, int, Decimal, Decimal]:
    """(trades, wins, losses, breakeven, pnl, fees) by a straightforward sum."""
    start = to_ms(since)
    mine = [r for r in rows if r.exit_ms >= start]
    wins = sum(r.pnl > 0 for r in mine)
    losses = sum(r.pnl < 0 for r in mine)
    return (
        len(mine),
        wins,
        losses,
        len(mine) - wins - losses,
        sum((r.pnl for r in mine), Decimal(0)),
        sum((r.fee for r in mine), Decimal(0)),
    )


async def cold(
    path: Path, runs: int, call: Callable[[HistoryService], Awaitable[T]]
) -> tuple[list[float], T]:
    """Time `call` once on each of `runs` freshly opened stores."""
    timings: list[float] = []
    results: list[T] = []
    for _ in range(max(1, runs)):
        async with Store(path) as store:
            for _reader in range(2):  # read the schema, as a long-lived connection has
                await store.fetchall("bench.schema", "SELECT name FROM sqlite_master LIMIT 1")
            service = HistoryService(TradeRepository(store))
            start = time.perf_counter()
            results.append(await call(service))
            timings.append(time.perf_counter() - start)
    return timings, results[-1]


def _pnl(period: str) -> Callable[[HistoryService], Awaitable[PnlReport]]:
    return lambda service: service.pnl_report(1, period, NOW)


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= Decimal("0.0001")  # REAL sums of 100,000 four-decimal values


async def main(count: int, runs: int, write: bool) -> None:
    rows = history(count)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reports.db"
        built = await build(path, rows)
        print(f"built {count:,} trades in {built:.1f} s (one executemany, one transaction)")
        checks = {p: expected(rows, period_start(p, NOW)) for p in ("day", "week", "month", "all")}
        # The 100,000 rows kept for the checks are not the bot's: keep the collector off them.
        gc.collect()
        gc.freeze()
        table: list[list[object]] = []
        for period in ("day", "week", "month", "all"):
            timings, report = await cold(path, runs, _pnl(period))
            want = checks[period]
            got = (
                report.trades,
                report.wins,
                report.losses,
                report.breakeven,
                report.pnl,
                report.fees,
            )
            ok = got[:4] == want[:4] and _close(got[4], want[4]) and _close(got[5], want[5])
            if not ok:
                raise SystemExit(f"/pnl {period}: got {got}, a Python sum gives {want}")
            table.append(
                [
                    f"/pnl {period}",
                    f"{want[0]:,}",
                    bench.ms(bench.median(timings)),
                    bench.ms(max(timings)),
                    f"≤ {GOALS_MS[period]:g}",
                    "yes" if bench.median(timings) * 1000 <= GOALS_MS[period] else "NO",
                    f"{want[4]:.2f} PnL, {want[1]}/{want[2]}/{want[3]} won/lost/even",
                ]
            )
        text = bench.table(
            ["report", "trades", "cold ms (median)", "cold ms (max)", "goal ms", "met", "checked"],
            table,
        )
        print(text)
        if write:
            body = (
                "Command: `.venv/bin/python -m scripts.bench_reports --write` — "
                f"{bench.today()}; {bench.machine()}; load average "
                f"{os.getloadavg()[0]:.1f} (other work shares the two cores: timings vary ±50%).\n"
                f"{count:,} closed trades of one trader over {DAYS} days, {len(SYMBOLS)} symbols; "
                f"now = {NOW:%a %Y-%m-%d %H:%M} UTC. Cold: a new store per run ({runs} runs), "
                "SQLite's page cache empty. Figures checked against a Python sum of the same "
                "rows.\n\n"
                f"{text}\n\nFor reference, {FREQTRADE}.\n"
            )
            bench.write_section(
                "## Reports: /pnl and period tables (issue: reports and charts)", body
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--write", action="store_true", help="record the table in docs/PERFORMANCE.md"
    )
    args = parser.parse_args()
    asyncio.run(main(args.trades, args.runs, args.write))
