"""What the soak scripts share: the local Bybit server in its own process (with its `/test`
control endpoints), `tradewind run` as a process that can be killed and started again, and the
traders' side of the chat over a local Bot API HTTP server.

Nothing here decides what to check; the soaks do.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp

from bot.offline_api import ApiCall
from bot.offline_updates import (
    make_callback_update,
    make_message_update,
    make_successful_payment_update,
)
from tests.botapi_server import BotApiServer

TRADEWIND = str(Path(sys.executable).parent / "tradewind")
TOKEN = "123456789:SOAK-token-for-the-local-bot-api-server"
ADMIN = 1
JSONDict = dict[str, Any]


def key_of(uid: int) -> tuple[str, str]:
    """The API key and secret of trader `uid`'s account on the local server."""
    return f"soak-key-{uid}", f"soak-secret-{uid}"


class Exchange:
    """`python -m tests.exchange_server --control` in its own process (its CPU is not ours)."""

    def __init__(self, traders: Iterable[int], symbols: int = 30) -> None:
        self.traders = list(traders)
        self.symbols = symbols
        self.base_url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Exchange:
        accounts = [f"--account={':'.join(key_of(uid))}:100000" for uid in self.traders]
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.exchange_server", "--control", "--seed", "1",
            "--symbols", str(self.symbols), *accounts, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        line = (await self._process.stdout.readline()).decode()
        self.base_url = line.split(" listening on ", 1)[1].split()[0]
        self._session = aiohttp.ClientSession(base_url=self.base_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._process is not None:
            self._process.terminate()
            await self._process.wait()

    async def _call(self, method: str, path: str, **kwargs: Any) -> JSONDict:
        assert self._session is not None
        async with self._session.request(method, f"/test/{path}", **kwargs) as response:
            response.raise_for_status()
            data: JSONDict = await response.json()
            return data

    async def orders(self) -> list[JSONDict]:
        return list((await self._call("GET", "orders"))["orders"])

    async def set_price(self, symbol: str, price: str) -> None:
        await self._call("POST", "price", json={"symbol": symbol, "price": price})

    async def chaos(self, rate: float, kinds: list[str], seed: int, paths: JSONDict) -> None:
        body = {"rate": rate, "kinds": kinds, "seed": seed, "paths": paths}
        await self._call("POST", "chaos", json=body)

    async def calm(self) -> None:
        await self._call("DELETE", "chaos")

    async def faults(self, since: float = 0.0) -> list[JSONDict]:
        return list((await self._call("GET", "faults", params={"since": str(since)}))["faults"])

    async def stats(self) -> JSONDict:
        return await self._call("GET", "stats")


@dataclass
class Bot:
    """`tradewind run` as a process; every start appends to one log file."""

    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    kills: int = 0
    _read: int = 0  # how far `marks` has read the log

    async def start(self, extra_env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"---- start {self.starts + 1}\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                TRADEWIND, "run", env={**self.env, **(extra_env or {})},
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        self.starts += 1
        self._read = self.log_path.stat().st_size

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            self.kills += 1

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def stop(self) -> int:
        """SIGINT, as Ctrl-C: a clean shutdown."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.process.wait(), timeout=60)

    def new_log(self) -> str:
        """What the bot logged since the last call (or its start)."""
        with self.log_path.open("rb") as log:
            log.seek(self._read)
            data = log.read()
        self._read += len(data)
        return data.decode(errors="replace")

    async def wait_for_log(self, needle: str, timeout: float) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline and self.alive:
            seen = seen[-len(needle) :] + self.new_log()
            if needle in seen:
                return True
            await asyncio.sleep(0.02)
        return False

    def rss_mb(self) -> float:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kb) / 1024

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def bot_env(
    workdir: Path, telegram: BotApiServer, exchange: Exchange, admin: int
) -> dict[str, str]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TRADEWIND_DB": str(workdir / "tradewind.db"),
        "TRADEWIND_METRICS_ADDR": "",
        "TRADEWIND_EXCHANGE_URLS": json.dumps({"bybit": exchange.base_url}),
        "TRADEWIND_EXCHANGES": "paper,bybit",
        "TRADEWIND_ADMIN_IDS": str(admin),
        "TRADEWIND_FLOOD": "off",  # traders here type faster than people do
    }
    for name in ("TRADEWIND_MASTER_KEY", "TRADEWIND_PAUSE_POINTS", "TRADEWIND_LOG_WIRE"):
        env.pop(name, None)
    return env


@dataclass
class Chats:
    """Every trader's side of the conversation over the local Bot API server."""

    server: BotApiServer
    ids: count[int] = field(default_factory=lambda: count(1))
    charges: count[int] = field(default_factory=lambda: count(1))

    def say(self, uid: int, text: str) -> int:
        """Send `text` as `uid`; the index in the call log where its answers start."""
        mark = len(self.server.calls)
        self.server.push_update(make_message_update(next(self.ids), uid, text, f"Trader{uid}"))
        return mark

    def press(self, uid: int, message: JSONDict, data: str, query_id: str | None = None) -> int:
        mark = len(self.server.calls)
        update = make_callback_update(
            next(self.ids), uid, message, data, f"Trader{uid}", query_id=query_id
        )
        self.server.push_update(update)
        return mark

    def pay(self, uid: int, payload: str, stars: int) -> str:
        """A successful Stars payment for `payload`; its charge id."""
        charge = f"soak-charge-{next(self.charges)}"
        update = make_successful_payment_update(
            next(self.ids), uid, stars, payload, f"Trader{uid}", telegram_payment_charge_id=charge
        )
        self.server.push_update(update)
        return charge

    def answers(self, uid: int, since: int = 0) -> list[ApiCall]:
        return [
            call
            for call in self.server.calls[since:]
            if call.method in ("sendMessage", "editMessageText")
            and call.params.get("chat_id") == uid
            and isinstance(call.result, dict)
        ]

    async def reply(
        self,
        uid: int,
        since: int,
        starts: str | tuple[str, ...] = "",
        timeout: float = 20.0,  # noqa: ASYNC109
    ) -> JSONDict | None:
        """The first message to `uid` after `since` whose text starts with `starts`, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.answers(uid, since):
                assert isinstance(call.result, dict)
                if str(call.result.get("text", "")).startswith(starts):
                    return call.result
            await asyncio.sleep(0.05)
        return None


async def connect(chats: Chats, uid: int) -> None:
    """/connect a Bybit demo account with the trader's keys on the local server."""
    key, secret = key_of(uid)
    prompt = await chats.reply(uid, chats.say(uid, "/connect"), "Connect an", 60)
    assert prompt is not None, f"trader {uid}: no /connect prompt"
    mark = chats.press(uid, prompt, "connect:ex:bybit")
    prompt = await chats.reply(uid, mark, "Bybit — which account?", 60)
    assert prompt is not None, f"trader {uid}: no account-type prompt"
    mark = chats.press(uid, prompt, "connect:type:demo")
    await chats.reply(uid, mark, "Bybit (demo): send the API key.", 60)
    mark = chats.say(uid, key)
    await chats.reply(uid, mark, "Now send the API secret.", 60)
    mark = chats.say(uid, secret)
    done = await chats.reply(uid, mark, "Connected Bybit (demo)", 60)
    assert done is not None, f"trader {uid} did not connect"


def button(message: JSONDict, prefix: str) -> str | None:
    """The callback data of the first button under `message` starting with `prefix`."""
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for cell in row:
            data = str(cell.get("callback_data", ""))
            if data.startswith(prefix):
                return data
    return None


def sent_texts(server: BotApiServer, chat_id: int | None = None) -> list[str]:
    """Texts of every message the bot sent (to `chat_id`), in order."""
    return [
        str(call.result.get("text", ""))
        for call in server.calls
        if call.method == "sendMessage"
        and isinstance(call.result, dict)
        and (chat_id is None or call.params.get("chat_id") == chat_id)
    ]
