"""Trader commands under load: 1,000 users on the local Bybit server through the real bot.

Usage: .venv/bin/python -m scripts.bench_trader [--users 1000] [--seconds 60] [--latency-ms 25]
                                               [--budget 100] [--heavy N] [--json PATH]

`--budget` is the bot's shared request budget for Bybit (requests/s across all clients);
the product default is 100, under Bybit's 120/s per-IP limit. The local server has no limit,
so a larger budget shows what the bot does when the venue allows more (several IPs, or a
venue with a higher limit).

Each simulated user has a connected Bybit demo account on the local exchange server (run in
its own process, adding `--latency-ms` to every request) and sends a realistic mix of
/balance, /positions, /orders and /pnl with random think time, and now and then closes its
BTC position (/close, then the card's Confirm button) or reopens one (/long, Confirm), through
the real python-telegram-bot Application answering over the offline Bot API. Every trader has
a closed-trade history (`--heavy` of them 10,000 trades, default 1 %), so /pnl aggregates real
rows. Reported: bot-side latency per command (p50/p95/p99), exchange calls by method, cache
hit rates, trades closed during the load, the event loop's lag, GC pauses and RSS; the run
fails (exit status 1) when no trade was closed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from telegram import Update

from bot.app import build_application
from bot.offline_api import FakeTelegramState
from bot.offline_request import OfflineRequest
from bot.offline_updates import make_callback_update, make_message_update
from core.cache import tally_reads
from core.config import Settings
from core.exchange.credentials import ApiCredentials
from core.exchange.models import OrderRequest, OrderType, Side
from core.metrics import Metrics
from db.store import Store
from handlers.context import TradewindApp
from scripts._bench import GcPauses, LoopLag, exchange_process, rss_mb
from scripts._results import Row, add_json_argument, emit
from services.container import Services
from services.users import UserProfile

TRADE = "/close or /long, then Confirm"  # the action that closes (or reopens) a position
MIX = (
    ("/balance", 0.33), ("/positions", 0.33), ("/orders", 0.15), ("/pnl", 0.15),
    (TRADE, 0.04),
)  # fmt: skip
HEAVY_TRADES = 10_000  # a heavy trader's closed-trade history
LIGHT_TRADES = 20
THINK_S = (2.0, 10.0)  # a busy trader glancing at the bot every few seconds
SYMBOL = "BTC/USDT:USDT"
CACHES = ("balance", "positions", "orders", "tickers", "accounts", "strategy")


async def _setup(base_url: str, users: int, db: Path) -> tuple[TradewindApp, _ForgetfulTelegram]:
    settings = replace(
        Settings(
            telegram_bot_token="123456:BENCH-token-offline-bot-api-xxxxxxxx",
            db_path=db,
            master_key_file=db.parent / "master.key",
            metrics_addr=None,
        ),
        exchange_urls={"bybit": base_url},
    )
    state = _ForgetfulTelegram()
    app = build_application(
        settings,
        request=OfflineRequest(state),
        get_updates_request=OfflineRequest(state),
        metrics=Metrics(),
        rate_limited=False,  # measure the bot, not Telegram's 30 msg/s pacing
    )
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    await app.start()
    services = _services(app)
    sem = asyncio.Semaphore(50)

    async def connect(uid: int) -> None:
        key, secret = f"key{uid}", f"secret{uid}"
        await services.users.register(UserProfile(uid, uid, f"Trader{uid}"))
        async with sem:
            await services.accounts.connect(uid, "bybit", "demo", ApiCredentials(key, secret))
            if uid % 2 == 0:  # half of the traders hold a position
                async with services.exchanges.lease(uid, "bybit", "demo") as client:
                    await client.create_order(
                        OrderRequest(
                            "BTC/USDT:USDT",
                            Side.BUY,
                            OrderType.MARKET,
                            Decimal("0.001"),
                            f"twb{uid}",
                        )
                    )

    await asyncio.gather(*(connect(uid) for uid in range(1, users + 1)))
    return app, state


def _services(app: TradewindApp) -> Services:
    services = app.bot_data.services
    assert services is not None
    return services


Latencies = dict[str, list[float]]
JSONDict = dict[str, Any]


async def _history(db: Path, users: int, heavy: int) -> int:
    """Give every trader a closed-trade history, `heavy` of them 10,000 trades each (one
    transaction, as an installation that has been trading for a year has it)."""
    rng = random.Random(11)
    now_ms = int(time.time() * 1000)
    year_ms = 365 * 86_400_000

    def rows() -> Iterator[tuple[object, ...]]:
        for uid in range(1, users + 1):
            for _ in range(HEAVY_TRADES if uid <= heavy else LIGHT_TRADES):
                exit_ts = now_ms - rng.randrange(year_ms)
                notional = round(rng.uniform(10, 5000), 2)
                pnl = round(rng.gauss(0, notional * 0.02), 4)
                symbol = rng.choice(("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"))
                yield uid, symbol, notional, pnl, exit_ts - 3_600_000, exit_ts

    async with Store(db) as store, store.transaction() as tx:
        await tx.executemany(
            "bench.history",
            "INSERT INTO trade_logs (user_id, exchange, account_type, symbol, side, qty, "
            "entry_price, exit_price, notional, pnl, fee, entry_ts, exit_ts) "
            "VALUES (?, 'bybit', 'demo', ?, 'long', '1', '1', '1', ?, ?, 0.1, ?, ?)",
            rows(),
        )
    return heavy * HEAVY_TRADES + (users - heavy) * LIGHT_TRADES


async def _closed_trades(db: Path) -> int:
    async with Store(db) as store:
        row = await store.fetchone("bench.count", "SELECT COUNT(*) AS n FROM trade_logs", {})
        return int(row["n"]) if row is not None else 0


class _ForgetfulTelegram(FakeTelegramState):
    """The offline Bot API without its transcript: it counts the calls it answers but keeps
    neither them nor the chats' messages, so the process's heap (and the garbage collector's
    pauses) is the bot's, not the recorder's. It keeps only the order cards awaiting a press."""

    def __init__(self) -> None:
        super().__init__()
        self.answered = 0
        self.cards: dict[int, tuple[JSONDict, str]] = {}  # chat → last card, its Confirm data

    def call(self, method: str, raw_params: Mapping[str, object]) -> object:
        result = super().call(method, raw_params)
        self.answered += len(self.calls)
        self.calls.clear()
        self.messages.clear()
        if method == "sendMessage" and isinstance(result, dict):
            confirm = _confirm_data(result)
            if confirm is not None:
                self.cards[int(result["chat"]["id"])] = (result, confirm)
        for chat, (card, _) in self.cards.items():  # a card awaiting its press is kept to edit
            self.messages.setdefault(chat, {})[int(card["message_id"])] = card
        return result


def _confirm_data(message: JSONDict) -> str | None:
    """The callback data of a card's Confirm button, if `message` carries one."""
    markup = message.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data", "")
            if data.startswith("ok"):
                return str(data)
    return None


async def _load(
    app: TradewindApp,
    state: _ForgetfulTelegram,
    users: int,
    seconds: float,
    seed: int,
    mix: tuple[tuple[str, float], ...] = MIX,
    think_s: tuple[float, float] = THINK_S,
) -> tuple[Latencies, Latencies]:
    """Run the mix; return latencies of every command and of those served wholly from cache
    (at least one cache read and no miss). A trade action closes the trader's position on
    BTC through /close and its Confirm button, or opens one through /long when flat."""
    rng = random.Random(seed)
    latencies: Latencies = defaultdict(list)
    cached: Latencies = defaultdict(list)
    ids = iter(range(1, 10**9))
    deadline = time.perf_counter() + seconds
    commands = [text for text, _ in mix]
    weights = [weight for _, weight in mix]

    holding = {uid for uid in range(2, users + 1, 2)}

    async def trade(uid: int) -> None:
        text = f"/close {SYMBOL}" if uid in holding else "/long BTC 100 5"
        state.cards.pop(uid, None)
        await app.process_update(Update.de_json(make_message_update(next(ids), uid, text), app.bot))
        card = state.cards.get(uid)
        if card is None:
            return
        press = make_callback_update(next(ids), uid, card[0], card[1])
        await app.process_update(Update.de_json(press, app.bot))
        state.cards.pop(uid, None)
        holding.symmetric_difference_update({uid})

    async def trader(uid: int) -> None:
        await asyncio.sleep(rng.uniform(0, think_s[1]))
        while time.perf_counter() < deadline:
            text = rng.choices(commands, weights)[0]
            start = time.perf_counter()
            with tally_reads() as tally:
                if text == TRADE:
                    await trade(uid)
                else:
                    update = Update.de_json(make_message_update(next(ids), uid, text), app.bot)
                    await app.process_update(update)
            spent = time.perf_counter() - start
            latencies[text].append(spent)
            if tally.misses == 0 and tally.hits > 0 and text != TRADE:  # a trade is sent
                cached[text].append(spent)
            await asyncio.sleep(rng.uniform(*think_s))

    await asyncio.gather(*(trader(uid) for uid in range(1, users + 1)))
    return latencies, cached


async def _warm_up(app: TradewindApp, users: int) -> None:
    """The bot has been running: each trader has looked at balance, positions and orders
    before, so the warmer keeps them fresh (steady state, as in production)."""
    ids = iter(range(10**9, 2 * 10**9))
    sem = asyncio.Semaphore(100)

    async def look(uid: int) -> None:
        async with sem:
            for text in ("/balance", "/positions", "/orders"):
                update = Update.de_json(make_message_update(next(ids), uid, text), app.bot)
                await app.process_update(update)

    await asyncio.gather(*(look(uid) for uid in range(1, users + 1)))


def _calls(services: Services) -> Counter[str]:
    """Exchange calls the bot made so far, by method (each attempt counts)."""
    totals = services.metrics.totals("tradewind_exchange_call_seconds", "method")
    return Counter({method: int(count) for method, (count, _) in totals.items()})


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(
    users: int,
    seconds: float,
    latency_ms: float,
    budget: float,
    heavy: int,
    *,
    mix: tuple[tuple[str, float], ...] = MIX,
    think_s: tuple[float, float] = THINK_S,
) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        async with exchange_process(latency_ms=latency_ms, accounts=users) as base_url:
            db = Path(tmp) / "bench.db"
            app, state = await _setup(base_url, users, db)
            try:
                services = _services(app)
                seeded = await _history(db, users, heavy)
                limiter = services.exchanges.venue("bybit").limiter
                limiter.rate, limiter.burst = budget, max(1.0, budget / 10)
                await _warm_up(app, users)
                calls_before = _calls(services)
                before = {name: services.cache.stats()[name] for name in CACHES}
                gc.collect()
                started = time.perf_counter()
                with GcPauses() as collections:
                    async with LoopLag() as lag:
                        latencies, cached = await _load(app, state, users, seconds, 7, mix, think_s)
                # Traders asleep at the deadline finish their think time: the real span.
                elapsed = time.perf_counter() - started
                closed = await _closed_trades(db) - seeded
                after = {name: services.cache.stats()[name] for name in CACHES}
                requests = _calls(services) - calls_before
                rss = rss_mb()
                statements = services.metrics.totals("tradewind_db_statement_seconds", "statement")
                calls = services.metrics.totals("tradewind_exchange_call_seconds", "method")
            finally:
                await app.stop()
                await app.shutdown()
                assert app.post_shutdown is not None
                await app.post_shutdown(app)

    total = sum(len(v) for v in latencies.values())
    print(
        f"{users} users, {seconds:.0f} s of load ({elapsed:.1f} s until the last reply), "
        f"{latency_ms:.0f} ms exchange latency, "
        f"Bybit budget {budget:.0f} requests/s: {total} commands"
    )
    for title, table in (("all commands", latencies), ("served wholly from cache", cached)):
        print(f"\n| command ({title}) | count | p50 (ms) | p95 (ms) | p99 (ms) | mean (ms) |")
        print("|---|---:|---:|---:|---:|---:|")
        for text, samples in sorted(table.items()):
            print(
                f"| {text} | {len(samples)} | {_pct(samples, 0.50):.2f} "
                f"| {_pct(samples, 0.95):.2f} | {_pct(samples, 0.99):.2f} "
                f"| {statistics.fmean(samples) * 1000:.2f} |"
            )
    print("\n| cache | hits | of them stale-while-refreshing | misses | hit rate |")
    print("|---|---:|---:|---:|---:|")
    hits_all = misses_all = 0.0
    for name in CACHES:
        hits = after[name].hits - before[name].hits
        misses = after[name].misses - before[name].misses
        hits_all, misses_all = hits_all + hits, misses_all + misses
        stale = after[name].stale_hits - before[name].stale_hits
        rate = hits / (hits + misses) if hits + misses else 0.0
        print(f"| {name} | {hits} | {stale} | {misses} | {rate:.1%} |")
    overall = hits_all / (hits_all + misses_all) if hits_all + misses_all else 0.0
    print(f"| all | {hits_all:.0f} | | {misses_all:.0f} | {overall:.1%} |")
    print("\n| exchange call | calls | per user per TTL window (target ≤ 1) |")
    print("|---|---:|---:|")
    ttl = {"fetch_balance": 15.0, "fetch_positions": 10.0, "fetch_open_orders": 10.0}
    for method, count in requests.most_common():
        window = ttl.get(method, 60.0)
        print(f"| {method} | {count} | {count / users / (elapsed / window):.2f} |")
    print("\n| measured inside the bot | count | mean (ms) |")
    print("|---|---:|---:|")
    for label, totals in (("exchange", calls), ("sql", statements)):
        ranked = sorted(totals.items(), key=lambda kv: -kv[1][1])[:6]
        for name, (n, spent) in ranked:
            print(f"| {label} {name} | {n:.0f} | {spent / n * 1000:.2f} |")
    warm = services.warmer.stats
    print(
        f"\nCache warming: {warm.refreshed} reloads, {warm.failed} failed, {warm.skipped} "
        f"skipped over the warming share of the budget"
    )
    print(f"RSS at the end: {rss:.0f} MB; Bot API calls answered: {state.answered}")
    print("\nGarbage collections during the load (each pause stalls the event loop):\n")
    print("\n".join(collections.rows()))
    print(
        f"\nEvent loop lag: p99 {lag.p99_ms():.1f} ms, max {lag.max_ms():.1f} ms; trades "
        f"closed during the load: {closed} (history: {seeded:,} trades, {heavy} traders with "
        f"{HEAVY_TRADES:,} each)"
    )
    size = f"{users:,} traders, {seconds:.0f} s, {latency_ms:.0f} ms latency"
    served = [x for text, xs in cached.items() if text in ("/balance", "/positions", "/orders")
              for x in xs]  # fmt: skip
    pnl = latencies.get("/pnl", [])
    work = (
        f"{total:,} commands, {closed} trades closed during the load, /pnl on "
        f"{seeded:,} trades of history ({heavy} traders with {HEAVY_TRADES:,})"
    )
    did = closed >= 1 and len(pnl) >= 1 and len(served) >= 1
    return [
        Row("trader commands served from cache, p99", size, _pct(served, 0.99) if served else 0,
            "ms", work, did, target=15.0),
        Row("/pnl p99", size, _pct(pnl, 0.99) if pnl else 0, "ms",
            f"{len(pnl)} /pnl on histories up to {HEAVY_TRADES:,} trades", did and bool(pnl)),
        Row("cache hit rate", size, overall * 100, "%", f"{hits_all + misses_all:,.0f} reads",
            hits_all > 0, target=95.0, higher_is_better=True),
        Row("event loop under the trader load", size, lag.p99_ms(), "ms", work, did,
            target=20.0, detail=f"lag p99 {lag.p99_ms():.1f} / max {lag.max_ms():.1f} ms, "
            f"GC max {collections.max_ms():.1f} ms"),
    ]  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--latency-ms", type=float, default=25)
    parser.add_argument("--budget", type=float, default=100)
    parser.add_argument(
        "--heavy", type=int, default=0, help="traders with 10,000 closed trades (default 1 %%)"
    )
    add_json_argument(parser)
    args = parser.parse_args()
    heavy_traders = args.heavy or max(1, args.users // 100)
    found = asyncio.run(main(args.users, args.seconds, args.latency_ms, args.budget, heavy_traders))
    emit(args.json, found)
    raise SystemExit(0 if all(row.did_work for row in found) else 1)
