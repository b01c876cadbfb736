"""/chart through the real Application: the scanner market's candles with the bot's signals
and the trader's own entries and exits marked, as a valid PNG; wrong input gets the usage."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from db.repositories.signals import SignalDraft, SignalRepository
from db.repositories.trades import TradeRepository
from services.charts import CHART_USAGE
from tests.fakes.clock import FakeClock
from tests.handlers.test_charts import NOW, OTHER, TRADER, photo, png_size, trade
from tests.harness import BotHarness, running_bot, texts


def signal(base: str, side: str) -> SignalDraft:
    return SignalDraft(
        source="paper", symbol=f"{base}/USDT:USDT", side=side, score=0.8, price=Decimal(60_000),
        leverage=5, tp_pct=Decimal(3), sl_pct=Decimal("1.5"), reasons=("breakout",),
    )  # fmt: skip


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, clock=FakeClock(NOW)) as harness:
        for user_id in (TRADER, OTHER):
            await harness.send(user_id, "/start")
        signals = SignalRepository(harness.store)
        await signals.insert(signal("BTC", "long"), NOW - timedelta(hours=30))
        await signals.insert(signal("BTC", "short"), NOW - timedelta(hours=5))
        await signals.insert(signal("ETH", "long"), NOW - timedelta(hours=5))  # another symbol
        await signals.insert(signal("BTC", "long"), NOW - timedelta(days=9))  # before the chart
        mine = trade(NOW - timedelta(hours=2), "12")  # entered at NOW - 3 h
        await TradeRepository(harness.store).record_many(
            [mine, dataclasses.replace(mine, user_id=OTHER)]
        )
        yield harness


async def test_chart_marks_signals_and_the_traders_own_trades(bot: BotHarness) -> None:
    data, caption = photo(await bot.send(TRADER, "/chart btc"))
    assert png_size(data) == (1000, 500) and 10_000 < len(data) < 500_000
    assert caption.startswith("BTC/USDT:USDT · 1h · 100 candles on Paper since 2026-03-26 07:00")
    assert "Signals: 2 (▲ long, ▼ short) · your entries: 1 (●), exits: 1 (✖)" in caption
    _, caption = photo(await bot.send(OTHER, "/chart BTC 5m"))  # 8 h 20 min of candles
    assert "5m · 100 candles" in caption and "Signals: 1 " in caption
    assert "your entries: 1 (●), exits: 1 (✖)" in caption  # their own trade, not the trader's


async def test_chart_daily_candles_in_the_traders_timezone(bot: BotHarness) -> None:
    await bot.send(TRADER, "/set tz Europe/Berlin")
    data, caption = photo(await bot.send(TRADER, "/chart ETH 1d"))
    assert png_size(data) == (1000, 500)
    assert "ETH/USDT:USDT · 1d · 100 candles on Paper since" in caption
    assert "(Europe/Berlin)" in caption and "your entries: 0 (●), exits: 0 (✖)" in caption


async def test_the_same_chart_is_drawn_once(bot: BotHarness) -> None:
    charts = bot.services.charts
    before = charts.renders
    first, _ = photo(await bot.send(TRADER, "/chart BTC 4h"))
    again, _ = photo(await bot.send(TRADER, "/chart BTC/USDT:USDT 4h"))
    assert again == first and charts.renders == before + 1
    await TradeRepository(bot.store).record(trade(NOW - timedelta(minutes=1), "-2"))
    _, caption = photo(await bot.send(TRADER, "/chart BTC 4h"))
    assert charts.renders == before + 2 and "exits: 2" in caption


@pytest.mark.parametrize("args", ["", " BTC 2h", " BTC 1h 4h", " BTC 1H1"])
async def test_chart_refuses_bad_input_with_its_usage(bot: BotHarness, args: str) -> None:
    calls = await bot.send(TRADER, f"/chart{args}")
    assert [c.method for c in calls if c.method.startswith("send")] == ["sendMessage"]
    assert texts(calls) == [CHART_USAGE]


async def test_an_unknown_symbol_gets_the_nearest_ones_and_the_usage(bot: BotHarness) -> None:
    (text,) = texts(await bot.send(TRADER, "/chart BTCC"))
    assert text.startswith("BTCC is not listed on Paper. Did you mean BTC")
    assert text.endswith(CHART_USAGE)
