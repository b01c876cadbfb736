"""/start, /help, /license, /perf and bad input through the real Application."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from db.repositories.licenses import LicenseRepository
from tests.harness import BotHarness, running_bot, texts

ADMIN = 99
TRADER = 42


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        yield harness


async def test_start_registers_greets_and_shows_keyboard(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/start", first_name="Alice")
    (reply,) = texts(calls)
    assert reply.startswith("Welcome to Tradewind, Alice!")
    assert "Licence: none yet" in reply
    keyboard = calls[-1].params["reply_markup"]["keyboard"]
    labels = [b["text"] if isinstance(b, dict) else b for row in keyboard for b in row]
    assert "/help" in labels and "/perf" not in labels
    user = await bot.services.users.get(TRADER)
    assert user is not None and user.first_name == "Alice"
    (again,) = texts(await bot.send(TRADER, "/start", first_name="Alice"))
    assert again.startswith("Welcome back, Alice!")


async def test_start_shows_an_active_licence(bot: BotHarness) -> None:
    await bot.send(TRADER, "/start")
    store = bot.store
    await LicenseRepository(store).extend(TRADER, 30, "pro", "grant", bot.services.clock.now())
    (reply,) = texts(await bot.send(TRADER, "/start"))
    assert "Licence: pro, active until" in reply and "(30 days left)" in reply
    (license_reply,) = texts(await bot.send(TRADER, "/license"))
    assert "30 days left" in license_reply


async def test_start_escapes_html_in_names(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/start", first_name="<b>Eve</b> & co"))
    assert "<b>Eve</b> & co" in reply  # shown literally, not parsed as markup


async def test_help_for_trader_hides_admin_commands(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/help"))
    assert "/start" in reply and "/license" in reply
    # /perf the admin command, not /performance the trader's
    assert re.search(r"/perf\b", reply) is None and "Admin" not in reply


async def test_help_for_admin_lists_admin_commands(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(ADMIN, "/help"))
    assert "Admin" in reply and "/perf" in reply


async def test_perf_is_refused_to_traders_and_audited(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/perf"))
    assert reply == "This command is for admins."
    (entry,) = await bot.services.audit.recent()
    assert (entry.actor_id, entry.action, entry.target, entry.ok) == (
        TRADER,
        "refused",
        "/perf",
        False,
    )


async def test_perf_shows_latencies_to_admins(bot: BotHarness) -> None:
    await bot.send(TRADER, "/start")
    (reply,) = texts(await bot.send(ADMIN, "/perf"))
    assert "Performance" in reply and "/start: 1×" in reply
    # The slowest statements by total time; which ones lead depends on the start-up jobs.
    shown = [s.name for s in bot.services.monitoring.snapshot().statements]
    assert shown and all(f"{name}: " in reply for name in shown)
    assert "known_users" in reply and "DB statements (by total time)" in reply
    counted = {s.name for s in bot.services.monitoring.snapshot(top_statements=1000).statements}
    assert "users.upsert" in counted  # /start's own statement is measured


async def test_unknown_command_points_to_help(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/blance"))
    assert reply.startswith("I don't know /blance.")
    assert "/help" in reply
    (near,) = texts(await bot.send(TRADER, "/hlep"))
    assert "Did you mean /help?" in near


async def test_admin_commands_are_not_suggested_to_traders(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/pref"))
    assert "/perf" not in reply


async def test_free_text_gets_the_main_keyboard(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "what can you do?")
    (reply,) = texts(calls)
    assert "Pick a command" in reply
    assert "keyboard" in calls[-1].params["reply_markup"]


async def test_commands_are_measured(bot: BotHarness) -> None:
    await bot.send(TRADER, "/help")
    value = bot.services.metrics.registry.get_sample_value(
        "tradewind_command_seconds_count", {"command": "help"}
    )
    assert value == 1


async def test_any_update_registers_the_sender(bot: BotHarness) -> None:
    await bot.send(7, "/help")
    assert await bot.services.users.get(7) is not None


async def test_command_menu_is_published_without_admin_commands(bot: BotHarness) -> None:
    calls = bot.state.calls_to("setMyCommands")
    (call,) = [c for c in calls if c.params.get("scope", {"type": "default"})["type"] == "default"]
    names = [c["command"] for c in call.params["commands"]]
    assert "start" in names and "perf" not in names


GROUP = -1001234567890


async def test_start_in_a_group_points_to_a_private_chat(bot: BotHarness) -> None:
    await bot.send(TRADER, "/start", first_name="Alice")
    for command in ("/start", "/start@tradewind_bot", "/license"):
        calls = await bot.send_in_group(TRADER, GROUP, command, first_name="Alice")
        (reply,) = texts(calls)
        assert reply == "Tradewind works in a private chat with @tradewind_bot; send /start there."
        assert "Licence" not in reply
        (sent,) = [c for c in calls if c.method == "sendMessage"]
        assert sent.params["chat_id"] == GROUP
        (row,) = sent.params["reply_markup"]["inline_keyboard"]
        assert row[0]["url"] == "https://t.me/tradewind_bot?start=start"
    user = await bot.services.users.get(TRADER)
    assert user is not None and user.chat_id == TRADER  # notices still go to the private chat


async def test_a_first_message_in_a_group_keeps_notices_private(bot: BotHarness) -> None:
    await bot.send_in_group(TRADER, GROUP, "/start")
    user = await bot.services.users.get(TRADER)
    assert user is not None and user.chat_id == TRADER


async def test_account_and_admin_commands_in_a_group_point_to_a_private_chat(
    bot: BotHarness,
) -> None:
    await bot.send(ADMIN, "/start", first_name="Ada")
    for command in ("/balance", "/positions", "/orders", "/pnl", "/strategy", "/stats"):
        calls = await bot.send_in_group(ADMIN, GROUP, command, first_name="Ada")
        (reply,) = texts(calls)
        assert reply == "Tradewind works in a private chat with @tradewind_bot; send /start there."


async def test_help_answers_in_a_group(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send_in_group(TRADER, GROUP, "/help"))
    assert "/balance" in reply and "Tradewind works in a private chat" not in reply
