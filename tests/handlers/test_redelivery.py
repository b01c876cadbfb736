"""A redelivered Telegram update (same update_id, as after a crash) never acts twice: through
the real Application, in one run and across a restart on the same database."""

from __future__ import annotations

from pathlib import Path

import pytest
from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.offline_api import FakeTelegramState
from bot.offline_updates import make_message_update
from bot.updates import UpdateGuard
from db.repositories.updates import UpdateRepository
from tests.harness import BotHarness, running_bot, texts

TRADER = 42


async def _alerts(bot: BotHarness) -> int:
    return int(await bot.store.fetchval("t.alerts", "SELECT count(*) FROM price_alerts"))


async def test_the_same_update_twice_acts_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.send(TRADER, "/start")
        update = make_message_update(0, TRADER, "/alert BTC > 2%")
        first = await bot.deliver(update)
        assert texts(first) and await _alerts(bot) == 1
        again = await bot.redeliver(update)
        assert again == []  # not even a reply: the update was dropped before any handler
        assert await _alerts(bot) == 1


async def test_a_redelivery_after_a_crash_acts_once(tmp_path: Path) -> None:
    state = FakeTelegramState()
    async with running_bot(tmp_path, state=state) as bot:
        await bot.send(TRADER, "/start")
        update = make_message_update(0, TRADER, "/alert BTC > 2%")
        await bot.deliver(update)
        assert await _alerts(bot) == 1
    # The process died before confirming the update: Telegram sends it again on restart.
    async with running_bot(tmp_path, state=state) as bot:
        assert await bot.redeliver(update) == []
        assert await _alerts(bot) == 1
        fresh = await bot.send(TRADER, "/alert ETH > 3%")  # new ids go on after the old ones
        assert texts(fresh) and await _alerts(bot) == 2


async def test_the_window_of_ids_stays_bounded(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        guard = UpdateGuard(window=20)
        await guard.open(UpdateRepository(bot.store), bot.services.clock)
        latest = guard.latest
        for n in range(1, 101):
            await guard.check(_update(bot, latest + n), None)
        rows = await bot.store.fetchval("t.rows", "SELECT count(*) FROM processed_updates")
        assert 20 <= rows <= 20 + 2  # pruned every 2 updates to the 20 newest
        with pytest.raises(ApplicationHandlerStop):  # the newest ids are remembered
            await guard.check(_update(bot, latest + 100), None)
        assert guard.dropped == 1


def _update(bot: BotHarness, update_id: int) -> Update:
    return Update.de_json(make_message_update(update_id, TRADER, "/help"), bot.app.bot)
