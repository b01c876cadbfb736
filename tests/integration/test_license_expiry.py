"""Licence expiry with a fake clock: reminders once each, deactivation, exits still allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from services.licenses import LicenseStatus
from services.trading import LICENCE_NEEDED
from tests.fakes.clock import FakeClock
from tests.harness import BotHarness, running_bot

ADMIN, TRADER = 99, 42
HOUR, DAY = 3_600, 86_400


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, clock=clock) as harness:
        await harness.send(TRADER, "/start")
        yield harness


def _mine(calls: list[ApiCall]) -> list[str]:
    return [
        str(c.result["text"])
        for c in calls
        if isinstance(c.result, dict) and c.result.get("chat", {}).get("id") == TRADER
    ]


def _card(calls: list[ApiCall]) -> tuple[dict[str, Any], str]:
    for call in calls:
        result = call.result
        if isinstance(result, dict) and "reply_markup" in result:
            data = result["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            if data.startswith("ok:"):
                return result, data
    raise AssertionError(f"no confirmation card in {_mine(calls)}")


async def _delivered(bot: BotHarness, last_marker: str) -> str:
    """Everything sent to the trader once a notice containing `last_marker` arrived (the
    dispatcher may merge queued notices for one chat into one message)."""
    await bot.state.wait_for_call(
        "sendMessage",
        lambda c: c.params.get("chat_id") == TRADER and last_marker in str(c.params["text"]),
    )
    return "\n".join(_mine(bot.state.calls_to("sendMessage")))


async def test_reminders_once_each_then_deactivation(bot: BotHarness, clock: FakeClock) -> None:
    licenses = bot.services.licenses
    await licenses.grant(ADMIN, TRADER, 5)
    assert (await licenses.run_expiry()).total == 0  # 5 days left: nothing due

    clock.advance(2 * DAY + 12 * HOUR)  # 2.5 days left
    assert (await licenses.run_expiry()).reminded_3d == 1
    assert (await licenses.run_expiry()).total == 0  # not twice
    clock.advance(DAY)  # 1.5 days left
    assert (await licenses.run_expiry()).total == 0
    clock.advance(DAY)  # 12 hours left
    report = await licenses.run_expiry()
    assert (report.reminded_3d, report.reminded_1d, report.deactivated) == (0, 1, 0)
    assert (await licenses.run_expiry()).total == 0
    assert (await licenses.state(TRADER)).status is LicenseStatus.ACTIVE

    clock.advance(12 * HOUR)  # the end
    assert (await licenses.run_expiry()).deactivated == 1
    assert (await licenses.run_expiry()).total == 0
    assert (await licenses.state(TRADER)).status is LicenseStatus.EXPIRED

    sent = await _delivered(bot, "⌛")
    assert sent.count("⏳") == 2 and sent.count("⌛") == 1
    assert "ends 2026-01-06 00:00 UTC (in 3 days)" in sent
    assert "ends 2026-01-06 00:00 UTC (in 12 hours)" in sent
    assert "⌛ Your pro licence has ended." in sent
    assert "You can no longer open new positions and auto-trading is paused." in sent
    assert "Closing positions, cancelling orders, managing TP/SL and viewing" in sent
    assert "licence: expired" in _mine(await bot.send(TRADER, "/license"))[0].lower()


async def test_a_short_licence_gets_only_the_one_day_reminder(
    bot: BotHarness, clock: FakeClock
) -> None:
    await bot.services.licenses.grant(ADMIN, TRADER, 1)
    clock.advance(HOUR)
    report = await bot.services.licenses.run_expiry()
    assert (report.reminded_3d, report.reminded_1d) == (0, 1)
    assert (await bot.services.licenses.run_expiry()).total == 0


async def test_a_renewal_after_a_reminder_is_reminded_again_before_its_new_end(
    bot: BotHarness, clock: FakeClock
) -> None:
    licenses = bot.services.licenses
    await licenses.grant(ADMIN, TRADER, 2)
    assert (await licenses.run_expiry()).reminded_3d == 1
    await licenses.grant(ADMIN, TRADER, 30)  # now 32 days: the flags start over
    assert (await licenses.run_expiry()).total == 0
    clock.advance(30 * DAY)
    assert (await licenses.run_expiry()).reminded_3d == 1


async def test_after_expiry_exits_still_work(bot: BotHarness, clock: FakeClock) -> None:
    await bot.services.accounts.connect(TRADER, "paper", "paper")
    for setting in ("/set tp_pct 500", "/set sl_pct 90"):  # no exit before the test's own
        await bot.send(TRADER, setting)
    await bot.services.licenses.grant(ADMIN, TRADER, 1)
    clock.advance(DAY - HOUR)
    message, data = _card(await bot.send(TRADER, "/long ETH 100 1"))
    assert any(t.startswith("✅ Opened") for t in _mine(await bot.press(TRADER, message, data)))

    clock.advance(2 * HOUR)
    assert (await bot.services.licenses.run_expiry()).deactivated == 1
    assert LICENCE_NEEDED in _mine(await bot.send(TRADER, "/long BTC 100 1"))
    positions = "\n".join(_mine(await bot.send(TRADER, "/positions")))
    assert "ETH" in positions and "LONG" in positions
    message, data = _card(await bot.send(TRADER, "/close ETH"))
    closed = _mine(await bot.press(TRADER, message, data))
    assert any(t.startswith("✅ Closed: LONG ETH/USDT:USDT") for t in closed)
