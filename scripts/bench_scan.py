"""Market scan and registry sync: naive vs batched vs Tradewind, side by side in one run.

Usage: .venv/bin/python -m scripts.bench_scan [--symbols 530,5000] [--latency-ms 25]
                                             [--rate-limit 100] [--reps 5]
                                             [--skip-naive-above N]
                                             [--impls naive,batched,tradewind]

The local Bybit server runs in its own process with `--latency-ms` added to every request
and a `--rate-limit` token bucket; the bot side reaches it through the real ccxt adapter
and its shared rate limiter (Bybit: 100 requests/s). Every implementation × symbol count
runs in a fresh child process on a fresh SQLite file, so peak RSS is its own.

- naive: one ticker request per symbol in sequence, one lock acquisition per symbol
  update, one autocommitted upsert per symbol; candidates' candles one after another.
- batched: ticker requests 50 at a time, one lock per scan, `executemany` in batches of
  100; candidates' candles concurrently.
- Tradewind: `services.scanner.Scanner.scan` and `services.market_registry.MarketRegistry
  .sync` — one bulk tickers request, numpy features, only changed rows written.

Every implementation imports ccxt before its clock starts (the baselines also load the
market feed's markets before it). Scan: wall time of one full scan (tickers, features,
top-10 candles), median of `--reps` after two warm-up scans (naive and batched: one scan).
Sync: wall time of a registry sync; "first" is the first sync of a fresh installation
(every row written), "steady" a later one (Tradewind writes only what changed; the
baselines rewrite every row).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from core.clock import SystemClock
from core.crypto import SecretBox, generate_key
from core.exchange.models import Market, Ticker
from core.exchange.protocol import ExchangeClient
from core.metrics import Metrics
from core.paper.synthetic import SyntheticMarket
from db.repositories.credentials import CredentialRepository
from db.repositories.markets import TRADING, MarketRepository, MarketRow
from db.repositories.notifications import NotificationRepository
from db.repositories.paper import PaperRepository
from db.repositories.signals import SignalRepository
from db.store import Store
from scripts._bench import exchange_process, machine, table, today
from services.exchanges import ExchangeGateway
from services.market_registry import MarketRegistry
from services.outbox import Outbox
from services.scanner import BARS, TIMEFRAME, Scanner
from services.signals import SignalService
from services.unit_of_work import UnitOfWork

IMPLEMENTATIONS = ("naive", "batched", "tradewind")
BATCH_REQUESTS, BATCH_ROWS, TOP = 50, 100, 10


@asynccontextmanager
async def _exchange_process(symbols: int, latency_ms: float, rate: float) -> AsyncIterator[str]:
    """The local server in its own process, warmed so every implementation meets it alike."""
    async with exchange_process(symbols=symbols, latency_ms=latency_ms, rate=rate) as url:
        await _warm(url)
        yield url


async def _warm(url: str) -> None:
    """Ask for every instrument page and the tickers once: a real exchange serves them from
    warm caches, and so the local server does from then on, whichever implementation runs
    first."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/v5/market/tickers", params={"category": "linear"}) as r:
            await r.read()
        cursor = ""
        while True:
            params = {"category": "linear", "limit": "1000", "cursor": cursor}
            async with session.get(f"{url}/v5/market/instruments-info", params=params) as r:
                cursor = (await r.json())["result"]["nextPageCursor"]
            if not cursor:
                return


# ---------------------------------------------------------------------------------------------
# One implementation in a child process.


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
    """The naive and the batched scanner/registry over the same adapter and store."""

    def __init__(self, feed: ExchangeClient, repo: MarketRepository, batched: bool) -> None:
        self.feed, self.repo, self.batched = feed, repo, batched
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

    async def scan(self) -> None:
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
        best = sorted(scores, key=scores.__getitem__, reverse=True)[:TOP]
        if self.batched:
            await asyncio.gather(*(self.feed.fetch_ohlcv(s, TIMEFRAME, BARS) for s in best))
        else:
            for symbol in best:
                await self.feed.fetch_ohlcv(symbol, TIMEFRAME, BARS)

    async def sync(self) -> None:
        markets = await self.feed.load_markets(reload=True)
        tickers = await self.tickers([s for s, m in markets.items() if m.active])
        now = datetime.now(UTC)
        rows = [_row(m, tickers.get(s), now) for s, m in markets.items()]
        if self.batched:
            async with self.lock:
                self.snapshot = {row.symbol: row for row in rows}
            for start in range(0, len(rows), BATCH_ROWS):
                await self.repo.apply(rows[start : start + BATCH_ROWS], [], now)
            return
        for row in rows:
            async with self.lock:
                self.snapshot[row.symbol] = row
            await self.repo.upsert_one(row, now)


async def _timed(action: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


async def child(impl: str, url: str, reps: int) -> dict[str, Any]:
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as tmp:
        async with Store(Path(tmp) / "bench.db") as store:
            gateway = ExchangeGateway(
                market_source="bybit",
                paper_market=SyntheticMarket(symbols=1, clock=clock),
                paper_ledger=PaperRepository(store),
                credentials=CredentialRepository(store),
                secrets=SecretBox([generate_key()]),
                clock=clock,
                metrics=Metrics(),
                exchange_urls={"bybit": url},
            )
            try:
                repo = MarketRepository(store)
                sync: Callable[[], Awaitable[object]]
                scan: Callable[[], Awaitable[object]]
                if impl == "tradewind":
                    registry = MarketRegistry(gateway, repo, clock)
                    outbox = Outbox(NotificationRepository(store), clock)
                    work = UnitOfWork(store, outbox)
                    signals = SignalService(SignalRepository(store), work, clock)
                    scanner = Scanner(gateway, registry, signals, clock)
                    sync, scan = registry.sync, scanner.scan
                    warmups, runs = 2, reps
                    # ccxt imported before the clock starts, as the baselines' market_feed()
                    # below does: ~0.7 s of process start-up, not part of any sync.
                    gateway.venue(gateway.market_source)
                else:
                    baseline = Baseline(await gateway.market_feed(), repo, impl == "batched")
                    sync, scan = baseline.sync, baseline.scan
                    warmups, runs = 0, 1
                first_sync = await _timed(sync)
                steady = [await _timed(sync) for _ in range(runs)]
                for _ in range(warmups):
                    await scan()
                scans = [await _timed(scan) for _ in range(runs)]
            finally:
                await gateway.aclose()
    return {
        "scan": statistics.median(scans),
        "first_sync": first_sync,
        "sync": statistics.median(steady),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ---------------------------------------------------------------------------------------------
# The orchestrator: one exchange process per symbol count, one child per implementation.


async def run_child(impl: str, url: str, reps: int) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.bench_scan", "--child", impl, "--url", url,
        "--reps", str(reps), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{impl} child failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "skipped"
    value = seconds * 1000
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(other: float | None, ours: float) -> str:
    return (
        "—"
        if other is None
        else f"{other / ours:,.0f}×"
        if other / ours >= 10
        else (f"{other / ours:.1f}×")
    )


async def main(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.symbols.split(",")]
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for n in counts:
        async with _exchange_process(n, args.latency_ms, args.rate_limit) as url:
            for impl in args.impls.split(","):
                if impl == "naive" and args.skip_naive_above and n > args.skip_naive_above:
                    continue
                print(f"… {impl} with {n} symbols", file=sys.stderr, flush=True)
                results[(impl, n)] = await run_child(impl, url, args.reps)
    print(f"\nMarket scan and registry sync — {today()}; {machine()}")
    print(
        f"Local Bybit server: {args.latency_ms:g} ms per request, {args.rate_limit:g} req/s; "
        "wall times in ms (scan: median of the runs)\n"
    )
    rows = []
    for n in counts:
        for impl in IMPLEMENTATIONS:
            if impl not in args.impls.split(","):
                continue
            r = results.get((impl, n))
            rows.append([
                impl, n, _ms(r["scan"]) if r else "skipped",
                _ms(r["first_sync"]) if r else "skipped", _ms(r["sync"]) if r else "skipped",
                f"{r['peak_rss_mb']:.0f}" if r else "—",
            ])  # fmt: skip
    print(table(["implementation", "symbols", "scan", "sync (first)", "sync (steady)",
                 "peak RSS (MB)"], rows))  # fmt: skip
    ratio_rows = []
    for n in counts:
        if ("tradewind", n) not in results:
            continue
        ours = results[("tradewind", n)]
        for impl in ("naive", "batched"):
            if impl not in args.impls.split(","):
                continue
            other = results.get((impl, n))
            ratio_rows.append([
                f"{impl} / Tradewind", n,
                _ratio(other["scan"] if other else None, ours["scan"]),
                _ratio(other["first_sync"] if other else None, ours["first_sync"]),
                _ratio(other["sync"] if other else None, ours["sync"]),
            ])  # fmt: skip
    if ratio_rows:
        print()
        print(table(["ratio", "symbols", "scan", "sync (first)", "sync (steady)"], ratio_rows))
    targets = []
    if (r := results.get(("tradewind", 530))) is not None:
        targets.append(f"scan of 530 ≤ 100 ms: {_ms(r['scan'])} ms")
    if (r := results.get(("tradewind", 5000))) is not None:
        targets.append(
            f"sync of 5,000 ≤ 400 ms: first {_ms(r['first_sync'])} ms, steady "
            f"{_ms(r['sync'])} ms; peak RSS ≤ 250 MB: {r['peak_rss_mb']:.0f} MB"
        )
    if targets:
        print("\nTargets — " + "; ".join(targets))


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_scan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--symbols", default="530,5000", help="comma-separated symbol counts")
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--rate-limit", type=float, default=100.0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--skip-naive-above", type=int, default=0, metavar="N")
    parser.add_argument(
        "--impls",
        default=",".join(IMPLEMENTATIONS),
        help="comma-separated implementations to run (e.g. tradewind: only its rows)",
    )
    parser.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = _parse()
    if options.child:
        print(json.dumps(asyncio.run(child(options.child, options.url, options.reps))))
    else:
        asyncio.run(main(options))
