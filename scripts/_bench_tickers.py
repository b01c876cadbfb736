"""The bulk-tickers part of `scripts.bench_exchange`: core's lean Bybit path vs ccxt's.

Kept apart from the client-pool parts; run through `python -m scripts.bench_exchange`.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import fields
from typing import Any

import aiohttp

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.lean_tickers import tickers_from_bybit
from core.exchange.models import Market, Ticker
from core.exchange.venues import VENUES
from core.ratelimit import TokenBucket
from scripts import _bench as bench
from tests.exchange_server import FULL_SYMBOL_COUNT, LARGE_SYMBOL_COUNT, ExchangeServer

SEED = 7
TICKER_LATENCY_MS = 25.0
RunChild = Callable[..., Awaitable[dict[str, Any]]]


def core_venue(base_url: str) -> CcxtVenue:
    """Core's venue with its limiter opened up: we measure clients, not Bybit's 100/s."""
    limiter = TokenBucket(1_000_000.0, burst=1_000_000.0)
    return CcxtVenue(VENUES["bybit"], base_url=base_url, limiter=limiter)


async def generic_tickers(client: CcxtClient, markets: Mapping[str, Market]) -> dict[str, Ticker]:
    """ccxt's generic path, as `CcxtClient.fetch_tickers` runs it on other venues."""
    raw = await client.call("fetch_tickers", lambda: client.api.fetch_tickers())
    return {s: parse.ticker(t) for s, t in raw.items() if s in markets}


def mismatches(a: Mapping[str, Ticker], b: Mapping[str, Ticker]) -> int:
    """Tickers that differ in any field but the timestamp (Decimal compares by value)."""
    names = [f.name for f in fields(Ticker) if f.name != "timestamp"]
    same = a.keys() & b.keys()
    differ = sum(1 for s in same if any(getattr(a[s], n) != getattr(b[s], n) for n in names))
    return differ + len(a.keys() ^ b.keys())


class Laps:
    """Consecutive timings by name: `lap(name)` records the time since the previous lap."""

    def __init__(self) -> None:
        self.samples: defaultdict[str, list[float]] = defaultdict(list)
        self.start()

    def start(self) -> None:
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.samples[name].append(now - self._last)
        self._last = now


async def child_tickers(base_url: str, runs: int) -> dict[str, Any]:
    venue = core_venue(base_url)
    laps = Laps()
    url = f"{base_url}/v5/market/tickers?category=linear"
    plain = aiohttp.ClientSession()  # the floor: one GET, body read, nothing decoded
    try:
        public = await venue.public()
        api = public.api
        markets = venue.markets()
        await api.load_markets()  # ccxt's own tables: the generic path parses with them
        await generic_tickers(public, markets)  # warm the connection and code paths
        await public.fetch_tickers()
        for _ in range(runs):
            laps.start()
            async with plain.get(url) as response:
                body = await response.read()
            laps.lap("raw_get")
            generic = await generic_tickers(public, markets)
            laps.lap("generic")
            core = await public.fetch_tickers()
            laps.lap("core")
            payload = await api.publicGetV5MarketTickers({"category": "linear"})
            laps.start()
            json.loads(body)
            laps.lap("decode")
            parsed = api.parse_tickers(payload["result"]["list"])
            same_payload = {s: parse.ticker(t) for s, t in parsed.items() if s in markets}
            laps.lap("generic_parse")
            lean = tickers_from_bybit(payload, venue.symbols_by_id())
            laps.lap("lean_parse")
    finally:
        await plain.close()
        await venue.aclose()
    return {
        "symbols": len(core),
        "body_kb": len(body) / 1024,
        "mismatches": mismatches(core, generic) + mismatches(lean, same_payload),
        "median": {key: bench.median(values) for key, values in laps.samples.items()},
    }


async def part_tickers(runs_per_size: int, run_child: RunChild) -> tuple[str, list[dict[str, Any]]]:
    results = []
    for symbols in (FULL_SYMBOL_COUNT, LARGE_SYMBOL_COUNT):
        async with ExchangeServer(symbols=symbols, seed=SEED, latency_ms=TICKER_LATENCY_MS) as srv:
            runs = str(runs_per_size)
            results.append(await run_child("tickers", "--base-url", srv.base_url, "--runs", runs))
    ms = bench.ms
    rows = []
    for r in results:
        m = r["median"]
        same = "identical" if r["mismatches"] == 0 else f"{r['mismatches']} differ"
        rows.append(
            bench.cols(
                f"{r['symbols']:,} | {r['body_kb']:,.0f} | {ms(m['raw_get'])} | {ms(m['generic'])}"
                f" | {ms(m['core'])} | {m['generic'] / m['core']:.1f}× | {ms(m['decode'])}"
                f" | {ms(m['generic_parse'])} | {ms(m['lean_parse'])}"
                f" | {m['generic_parse'] / m['lean_parse']:.1f}× | {same}"
            )
        )
    headers = bench.cols(
        "Symbols | Body (KB) | Raw aiohttp GET: latency + server + transfer (ms)"
        " | ccxt generic path p50 (ms) | core `fetch_tickers` p50 (ms) | Wall speed-up"
        " | One `json.loads` of the body (ms) | Parse: ccxt `parse_tickers` + `ccxt_parse.ticker`"
        " (ms) | Parse: core `tickers_from_bybit` (ms) | Parse speed-up | Tickers, core vs generic"
    )
    return bench.table(headers, rows), results
