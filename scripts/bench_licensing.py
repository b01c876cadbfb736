"""Licensing at scale: the hourly expiry job, a promo rush, Stars payments, licence reads.

Usage: .venv/bin/python -m scripts.bench_licensing [--users N]

A fresh SQLite file gets N users (default 100,000), each with a licence ending somewhere in
the next 100 days (1 % already past their end). Then, on the real services and store:
- the expiry job run once with its reminders and deactivations due (one transaction), then
  again with nothing due;
- 1,000 traders redeeming one code with 100 uses at the same moment;
- 1,000 Stars payments, then the same 1,000 updates redelivered (nothing extended);
- licence reads (`state`) and pages of the admin's /licenses lists.
Times are wall-clock on this machine; the clock of the services is a fixed fake one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from bot.wiring import build_services
from core.cache import CacheLayer
from core.config import Settings
from core.crypto import SecretBox, generate_key
from core.metrics import Metrics
from db.repositories.base import to_ms
from db.store import Store
from scripts import _bench as bench
from scripts._results import Row, add_json_argument, emit
from services.promos import PromoRefused
from tests.fakes.clock import FakeClock

ADMIN = 1
RUSH, RUSH_USES = 1_000, 100
PAYMENTS = 1_000
READS = 10_000


async def seed(store: Store, users: int, clock: FakeClock) -> None:
    now = to_ms(clock.now())
    rng = random.Random(7)
    day = 86_400_000
    user_rows = [(uid, uid, f"u{uid}", f"User {uid}", now, now) for uid in range(2, users + 2)]
    licence_rows = []
    for uid in range(2, users + 2):
        end = now - rng.randint(1, day) if uid % 100 == 0 else now + rng.randint(1, 100 * day)
        licence_rows.append((uid, "pro", now - day, end, "grant", now))
    async with store.transaction() as tx:
        await tx.executemany(
            "seed.users",
            "INSERT INTO users (id, chat_id, username, first_name, created_at, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            user_rows,
        )
        await tx.executemany(
            "seed.licenses",
            "INSERT INTO user_licenses (user_id, plan, start_at, end_at, source, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            licence_rows,
        )


async def run(users: int) -> tuple[str, list[Row]]:
    clock = FakeClock()
    payers = min(PAYMENTS, users)  # each payment is a different user's
    with tempfile.TemporaryDirectory() as tmp:
        async with Store(Path(tmp) / "bench.db") as store:
            await seed(store, users, clock)
            settings = Settings(db_path=store.path, master_key_file=Path(tmp) / "master.key")
            services = await build_services(
                settings, store, clock, Metrics(), CacheLayer(clock), SecretBox([generate_key()]),
                frozenset(),
            )  # fmt: skip
            licenses, promos, payments = services.licenses, services.promos, services.payments
            rows: list[list[object]] = []

            start = time.perf_counter()
            report = await licenses.run_expiry()
            first = time.perf_counter() - start
            rows.append(
                [
                    f"expiry job, {users:,} licences, due work",
                    1,
                    bench.ms(first),
                    f"{report.reminded_3d:,} 3-d + {report.reminded_1d:,} 1-d reminders, "
                    f"{report.deactivated:,} deactivated, {report.total:,} notices queued",
                ]
            )
            start = time.perf_counter()
            again = await licenses.run_expiry()
            rows.append(
                [
                    "expiry job, nothing due",
                    1,
                    bench.ms(time.perf_counter() - start),
                    f"{again.total} notices (each reminder once)",
                ]
            )

            await promos.create(ADMIN, "RUSH", 7, RUSH_USES)
            racers = range(2, RUSH + 2)
            start = time.perf_counter()
            with bench.GcPauses() as pauses:
                async with bench.LoopLag() as lag:
                    outcomes = await asyncio.gather(
                        *(promos.redeem(uid, "rush") for uid in racers), return_exceptions=True
                    )
            elapsed = time.perf_counter() - start
            won = sum(not isinstance(o, BaseException) for o in outcomes)
            refused = sum(isinstance(o, PromoRefused) for o in outcomes)
            rows.append(
                [
                    f"promo rush: {RUSH:,} concurrent /redeem, {RUSH_USES} uses",
                    RUSH,
                    bench.ms(elapsed / RUSH),
                    f"{won} redeemed, {refused} used up, {RUSH - won - refused} errors; "
                    f"{RUSH / elapsed:,.0f}/s",
                ]
            )

            payload = "lic:pro:30:500:{uid}"
            start = time.perf_counter()
            for uid in range(2, payers + 2):
                await payments.complete(uid, payload.format(uid=uid), "XTR", 500, f"stx{uid}")
            paid = time.perf_counter() - start
            rows.append(
                [
                    "successful payment (durable commit)",
                    payers,
                    bench.ms(paid / payers),
                    f"{payers / paid:,.0f}/s",
                ]
            )
            start = time.perf_counter()
            credited = 0
            for uid in range(2, payers + 2):
                outcome = await payments.complete(
                    uid, payload.format(uid=uid), "XTR", 500, f"stx{uid}"
                )
                credited += outcome.credited
            redelivered = time.perf_counter() - start
            rows.append(
                [
                    "redelivered payment",
                    payers,
                    bench.ms(redelivered / payers),
                    f"{credited} extended again",
                ]
            )

            samples = []
            for uid in random.Random(3).sample(range(2, users + 2), min(READS, users)):
                start = time.perf_counter()
                await licenses.state(uid)
                samples.append(time.perf_counter() - start)
            rows.append(
                [
                    "licence state read (p50 / p99)",
                    len(samples),
                    f"{bench.ms(bench.percentile(samples, 50))} / "
                    f"{bench.ms(bench.percentile(samples, 99))}",
                    "the check before every opening order",
                ]
            )
            for kind, page in (("active", 0), ("active", 200), ("expiring", 0), ("expired", 0)):
                start = time.perf_counter()
                listed = await licenses.listing(kind, page)
                rows.append(
                    [
                        f"/licenses {kind}, page {page + 1}",
                        1,
                        bench.ms(time.perf_counter() - start),
                        f"{listed.total:,} in the list",
                    ]
                )
            await services.aclose()
    size = f"{users:,} licences"
    due = report.reminded_3d + report.reminded_1d + report.deactivated
    found = [
        Row("licence expiry job, due work", size, first * 1000, "ms",
            f"{report.reminded_3d:,} + {report.reminded_1d:,} reminders, "
            f"{report.deactivated:,} deactivated", due > 0 and again.total == 0),
        Row(f"promo rush, {RUSH:,} concurrent /redeem", size, elapsed / RUSH * 1000, "ms",
            f"{won} redeemed of {RUSH_USES} uses, {refused} used up",
            won == RUSH_USES and won + refused == RUSH),
        Row("event loop during the promo rush", size, lag.p99_ms(), "ms",
            f"{RUSH:,} concurrent /redeem", won == RUSH_USES,
            detail=f"lag p99 {lag.p99_ms():.1f} / max {lag.max_ms():.1f} ms, "
            f"GC max {pauses.max_ms():.1f} ms"),
        Row("Stars payment (durable commit)", size, paid / payers * 1000, "ms",
            f"{payers:,} paid, {credited} extended again on redelivery", credited == 0),
        Row("licence state read, p99", size, bench.percentile(samples, 99) * 1000, "ms",
            f"{len(samples):,} reads", bool(samples)),
    ]  # fmt: skip
    return bench.table(["operation", "n", "ms (per op)", "result"], rows), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    add_json_argument(parser)
    args = parser.parse_args()
    print(f"# Licensing benchmark\n\n{bench.machine()}\n")
    text, found = asyncio.run(run(args.users))
    print(text)
    emit(args.json, found)
    raise SystemExit(0 if all(row.did_work for row in found) else 1)


if __name__ == "__main__":
    main()
