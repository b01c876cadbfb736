"""The console user of a fresh database gets signals from the start, once."""

from __future__ import annotations

from pathlib import Path

from bot.app import CONSOLE_USER_ID
from bot.console import subscribe_newcomer
from tests.harness import running_bot, texts


async def test_a_fresh_console_is_subscribed_and_an_unsubscribe_stays(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        assert await subscribe_newcomer(bot.app) is True
        state = await bot.services.signals.subscription(CONSOLE_USER_ID)
        assert state is not None and state[0]
        (greeting,) = texts(await bot.send(CONSOLE_USER_ID, "/start", first_name="Console"))
        assert greeting.startswith("Welcome to Tradewind, Console!")
        await bot.send(CONSOLE_USER_ID, "/unsubscribe")

    async with running_bot(tmp_path) as bot:  # the next start on the same database
        assert await subscribe_newcomer(bot.app) is False
        state = await bot.services.signals.subscription(CONSOLE_USER_ID)
        assert state is not None and not state[0]
