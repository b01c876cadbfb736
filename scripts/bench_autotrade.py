"""Auto-trade fan-out: one signal for 1,000 auto-trading users on the local Bybit server.

Usage: .venv/bin/python -m scripts.bench_autotrade [--users 1000] [--latency-ms 25]
                                                  [--rate-limit 100] [--signals 1]

The local exchange server runs in its own process with `--rate-limit` requests/s for the
whole IP (what Bybit enforces) and `--latency-ms` added to every request. Each user has a
connected Bybit demo account, a licence, auto-trading on and a fixed size; their accounts
already trade the signal's symbol at the strategy's leverage (set once before, as after any
earlier signal on it). Measured: `AutoTrader.on_signal` for one signal — wall time, orders
placed, refusals for rate (429 / retCode 10006), p50/p99 latency from the signal to each
order's acknowledgement — then the same signal delivered again, and the orders counted on
the exchange (duplicates: more than one order for a user per signal). With `--signals N`,
N signals on N symbols found in one scan are traded together (`on_signals`), and each
signal's first and last order latency is shown: how long its traders wait behind the others.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.wiring import build_services
from core.cache import CacheLayer
from core.clock import SystemClock
from core.config import Settings
from core.crypto import SecretBox, SecretContext, generate_key
from core.metrics import Metrics
from db.repositories.credentials import CredentialRepository, NewCredential
from db.repositories.licenses import LicenseRepository
from db.repositories.signals import SignalDraft, SignalRepository
from db.repositories.strategy import StrategyRecord, StrategyRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from scripts._bench import (
    GcPauses,
    LoopLag,
    exchange_process,
    machine,
    percentile,
    rss_mb,
    table,
)
from scripts._results import Row, add_json_argument, emit
from services.container import Services

SYMBOL = "BTC/USDT:USDT"
SYMBOLS = (SYMBOL, "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT", "DOGE/USDT:USDT")
LEVERAGE = 5


async def _traders(
    services: Services, store: Store, secrets: SecretBox, users: int, symbols: tuple[str, ...]
) -> None:
    """Users, strategies, licences and encrypted keys, written without touching the venue."""
    now = datetime.now(UTC)
    people, credentials = UserRepository(store), CredentialRepository(store)
    for uid in range(1, users + 1):
        await people.upsert(UserProfile(uid, uid, f"Trader{uid}"), now)
        ctx = SecretContext(uid, "bybit", "demo")
        new = NewCredential(
            uid, "bybit", "demo", secrets.encrypt(f"key{uid}", ctx),
            secrets.encrypt(f"secret{uid}", ctx), None, "demo",
        )  # fmt: skip
        await credentials.upsert(new, now)
        await LicenseRepository(store).extend(uid, 30, "pro", "grant", now)
    strategy = StrategyRecord(
        0, size_usdt=Decimal(100), leverage=LEVERAGE, auto_trade=True, min_score=0.5
    )
    records = [replace(strategy, user_id=uid) for uid in range(1, users + 1)]
    await StrategyRepository(store).save_many(records, now)
    gateway = services.exchanges
    sem = asyncio.Semaphore(200)

    async def at_leverage(uid: int) -> None:
        async with sem, gateway.lease(uid, "bybit", "demo") as client:
            for symbol in symbols:
                await client.set_leverage(symbol, LEVERAGE)

    await asyncio.gather(*(at_leverage(uid) for uid in range(1, users + 1)))


def _calls(metrics: Metrics) -> Counter[str]:
    totals = metrics.totals("tradewind_exchange_call_seconds", "method")
    return Counter({method: int(count) for method, (count, _) in totals.items()})


def _errors(metrics: Metrics) -> Counter[str]:
    found: Counter[str] = Counter()
    for family in metrics.registry.collect():
        if family.name == "tradewind_exchange_errors":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["error"]] += int(sample.value)
    return found


async def _orders_on_exchange(
    services: Services, users: int, symbols: tuple[str, ...]
) -> Counter[int]:
    """How many Tradewind orders each account holds on the exchange (after the run)."""
    counts: Counter[int] = Counter()
    sem = asyncio.Semaphore(200)

    async def count(uid: int) -> None:
        async with sem, services.exchanges.lease(uid, "bybit", "demo") as client:
            api = client.api  # type: ignore[attr-defined]
            for symbol in symbols:
                orders = await api.fetch_closed_orders(symbol) + await api.fetch_open_orders(symbol)
                counts[uid] += sum(
                    1 for o in orders if (o.get("clientOrderId") or "").startswith("tw")
                )

    await asyncio.gather(*(count(uid) for uid in range(1, users + 1)))
    return counts


async def main(users: int, latency_ms: float, rate: float, count: int = 1) -> list[Row]:
    symbols = SYMBOLS[:count]
    with tempfile.TemporaryDirectory() as tmp:
        async with exchange_process(latency_ms=latency_ms, rate=rate, accounts=users) as base_url:
            db = Path(tmp) / "bench.db"
            clock, metrics = SystemClock(), Metrics()
            settings = Settings(
                db_path=db,
                master_key_file=Path(tmp) / "master.key",
                exchange_urls={"bybit": base_url},
                metrics_addr=None,
            )
            secrets = SecretBox([generate_key()])
            async with Store(db, observer=metrics) as store:
                services = await build_services(
                    settings, store, clock, metrics, CacheLayer(clock), secrets, frozenset()
                )
                try:
                    setup = time.perf_counter()
                    await _traders(services, store, secrets, users, symbols)
                    setup_s = time.perf_counter() - setup
                    signals = []
                    for symbol in symbols:
                        price = (await services.market.ticker("bybit", symbol)).last
                        draft = SignalDraft(
                            "bybit", symbol, "long", 0.9, price, LEVERAGE, Decimal(3),
                            Decimal("1.5"), ("benchmark",),
                        )  # fmt: skip
                        signals.append(await SignalRepository(store).insert(draft, clock.now()))
                    calls_before, errors_before = _calls(metrics), _errors(metrics)
                    started = time.perf_counter()
                    with GcPauses() as pauses:
                        async with LoopLag() as lag:
                            reports = await services.autotrader.on_signals(signals)
                    wall = time.perf_counter() - started
                    calls = _calls(metrics) - calls_before
                    errors = _errors(metrics) - errors_before
                    again = time.perf_counter()
                    redelivered = await services.autotrader.on_signals(signals)
                    again_s = time.perf_counter() - again
                    rows = await store.fetchall(
                        "bench.executions",
                        "SELECT signal_id, status, latency_ms FROM executions",
                    )
                    on_exchange = await _orders_on_exchange(services, users, symbols)
                    rss = rss_mb()
                finally:
                    await services.aclose()

    statuses = Counter(row["status"] for row in rows)
    latencies = [row["latency_ms"] for row in rows if row["latency_ms"] is not None]
    placed = statuses["placed"] + statuses["filled"]
    duplicates = sum(n - count for n in on_exchange.values() if n > count)
    refused = errors.get("RateLimited", 0)
    print(
        f"{users} auto-trading users, {count} signal(s), local Bybit server with "
        f"{rate:.0f} requests/s per IP and {latency_ms:.0f} ms latency; {machine()}"
    )
    print(f"setup (users, keys, licences, leverage once per account): {setup_s:.1f} s\n")
    print(
        table(
            ["measure", "value"],
            [
                ("wall time of on_signals (s)", f"{wall:.2f}"),
                ("candidates", sum(r.candidates for r in reports)),
                ("orders placed", placed),
                ("outcomes by status", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))),
                ("orders on the exchange", sum(on_exchange.values())),
                ("duplicates", duplicates),
                ("refused for rate (429 / 10006)", refused),
                ("other exchange errors", sum(errors.values()) - refused),
                ("latency p50 (ms)", f"{percentile(latencies, 50):.0f}"),
                ("latency p99 (ms)", f"{percentile(latencies, 99):.0f}"),
                ("latency max (ms)", f"{max(latencies):.0f}"),
                ("requests per user", f"{sum(calls.values()) / users:.2f}"),
                (
                    "redelivered: candidates / wall (s)",
                    f"{sum(r.candidates for r in redelivered)} / {again_s:.3f}",
                ),
                ("RSS at the end (MB)", f"{rss:.0f}"),
            ],
        )
    )
    if count > 1:
        per_signal = []
        for n, signal in enumerate(signals, 1):
            mine = [r["latency_ms"] for r in rows if r["signal_id"] == signal.id]
            mine = [ms for ms in mine if ms is not None]
            per_signal.append((n, signal.symbol, f"{min(mine):.0f}", f"{max(mine):.0f}"))
        print("\n" + table(["signal", "symbol", "first order (ms)", "last order (ms)"], per_signal))
    print("\n" + table(["exchange call in on_signals", "calls"], sorted(calls.items())))
    print(f"\nEvent loop: lag p99 {lag.p99_ms():.1f} ms, max {lag.max_ms():.1f} ms, "
          f"GC max {pauses.max_ms():.1f} ms")  # fmt: skip
    size = f"{users:,} users × {count} signal(s), {rate:.0f} req/s, {latency_ms:.0f} ms latency"
    orders = sum(on_exchange.values())
    work = (
        f"{placed} orders placed, {orders} on the exchange, {duplicates} duplicates, "
        f"{refused} refused for rate"
    )
    wanted = users * count
    did = placed == wanted and orders == wanted and duplicates == 0
    # The venue's own floor is one request per order at its rate limit; 20 % over it is met.
    return [
        Row("auto-trade signals, every order acknowledged", size, wall, "s", work, did,
            target=wanted / rate * 1.2),
        Row("event loop during the auto-trade fan-out", size, lag.p99_ms(), "ms", work, did,
            detail=f"lag p99 {lag.p99_ms():.1f} / max {lag.max_ms():.1f} ms, "
            f"GC max {pauses.max_ms():.1f} ms"),
    ]  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=25)
    parser.add_argument("--rate-limit", type=float, default=100)
    parser.add_argument("--signals", type=int, default=1, choices=range(1, len(SYMBOLS) + 1))
    add_json_argument(parser)
    args = parser.parse_args()
    found = asyncio.run(main(args.users, args.latency_ms, args.rate_limit, args.signals))
    emit(args.json, found)
    raise SystemExit(0 if all(row.did_work for row in found) else 1)
