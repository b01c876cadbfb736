"""Market scan and registry sync: naive vs batched vs Tradewind, side by side in one run.

Usage: .venv/bin/python -m scripts.bench_scan [--symbols 530,5000] [--latency-ms 25]
                                             [--rate-limit 100] [--reps 5]
                                             [--skip-naive-above N] [--baselines-up-to N]
                                             [--impls naive,batched,tradewind] [--json PATH]

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

The market moves (`tests.exchange_server --moving`): before every scan a tick moves every
price a little and breaks 12 symbols out (a step of 3–6 % with a burst of volume), so the
scanner's top candidates really go through candle confirmation; before every steady sync a
tick lists 5 symbols, delists 5 and changes 20 instruments' fields, while every price moves.
Tradewind runs first; the baselines then confirm as many candidates as it did.

Every implementation imports ccxt before its clock starts (the baselines also load the
market feed's markets before it). Scan: wall time of one full scan (tickers, features,
candidates' candles and their confirmation), median of `--reps` after two warm-up scans
(naive and batched: one scan). Sync: wall time of a registry sync; "first" is the first
sync of a fresh installation (every row written), "steady" a later one after a tick
(Tradewind writes what changed; the baselines rewrite every row). Each row reports the
funnel of every scan and the listings/delistings/rows written of every sync: a scan that
confirmed nothing, or a sync that wrote nothing, fails the benchmark (exit status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.wiring import build_services
from core.cache import CacheLayer
from core.clock import SystemClock
from core.config import Settings
from core.crypto import SecretBox, generate_key
from core.metrics import Metrics
from db.repositories.markets import MarketRepository
from db.store import Store
from scripts._bench import GcPauses, LoopLag, exchange_process, machine, table, tick, today
from scripts._results import Row, add_json_argument, emit
from scripts._scan_baseline import Baseline
from services.container import Services
from services.market_registry import SyncReport
from services.scanner import BARS, ScanReport

IMPLEMENTATIONS = ("naive", "batched", "tradewind")
TOP = 10
BREAKOUTS = 12  # symbols breaking out before every scan (more than the scanner's top 10)
LISTINGS, CHANGES = 5, 20  # per sync: listed and delisted each, instruments changed
SCAN_TARGET_MS = {530: 100.0, 5000: 400.0}
SYNC_TARGET_MS = {5000: 400.0}
RSS_TARGET_MB = 250.0


@asynccontextmanager
async def _exchange_process(symbols: int, latency_ms: float, rate: float) -> AsyncIterator[str]:
    """The local server in its own process, warmed so every implementation meets it alike."""
    async with exchange_process(
        symbols=symbols, latency_ms=latency_ms, rate=rate, moving=True
    ) as url:
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


class _RunClock(SystemClock):
    """The real clock, moved on by hand between runs: in the bot, syncs are minutes and
    scans seconds apart, so each reads the market anew, never the ticker tape the run
    before filled a moment earlier."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def skip(self, seconds: float) -> None:
        self.skipped += seconds

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.skipped)

    def monotonic(self) -> float:
        return super().monotonic() + self.skipped


async def _services(store: Store, url: str, clock: _RunClock) -> Services:
    """Every service of the bot, wired as the bot wires them, reading the market from `url`
    (by REST: streams stay off, as the scan path measured here is the bulk read)."""
    settings = replace(
        Settings(db_path=store.path, master_key_file=store.path.parent / "master.key"),
        exchange_urls={"bybit": url},
        market_source="bybit",
        metrics_addr=None,
    )
    return await build_services(
        settings, store, clock, Metrics(), CacheLayer(clock), SecretBox([generate_key()]),
        frozenset(),
    )  # fmt: skip


async def _floors(url: str, candidates: int, runs: int = 3) -> dict[str, float]:
    """The bare HTTP GETs each operation cannot do without (ms, median of `runs`): what the
    exchange and the network cost, whatever the client does."""
    out: dict[str, list[float]] = {"tickers": [], "pages": [], "candles": []}
    async with aiohttp.ClientSession() as session:

        async def get(path: str, **params: str) -> Any:
            async with session.get(f"{url}{path}", params=params) as response:
                return await response.json()

        body = await get("/v5/market/tickers", category="linear")
        symbols = [row["symbol"] for row in body["result"]["list"]]
        for run in range(runs):
            began = time.perf_counter()
            await get("/v5/market/tickers", category="linear")
            out["tickers"].append(time.perf_counter() - began)
            began, cursor = time.perf_counter(), ""
            while True:
                page = await get(
                    "/v5/market/instruments-info", category="linear", limit="1000", cursor=cursor
                )
                cursor = page["result"]["nextPageCursor"]
                if not cursor:
                    break
            out["pages"].append(time.perf_counter() - began)
            picked = symbols[run * candidates : (run + 1) * candidates]
            began = time.perf_counter()
            await asyncio.gather(*(
                get("/v5/market/kline", category="linear", symbol=symbol, interval="5",
                    limit=str(BARS))
                for symbol in picked
            ))  # fmt: skip
            out["candles"].append(time.perf_counter() - began)
    return {name: statistics.median(values) * 1000 for name, values in out.items()}


async def child(impl: str, url: str, reps: int, top: int) -> dict[str, Any]:
    """One implementation: a first sync, `reps` steady syncs and `reps` scans, each after a
    tick of the moving market (listings, delistings, changed fields; breakouts)."""
    scans: list[float] = []
    steady: list[float] = []
    funnel: list[tuple[int, int, int]] = []  # per scan: candidates, checked, confirmed
    changes: list[tuple[int, int, int]] = []  # per steady sync: listed, delisted, written
    phases: dict[str, list[float]] = {}  # Tradewind's own phase times (ms), per run
    with tempfile.TemporaryDirectory() as tmp:
        async with Store(Path(tmp) / "bench.db") as store:
            clock = _RunClock()
            services = await _services(store, url, clock)
            try:
                sync: Callable[[], Awaitable[Any]]
                scan: Callable[[], Awaitable[Any]]
                if impl == "tradewind":
                    sync, scan = services.registry.sync, services.scanner.scan
                    warmups, runs = 2, reps
                    # ccxt imported before the clock starts, as the baselines' market_feed()
                    # below does: ~0.7 s of process start-up, not part of any sync.
                    services.exchanges.venue("bybit")
                else:
                    feed = await services.exchanges.market_feed()
                    baseline = Baseline(feed, MarketRepository(store), impl == "batched", top)
                    sync, scan = baseline.sync, baseline.scan
                    warmups, runs = 0, 1
                first_start = time.perf_counter()
                imported = await sync()
                first_sync = time.perf_counter() - first_start
                first_written = (
                    imported.written if isinstance(imported, SyncReport) else imported[2]
                )
                for _ in range(runs):
                    await tick(url, breakouts=0, listings=LISTINGS, delistings=LISTINGS,
                               changes=CHANGES)  # fmt: skip
                    clock.skip(services.registry.interval_s)
                    began = time.perf_counter()
                    report = await sync()
                    steady.append(time.perf_counter() - began)
                    if isinstance(report, SyncReport):
                        changes.append((report.listed, report.delisted, report.written))
                        for name in ("fetch_ms", "diff_ms", "write_ms"):
                            phases.setdefault(f"sync_{name}", []).append(getattr(report, name))
                    else:
                        changes.append(report)
                with GcPauses() as pauses:
                    async with LoopLag() as lag:
                        for n in range(warmups + runs):
                            await tick(url, breakouts=BREAKOUTS)
                            clock.skip(services.scanner.interval_s)
                            began = time.perf_counter()
                            result = await scan()
                            spent = time.perf_counter() - began
                            if n < warmups:
                                continue
                            scans.append(spent)
                            if isinstance(result, ScanReport):
                                funnel.append((result.candidates, result.checked, result.confirmed))
                                for name in ("fetch_ms", "features_ms", "confirm_ms", "store_ms"):
                                    phase = f"scan_{name}"
                                    phases.setdefault(phase, []).append(getattr(result, name))
                            else:
                                funnel.append(result)
                floors = await _floors(url, top) if impl == "tradewind" else {}
            finally:
                await services.aclose()
    return {
        "phases": {name: statistics.median(values) for name, values in phases.items()},
        "floors": floors,
        "scan": statistics.median(scans),
        "first_sync": first_sync,
        "first_written": first_written,
        "sync": statistics.median(steady),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "funnel": funnel,
        "changes": changes,
        "lag_p99_ms": lag.p99_ms(),
        "lag_max_ms": lag.max_ms(),
        "gc_max_ms": pauses.max_ms(),
    }


# ---------------------------------------------------------------------------------------------
# The orchestrator: one exchange process per symbol count, one child per implementation.


async def run_child(impl: str, url: str, reps: int, top: int) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.bench_scan", "--child", impl, "--url", url,
        "--reps", str(reps), "--top", str(top), stdout=asyncio.subprocess.PIPE,
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


def _funnel(result: dict[str, Any]) -> str:
    per_scan = ", ".join("/".join(str(x) for x in scan) for scan in result["funnel"])
    return f"candidates/checked on candles/confirmed per scan: {per_scan}"


def _changes(result: dict[str, Any]) -> str:
    per_sync = ", ".join(f"+{a} −{b} ={c}" for a, b, c in result["changes"])
    return f"listed/delisted/rows written per sync: {per_sync}"


def _scan_why(result: dict[str, Any]) -> str:
    p, f = result["phases"], result["floors"]
    return (
        f"tickers {p['scan_fetch_ms']:.0f} ms (bare GET {f['tickers']:.0f}), features "
        f"{p['scan_features_ms']:.0f}, candles + confirmation {p['scan_confirm_ms']:.0f} (bare "
        f"concurrent GETs {f['candles']:.0f}), signals stored {p['scan_store_ms']:.0f}"
    )


def _sync_why(result: dict[str, Any]) -> str:
    p, f = result["phases"], result["floors"]
    return (
        f"fetch {p['sync_fetch_ms']:.0f} ms (bare GETs: instrument pages one after another "
        f"{f['pages']:.0f}, tickers {f['tickers']:.0f}, concurrently), diff "
        f"{p['sync_diff_ms']:.0f}, write {p['sync_write_ms']:.0f}"
    )


def rows_of(
    results: dict[tuple[str, int], dict[str, Any]], counts: Sequence[int], latency_ms: float
) -> list[Row]:
    """The benchmark's rows for the summary table (Tradewind against the baselines)."""
    rows: list[Row] = []
    for n in counts:
        ours = results.get(("tradewind", n))
        if ours is None:
            continue
        others = {impl: results[(impl, n)] for impl in ("naive", "batched") if (impl, n) in results}
        size = f"{n:,} symbols, {latency_ms:g} ms latency"
        scanned = all(c >= 1 and k >= 1 for c, k, _ in ours["funnel"])
        same = all(
            [c for c, _, _ in r["funnel"]] == [statistics.median_low(
                [c for c, _, _ in ours["funnel"]])] for r in others.values()
        )  # fmt: skip
        rows.append(Row(
            workload="market scan with candle confirmation", size=size,
            value=ours["scan"] * 1000, unit="ms",
            baselines={impl: r["scan"] * 1000 for impl, r in others.items()},
            target=SCAN_TARGET_MS.get(n),
            work=_funnel(ours) + ("" if not others else "; baselines confirm the same number"),
            did_work=scanned and same, why=_scan_why(ours),
        ))  # fmt: skip
        changed = all(a >= 1 and b >= 1 and c > a + b for a, b, c in ours["changes"])
        rows.append(Row(
            workload="registry sync, steady, with changes", size=size,
            value=ours["sync"] * 1000, unit="ms",
            baselines={impl: r["sync"] * 1000 for impl, r in others.items()},
            target=SYNC_TARGET_MS.get(n), work=_changes(ours), did_work=changed,
            why=_sync_why(ours),
        ))  # fmt: skip
        rows.append(Row(
            workload="registry sync, first (import)", size=size,
            value=ours["first_sync"] * 1000, unit="ms",
            baselines={impl: r["first_sync"] * 1000 for impl, r in others.items()},
            work=f"{ours['first_written']:,} rows written", did_work=ours["first_written"] >= n,
        ))  # fmt: skip
        rows.append(Row(
            workload="scan + sync peak RSS", size=size, value=ours["peak_rss_mb"], unit="MB",
            baselines={impl: r["peak_rss_mb"] for impl, r in others.items()},
            target=RSS_TARGET_MB if n >= 5000 else None,
            work="whole bot's services built, ring buffers full", did_work=scanned,
        ))  # fmt: skip
        rows.append(Row(
            workload="event loop during scans", size=size, value=ours["lag_max_ms"],
            unit="ms", work="a 5 ms sleeper's lateness while the scans ran",
            did_work=scanned,
            detail=f"lag p99 {ours['lag_p99_ms']:.1f} / max {ours['lag_max_ms']:.1f} ms, "
            f"GC max {ours['gc_max_ms']:.1f} ms",
        ))  # fmt: skip
    return rows


async def main(args: argparse.Namespace) -> list[Row]:
    counts = [int(n) for n in args.symbols.split(",")]
    impls = args.impls.split(",")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for n in counts:
        async with _exchange_process(n, args.latency_ms, args.rate_limit) as url:
            # Tradewind first: the baselines then confirm as many candidates as it did.
            top = TOP
            for impl in sorted(impls, key=lambda i: i != "tradewind"):
                if impl != "tradewind" and args.baselines_up_to and n > args.baselines_up_to:
                    continue
                if impl == "naive" and args.skip_naive_above and n > args.skip_naive_above:
                    continue
                print(f"… {impl} with {n} symbols", file=sys.stderr, flush=True)
                results[(impl, n)] = await run_child(impl, url, args.reps, top)
                if impl == "tradewind":
                    top = statistics.median_low([c for c, _, _ in results[(impl, n)]["funnel"]])
    print(f"\nMarket scan and registry sync — {today()}; {machine()}")
    print(
        f"Local Bybit server: {args.latency_ms:g} ms per request, {args.rate_limit:g} req/s, "
        f"{BREAKOUTS} breakouts per scan, +{LISTINGS} −{LISTINGS} symbols and {CHANGES} "
        "changed instruments per sync, every price moving; wall times in ms (median)\n"
    )
    rows = []
    for n in counts:
        for impl in IMPLEMENTATIONS:
            r = results.get((impl, n))
            if r is None:
                continue
            rows.append([
                impl, n, _ms(r["scan"]), _ms(r["first_sync"]), _ms(r["sync"]),
                f"{r['peak_rss_mb']:.0f}", _funnel(r).split(": ", 1)[1],
                _changes(r).split(": ", 1)[1],
            ])  # fmt: skip
    print(table(["implementation", "symbols", "scan", "sync (first)", "sync (steady)",
                 "peak RSS (MB)", "scans: candidates/checked/confirmed",
                 "syncs: +listed −delisted =written"], rows))  # fmt: skip
    return rows_of(results, counts, args.latency_ms)


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
        "--baselines-up-to", type=int, default=0, metavar="N",
        help="run the baselines only for symbol counts up to N (0: always)",
    )  # fmt: skip
    parser.add_argument(
        "--impls",
        default=",".join(IMPLEMENTATIONS),
        help="comma-separated implementations to run (e.g. tradewind: only its rows)",
    )
    add_json_argument(parser)
    parser.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--top", type=int, default=TOP, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = _parse()
    if options.child:
        outcome = asyncio.run(child(options.child, options.url, options.reps, options.top))
        print(json.dumps(outcome))
    else:
        found = asyncio.run(main(options))
        emit(options.json, found)
        sys.exit(0 if all(row.did_work for row in found) else 1)
