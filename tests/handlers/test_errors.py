"""The app-wide error handler: apologise, alert admins (throttled), never crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Update
from telegram.ext import CommandHandler

from core.errors import InvalidInput
from core.exchange.errors import VenueDown
from handlers.base import measured
from handlers.context import TradewindContext
from handlers.errors import APOLOGY
from tests.harness import BotHarness, running_bot, texts

ADMIN = 99
TRADER = 42


async def _explode(update: Update, context: TradewindContext) -> None:
    raise ZeroDivisionError("division by zero in a handler")


async def _explode_html(update: Update, context: TradewindContext) -> None:
    raise ValueError("bad <tag> & <b>markup</b> from an exchange")


async def _refuse(update: Update, context: TradewindContext) -> None:
    raise InvalidInput("Amount must be a positive number, e.g. /long BTC 50")


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        # Ahead of the unknown-command fallback in the same group, as a real command would be.
        group = harness.app.handlers[0]
        group.insert(0, CommandHandler("explode", measured("explode", _explode)))
        group.insert(0, CommandHandler("refuse", measured("refuse", _refuse)))
        group.insert(0, CommandHandler("explode_html", measured("explode_html", _explode_html)))
        yield harness


async def test_crash_apologises_and_alerts_admins_once_per_minute(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/explode")
    to_trader = [c for c in calls if c.params.get("chat_id") == TRADER]
    to_admin = [c for c in calls if c.params.get("chat_id") == ADMIN]
    assert texts(to_trader) == [APOLOGY]
    (alert,) = texts(to_admin)
    assert "ZeroDivisionError" in alert and "division by zero" in alert
    assert "Traceback" not in texts(to_trader)[0]

    calls = await bot.send(TRADER, "/explode")  # same error within the minute
    assert [c.params.get("chat_id") for c in calls if c.method == "sendMessage"] == [TRADER]


async def test_domain_errors_reach_the_user_verbatim(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/refuse")
    assert texts(calls) == ["Amount must be a positive number, e.g. /long BTC 50"]
    assert not [c for c in calls if c.params.get("chat_id") == ADMIN]


async def test_bot_keeps_working_after_a_crash(bot: BotHarness) -> None:
    await bot.send(TRADER, "/explode")
    (reply,) = texts(await bot.send(TRADER, "/help"))
    assert "/start" in reply


async def test_blocked_admin_does_not_break_error_handling(bot: BotHarness) -> None:
    bot.state.blocked.add(ADMIN)
    calls = await bot.send(TRADER, "/explode")
    assert APOLOGY in texts(calls)


async def test_errors_are_counted_per_command(bot: BotHarness) -> None:
    await bot.send(TRADER, "/explode")
    await bot.send(TRADER, "/help")
    sample = bot.services.metrics.registry.get_sample_value
    assert sample("tradewind_command_errors_total", {"command": "explode"}) == 1
    assert sample("tradewind_command_errors_total", {"command": "help"}) is None
    assert sample("tradewind_command_seconds_count", {"command": "explode"}) == 1


async def test_admin_alert_is_html_with_the_error_escaped(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/explode_html")
    (alert,) = [c for c in calls if c.params.get("chat_id") == ADMIN]
    assert alert.params["parse_mode"] == "HTML"
    text = alert.result["text"]
    assert "<b>" not in text.split("ValueError")[0]  # the heading is formatted, not raw tags
    assert "bad <tag> & <b>markup</b> from an exchange" in text  # shown literally
    kinds = {e["type"] for e in alert.result["entities"]}
    assert {"bold", "pre"} <= kinds


async def _venue_down(update: Update, context: TradewindContext) -> None:
    raise VenueDown("bybit", "Bybit is not answering; trying again in 30 s", retry_in=30)


async def test_an_uncaught_exchange_failure_is_told_in_its_own_words(bot: BotHarness) -> None:
    # Not wrapped in `measured`: the error handler is the last place it can be worded.
    bot.app.handlers[0].insert(0, CommandHandler("venue_down", _venue_down))
    calls = await bot.send(TRADER, "/venue_down")
    assert texts(calls) == ["Bybit is not answering; trying again in 30 s"]
    assert not [c for c in calls if c.params.get("chat_id") == ADMIN]  # not our bug
