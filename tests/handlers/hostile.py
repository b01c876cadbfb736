"""A running bot on its own event loop thread, so Hypothesis (synchronous) can drive it.

Each update is checked the way Telegram would check the bot's answer: the offline Bot API
rejects a text over 4,096 UTF-16 units, a callback_data over 64 bytes or a toast over 200
characters, and an exception a handler lets escape reaches the application's error handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.offline_api import ApiCall
from bot.telegram_html import MAX_CALLBACK_DATA_BYTES, MAX_TEXT_LENGTH, utf16_len
from db.store import Store
from handlers.context import TradewindContext
from tests.harness import BotHarness, running_bot

T = TypeVar("T")

# The normal suite runs a modest, fixed sample; a full run sets e.g. 100000.
FUZZ_EXAMPLES = int(os.environ.get("TRADEWIND_FUZZ_EXAMPLES", "0") or 0)


def examples(default: int) -> int:
    return FUZZ_EXAMPLES or default


class BotThread:
    """`running_bot` on a loop in a background thread; `call` runs a coroutine there."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._task: asyncio.Future[None] | None = None
        self.bot: BotHarness | None = None
        self.errors: list[BaseException] = []

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    @property
    def harness(self) -> BotHarness:
        assert self.bot is not None
        return self.bot

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        async with running_bot(self._tmp_path, rate_limited=False) as bot:
            self.bot = bot
            bot.app.add_error_handler(self._on_error)
            self._ready.set()
            await self._stop.wait()

    async def _on_error(self, update: object, context: TradewindContext) -> None:
        if context.error is not None:
            self.errors.append(context.error)

    def __enter__(self) -> BotThread:
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self._loop)
        if not self._ready.wait(timeout=60):
            self._task.result(timeout=1)  # raises what stopped the start
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._stop is not None
            self._stop.set()

        self.call(stop())
        assert self._task is not None
        self._task.result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@contextlib.contextmanager
def bot_thread(tmp_path: Path) -> Iterator[BotThread]:
    with BotThread(tmp_path) as thread:
        yield thread


def registered_commands(bot: BotHarness) -> list[str]:
    """Every command a handler answers, from the running application."""
    names: set[str] = set()
    for handlers in bot.app.handlers.values():
        for handler in handlers:
            if isinstance(handler, CommandHandler):
                names |= set(handler.commands)
    return sorted(names)


def registered_prefixes(bot: BotHarness) -> list[str]:
    """Every `prefix` of a `button(prefix, ...)` registration, from the running application."""
    prefixes: set[str] = set()
    for handlers in bot.app.handlers.values():
        for handler in handlers:
            pattern = (
                getattr(handler, "pattern", None)
                if isinstance(handler, CallbackQueryHandler)
                else None
            )
            if isinstance(pattern, re.Pattern):
                match = re.fullmatch(r"\^([a-z_]+):", pattern.pattern)
                if match:
                    prefixes.add(match.group(1))
    return sorted(prefixes)


def problems(calls: list[ApiCall], rejected: list[ApiCall]) -> list[str]:
    """What Telegram would have refused in these calls, or the bot got wrong."""
    found = [f"{c.method} rejected: {c.result}" for c in rejected]
    for call in calls:
        text = call.params.get("text")
        sent = call.method in ("sendMessage", "editMessageText") and isinstance(text, str)
        if sent and utf16_len(str(text)) > MAX_TEXT_LENGTH:
            found.append(f"{call.method} of {utf16_len(text)} UTF-16 units")
        markup = call.params.get("reply_markup")
        rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
        for row in rows:
            for key in row:
                data = key.get("callback_data")
                if data is not None and len(str(data).encode()) > MAX_CALLBACK_DATA_BYTES:
                    found.append(f"callback_data of {len(str(data).encode())} bytes: {data!r}")
    return found


# What a trader's or an admin's action can change; presence (last_seen_at) and the market
# tables the background scanner keeps writing are left out.
STATE_TABLES = (
    "api_credentials", "strategy_settings", "user_licenses", "promo_codes",
    "promo_redemptions", "payments", "order_intents", "pending_limit_orders",
    "active_positions", "broadcasts", "paper_accounts", "paper_orders", "paper_positions",
    "paper_leverage", "paper_fills", "price_alerts",
)  # fmt: skip
USER_COLUMNS = (
    "id, is_active, is_blocked, active_credential_id, signals_subscribed, signals_min_score, "
    "notify_signals, notify_fills, notify_reports"
)


async def business_state(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row an action could change, to compare before and after."""
    state = {
        "users": [
            tuple(r)
            for r in await store.fetchall(
                "t.users", f"SELECT {USER_COLUMNS} FROM users ORDER BY id"
            )
        ]
    }
    for table in STATE_TABLES:
        rows = await store.fetchall("t.state", f'SELECT * FROM "{table}"')
        state[table] = sorted((tuple(r) for r in rows), key=repr)
    return state
