"""/admin and /stats on a big installation: 100,000 users and 1,000,000 trade logs.

Usage: .venv/bin/python -m scripts.bench_admin [--users N] [--trades N] [--runs N]

Builds a fresh database (one transaction, one executemany per table, so the migration's
triggers keep their totals as they would in production), then times the dashboard and the
report as the bot serves them: uncached (the analytics cache invalidated before every run)
and cached. Each analytics query is also timed alone, with its EXPLAIN QUERY PLAN.
Targets: ≤ 50 ms uncached, ≤ 1 ms cached.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from core.cache import CacheLayer
from core.clock import SystemClock
from db.repositories import analytics as analytics_repo
from db.repositories.analytics import DAY_MS, AnalyticsRepository
from db.repositories.base import to_ms
from db.store import Store
from scripts import _bench as bench
from services.analytics import AnalyticsService

UNCACHED_TARGET_MS = 50.0
CACHED_TARGET_MS = 1.0
SYMBOLS = [f"C{i:03d}/USDT:USDT" for i in range(300)]


def _users(count: int, now: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    for user_id in range(1, count + 1):
        created = now - rng.randrange(365 * DAY_MS)
        seen = min(now, created + rng.randrange(365 * DAY_MS))
        yield user_id, user_id, f"user{user_id}", f"User {user_id}", created, seen


def _trades(count: int, users: int, now: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    for _ in range(count):
        exit_ts = now - rng.randrange(365 * DAY_MS)
        notional = round(rng.uniform(10, 5000), 2)
        pnl = round(rng.gauss(0, notional * 0.02), 4)
        symbol = SYMBOLS[int(rng.paretovariate(1.2)) % len(SYMBOLS)]
        yield (rng.randrange(1, users + 1), symbol, notional, pnl, exit_ts - 3_600_000, exit_ts)


async def build(store: Store, users: int, trades: int) -> dict[str, float]:
    """Fill every table the figures read; return seconds per table."""
    rng = random.Random(7)
    now = to_ms(datetime.now(UTC))
    timings: dict[str, float] = {}

    async def fill(name: str, sql: str, rows: Iterator[tuple[object, ...]]) -> None:
        start = time.perf_counter()
        async with store.transaction() as tx:
            await tx.executemany(f"bench.{name}", sql, rows)
        timings[name] = time.perf_counter() - start

    await fill(
        "users",
        "INSERT INTO users (id, chat_id, username, first_name, created_at, last_seen_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        _users(users, now, rng),
    )
    await fill(
        "trade_logs",
        "INSERT INTO trade_logs (user_id, exchange, account_type, symbol, side, qty, "
        "entry_price, exit_price, notional, pnl, fee, entry_ts, exit_ts) "
        "VALUES (?, 'paper', 'paper', ?, 'long', '1', '1', '1', ?, ?, 0.1, ?, ?)",
        _trades(trades, users, now, rng),
    )
    licensed = rng.sample(range(1, users + 1), users // 3)
    await fill(
        "user_licenses",
        "INSERT INTO user_licenses (user_id, plan, start_at, end_at, active, source, "
        "updated_at) VALUES (?, 'pro', ?, ?, ?, ?, ?)",
        (
            (
                u,
                now - 30 * DAY_MS,
                end,
                int(end > now),
                rng.choice(("grant", "promo", "payment")),
                now,
            )
            for u in licensed
            for end in (now + rng.randrange(-60 * DAY_MS, 60 * DAY_MS),)
        ),
    )
    await fill(
        "payments",
        "INSERT INTO payments (user_id, plan, days, currency, amount, "
        "telegram_payment_charge_id, payload, created_at) "
        "VALUES (?, 'pro', 30, 'XTR', 500, ?, '', ?)",
        (
            (rng.randrange(1, users + 1), f"c{i}", now - rng.randrange(365 * DAY_MS))
            for i in range(20_000)
        ),
    )
    await fill(
        "signals",
        "INSERT INTO signals (id, source, symbol, side, score, price, leverage, tp_pct, sl_pct, "
        "reasons, created_at) VALUES (?, 'paper', ?, 'long', 0.8, '1', 5, '3', '1', '[]', ?)",
        ((i, rng.choice(SYMBOLS), now - rng.randrange(90 * DAY_MS)) for i in range(1, 50_001)),
    )
    await fill(
        "executions",
        "INSERT OR IGNORE INTO executions (signal_id, user_id, status, at) VALUES (?, ?, ?, ?)",
        (
            (
                rng.randrange(1, 50_001),
                rng.randrange(1, users + 1),
                rng.choice(("filled", "skipped")),
                now - rng.randrange(90 * DAY_MS),
            )
            for _ in range(200_000)
        ),
    )
    await fill(
        "active_positions",
        "INSERT OR IGNORE INTO active_positions (user_id, exchange, account_type, symbol, side, "
        "qty, entry_price, leverage, opened_at, updated_at) "
        "VALUES (?, 'paper', 'paper', ?, 'long', '1', '1', 5, 0, 0)",
        ((rng.randrange(1, users + 1), rng.choice(SYMBOLS)) for _ in range(30_000)),
    )
    await fill(
        "notifications",
        "INSERT INTO notifications (dedup_key, user_id, chat_id, kind, priority, payload, status, "
        "next_attempt_at, created_at) VALUES (?, ?, ?, 'signal', 1, '{}', ?, 0, ?)",
        (
            (f"n{i}", u, u, "dead" if i % 100 == 0 else "sent", now - rng.randrange(30 * DAY_MS))
            for i in range(300_000)
            for u in (rng.randrange(1, users + 1),)
        ),
    )
    await fill(
        "promo_codes",
        "INSERT INTO promo_codes (code, plan, days, max_uses, uses, active, created_by, "
        "created_at) "
        "VALUES (?, 'pro', 7, 10000, ?, 1, 1, 0)",
        ((f"CODE{i}", rng.randrange(500)) for i in range(200)),
    )
    await fill(
        "promo_redemptions",
        "INSERT OR IGNORE INTO promo_redemptions (code, user_id, redeemed_at) VALUES (?, ?, ?)",
        (
            (
                f"CODE{rng.randrange(200)}",
                rng.randrange(1, users + 1),
                now - rng.randrange(365 * DAY_MS),
            )
            for _ in range(50_000)
        ),
    )
    return timings


async def timed(
    call: Callable[[], Awaitable[object]], runs: int, before: Callable[[], None] | None = None
) -> list[float]:
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


class StatementTimes:
    """Collects every statement's latency by name (the store's observer)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)

    def observe_statement(self, name: str, seconds: float) -> None:
        self.samples[name].append(seconds)


async def run(users: int, trades: int, runs: int) -> None:
    times = StatementTimes()
    with tempfile.TemporaryDirectory() as tmp:
        async with Store(Path(tmp) / "bench.db", observer=times) as store:
            started = time.perf_counter()
            fills = await build(store, users, trades)
            total = time.perf_counter() - started
            print(f"# Admin analytics benchmark\n\n{bench.machine()}\n")
            print(
                f"Generated {users:,} users and {trades:,} trade logs in {total:.1f} s "
                f"(trade_logs {fills['trade_logs']:.1f} s, its totals triggers included).\n"
            )
            clock = SystemClock()
            service = AnalyticsService(AnalyticsRepository(store), CacheLayer(clock), clock)
            rows = []
            for name, call in (("/admin", service.dashboard), ("/stats", service.stats)):
                await call()  # warm SQLite's page cache, as a running bot has it
                times.samples.clear()
                cold = await timed(call, runs, service.invalidate)
                rows.append(_row(name, cold, await timed(call, runs * 50)))
                rows += _statements(times)
            print(
                bench.table(
                    [
                        "screen / statement",
                        "uncached median ms",
                        "uncached p95 ms",
                        "cached median ms",
                        "cached p95 ms",
                        "verdict",
                    ],
                    rows,
                )
            )
            print("\n## EXPLAIN QUERY PLAN\n\n```")
            for query in analytics_repo.HOT_QUERIES:
                sql = f"EXPLAIN QUERY PLAN {query.sql}"
                plan = await store.fetchall("bench.plan", sql, query.params)
                print(f"{query.name}:\n" + "\n".join(f"    {row['detail']}" for row in plan))
            print("```")


def _statements(times: StatementTimes) -> list[tuple[object, ...]]:
    """One row per statement the screen ran, per call of it, uncached."""
    return [
        (f"  {name}", bench.ms(bench.median(s)), bench.ms(bench.percentile(s, 95)), "", "", "")
        for name, s in times.samples.items()
        if name.startswith("analytics.")
    ]


def _row(name: str, cold: list[float], warm: list[float]) -> tuple[object, ...]:
    cold_ms, warm_ms = bench.median(cold) * 1000, bench.median(warm) * 1000
    ok = cold_ms <= UNCACHED_TARGET_MS and warm_ms <= CACHED_TARGET_MS
    return (
        name,
        bench.ms(bench.median(cold)),
        bench.ms(bench.percentile(cold, 95)),
        bench.ms(bench.median(warm)),
        bench.ms(bench.percentile(warm, 95)),
        "meets ≤ 50 ms / ≤ 1 ms" if ok else "MISSES ≤ 50 ms / ≤ 1 ms",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.trades, args.runs))


if __name__ == "__main__":
    main()
