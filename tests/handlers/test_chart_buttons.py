"""The Chart button of /pnl and /daily through the real Application: PnL per day as bars in a
valid PNG, the presser's own figures, and one drawing until the trader's next trade."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.offline_api import ApiCall
from db.repositories.trades import TradeRepository
from tests.fakes.clock import FakeClock
from tests.handlers.test_charts import NOW, OTHER, TRADER, photo, png_size, trade
from tests.harness import BotHarness, running_bot, texts


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, clock=FakeClock(NOW)) as harness:
        for user_id in (TRADER, OTHER):
            await harness.send(user_id, "/start")
        await TradeRepository(harness.store).record_many(
            [trade(NOW - timedelta(days=d), p) for d, p in ((20, "10"), (10, "-15"), (2, "20"))]
        )
        yield harness


def chart_data(call: ApiCall) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [
        b["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for b in row
        if b["text"].endswith("Chart")
    ]


def answers(calls: list[ApiCall]) -> list[str]:
    return [str(c.params.get("text", "")) for c in calls if c.method == "answerCallbackQuery"]


async def test_pnl_month_chart_is_one_bar_per_day_of_the_month(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/pnl month")
    assert chart_data(calls[-1]) == ["cb:month"]
    calls = await bot.press(TRADER, calls[-1].result, "cb:month")
    data, caption = photo(calls)
    assert png_size(data) == (800, 400) and 10_000 < len(data) < 500_000
    assert caption.startswith("PnL per day, 30 days from 2026-03-01 (UTC)")
    assert "Realised PnL: +15.00 USDT · 3 trades · win rate 67%" in caption
    assert "Best day: +20.00 · worst day: -15.00" in caption
    assert answers(calls) == [""]


async def test_daily_chart_covers_the_days_the_table_shows(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/daily 5")
    assert chart_data(calls[-1]) == ["cb:5"]
    data, caption = photo(await bot.press(TRADER, calls[-1].result, "cb:5"))
    assert png_size(data) == (800, 400)
    assert caption.startswith("PnL per day, 5 days from 2026-03-26 (UTC)")
    assert "+20.00 USDT · 1 trade · win rate 100%" in caption


async def test_the_chart_is_drawn_in_the_traders_timezone(bot: BotHarness) -> None:
    await bot.send(TRADER, "/set tz Pacific/Auckland")  # 10:00 UTC is 23:00 there, same day
    calls = await bot.send(TRADER, "/daily 1")
    _, caption = photo(await bot.press(TRADER, calls[-1].result, "cb:1"))
    assert caption.startswith("PnL per day, 1 day from 2026-03-30 (Pacific/Auckland)")


async def test_the_presser_gets_their_own_bars(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/pnl all")
    assert chart_data(calls[-1]) == ["cb:all"]
    _, caption = photo(await bot.press(OTHER, calls[-1].result, "cb:all"))
    assert "No realised trades in these days." in caption and "+15.00" not in caption


async def test_pnl_without_trades_has_no_chart_button(bot: BotHarness) -> None:
    calls = await bot.send(OTHER, "/pnl")
    assert chart_data(calls[-1]) == []


@pytest.mark.parametrize("data", ["cb:0", "cb:731", "cb:year", "cb:5:5", "cb:-1", "cb:"])
async def test_a_forged_chart_button_is_answered_not_obeyed(bot: BotHarness, data: str) -> None:
    message = (await bot.send(TRADER, "/daily"))[-1].result
    calls = await bot.press(TRADER, message, data)
    assert answers(calls) == ["This button is out of date; send the command again."]
    assert [c.method for c in calls if c.method.startswith("send")] == []


async def test_a_chart_is_drawn_once_until_the_next_trade(bot: BotHarness) -> None:
    charts = bot.services.charts
    message = (await bot.send(TRADER, "/daily 7"))[-1].result
    before = charts.renders
    first, _ = photo(await bot.press(TRADER, message, "cb:7"))
    again, _ = photo(await bot.press(TRADER, message, "cb:7"))
    assert charts.renders == before + 1 and again == first
    await TradeRepository(bot.store).record(trade(NOW - timedelta(minutes=5), "-3"))
    data, caption = photo(await bot.press(TRADER, message, "cb:7"))
    assert charts.renders == before + 2 and data != first
    assert "+17.00 USDT · 2 trades" in caption
    # Another trader's press, or another span, is a picture of its own.
    photo(await bot.press(OTHER, message, "cb:7"))
    photo(await bot.press(TRADER, message, "cb:6"))
    assert charts.renders == before + 4


async def test_equity_is_cached_the_same_way(bot: BotHarness) -> None:
    charts = bot.services.charts
    before = charts.renders
    for _ in range(2):
        png_size(photo(await bot.send(TRADER, "/equity 90d"))[0])
    assert charts.renders == before + 1
    assert texts(await bot.send(TRADER, "/equity 7d"))[0].startswith("Usage: /equity")
