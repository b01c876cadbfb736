"""Balance snapshots through the real Application: recorded from /balance on the local Bybit
server and on paper and from pushed balances, then drawn over the /equity curve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.models import Balance
from db.repositories.equity import EquityRepository, EquitySnapshot, hour_of
from db.repositories.trades import TradeRepository
from tests.exchange_server import ExchangeServer
from tests.fakes.clock import FakeClock
from tests.handlers.test_charts import photo as sent_photo
from tests.handlers.test_charts import png_size, trade
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
KEY, SECRET = "equity-key-a1b2", "equity-secret-9f8e"
NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=5, seed=4) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        yield running


@pytest.fixture
async def bot(tmp_path: Path, server: ExchangeServer) -> AsyncIterator[BotHarness]:
    urls = {"bybit": server.base_url}
    async with running_bot(tmp_path, exchange_urls=urls, clock=FakeClock(NOW)) as harness:
        await harness.send(TRADER, "/start")
        yield harness


async def snapshots(bot: BotHarness) -> list[tuple[str, str, str, int]]:
    rows = await bot.store.fetchall(
        "t.rows",
        "SELECT exchange, account_type, equity, hour FROM equity_snapshots WHERE user_id = ? "
        "ORDER BY exchange",
        (TRADER,),
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def connect_bybit(bot: BotHarness) -> None:
    prompt = (await bot.send(TRADER, "/connect"))[-1].result
    assert isinstance(prompt, dict)
    prompt = (await bot.press(TRADER, prompt, "connect:ex:bybit"))[-1].result
    assert isinstance(prompt, dict)
    await bot.press(TRADER, prompt, "connect:type:demo")
    await bot.send(TRADER, KEY)
    (reply,) = texts(await bot.send(TRADER, SECRET))
    assert reply.startswith("Connected Bybit (demo)")


async def test_balance_on_bybit_and_paper_is_recorded_by_one_flush(
    bot: BotHarness, server: ExchangeServer
) -> None:
    await connect_bybit(bot)
    assert texts(await bot.send(TRADER, "/balance"))  # the real ccxt asks the local server
    prompt = (await bot.send(TRADER, "/connect"))[-1].result
    assert isinstance(prompt, dict)
    await bot.press(TRADER, prompt, "connect:ex:paper")  # paper becomes active
    assert texts(await bot.send(TRADER, "/balance"))
    equity = bot.services.equity
    assert equity.pending >= 2
    report = await equity.flush()
    assert report is not None and report.written >= 2
    hour = hour_of(NOW)
    assert await snapshots(bot) == [
        ("bybit", "demo", "10000", hour),
        ("paper", "paper", "10000", hour),
    ]
    # A pushed balance (a stream update) is noted like a loaded one.
    pushed = Balance(Decimal("10250.5"), Decimal("10000"), Decimal(0), Decimal("250.5"))
    bot.services.exchanges.account(TRADER, "bybit", "demo").push_balance(pushed)
    await equity.flush()
    assert ("bybit", "demo", "10250.5", hour) in await snapshots(bot)


async def test_equity_draws_the_recorded_balance_over_the_curve(bot: BotHarness) -> None:
    await TradeRepository(bot.store).record_many(
        [trade(NOW - timedelta(days=d), p) for d, p in ((20, "10"), (2, "20"))]
    )
    repo = EquityRepository(bot.store)
    await repo.upsert_many(
        [
            EquitySnapshot(TRADER, "paper", "paper", Decimal("9900"), NOW - timedelta(days=9)),
            EquitySnapshot(TRADER, "paper", "paper", Decimal("9950"), NOW - timedelta(days=3)),
            EquitySnapshot(TRADER, "bybit", "demo", Decimal("5000"), NOW - timedelta(days=3)),
            EquitySnapshot(TRADER, "paper", "paper", Decimal("10100"), NOW - timedelta(hours=5)),
        ]
    )
    data, caption = sent_photo(await bot.send(TRADER, "/equity"))
    assert png_size(data) == (800, 400) and 10_000 < len(data) < 500_000
    assert "Realised PnL: +30.00 USDT · 2 trades" in caption
    assert (
        "Balance (blue): 15,100.00 USDT on 2026-03-30, +5,200.00 since 2026-03-21 · "
        "3 recorded days" in caption  # Bybit's 5,000 of 03-27 still counts on 03-30
    )
    charts = bot.services.charts
    drawn = charts.renders
    sent_photo(await bot.send(TRADER, "/equity"))
    assert charts.renders == drawn  # unchanged: the cached picture
    later = NOW + timedelta(hours=1)
    await repo.upsert_many([EquitySnapshot(TRADER, "paper", "paper", Decimal("10120"), later)])
    _, caption = sent_photo(await bot.send(TRADER, "/equity"))
    assert charts.renders == drawn + 1  # a new balance hour draws afresh
    assert "Balance (blue): 15,120.00 USDT on 2026-03-30" in caption


async def test_equity_without_recorded_balances_says_so(bot: BotHarness) -> None:
    _, caption = sent_photo(await bot.send(TRADER, "/equity 90d"))
    assert "Balance: none recorded in this span yet (/balance records one)." in caption


async def test_balance_points_follow_the_traders_timezone(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/set tz Asia/Tokyo"))
    assert "Asia/Tokyo" in reply
    at = datetime(2026, 3, 29, 16, tzinfo=UTC)  # Monday 01:00 in Tokyo, Sunday in UTC
    await EquityRepository(bot.store).upsert_many(
        [EquitySnapshot(TRADER, "paper", "paper", Decimal("321"), at)]
    )
    _, caption = sent_photo(await bot.send(TRADER, "/equity"))
    assert "Balance (blue): 321.00 USDT on 2026-03-30 · 1 recorded day" in caption


async def test_a_balance_just_read_is_on_the_next_equity_chart(bot: BotHarness) -> None:
    prompt = (await bot.send(TRADER, "/connect"))[-1].result
    assert isinstance(prompt, dict)
    await bot.press(TRADER, prompt, "connect:ex:paper")
    await bot.send(TRADER, "/balance")
    assert bot.services.equity.waiting(TRADER)  # noted, the job has not run
    _, caption = sent_photo(await bot.send(TRADER, "/equity"))
    assert "Balance (blue): 10,000.00 USDT on 2026-03-30 · 1 recorded day" in caption
    assert not bot.services.equity.waiting(TRADER)
