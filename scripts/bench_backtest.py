"""Backtest benchmark: N symbols × D days of stored 5-minute candles replayed through the
scanner's rule and a strategy, in the worker process the bot uses, while the event loop is
watched; beside a straightforward per-candle Python loop over the same rule.

Usage: .venv/bin/python -m scripts.bench_backtest [--symbols 530] [--days 30] [--quick]
       [--baseline-symbols 4] [--json PATH]

The candles are a seeded random walk with volume bursts and breakouts (so the rule fires),
written through the candle repository in one transaction per block of symbols, and kept in
/tmp between runs (the file name says symbols and days). The baseline calls the scanner's
`confirm` once per candle per symbol, as a loop over stored candles would; it runs on
`--baseline-symbols` symbols and is extrapolated to all of them (the table says so).
Exit status 1 when the backtest produced no signal or no trade.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

from db.repositories.candles import CandleRepository, read_block
from db.store import Store
from scripts import _bench as bench
from scripts._results import Row, add_json_argument, emit
from services.backtest import run_in_worker
from services.backtest_engine import ScanRules, Strategy
from services.backtest_worker import BacktestJob, run_backtest
from services.features import Bars, confirm

STEP_MS = 300_000
START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
RULES = ScanRules()


def walk(symbols: int, bars: int, seed: int = 11) -> np.ndarray:
    """(5 × symbols × bars): open, high, low, close, volume of a seeded market."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.001, 0.004, (symbols, 1))
    steps = rng.normal(0.0, 1.0, (symbols, bars)) * sigma
    bursts = rng.random((symbols, bars)) < 1 / 400  # a burst every ~33 hours per symbol
    sign = np.where(rng.random((symbols, bars)) < 0.5, -1.0, 1.0)
    for lag in range(3):  # three bars of a move of ~4 σ each
        steps[:, lag:] += np.where(bursts[:, : bars - lag], sign[:, : bars - lag] * 4 * sigma, 0)
    close = 10 ** rng.uniform(-2, 4, (symbols, 1)) * np.exp(np.cumsum(steps, axis=1))
    opens = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    wick = np.abs(rng.normal(0, 1, (2, symbols, bars))) * sigma * close
    high, low = np.maximum(opens, close) + wick[0], np.minimum(opens, close) - wick[1]
    volume = rng.lognormal(8, 0.4, (symbols, bars))
    for lag in range(4):
        volume[:, lag:] *= np.where(bursts[:, : bars - lag], 6.0, 1.0)
    return np.stack([opens, high, low, close, volume])


async def build(path: Path, symbols: int, bars: int) -> list[int]:
    """The candle store for the run (reused when already built); series ids in order."""
    fresh = not await asyncio.to_thread(path.exists)
    async with Store(path) as store:
        repo = CandleRepository(store)
        names = [f"S{i:04d}/USDT:USDT" for i in range(symbols)]
        series = await repo.series("paper", "5m", names)
        ids = [series[n] for n in names]
        if fresh:
            data = walk(symbols, bars)
            ts = START_MS + np.arange(bars, dtype=np.int64) * STEP_MS
            for first in range(0, symbols, 32):
                batch = []
                for i in range(first, min(first + 32, symbols)):
                    rows = zip(ts.tolist(), *(data[k, i].tolist() for k in range(5)), strict=True)
                    batch.append((ids[i], list(rows)))
                await repo.insert(batch)
    return ids


PLAIN = Strategy(min_score=0.6)
# --managed: a trailing stop and a full take-profit ladder with break-even, the heaviest exits.
MANAGED = Strategy(
    min_score=0.6, trail_pct=1.5, ladder=((2.0, 50.0), (4.0, 30.0), (8.0, 20.0)),
    ladder_breakeven=True,
)  # fmt: skip


def job(
    path: Path, ids: list[int], bars: int, draw: bool = True, strategy: Strategy = PLAIN
) -> BacktestJob:
    end = START_MS + bars * STEP_MS
    return BacktestJob(
        db_path=str(path),
        series=tuple(ids),
        symbols=tuple(f"S{i:04d}/USDT:USDT" for i in range(len(ids))),
        listed_at=tuple(float("nan") for _ in ids),
        start_ms=START_MS + (RULES.window - 1) * STEP_MS,
        end_ms=end,
        rules=RULES,
        strategy=strategy,
        draw=draw,
    )


def per_candle_loop(path: Path, ids: list[int], bars: int) -> tuple[float, int]:
    """The straightforward way: every candle of every symbol judged on its own window."""
    began = time.perf_counter()
    _, values = read_block(path, ids, START_MS, START_MS + bars * STEP_MS, STEP_MS)
    hits = 0
    for i in range(len(ids)):
        for t in range(RULES.window - 1, bars):
            lo = t - RULES.window + 1
            one = Bars(*(values[k, i : i + 1, lo : t + 1] for k in range(4)))
            verdict = confirm(one, np.array([np.nan]))[0]
            hits += verdict is not None and verdict.score >= RULES.min_score
    return time.perf_counter() - began, hits


async def measure(args: argparse.Namespace) -> list[Row]:
    bars = args.days * 288 + RULES.window - 1
    path = Path(f"/tmp/tradewind-bench-backtest-{args.symbols}x{args.days}d.db")
    began = time.perf_counter()
    ids = await build(path, args.symbols, bars)
    print(f"candle store ready in {time.perf_counter() - began:.1f} s: {path}", file=sys.stderr)
    strategy = MANAGED if args.managed else PLAIN
    the_job = job(path, ids, bars, strategy=strategy)
    seen: list[int] = []

    async def progress(phase: str, done: int, total: int) -> None:
        seen.append(done)

    stop = multiprocessing.get_context("spawn").Event()
    async with bench.LoopLag() as lag:
        began = time.perf_counter()
        finished = await run_in_worker(the_job, progress, stop)
        wall = time.perf_counter() - began
    worker_mb = finished.peak_mb
    result = finished.result
    candles = args.symbols * args.days * 288
    base_ids = ids[: args.baseline_symbols]
    base_s, base_hits = per_candle_loop(path, base_ids, bars)
    base_total = base_s * args.symbols / len(base_ids)
    # In-process for the engine alone (no spawn, no drawing): what the worker spends.
    engine = run_backtest(job(path, ids, bars, draw=False, strategy=strategy)).seconds
    size = f"{args.symbols} symbols × {args.days} d ({candles / 1e6:.2f} M candles)"
    if args.managed:
        size += ", trail + ladder"
    did = result.signals > 0 and result.trades > 0
    work = (
        f"{result.signals} signals, {result.trades} trades, PnL {result.pnl:,.0f} USDT, "
        f"{len(seen)} progress reports"
    )
    scale = args.symbols / len(base_ids)
    baseline = {f"per-candle loop (≈, {len(base_ids)} symbols ×{scale:.0f})": base_total}
    print(
        f"baseline: {base_s:.1f} s for {len(base_ids)} symbols, {base_hits} hits", file=sys.stderr
    )
    return [
        Row("/backtest, worker process end to end", size, wall, "s", work, did, baseline,
            target=10.0),
        Row("backtest engine alone (read, judge, replay)", size, engine, "s", work, did,
            baseline),
        Row("peak RSS of the worker", size, worker_mb, "MB", work, did, target=500.0),
        Row("event loop during the backtest, p99", size, lag.p99_ms(), "ms", work, did,
            target=20.0, detail=f"p99 {lag.p99_ms():.1f} / max {lag.max_ms():.1f} ms"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=530)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--baseline-symbols", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="40 symbols × 7 days")
    parser.add_argument(
        "--managed", action="store_true", help="trail 1.5 %% and ladder 2%%:50,4%%:30,8%%:20"
    )
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.symbols, args.days, args.baseline_symbols = 40, 7, 1
    rows = asyncio.run(measure(args))
    print(bench.table(["workload", "size", "value", "baseline", "target", "work done"], [
        (r.workload, r.size, r.shown(), r.baselines_text(), r.target_text(), r.work)
        for r in rows
    ]))  # fmt: skip
    emit(args.json, rows)
    if not all(r.did_work for r in rows):
        print("the backtest produced no signal or no trade", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
