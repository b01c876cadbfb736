"""Crash soak: `tradewind run` killed with SIGKILL again and again while traders use it.

Usage: .venv/bin/python -m scripts.soak_crash [--kills 50 | --quick] [--traders 4] [--seed 7]

The bot runs as a real process against the local Bybit server (its own process, `--control`)
and a local Bot API HTTP server in this process. An admin and `--traders` traders connect
Bybit demo accounts, then round after round the bot is started with one pause point armed
(`TRADEWIND_PAUSE_POINTS`, see core/pause_points.py), a trader or the admin does what reaches
it (/long or /close + Confirm, /redeem, a Stars payment, /broadcast + Confirm, a price alert
firing), and the bot is killed inside the pause: registry sync, order placement between the
exchange's answer and the commit, promo redemption, payment, broadcast, outbox dispatch.
One round in eight kills at a random moment of mixed traffic instead. Updates the dead bot
never confirmed are delivered again to the next one, as Telegram does.

Afterwards the bot runs once more cleanly, and the script checks and prints a table: integrity,
orders against the server's books, unresolved outcomes, promo uses, payments, deliveries per
crash, trades in the ledger. Exit status 1 when a check fails or the workload did too little.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scripts._soak import ADMIN, Bot, Chats, Exchange, bot_env, button, connect, key_of
from scripts._soak_checks import Check, crash_checks
from tests.botapi_server import BotApiServer

PAUSE_S = 0.6  # the window a kill aims at; the kill lands at a random point inside it
AIM_TIMEOUT_S = 25.0  # a pause point not reached by then: kill at once (counted as missed)
PROMO_USES = 2  # fewer than the traders: some redemptions must be refused
STARS = 500  # the `pro` plan's price (TRADEWIND_PLANS default)
TARGETS: tuple[tuple[str, str | None], ...] = (
    ("registry", "registry.fetched"),
    ("order", "order.placed"),
    ("promo", "promo.redeemed"),
    ("payment", "payment.credited"),
    ("broadcast", "broadcast.queued"),
    ("outbox", "outbox.sent"),
    ("alert", "outbox.sent"),
    ("random", None),
)


@dataclass
class Soak:
    chats: Chats
    bot: Bot
    exchange: Exchange
    traders: list[int]
    rng: random.Random
    kills: Counter[str] = field(default_factory=Counter)  # target → kills inside its pause
    missed: Counter[str] = field(default_factory=Counter)  # target → killed without the pause
    promos: list[str] = field(default_factory=list)
    charges: list[str] = field(default_factory=list)
    broadcasts: list[str] = field(default_factory=list)
    price: float = 0.0

    # -- the rounds -----------------------------------------------------------------------------
    async def round(self, number: int, target: str, point: str | None) -> None:
        env = {"TRADEWIND_PAUSE_POINTS": f"{point}={PAUSE_S}"} if point else {}
        await self.bot.start(env)
        if target != "registry" and not await self.bot.wait_for_log("Application started", 60):
            raise RuntimeError(f"round {number}: the bot did not start\n{self.bot.log()[-3000:]}")
        actions = asyncio.create_task(self._act(number, target))
        if point is None:
            await asyncio.sleep(self.rng.uniform(0.5, 5.0))
            hit = True
        else:
            hit = await self.bot.wait_for_log(f"pause point {point}", AIM_TIMEOUT_S)
            await asyncio.sleep(self.rng.uniform(0, PAUSE_S * 0.9))
        self.bot.kill()
        await self.bot.wait()
        actions.cancel()
        await asyncio.gather(actions, return_exceptions=True)
        (self.kills if hit else self.missed)[target] += 1

    async def _act(self, number: int, target: str) -> None:
        uid = self.traders[number % len(self.traders)]
        if target in ("order", "random"):
            await self.trade(uid)
        if target in ("promo", "random"):
            self.chats.say(uid, f"/redeem {self.rng.choice(self.promos)}")
        if target in ("payment", "random"):
            self.charges.append(self.chats.pay(uid, f"lic:pro:30:{STARS}:{uid}", STARS))
        if target in ("broadcast", "outbox", "random"):
            await self.broadcast(number)
        if target in ("alert", "random"):
            await self.alert(uid)
        await asyncio.Event().wait()  # until the kill: what is in flight stays in flight

    async def trade(self, uid: int) -> None:
        """Close the BTC position if there is one, else open one; Confirm the card."""
        mark = self.chats.say(uid, "/close BTC")
        card = await self.chats.reply(uid, mark, ("Confirm closing", "You have no"), 30)
        if card is None or button(card, "ok:") is None:
            mark = self.chats.say(uid, "/long BTC 100 5")
            card = await self.chats.reply(uid, mark, "Confirm LONG", 30)
        data = button(card, "ok:") if card is not None else None
        if card is not None and data is not None:
            self.chats.press(uid, card, data)

    async def broadcast(self, number: int) -> None:
        text = f"Soak broadcast {number}: markets are open."
        mark = self.chats.say(ADMIN, f"/broadcast {text}")
        card = await self.chats.reply(ADMIN, mark, "Send the message above", 30)
        data = button(card, "bc:go:") if card is not None else None
        if card is not None and data is not None:
            self.broadcasts.append(text)
            self.chats.press(ADMIN, card, data)

    async def alert(self, uid: int) -> None:
        """An alert 0.2 % above the price, then the price moved past it (and back later)."""
        mark = self.chats.say(uid, "/alert BTC > 0.2%")
        if await self.chats.reply(uid, mark, "🔔", 30) is not None:
            self.price = round(self.price * 1.004, 1)
            await self.exchange.set_price("BTCUSDT", str(self.price))

    # -- set-up ---------------------------------------------------------------------------------
    async def setup(self) -> None:
        """Everyone starts, traders connect their Bybit demo accounts and get a licence, the
        admin creates the promo codes. No kill during this phase."""
        await self.bot.start()
        await self.bot.wait_for_log("Application started", 60)
        for uid in (ADMIN, *self.traders):
            await self.chats.reply(uid, self.chats.say(uid, "/start"), "", 30)
        for uid in self.traders:
            await connect(self.chats, uid)
            mark = self.chats.say(ADMIN, f"/grant {uid} 30")
            await self.chats.reply(ADMIN, mark, "", 30)
        for n in range(1, 4):
            code = f"SOAK{n}"
            mark = self.chats.say(ADMIN, f"/promo_create {code} 7 {PROMO_USES}")
            await self.chats.reply(ADMIN, mark, "", 30)
            self.promos.append(code)
        await self.bot.stop()


async def soak(
    kills: int, traders: int, seed: int, settle_s: float, targets: list[str] | None = None
) -> int:
    with tempfile.TemporaryDirectory(prefix="tw-crash-") as tmp:
        return await _soak(Path(tmp), kills, traders, seed, settle_s, targets or [])


async def _soak(
    workdir: Path, kills: int, count: int, seed: int, settle_s: float, targets: list[str]
) -> int:
    rng = random.Random(seed)
    traders = list(range(11, 11 + count))
    async with Exchange(traders) as exchange, BotApiServer() as telegram:
        env = bot_env(workdir, telegram, exchange, ADMIN)
        env.update(TRADEWIND_MARKET_SOURCE="bybit", TRADEWIND_SCAN_INTERVAL="2")
        bot = Bot(env, workdir / "bot.log")
        state = Soak(Chats(telegram), bot, exchange, traders, rng)
        state.price = 60000.0
        await exchange.set_price("BTCUSDT", str(state.price))
        started = time.monotonic()
        await state.setup()
        chosen = [t for t in TARGETS if not targets or t[0] in targets]
        plan = [chosen[i % len(chosen)] for i in range(kills)]
        rng.shuffle(plan)
        for number, (target, point) in enumerate(plan, 1):
            await state.round(number, target, point)
        # The last run: no pause, nothing killed; it settles what the crashes left.
        await bot.start()
        await bot.wait_for_log("Application started", 60)
        await _settled(workdir / "tradewind.db", settle_s)
        code = await bot.stop()
        elapsed = time.monotonic() - started
        checks = crash_checks(
            workdir / "tradewind.db",
            await exchange.orders(),
            telegram,
            kills=bot.kills,
            charges=state.charges,
            admin=ADMIN,
            traders=traders,
            key_of=lambda uid: key_of(uid)[0],
            least=_least(plan),
        )
        log = bot.log()
    aimed = sum(1 for _, point in plan if point is not None)
    landed = sum(state.kills.values()) - state.kills["random"]
    checks.append(Check("the bot was killed", bot.kills == kills, f"{bot.kills} SIGKILLs"))
    checks.append(
        Check(
            "aimed kills landed inside their pause",
            landed >= 0.8 * aimed,
            f"{landed} of {aimed} (the rest killed when the pause was not reached in time)",
        )
    )
    checks.append(Check("the last run stopped cleanly", code == 0, f"exit status {code}"))
    tracebacks = log.count("Traceback")
    _report(state, checks, elapsed, tracebacks)
    return 0 if all(c.ok for c in checks) else 1


def _least(plan: list[tuple[str, str | None]]) -> Counter[str]:
    """What the planned rounds must have produced at the least (proof of work)."""
    planned = Counter(target for target, _ in plan)
    return Counter(
        orders=min(1, planned["order"] + planned["random"]),
        payments=min(1, planned["payment"] + planned["random"]),
        deliveries=min(1, sum(planned[t] for t in ("broadcast", "outbox", "alert", "random"))),
    )


async def _settled(db: Path, settle_s: float) -> None:
    """Wait until no order outcome is unknown and the outbox is empty (and at least
    `settle_s`, so position sync has run), at most a minute beyond it."""
    start = time.monotonic()
    while time.monotonic() - start < settle_s + 60:
        await asyncio.sleep(1.0)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            (open_intents,) = conn.execute(
                "SELECT COUNT(*) FROM order_intents WHERE status IN ('pending','sent','unknown')"
            ).fetchone()
            (queued,) = conn.execute(
                "SELECT COUNT(*) FROM notifications WHERE status IN ('pending','sending')"
            ).fetchone()
        if not open_intents and not queued and time.monotonic() - start >= settle_s:
            return


def _report(state: Soak, checks: list[Check], elapsed: float, tracebacks: int) -> None:
    print(f"Crash soak: {state.bot.kills} SIGKILLs, {state.bot.starts} starts, {elapsed:.0f} s")
    print("\n| aimed at | kills inside the pause | kills without reaching it |")
    print("|---|---:|---:|")
    for target, _ in TARGETS:
        print(f"| {target} | {state.kills[target]} | {state.missed[target]} |")
    print("\n| check | result | figures |")
    print("|---|---|---|")
    for check in checks:
        print(f"| {check.name} | {'ok' if check.ok else 'FAILED'} | {check.detail} |")
    print(f"\nTracebacks in the bot's log: {tracebacks}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 kills")
    parser.add_argument("--traders", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--settle-s", type=float, default=20.0, help="the last run lasts at least this"
    )
    parser.add_argument(
        "--targets",
        default="",
        help="comma-separated subset of " + ",".join(t for t, _ in TARGETS) + " (default all)",
    )
    args = parser.parse_args()
    kills = 10 if args.quick else args.kills
    targets = [t for t in args.targets.split(",") if t]
    return asyncio.run(soak(kills, args.traders, args.seed, args.settle_s, targets))


if __name__ == "__main__":
    raise SystemExit(main())
