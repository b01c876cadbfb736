"""/notify through the real Application: show, change, refuse bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import BotHarness, running_bot, texts

TRADER = 42
USAGE = "Usage: /notify signals|fills|reports on|off|silent, e.g. /notify signals silent."


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(TRADER, "/start")
        yield harness


async def reply(bot: BotHarness, text: str) -> str:
    (answer,) = texts(await bot.send(TRADER, text))
    return answer


async def test_notify_shows_every_setting_on_by_default(bot: BotHarness) -> None:
    text = await reply(bot, "/notify")

    assert text.splitlines()[:4] == [
        "Notifications",
        "Signals: on (signals)",
        "Fills, TP/SL and stop-outs: on (fills)",
        "Reports: on (reports)",
    ]
    assert text.endswith(USAGE)


async def test_notify_changes_one_setting_and_stores_it(bot: BotHarness) -> None:
    text = await reply(bot, "/notify Signals SILENT")

    assert text.startswith("Signals notifications: silent (no sound).")
    assert "Signals: silent (no sound) (signals)" in text
    await reply(bot, "/notify reports off")
    user = await bot.services.users.get(TRADER)
    assert user is not None
    assert (user.notify_signals, user.notify_fills, user.notify_reports) == (
        "silent",
        "on",
        "off",
    )


@pytest.mark.parametrize(
    "command", ["/notify signals", "/notify trades off", "/notify fills loud", "/notify a b c"]
)
async def test_notify_answers_bad_input_with_the_usage_and_changes_nothing(
    bot: BotHarness, command: str
) -> None:
    assert await reply(bot, command) == USAGE
    user = await bot.services.users.get(TRADER)
    assert user is not None
    assert (user.notify_signals, user.notify_fills, user.notify_reports) == ("on", "on", "on")
