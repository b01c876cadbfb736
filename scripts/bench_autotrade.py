"""Auto-trade fan-out: one signal for 1,000 auto-trading users on the local Bybit server.

Usage: .venv/bin/python -m scripts.bench_autotrade [--users 1000] [--latency-ms 25]
                                                  [--rate-limit 100]

The local exchange server runs in its own process with `--rate-limit` requests/s for the
whole IP (what Bybit enforces) and `--latency-ms` added to every request. Each user has a
connected Bybit demo account, a licence, auto-trading on and a fixed size; their accounts
already trade the signal's symbol at the strategy's leverage (set once before, as after any
earlier signal on it). Measured: `AutoTrader.on_signal` for one signal — wall time, orders
placed, refusals for rate (429 / retCode 10006), p50/p99 latency from the signal to each
order's acknowledgement — then the same signal delivered again, and the orders counted on
the exchange (duplicates: more than one order for a user).
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
from services.container import Services, build_services

SYMBOL = "BTC/USDT:USDT"
LEVERAGE = 5


async def _traders(services: Services, store: Store, secrets: SecretBox, users: int) -> None:
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
            await client.set_leverage(SYMBOL, LEVERAGE)

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


async def _orders_on_exchange(services: Services, users: int) -> Counter[int]:
    """How many Tradewind orders each account holds on the exchange (after the run)."""
    counts: Counter[int] = Counter()
    sem = asyncio.Semaphore(200)

    async def count(uid: int) -> None:
        async with sem, services.exchanges.lease(uid, "bybit", "demo") as client:
            api = client.api  # type: ignore[attr-defined]
            orders = await api.fetch_closed_orders(SYMBOL) + await api.fetch_open_orders(SYMBOL)
            counts[uid] = sum(1 for o in orders if (o.get("clientOrderId") or "").startswith("tw"))

    await asyncio.gather(*(count(uid) for uid in range(1, users + 1)))
    return counts


async def main(users: int, latency_ms: float, rate: float) -> list[Row]:
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
                    await _traders(services, store, secrets, users)
                    setup_s = time.perf_counter() - setup
                    price = (await services.market.ticker("bybit", SYMBOL)).last
                    draft = SignalDraft(
                        "bybit", SYMBOL, "long", 0.9, price, LEVERAGE, Decimal(3),
                        Decimal("1.5"), ("benchmark",),
                    )  # fmt: skip
                    signal = await SignalRepository(store).insert(draft, clock.now())
                    calls_before, errors_before = _calls(metrics), _errors(metrics)
                    started = time.perf_counter()
                    with GcPauses() as pauses:
                        async with LoopLag() as lag:
                            report = await services.autotrader.on_signal(signal)
                    wall = time.perf_counter() - started
                    calls = _calls(metrics) - calls_before
                    errors = _errors(metrics) - errors_before
                    again = time.perf_counter()
                    redelivered = await services.autotrader.on_signal(signal)
                    again_s = time.perf_counter() - again
                    rows = await store.fetchall(
                        "bench.executions",
                        "SELECT status, latency_ms FROM executions WHERE signal_id = ?",
                        (signal.id,),
                    )
                    on_exchange = await _orders_on_exchange(services, users)
                    rss = rss_mb()
                finally:
                    await services.aclose()

    statuses = Counter(row["status"] for row in rows)
    latencies = [row["latency_ms"] for row in rows if row["latency_ms"] is not None]
    placed = statuses["placed"] + statuses["filled"]
    duplicates = sum(n - 1 for n in on_exchange.values() if n > 1)
    refused = errors.get("RateLimited", 0)
    print(
        f"{users} auto-trading users, one signal, local Bybit server with {rate:.0f} requests/s "
        f"per IP and {latency_ms:.0f} ms latency; {machine()}"
    )
    print(f"setup (users, keys, licences, leverage once per account): {setup_s:.1f} s\n")
    print(
        table(
            ["measure", "value"],
            [
                ("wall time of on_signal (s)", f"{wall:.2f}"),
                ("candidates", report.candidates),
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
                ("redelivered: candidates / wall (s)", f"{redelivered.candidates} / {again_s:.3f}"),
                ("RSS at the end (MB)", f"{rss:.0f}"),
            ],
        )
    )
    print("\n" + table(["exchange call in on_signal", "calls"], sorted(calls.items())))
    print(f"\nEvent loop: lag p99 {lag.p99_ms():.1f} ms, max {lag.max_ms():.1f} ms, "
          f"GC max {pauses.max_ms():.1f} ms")  # fmt: skip
    size = f"{users:,} users, {rate:.0f} req/s, {latency_ms:.0f} ms latency"
    orders = sum(on_exchange.values())
    work = (
        f"{placed} orders placed, {orders} on the exchange, {duplicates} duplicates, "
        f"{refused} refused for rate"
    )
    did = placed == users and orders == users and duplicates == 0
    # The venue's own floor is one request per user at its rate limit; 20 % over it is met.
    return [
        Row("auto-trade one signal, every order acknowledged", size, wall, "s", work, did,
            target=users / rate * 1.2),
        Row("event loop during the auto-trade fan-out", size, lag.p99_ms(), "ms", work, did,
            detail=f"lag p99 {lag.p99_ms():.1f} / max {lag.max_ms():.1f} ms, "
            f"GC max {pauses.max_ms():.1f} ms"),
    ]  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=25)
    parser.add_argument("--rate-limit", type=float, default=100)
    add_json_argument(parser)
    args = parser.parse_args()
    found = asyncio.run(main(args.users, args.latency_ms, args.rate_limit))
    emit(args.json, found)
    raise SystemExit(0 if all(row.did_work for row in found) else 1)
