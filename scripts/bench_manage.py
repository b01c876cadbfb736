"""Trade management: 100,000 price alerts and 10,000 trailing stops evaluated against one
whole-market ticker snapshot, per scan.

The bot's own indexes (`AlertBook`, `TrailBook`) over the paper market's 530 synthetic
symbols. Alerts are set 0.1–10 % from the price; trailing stops trail by 0.5–5 %, half of
them waiting for an activation 0.5–3 % in profit. The market then walks: quiet ticks (every
symbol ±0.2 %) and a violent one (±3 %). One pass is the snapshot's prices, the alerts due
and the stops moved and fired; the goal is ≤ 20 ms. Each pass is checked against loops over
every alert and every stop (the baselines), and the run fails when they disagree or when
nothing was due, moved or fired. The peaks a pass moved are then stored in SQLite the way
the trailing job stores them (one statement per symbol and side).

    .venv/bin/python -m scripts.bench_manage [--alerts 100000] [--stops 10000] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from core.clock import SystemClock
from core.paper.synthetic import SyntheticMarket
from db.repositories.price_alerts import ABOVE, BELOW, ActiveLevel
from db.repositories.trailing import TrailingRepository
from db.store import Store
from scripts import _bench as bench
from scripts._results import Row, add_json_argument, emit
from services.alert_book import AlertBook
from services.trailing_book import LONG, SHORT, TrailBook, TrailStop

SEED = 17
TICKS = 40  # quiet ticks, then one violent one
QUIET, VIOLENT = 0.002, 0.03
GOAL_MS = 20.0


@dataclass(slots=True)
class Follow:
    """One stop followed by hand: the baseline's state."""

    stop: TrailStop
    peak: float | None

    def step(self, price: float) -> tuple[bool, bool]:
        """(moved, fired) at `price`."""
        long = self.stop.side == LONG
        before = self.peak
        if self.peak is None:
            start = self.stop.activation
            if start is not None and (price < start if long else price > start):
                return False, False
            self.peak = price
        self.peak = max(self.peak, price) if long else min(self.peak, price)
        level = self.peak - self.stop.distance if long else self.peak + self.stop.distance
        return self.peak != before, price <= level if long else price >= level


def alerts_of(prices: Mapping[str, float], count: int, rng: random.Random) -> list[ActiveLevel]:
    symbols = sorted(prices)
    found = []
    for n in range(count):
        symbol, direction = rng.choice(symbols), rng.choice((ABOVE, BELOW))
        move = rng.uniform(0.001, 0.10)
        price = prices[symbol]
        level = price * (1 + move) if direction == ABOVE else price * (1 - move)
        found.append(ActiveLevel(n + 1, symbol, direction, level))
    return found


def stops_of(prices: Mapping[str, float], count: int, rng: random.Random) -> list[TrailStop]:
    symbols = sorted(prices)
    found = []
    for n in range(count):
        symbol, side = rng.choice(symbols), rng.choice((LONG, SHORT))
        price, sign = prices[symbol], 1 if side == LONG else -1
        distance = price * rng.uniform(0.005, 0.05)
        if n % 2:
            start = price * (1 + sign * rng.uniform(0.005, 0.03))
            found.append(TrailStop(n + 1, symbol, side, distance, activation=start))
        else:
            found.append(TrailStop(n + 1, symbol, side, distance, peak=price))
    return found


def walk(base: Mapping[str, float], rng: random.Random) -> list[dict[str, float]]:
    ticks, now = [], dict(base)
    for n in range(TICKS + 1):
        most = VIOLENT if n == TICKS else QUIET
        now = {s: p * (1 + rng.uniform(-most, most)) for s, p in now.items()}
        ticks.append(now)
    return ticks


def brute_alerts(levels: Sequence[ActiveLevel], prices: Mapping[str, float]) -> set[int]:
    due = set()
    for alert in levels:
        price = prices[alert.symbol]
        if (alert.direction == ABOVE and price >= alert.threshold) or (
            alert.direction == BELOW and price <= alert.threshold
        ):
            due.add(alert.id)
    return due


def run(alert_count: int, stop_count: int) -> tuple[str, list[Row], dict[str, int]]:
    market = SyntheticMarket(clock=SystemClock())  # 530 symbols: none listed since
    base = {s: float(t.last) for s, t in market.tickers().items()}
    rng = random.Random(SEED)
    levels, stops = alerts_of(base, alert_count, rng), stops_of(base, stop_count, rng)
    ticks = walk(base, rng)
    alert_book, trail_book = AlertBook.of(levels), TrailBook.of(stops)
    follows = {s.id: Follow(s, s.peak) for s in stops}
    gc.collect()
    gc.freeze()  # as the bot's heap guard does for long-lived objects
    passes, loops, moved_last = [], [], []
    counts = {"alerts_due": 0, "moved": 0, "fired": 0, "disagreements": 0}
    first = market.tickers()
    snapshots = [
        {s: replace(t, last=Decimal(repr(round(tick[s], 8)))) for s, t in first.items()}
        for tick in ticks
    ]  # the tickers as the job receives them
    try:
        for snapshot in snapshots:
            # The pass the bot runs per scan: the snapshot's prices, then both indexes.
            start = time.perf_counter()
            prices = {symbol: float(t.last) for symbol, t in snapshot.items()}
            due = alert_book.due(prices)
            found = trail_book.due(prices)
            passes.append(time.perf_counter() - start)
            start = time.perf_counter()
            expected_alerts = brute_alerts(levels, prices)
            expected_moved: set[tuple[str, str]] = set()
            expected_fired: set[int] = set()
            for stop_id, follow in list(follows.items()):
                went, hit = follow.step(prices[follow.stop.symbol])
                if went:
                    expected_moved.add((follow.stop.symbol, follow.stop.side))
                if hit:
                    expected_fired.add(stop_id)
                    del follows[stop_id]
            loops.append(time.perf_counter() - start)
            alert_ids = {i for c in due for i in c.alert_ids}
            alert_book.discard(alert_ids)  # fired once, as the service does
            levels = [a for a in levels if a.id not in alert_ids]
            fired = {f.id for f in found.fired}
            moved = {(symbol, side) for symbol, side, _ in found.moved}
            if alert_ids != expected_alerts or fired != expected_fired or moved != expected_moved:
                counts["disagreements"] += 1
            counts["alerts_due"] += len(alert_ids)
            counts["moved"] += len(found.moved)
            counts["fired"] += len(fired)
            moved_last = found.moved
    finally:
        gc.unfreeze()
    store_ms = asyncio.run(store_peaks(stops, moved_last))
    quiet, violent = passes[:-1], passes[-1]
    p50, p99 = bench.percentile(quiet, 50), bench.percentile(quiet, 99)
    loop50 = bench.median(loops[:-1])
    agree = counts["disagreements"] == 0
    rows_text = [
        [f"**quiet tick (±{QUIET:.1%}): one pass**, p50 / p99", len(quiet),
         f"{bench.ms(p50)} / {bench.ms(p99)}", f"{len(base)} symbols"],
        ["quiet tick: loops over every alert and every stop, p50", len(quiet),
         bench.ms(loop50), "same alerts, moves and fires: " + ("yes" if agree else "NO")],
        [f"**violent tick (±{VIOLENT:.0%}): one pass**", 1, bench.ms(violent),
         f"{len(moved_last)} symbol-sides moved"],
        ["violent tick: the loops", 1, bench.ms(loops[-1]), ""],
        ["store the violent tick's peaks (one UPDATE per symbol and side)", 1,
         f"{store_ms:.2f}", f"{len(moved_last)} statements"],
        ["over the walk", TICKS + 1, "",
         f"{counts['alerts_due']:,} alerts due, {counts['fired']:,} stops fired, "
         f"{counts['moved']:,} peak moves"],
    ]  # fmt: skip
    did = agree and counts["alerts_due"] > 0 and counts["fired"] > 0 and counts["moved"] > 0
    size = f"{alert_count:,} alerts + {stop_count:,} stops, {len(base)} symbols"
    work = (
        f"{counts['alerts_due']:,} alerts due, {counts['fired']:,} stops fired, "
        f"{counts['moved']:,} peak moves over {TICKS + 1} ticks; loops agree: {agree}"
    )
    rows = [
        Row("alerts + trailing: one pass per snapshot, p50", size, p50 * 1000, "ms", work, did,
            baselines={"loop over every alert and stop": loop50 * 1000}, target=GOAL_MS,
            detail=f"p50 {bench.ms(p50)} / p99 {bench.ms(p99)} ms"),
        Row("alerts + trailing: the violent tick's pass", size, violent * 1000, "ms", work, did,
            baselines={"loop over every alert and stop": loops[-1] * 1000}, target=GOAL_MS),
    ]  # fmt: skip
    table = bench.table(["step", "n", "ms", "result"], rows_text)
    met = "met" if p50 * 1000 <= GOAL_MS and violent * 1000 <= GOAL_MS else "NOT met"
    verdict = (
        f"One pass (alerts + trailing stops): p50 {bench.ms(p50)} ms on quiet ticks, "
        f"{bench.ms(violent)} ms on the violent one (goal ≤ {GOAL_MS:.0f} ms: {met}), vs "
        f"{bench.ms(loop50)} ms for loops over every alert and stop."
    )
    return f"{table}\n\n{verdict}", rows, counts


async def store_peaks(stops: Sequence[TrailStop], moved: list[tuple[str, str, float]]) -> float:
    """The trailing job's write after a pass, on a store holding every stop."""
    with tempfile.TemporaryDirectory() as tmp:
        async with Store(Path(tmp) / "bench.db") as store:
            now = int(time.time() * 1000)
            async with store.transaction() as tx:
                await tx.executemany(
                    "bench.stops",
                    "INSERT INTO trailing_stops (user_id, exchange, account_type, symbol, side, "
                    "distance, activation, peak, entry, created_at, updated_at) "
                    "VALUES (?, 'binance', 'live', ?, ?, ?, ?, ?, 1, ?, ?)",
                    [(s.id, s.symbol, s.side, s.distance, s.activation, s.peak, now, now)
                     for s in stops],
                )  # fmt: skip
            start = time.perf_counter()
            await TrailingRepository(store).move("binance", moved, datetime.now(UTC))
            return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--stops", type=int, default=10_000)
    parser.add_argument("--write", action="store_true", help="record it in docs/PERFORMANCE.md")
    add_json_argument(parser)
    args = parser.parse_args()
    body, rows, _ = run(args.alerts, args.stops)
    head = (
        f"Command: `.venv/bin/python -m scripts.bench_manage` — {bench.today()}; "
        f"{bench.machine()}. {args.alerts:,} price alerts and {args.stops:,} trailing stops "
        f"on the paper market's symbols; {TICKS} quiet ticks (±{QUIET:.1%}) then a violent one "
        f"(±{VIOLENT:.0%}). Load average at the end {os.getloadavg()[0]:.1f} (a shared machine)."
    )
    print(f"{head}\n\n{body}")
    if args.write:
        heading = "## Alerts and trailing stops (issue: trade management)"
        bench.write_section(heading, f"{head}\n\n{body}")
    emit(args.json, rows)
    if not all(row.did_work for row in rows):
        raise SystemExit("the indexes and the loops disagree, or nothing was due, moved or fired")


if __name__ == "__main__":
    main()
