"""Fan-out: N subscribers notified through a flood-limited local Bot API by the real bot.

Usage: .venv/bin/python -m scripts.bench_fanout [--subscribers 10000] [--modes free,paid]

Each mode starts the local HTTP Bot API (tests/botapi_server.py) in its own process, with
Telegram's limits: 30 msg/s overall and 1 msg/s per chat, or 1,000 msg/s overall for
messages sent with `allow_paid_broadcast`. The bot is the real python-telegram-bot
Application with AIORateLimiter, started as in production (post_init starts the outbox
dispatcher). N users and one notification each are written in one transaction, then the
dispatcher is woken. Reported: total time, sustained rate (10 %→90 % of deliveries),
429 answers, lost deliveries (rows not sent, or chats the server never saw) and duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.app import build_application
from core.clock import SystemClock
from core.config import Settings
from core.metrics import Metrics
from db.repositories.notifications import NotificationRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from handlers.context import TradewindApp
from scripts._bench import GcPauses, LoopLag, machine, rss_mb, table, today
from scripts._results import Row, add_json_argument, emit
from services.dispatcher import DispatchPolicy
from services.outbox import Notice, NoticeKind, Outbox
from tests.botapi_server import BotApiServer

FIRST_USER = 100_000
FREE, PAID = "free", "paid"


@dataclass(slots=True)
class Result:
    mode: str
    subscribers: int
    seed_s: float
    total_s: float
    sustained: float
    rejected_429: int
    lost: int
    duplicates: int
    rss_mb: float
    lag_p99_ms: float = 0.0
    lag_max_ms: float = 0.0
    gc_max_ms: float = 0.0


# -- the Bot API process ----------------------------------------------------------------------
async def serve() -> None:
    """Run the flood-limited Bot API until stdin closes, then print what it received."""
    async with BotApiServer(flood_limit=True) as server:
        print(server.base_url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        chats = Counter(c.params["chat_id"] for c in server.calls if c.method == "sendMessage")
        summary = {"sent": server.sent, "rejected_429": server.rejected_429, "chats": len(chats)}
        summary["duplicates"] = sum(n - 1 for n in chats.values())
        print(json.dumps(summary), flush=True)


@asynccontextmanager
async def bot_api_process() -> AsyncIterator[tuple[str, dict[str, object]]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.bench_fanout", "--serve",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    url = (await process.stdout.readline()).decode().strip()
    summary: dict[str, object] = {}
    try:
        yield url, summary
    finally:
        process.stdin.close()
        line = await process.stdout.readline()
        await process.wait()
        if line:
            summary.update(json.loads(line))


# -- the bot ----------------------------------------------------------------------------------
async def seed(db: Path, subscribers: int) -> float:
    """N users and one signal notice each, in one transaction; return the seconds it took."""
    now = datetime.now(UTC)
    ids = range(FIRST_USER, FIRST_USER + subscribers)
    async with Store(db) as store:
        users, outbox = UserRepository(store), Outbox(NotificationRepository(store), SystemClock())
        start = time.perf_counter()
        async with store.transaction() as tx:
            for uid in ids:
                await users.upsert(UserProfile(uid, uid, f"Trader {uid}"), now, tx)
            notices = [
                Notice(uid, uid, NoticeKind.SIGNAL, f"<b>BTC/USDT</b> long · score 0.91 · #{uid}",
                       f"bench:signal:1:{uid}", buttons=((("Trade", f"sig:1:{uid}"),),))
                for uid in ids
            ]  # fmt: skip
            inserted = await outbox.enqueue(notices, tx)
        elapsed = time.perf_counter() - start
    if inserted != subscribers:
        raise RuntimeError(f"enqueued {inserted} of {subscribers}")
    return elapsed


def sent_so_far(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("tradewind_notifications_total", {"outcome": "sent"})
    return value or 0.0


async def run_mode(mode: str, subscribers: int, workdir: Path) -> Result:
    db = workdir / f"{mode}.db"
    seed_s = await seed(db, subscribers)
    paid = mode == PAID
    policy = DispatchPolicy(overall_rate=1000 if paid else 30)
    metrics = Metrics()
    async with bot_api_process() as (url, summary):
        settings = Settings(
            telegram_bot_token="123456:BENCH-token-for-the-local-bot-api",
            telegram_api_base_url=url,
            db_path=db,
            master_key_file=workdir / "master.key",
            metrics_addr=None,
        )
        app = build_application(
            settings, metrics=metrics, dispatch_policy=policy, paid_broadcast=paid
        )
        lag = LoopLag()
        with GcPauses() as pauses:
            samples = await deliver(app, metrics, subscribers, lag)
        total_s = samples[-1][0]
        lost = await undelivered(db)
    chats = int(str(summary.get("chats", 0)))
    return Result(
        mode=mode,
        subscribers=subscribers,
        seed_s=seed_s,
        total_s=total_s,
        sustained=sustained(samples, subscribers),
        rejected_429=int(str(summary.get("rejected_429", -1))),
        lost=max(lost, subscribers - chats),
        duplicates=int(str(summary.get("duplicates", -1))),
        rss_mb=rss_mb(),
        lag_p99_ms=lag.p99_ms(),
        lag_max_ms=lag.max_ms(),
        gc_max_ms=pauses.max_ms(),
    )


async def deliver(
    app: TradewindApp, metrics: Metrics, n: int, lag: LoopLag
) -> list[tuple[float, float]]:
    """Start the bot (its dispatcher finds the queue) and sample progress until all are sent."""
    await app.initialize()
    assert app.post_init is not None and app.post_shutdown is not None
    start = time.perf_counter()
    samples = [(0.0, 0.0)]
    try:
        await app.post_init(app)
        await lag.__aenter__()
        last_change = time.perf_counter()
        while samples[-1][1] < n:
            await asyncio.sleep(0.2)
            sent = sent_so_far(metrics)
            now = time.perf_counter()
            if sent != samples[-1][1]:
                last_change = now
            samples.append((now - start, sent))
            if now - last_change > 30:  # stalled: report what arrived
                break
    finally:
        await lag.__aexit__(None, None, None)
        await app.post_shutdown(app)
        await app.shutdown()
    return samples


async def undelivered(db: Path) -> int:
    async with Store(db) as store:
        value = await store.fetchval(
            "bench.undelivered", "SELECT COUNT(*) FROM notifications WHERE status != 'sent'"
        )
    return int(value)


def sustained(samples: list[tuple[float, float]], n: int) -> float:
    """Deliveries per second between 10 % and 90 % of the total."""

    def at(count: float) -> float:
        for (t0, c0), (t1, c1) in itertools.pairwise(samples):
            if c1 >= count:
                return t0 + (t1 - t0) * (count - c0) / (c1 - c0) if c1 > c0 else t1
        return samples[-1][0]

    low, high = 0.1 * n, 0.9 * n
    span = at(high) - at(low)
    return (high - low) / span if span > 0 else float("nan")


async def main(subscribers: int, modes: list[str]) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="tradewind-fanout-") as tmp:
        results = [await run_mode(mode, subscribers, Path(tmp)) for mode in modes]
    print(f"\nFan-out benchmark, {today()}; {machine()}")
    print("Limits enforced by the local Bot API: 30 msg/s overall, 1 msg/s per chat; "
          "allow_paid_broadcast: 1,000 msg/s overall.\n")  # fmt: skip
    print(
        table(
            ["mode", "subscribers", "enqueue (s)", "total (s)", "sustained msg/s", "429s",
             "lost", "duplicates", "RSS (MB)"],
            [
                (r.mode, r.subscribers, f"{r.seed_s:.2f}", f"{r.total_s:.1f}",
                 f"{r.sustained:.1f}", r.rejected_429, r.lost, r.duplicates, f"{r.rss_mb:.0f}")
                for r in results
            ],
        )
    )  # fmt: skip
    rows = []
    for r in results:
        size = f"{r.subscribers:,} subscribers, {r.mode}"
        work = (
            f"{r.subscribers - r.lost:,} delivered, {r.lost} lost, {r.duplicates} duplicates, "
            f"{r.rejected_429} answered 429"
        )
        did = r.lost == 0 and r.duplicates == 0
        rows.append(Row("notification fan-out, sustained rate", size, r.sustained, "msg/s",
                        work, did, target=28.0 if r.mode == FREE else None,
                        higher_is_better=True))  # fmt: skip
        rows.append(Row("event loop during the fan-out", size, r.lag_p99_ms, "ms", work, did,
                        detail=f"lag p99 {r.lag_p99_ms:.1f} / max {r.lag_max_ms:.1f} ms, "
                        f"GC max {r.gc_max_ms:.1f} ms"))  # fmt: skip
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--modes", default=f"{FREE},{PAID}", help="free, paid or both")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    add_json_argument(parser)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
    else:
        found = asyncio.run(main(args.subscribers, [m.strip() for m in args.modes.split(",")]))
        emit(args.json, found)
        raise SystemExit(0 if all(row.did_work for row in found) else 1)
