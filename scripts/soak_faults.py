"""Fault soak: the trader workload against a Bybit that fails a fifth of its requests.

Usage: .venv/bin/python -m scripts.soak_faults [--seconds 600 | --quick] [--traders 20]
                                               [--rate 0.2] [--seed 5]

`tradewind run` runs as a real process against the local Bybit server (its own process,
`--control`) and a local Bot API HTTP server in this process. Traders connect Bybit demo
accounts, then for `--seconds` (60 with `--quick`, 600 by default) each sends the load-test mix
(/balance, /positions, /orders, /pnl, and now and then /close or /long with Confirm) with a
short think time, while the server faults `--rate` of all requests at random: hangs past the
client's timeout, accept-then-drop on order creation, HTTP 429 and Bybit retCode 10006, 5xx,
malformed JSON, dropped connections and TCP resets.

Checked and printed: every command answered, and in words that fit a fault that hit that
trader's account (or a public endpoint) around it; the process never died; no order placed
twice (the server's books against the intents); RSS flat (sampled every second: the second
half of the run may not grow by more than 10 % + 5 MB). Exit status 1 when a check fails or
the workload did too little.
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

from scripts._soak import ADMIN, Bot, Chats, Exchange, JSONDict, bot_env, button, connect, key_of
from scripts._soak_checks import Check, order_checks
from tests.botapi_server import BotApiServer

KINDS = (
    "hang", "accept_then_drop", "rate_limit", "http_429", "http_5xx", "malformed", "drop",
    "reset",
)  # fmt: skip
ONLY_ON = {"accept_then_drop": "/v5/order/create"}  # an order is created, the answer is lost
CREATE = "/v5/order/create"
# The words a reply uses for each failure, and which faults they may follow.
WORDS = {
    "rate limited": ("rate limiting us",),
    "timed out": ("did not answer in time",),
    "unreachable": ("Cannot reach",),
    "unavailable": ("unavailable right now", "Bybit failed"),
    "unreadable": ("unreadable answer",),
    "unconfirmed": ("did not confirm the order", "not confirmed it yet", "checked again"),
    "not accepted": ("did not accept the order",),  # every attempt failed, none arrived
    "refused": ("refused the order", "Not placed", "Refused by the exchange"),
}
FITS = {
    "hang": {"timed out"},
    "accept_then_drop": {"unconfirmed", "unreachable"},
    "rate_limit": {"rate limited"},
    "http_429": {"rate limited"},
    "http_5xx": {"unavailable"},
    "malformed": {"unreadable"},
    "drop": {"unreachable"},
    "reset": {"unreachable"},
}
MIX = (("/balance", 0.3), ("/positions", 0.25), ("/orders", 0.15), ("/pnl", 0.1), ("trade", 0.2))
THINK_S = (0.5, 3.0)
ANSWER_S = 90.0  # a command with retries over hung requests may take this long
LOOKBACK_S = 12.0  # a reply may come from a request that started before the command did


@dataclass
class Sample:
    uid: int
    command: str
    start: float
    end: float
    text: str | None  # None: never answered

    @property
    def words(self) -> str:
        """The failure named by the reply, or "ok"."""
        for name, phrases in WORDS.items():
            if self.text is not None and any(p in self.text for p in phrases):
                return name
        return "ok"


@dataclass
class Load:
    chats: Chats
    rng: random.Random
    samples: list[Sample] = field(default_factory=list)
    query_ids: Counter[int] = field(default_factory=Counter)

    async def trader(self, uid: int, deadline: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, THINK_S[1]))
        commands, weights = [c for c, _ in MIX], [w for _, w in MIX]
        while time.monotonic() < deadline:
            command = self.rng.choices(commands, weights)[0]
            if command == "trade":
                await self.trade(uid)
            else:
                await self.command(uid, command)
            await asyncio.sleep(self.rng.uniform(*THINK_S))

    async def command(self, uid: int, text: str) -> JSONDict | None:
        start = time.time()
        reply = await self.chats.reply(uid, self.chats.say(uid, text), "", ANSWER_S)
        said = str(reply.get("text", "")) if reply is not None else None
        self.samples.append(Sample(uid, text.split()[0], start, time.time(), said))
        return reply

    async def trade(self, uid: int) -> None:
        card = await self.command(uid, "/close BTC")
        if card is None or button(card, "ok:") is None:
            card = await self.command(uid, "/long BTC 100 5")
        data = button(card, "ok:") if card is not None else None
        if card is None or data is None:
            return
        start = time.time()
        self.query_ids[uid] += 1
        query_id = f"soak{uid}x{self.query_ids[uid]}"
        mark = len(self.chats.server.calls)
        self.chats.press(uid, card, data, query_id=query_id)
        text = await self._pressed(uid, mark, query_id)
        self.samples.append(Sample(uid, "Confirm", start, time.time(), text))

    async def _pressed(self, uid: int, mark: int, query_id: str) -> str | None:
        """The toast (or alert) answering the press, with the card's new text if edited."""
        deadline = time.monotonic() + ANSWER_S
        answer: str | None = None
        while time.monotonic() < deadline:
            calls = self.chats.server.calls[mark:]
            for call in calls:
                if (
                    call.method == "answerCallbackQuery"
                    and call.params.get("callback_query_id") == query_id
                ):
                    answer = str(call.params.get("text", ""))
            if answer is not None:
                await asyncio.sleep(0.3)  # the edit follows the toast
                edits = [
                    str(c.result.get("text", ""))
                    for c in self.chats.server.calls[mark:]
                    if c.method == "editMessageText"
                    and c.params.get("chat_id") == uid
                    and isinstance(c.result, dict)
                ]
                return " | ".join([answer, *edits[-1:]])
            await asyncio.sleep(0.05)
        return None


def _fitting(sample: Sample, faults: list[JSONDict], key: str) -> tuple[bool, set[str]]:
    """Whether the reply's words fit a fault that hit the trader's account or a public
    endpoint around the command; and the kinds that did."""
    kinds = {
        f["kind"]
        for f in faults
        if sample.start - LOOKBACK_S <= f["at"] <= sample.end + 0.05 and f["key"] in (key, "")
    }
    creates = any(
        f["path"] == CREATE and sample.start <= f["at"] <= sample.end + 0.05 and f["key"] == key
        for f in faults
    )
    words = sample.words
    if sample.text is None:
        return False, kinds
    if words == "ok":
        return True, kinds
    fits = set().union(*(FITS[k] for k in kinds)) if kinds else set()
    if creates:
        # A failed create leaves its outcome open until looked up; when every attempt failed
        # and the lookups found nothing, nothing was placed.
        fits |= {"unconfirmed", "not accepted"}
    return words in fits, kinds


async def soak(seconds: float, count: int, rate: float, seed: int) -> int:
    with tempfile.TemporaryDirectory(prefix="tw-faults-") as tmp:
        return await _soak(Path(tmp), seconds, count, rate, seed)


async def _soak(workdir: Path, seconds: float, count: int, rate: float, seed: int) -> int:
    traders = list(range(11, 11 + count))
    async with Exchange(traders) as exchange, BotApiServer() as telegram:
        await exchange.set_price("BTCUSDT", "60000")
        bot = Bot(bot_env(workdir, telegram, exchange, ADMIN), workdir / "bot.log")
        await bot.start()
        if not await bot.wait_for_log("Application started", 60):
            raise RuntimeError(f"the bot did not start\n{bot.log()[-3000:]}")
        chats = Chats(telegram)
        await _setup(chats, traders)
        load = Load(chats, random.Random(seed))
        await exchange.chaos(rate, list(KINDS), seed, dict(ONLY_ON))
        began = time.time()
        rss: list[float] = [bot.rss_mb()]
        deadline = time.monotonic() + seconds
        workers = asyncio.gather(*(load.trader(uid, deadline) for uid in traders))
        died_at: float | None = None
        while not workers.done():
            await asyncio.sleep(1.0)
            if not bot.alive and died_at is None:
                died_at = time.time() - began
            if bot.alive:
                rss.append(bot.rss_mb())
        await workers
        await exchange.calm()
        faults = await exchange.faults(began)
        stats = await exchange.stats()
        await _settled(workdir / "tradewind.db", 90)
        alive = bot.alive
        code = await bot.stop() if alive else await bot.wait()
        orders = await exchange.orders()
        checks = order_checks(workdir / "tradewind.db", orders)
        tracebacks = bot.log().count("Traceback")
    checks += _reply_checks(load.samples, faults, stats, traders, seconds)
    checks.append(
        Check(
            "the process never died",
            alive and died_at is None and code == 0,
            f"alive to the end, exit status {code} after SIGINT"
            if died_at is None
            else f"died after {died_at:.0f} s",
        )
    )
    checks.append(_rss_check(rss))
    _report(load.samples, faults, traders, checks, seconds, rate, tracebacks, rss)
    return 0 if all(c.ok for c in checks) else 1


async def _setup(chats: Chats, traders: list[int]) -> None:
    async def one(uid: int) -> None:
        await chats.reply(uid, chats.say(uid, "/start"), "", 60)
        await connect(chats, uid)
        mark = chats.say(ADMIN, f"/grant {uid} 30")
        # The trader is told: that message must not pass for the answer to a first command.
        await chats.reply(uid, mark, "🎉 You were granted", 60)

    await chats.reply(ADMIN, chats.say(ADMIN, "/start"), "", 60)
    await asyncio.gather(*(one(uid) for uid in traders))


async def _settled(db: Path, limit_s: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            (left,) = conn.execute(
                "SELECT COUNT(*) FROM order_intents WHERE status IN ('pending','sent','unknown')"
            ).fetchone()
        if not left:
            return
        await asyncio.sleep(1.0)


def _reply_checks(
    samples: list[Sample],
    faults: list[JSONDict],
    stats: JSONDict,
    traders: list[int],
    seconds: float,
) -> list[Check]:
    keys = {uid: key_of(uid)[0] for uid in traders}
    unanswered = [s for s in samples if s.text is None]
    wrong = [s for s in samples if s.text is not None and not _fitting(s, faults, keys[s.uid])[0]]
    examples = "; ".join(f"{s.command} → {s.text!r:.90}" for s in wrong[:3])
    confirms = sum(s.command == "Confirm" for s in samples)
    return [
        Check("every command answered", not unanswered, f"{len(unanswered)} of {len(samples)}"),
        Check(
            "every failure told in the right words",
            not wrong,
            f"{len(wrong)} replies naming a failure no fault explains"
            + (f": {examples}" if wrong else ""),
        ),
        Check(
            "the workload did the work",
            # A trader thinks 0.5-3 s between commands: at least one command per 10 s each,
            # an order per 200 s each, and some faults.
            len(samples) >= len(traders) * max(1.0, seconds / 10)
            and confirms >= max(1.0, len(traders) * seconds / 200)
            and bool(faults),
            f"{len(samples)} commands, {confirms} confirmed orders, {stats['requests']} exchange "
            f"requests, {len(faults)} faulted",
        ),
    ]


def _rss_check(rss: list[float]) -> Check:
    mid, end = rss[len(rss) // 2], rss[-1]
    bound = mid * 1.10 + 5
    return Check(
        "RSS flat",
        end <= bound,
        f"start {rss[0]:.0f} MB, middle {mid:.0f} MB, end {end:.0f} MB, max {max(rss):.0f} MB "
        f"(bound for the end: {bound:.0f} MB)",
    )


def _report(
    samples: list[Sample],
    faults: list[JSONDict],
    traders: list[int],
    checks: list[Check],
    seconds: float,
    rate: float,
    tracebacks: int,
    rss: list[float],
) -> None:
    keys = {uid: key_of(uid)[0] for uid in traders}
    injected = Counter(f["kind"] for f in faults)
    told: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for sample in samples:
        _, kinds = _fitting(sample, faults, keys[sample.uid])
        for kind in kinds:
            told[kind][sample.words] += 1
    print(
        f"Fault soak: {len(traders)} traders, {seconds:.0f} s, {rate:.0%} of exchange requests "
        f"faulted: {len(samples)} commands, {len(faults)} faults injected"
    )
    print("\n| fault | injected | commands it touched | answered as | ")
    print("|---|---:|---:|---|")
    for kind in KINDS:
        shown = ", ".join(f"{words} {n}" for words, n in told[kind].most_common())
        print(f"| {kind} | {injected[kind]} | {sum(told[kind].values())} | {shown or '—'} |")
    replies = Counter(s.words for s in samples)
    print("\n| reply | commands | for example |")
    print("|---|---:|---|")
    for words, n in replies.most_common():
        example = next(s.text for s in samples if s.words == words and s.text is not None)
        print(f"| {words} | {n} | {' '.join(example.split())[:100]} |")
    print("\n| check | result | figures |")
    print("|---|---|---|")
    for check in checks:
        print(f"| {check.name} | {'ok' if check.ok else 'FAILED'} | {check.detail} |")
    print(f"\nTracebacks in the bot's log: {tracebacks}; RSS samples: {len(rss)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--quick", action="store_true", help="60 s")
    parser.add_argument("--traders", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    seconds = 60 if args.quick else args.seconds
    return asyncio.run(soak(seconds, args.traders, args.rate, args.seed))


if __name__ == "__main__":
    raise SystemExit(main())
