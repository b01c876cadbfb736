"""The ticker tape of a live market source: REST reads against the public ticker stream.

Usage: .venv/bin/python -m scripts.bench_tape [--symbols 530] [--seconds 60] [--quick]
           [--json PATH]

The local Bybit server runs in its own process with `--symbols` linear perpetuals, its market
moving one random-walk step a second (every symbol; each move is pushed on its ticker
stream, as a venue pushes). Every scan interval (10 s, the product default) the bot's
readers of the market run at once, as their jobs do: the scanner, paper settlement on live
prices, the price alerts and the trailing stops, and a trader's /price-like read. The same
window runs twice on a fresh gateway: with streams off (the tape is one bulk REST read per
TTL, shared) and on (the public ticker stream keeps it fresh). Reported per mode: the market
requests the exchange served per minute, and the age of the prices each reader got (how long
before the read the tape was taken). The run fails when a mode read nothing, or when the
stream published nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from core.cache import CacheLayer
from core.clock import SystemClock
from core.exchange.feed import TickerFeed, open_ticker_feed
from db.store import Store
from scripts import _bench as bench
from scripts._results import Row, add_json_argument, emit
from services.caching import TICKERS, define_trader_caches
from services.market import MarketService
from services.ticker_stream import TickerStream
from tests.fakes.gateways import local_gateway

INTERVAL_S = 10.0  # the scan interval: scanner, settlement, alerts and trailing run on it
READERS = 5


@dataclass
class Outcome:
    mode: str
    seconds: float = 0.0
    market_requests: int = 0
    reads: int = 0
    ages_s: list[float] = field(default_factory=list)
    publishes: int = 0
    symbols: int = 0

    def per_minute(self) -> float:
        return self.market_requests * 60 / self.seconds if self.seconds else 0.0


async def _stats(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/test/stats") as answer:
        stats: dict[str, Any] = await answer.json()
        return stats


def _public(stats: dict[str, Any]) -> int:
    """Requests without keys: the market's (signed ones are counted by key)."""
    return int(stats["total"]) - sum(int(n) for n in stats["by_key"].values())


async def run_mode(url: str, seconds: float, streamed: bool) -> Outcome:
    out = Outcome("streams on" if streamed else "streams off")
    clock = SystemClock()
    cache = CacheLayer(clock)
    define_trader_caches(cache)
    tickers = cache.cache(TICKERS.name)

    with tempfile.TemporaryDirectory() as tmp:
        async with Store(Path(tmp) / "bench.db") as store, aiohttp.ClientSession() as session:
            gateway = local_gateway(store, clock, base_url=url, source="bybit", cache=cache)
            market = MarketService(gateway)
            venue = gateway.venue("bybit")
            stream: TickerStream | None = None
            try:
                await gateway.paper_source()  # markets and the first snapshot, before the clock
                if streamed:

                    async def feed() -> TickerFeed:
                        return open_ticker_feed(venue, live.gap)

                    live = TickerStream("bybit", gateway, feed, lambda: venue.markets().keys())
                    stream = live
                    live.start()
                    for _ in range(600):  # up to 30 s: subscribing every symbol
                        if live.stats.connected:
                            break
                        await asyncio.sleep(0.05)
                first = _public(await _stats(session, url))
                began = time.perf_counter()
                while time.perf_counter() - began < seconds:
                    step = time.perf_counter()

                    async def read(kind: str) -> None:
                        if kind == "settle":
                            await gateway.settle_paper()
                        elif kind == "paper":
                            await market.tickers("paper")
                        else:
                            await market.tickers("bybit")
                        left = tickers.peek_ttl_left("bybit")
                        out.ages_s.append(TICKERS.ttl - left if left is not None else TICKERS.ttl)

                    kinds = ("scan", "settle", "alerts", "trailing", "paper")[:READERS]
                    await asyncio.gather(*(read(k) for k in kinds))
                    out.reads += len(kinds)
                    await asyncio.sleep(max(0.0, INTERVAL_S - (time.perf_counter() - step)))
                out.seconds = time.perf_counter() - began
                out.market_requests = _public(await _stats(session, url)) - first
                out.symbols = len(await gateway.tickers("bybit"))
                if stream is not None:
                    out.publishes = stream.stats.publishes
            finally:
                if stream is not None:
                    await stream.aclose()
                await gateway.aclose()
    return out


async def _walk(url: str, stop: asyncio.Event) -> int:
    """Move every symbol one small step a second until told to stop."""
    steps = 0
    while not stop.is_set():
        await bench.tick(url, breakouts=0, walk=0.0005)
        steps += 1
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            continue
    return steps


async def measure(symbols: int, seconds: float) -> list[Row]:
    async with bench.exchange_process(symbols=symbols, moving=True) as url:
        stop = asyncio.Event()
        walking = asyncio.create_task(_walk(url, stop))
        try:
            off = await run_mode(url, seconds, streamed=False)
            on = await run_mode(url, seconds, streamed=True)
        finally:
            stop.set()
            steps = await walking
    size = f"{symbols} symbols, {READERS} readers every {INTERVAL_S:.0f} s, {seconds:.0f} s"
    rows = []
    for out in (off, on):
        did = out.reads > 0 and out.symbols == symbols and (out.mode == "streams off" or
                                                            out.publishes > 0)  # fmt: skip
        work = f"{out.reads} reads of {out.symbols} symbols, {steps} market steps" + (
            f", {out.publishes} stream publishes" if out.mode == "streams on" else ""
        )
        rows.append(Row(f"market requests per minute, {out.mode}", size, out.per_minute(),
                        "requests/min", work, did))  # fmt: skip
        p50, p99 = bench.percentile(out.ages_s, 50), bench.percentile(out.ages_s, 99)
        rows.append(Row(f"age of the prices read, {out.mode}", size, p99, "s", work, did,
                        detail=f"p50 {p50:.2f} / p99 {p99:.2f} s"))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=530)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="100 symbols, 20 s per mode")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.symbols, args.seconds = 100, 20.0
    rows = asyncio.run(measure(args.symbols, args.seconds))
    print(f"{bench.today()} · {bench.machine()}")
    print(bench.table(["workload", "size", "value", "work"], [
        (r.workload, r.size, r.shown(), r.work) for r in rows
    ]))  # fmt: skip
    emit(args.json, rows)
    if not all(r.did_work for r in rows):
        print("a mode read nothing, or the stream published nothing", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
