"""Account streams on against off: the same traders, the same minute, side by side.

Usage: .venv/bin/python -m scripts.bench_streams [--traders 2000] [--active 1000]
           [--seconds 60] [--latency-ms 25] [--budget 100] [--quick] [--json PATH]

The local Bybit server runs in its own process (REST and websockets, `--latency-ms` on every
request and every pushed frame) with `--traders` demo accounts, all connected to the real bot
(the PTB Application with its jobs: position sync, cache warming, ...). `--active` of them
read their /balance, /positions or /orders every 2–10 s through the services the handlers
call, and now and then send a market order; the rest stay connected and idle. The bot's
shared request budget for Bybit is `--budget` requests/s (the product default, 100).

The minute runs twice, with `TRADEWIND_STREAMS=0` (every account polled) and with streams on,
each on a fresh database. Reported per mode: the cache hit rate of the reads, their p99, the
REST requests the server saw per idle trader per minute (signed requests by API key), and
with streams on the fill → push latency (the server's execution time to the fill sink) and
the RSS one streamed account costs (memory growth beyond the polling run's, per stream).
The run fails when streams on streamed or pushed nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bot.app import build_application
from bot.offline_api import FakeTelegramState
from bot.offline_request import OfflineRequest
from core.cache import tally_reads
from core.config import Settings
from core.exchange.credentials import ApiCredentials
from core.exchange.models import Fill, OrderRequest, OrderType, Side
from core.metrics import Metrics
from handlers.context import TradewindApp
from scripts import _bench as bench
from scripts._results import Row, add_json_argument, emit
from services.account_stream import FillSink
from services.container import Services
from services.users import UserProfile

KINDS = (("balance", 0.4), ("positions", 0.4), ("orders", 0.2))
THINK_S = (2.0, 10.0)
ORDER_SHARE = 0.03  # of an active trader's looks that also send an order
SYMBOL = "BTC/USDT:USDT"
CONNECTS_PER_S = 100.0


@dataclass
class Outcome:
    streams: int
    hits: int = 0
    misses: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    idle_requests_per_min: float = 0.0
    fill_lags: list[float] = field(default_factory=list)
    orders: int = 0
    streamed: int = 0
    pushes: int = 0
    rss_growth_mb: float = 0.0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return 100 * self.hits / total if total else 0.0

    def p99_ms(self, kind: str) -> float:
        found = self.latencies.get(kind) or [0.0]
        return bench.percentile(found, 99) * 1000


class LagSink:
    """Wraps the stream manager's sink: how long after its execution each fill arrived."""

    def __init__(self, inner: FillSink, lags: list[float]) -> None:
        self._inner = inner
        self._lags = lags

    async def record(
        self, user_id: int, exchange: str, account_type: str, fills: Sequence[Fill]
    ) -> None:
        now = time.time()
        self._lags.extend(now - fill.ts.timestamp() for fill in fills)
        await self._inner.record(user_id, exchange, account_type, fills)


async def server_stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/test/stats") as answer:
        found: dict[str, Any] = await answer.json()
        return found


async def start_bot(url: str, db: Path, streams: int) -> TradewindApp:
    settings = replace(
        Settings(
            telegram_bot_token="123456:BENCH-token-offline-bot-api-xxxxxxxx",
            db_path=db,
            master_key_file=db.parent / "master.key",
            metrics_addr=None,
        ),
        exchange_urls={"bybit": url},
        streams=streams,
    )
    state = FakeTelegramState()
    app = build_application(
        settings,
        request=OfflineRequest(state),
        get_updates_request=OfflineRequest(state),
        metrics=Metrics(),
        rate_limited=False,
    )
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    await app.start()
    return app


def services_of(app: TradewindApp) -> Services:
    services = app.bot_data.services
    assert services is not None
    return services


async def connect_all(services: Services, traders: int) -> None:
    limiter = services.exchanges.venue("bybit").limiter
    budget = limiter.rate, limiter.burst
    limiter.rate, limiter.burst = 10_000, 1_000  # connecting is set-up, not the measure
    slots = asyncio.Semaphore(50)

    async def connect(uid: int) -> None:
        await services.users.register(UserProfile(uid, uid, f"Trader{uid}"))
        async with slots:
            creds = ApiCredentials(f"key{uid}", f"secret{uid}")
            await services.accounts.connect(uid, "bybit", "demo", creds)

    await asyncio.gather(*(connect(uid) for uid in range(1, traders + 1)))
    limiter.rate, limiter.burst = budget


async def look(services: Services, uid: int, kind: str) -> None:
    if kind == "balance":
        await services.portfolio.balance(uid)
    elif kind == "positions":
        await services.portfolio.positions(uid)
    else:
        await services.portfolio.open_orders(uid)


async def warm(services: Services, active: int, out: Outcome) -> None:
    """Each active trader has looked at the bot before the minute starts."""
    slots = asyncio.Semaphore(100)

    async def first(uid: int) -> None:
        async with slots:
            for kind, _ in KINDS:
                await look(services, uid, kind)

    await asyncio.gather(*(first(uid) for uid in range(1, active + 1)))
    manager = services.streams
    if manager is not None:
        deadline = time.perf_counter() + 180
        while time.perf_counter() < deadline:
            counts = manager.counts()
            if counts.get("bybit_connected", 0) >= min(active, manager.limits.total):
                break
            await asyncio.sleep(0.25)
        out.streamed = int(manager.counts().get("bybit_connected", 0))


def stream_events(metrics: Metrics) -> int:
    """Stream events counted so far (pushes applied, connections, gaps)."""
    return int(
        sum(
            sample.value
            for family in metrics.stream_events.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        )
    )


async def load(services: Services, active: int, seconds: float, out: Outcome, streams: int) -> None:
    rng = random.Random(7)
    deadline = time.perf_counter() + seconds
    kinds, weights = [k for k, _ in KINDS], [w for _, w in KINDS]

    async def trader(uid: int) -> None:
        side = Side.BUY
        await asyncio.sleep(rng.uniform(0, THINK_S[1]))
        while time.perf_counter() < deadline:
            kind = rng.choices(kinds, weights)[0]
            started = time.perf_counter()
            with tally_reads() as tally:
                await look(services, uid, kind)
            out.latencies[kind].append(time.perf_counter() - started)
            out.hits += tally.hits
            out.misses += tally.misses
            if rng.random() < ORDER_SHARE:
                account = services.exchanges.account(uid, "bybit", "demo")
                cid = f"twbs{streams}u{uid}x{out.orders}"
                request = OrderRequest(SYMBOL, side, OrderType.MARKET, Decimal("0.001"), cid)
                try:
                    await account.create_order(request)
                    out.orders += 1
                    side = side.opposite
                except Exception as exc:  # a refused order is part of the load, not the end
                    print(f"order of trader {uid} failed: {exc}", flush=True)
            await asyncio.sleep(rng.uniform(*THINK_S))

    await asyncio.gather(*(trader(uid) for uid in range(1, active + 1)))


async def run_mode(
    url: str, traders: int, active: int, seconds: float, budget: float, streams: int
) -> Outcome:
    out = Outcome(streams=streams)
    with tempfile.TemporaryDirectory() as tmp:
        app = await start_bot(url, Path(tmp) / "tradewind.db", streams)
        try:
            services = services_of(app)
            await connect_all(services, traders)
            services.exchanges.venue("bybit").limiter.rate = budget
            if services.streams is not None:
                services.streams.sink = LagSink(services.streams.sink, out.fill_lags)
                # The local server takes connections as fast as it can; Bybit's 500 per
                # 5 minutes would spend ten minutes of the run just connecting.
                services.streams.limits = replace(
                    services.streams.limits, connects_per_s={"bybit": CONNECTS_PER_S}
                )
            before = bench.rss_mb()
            await warm(services, active, out)
            out.rss_growth_mb = bench.rss_mb() - before
            start = (await server_stats(url))["by_key"]
            started = time.perf_counter()
            await load(services, active, seconds, out, streams)
            minutes = (time.perf_counter() - started) / 60
            end = (await server_stats(url))["by_key"]
            idle = [f"key{uid}" for uid in range(active + 1, traders + 1)]
            spent = sum(end.get(k, 0) - start.get(k, 0) for k in idle)
            out.idle_requests_per_min = spent / max(1, len(idle)) / minutes
            out.pushes = stream_events(services.metrics)
        finally:
            await app.stop()
            await app.shutdown()
            assert app.post_shutdown is not None
            await app.post_shutdown(app)
    return out


def rows(off: Outcome, on: Outcome, size: str) -> list[Row]:
    streamed = on.streamed > 0 and on.pushes > 0 and bool(on.fill_lags)
    work = (
        f"{on.streamed} accounts streamed, {on.pushes} stream events, {len(on.fill_lags)} fills "
        f"pushed; {on.orders + off.orders} orders sent"
    )
    per_stream = max(0.0, on.rss_growth_mb - off.rss_growth_mb) / max(1, on.streamed)
    out = [
        Row("stream reads: cache hit rate", size, on.hit_rate, "%", work, streamed,
            {"streams off": off.hit_rate}, 99.0, higher_is_better=True),
    ]  # fmt: skip
    for kind, _ in KINDS:
        out.append(
            Row(f"stream reads: /{kind} p99", size, on.p99_ms(kind), "ms", work, streamed,
                {"streams off": off.p99_ms(kind)}, 10.0)
        )  # fmt: skip
    lags = on.fill_lags or [0.0]
    out += [
        Row("stream reads: REST requests per idle trader per minute", size,
            on.idle_requests_per_min, "req/min", work, streamed,
            {"streams off": off.idle_requests_per_min}, 0.1),
        Row("stream fills: fill → push p99", size, bench.percentile(lags, 99) * 1000, "ms",
            work, streamed, {}, 1000.0,
            detail=f"p50 {bench.percentile(lags, 50) * 1000:.0f} / "
            f"p99 {bench.percentile(lags, 99) * 1000:.0f} ms"),
        Row("stream memory: RSS per streamed account", size, per_stream * 1024, "KB", work,
            streamed, {}),
    ]  # fmt: skip
    return out


def table(off: Outcome, on: Outcome) -> str:
    def line(name: str, a: str, b: str) -> list[str]:
        return [name, a, b]

    lags = on.fill_lags or [0.0]
    body = [
        line("accounts streamed", "0", str(on.streamed)),
        line("cache hit rate of reads", f"{off.hit_rate:.1f} %", f"{on.hit_rate:.1f} %"),
        *(line(f"/{k} p99", f"{off.p99_ms(k):.1f} ms", f"{on.p99_ms(k):.1f} ms") for k, _ in KINDS),
        line(
            "REST requests per idle trader per minute",
            f"{off.idle_requests_per_min:.3f}",
            f"{on.idle_requests_per_min:.3f}",
        ),
        line(
            "fill → push p50 / p99",
            "— (polled)",
            f"{bench.percentile(lags, 50) * 1000:.0f} / {bench.percentile(lags, 99) * 1000:.0f} ms",
        ),
        line("orders sent / fills pushed", str(off.orders), f"{on.orders} / {len(on.fill_lags)}"),
        line(
            "RSS growth while warming",
            f"{off.rss_growth_mb:.0f} MB",
            f"{on.rss_growth_mb:.0f} MB"
            f" ({max(0.0, on.rss_growth_mb - off.rss_growth_mb) * 1024 / max(1, on.streamed):.0f}"
            " KB per stream)",
        ),
    ]
    return bench.table(["", "streams off", "streams on"], body)


async def main(args: argparse.Namespace) -> int:
    traders, active, seconds = args.traders, args.active, args.seconds
    if args.quick:
        traders, active, seconds = 200, 100, 20.0
    size = f"{traders} traders, {active} active, {args.latency_ms:g} ms, budget {args.budget:g}/s"
    async with bench.exchange_process(
        symbols=50, latency_ms=args.latency_ms, accounts=traders
    ) as url:
        off = await run_mode(url, traders, active, seconds, args.budget, streams=0)
        on = await run_mode(url, traders, active, seconds, args.budget, streams=args.streams)
    print(f"Streams on vs off: {size}, {seconds:g} s of load")
    print(table(off, on))
    found = rows(off, on, size)
    emit(args.json, found)
    return 0 if all(row.did_work for row in found) else 1


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traders", type=int, default=2000)
    parser.add_argument("--active", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--budget", type=float, default=100.0)
    parser.add_argument("--streams", type=int, default=1000, help="TRADEWIND_STREAMS when on")
    parser.add_argument("--quick", action="store_true", help="200 traders, 100 active, 20 s")
    add_json_argument(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
