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
    await bot.send(TRADER, "/subscribe")
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

    assert text.startswith("Signals notifications: silent (no sound). Subscribed, at your")
    assert "Signals: silent (no sound) (signals)" in text
    assert (await bot.services.signals.subscription(TRADER) or (False,))[0] is True
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


async def test_signals_off_is_the_same_switch_as_unsubscribe(bot: BotHarness) -> None:
    await bot.send(TRADER, "/subscribe 0.7")
    assert "you are (/unsubscribe stops them)" in await reply(bot, "/notify")
    text = await reply(bot, "/notify signals off")
    assert text.startswith("Signals: off — you are unsubscribed, as with /unsubscribe.")
    assert await bot.services.signals.subscription(TRADER) == (False, 0.7)
    user = await bot.services.users.get(TRADER)
    assert user is not None and user.notify_signals == "on"  # one switch, not two
    assert "you are not (/subscribe)" in await reply(bot, "/notify")
    (again,) = texts(await bot.send(TRADER, "/unsubscribe"))
    assert again.startswith("You are not subscribed")
    await bot.send(TRADER, "/subscribe")
    assert await bot.services.signals.subscription(TRADER) == (True, 0.7)


async def test_help_says_how_unsubscribe_and_notify_differ(bot: BotHarness) -> None:
    lines = (await reply(bot, "/help")).splitlines()
    (unsubscribe,) = [line for line in lines if line.startswith("/unsubscribe")]
    (notify,) = [line for line in lines if line.startswith("/notify")]
    assert "/notify signals silent mutes them" in unsubscribe
    assert "signals off is /unsubscribe" in notify


async def test_unsubscribed_signals_read_off_and_on_subscribes_again(bot: BotHarness) -> None:
    """One switch: the listing never says "on" while no signal would come."""
    await bot.send(TRADER, "/subscribe 0.8")
    await reply(bot, "/notify signals off")
    assert "Signals: off (signals)" in await reply(bot, "/notify")
    text = await reply(bot, "/notify signals on")
    assert "Subscribed, at your minimum score 0.80" in text
    assert "Signals: on (signals)" in text and "you are (/unsubscribe stops them)" in text
    assert await bot.services.signals.subscription(TRADER) == (True, 0.8)
