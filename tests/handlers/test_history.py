"""/trades and /pnl through the real Application: paging, ownership, numbers, paper triggers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from core.exchange.models import OrderRequest, OrderType, Side
from db.repositories.trades import TradeLog, TradeRepository
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER, NOBODY = 42, 43, 44
BTC = "BTC/USDT:USDT"
BASE = datetime(2026, 1, 10, tzinfo=UTC)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        for user_id in (TRADER, OTHER, NOBODY):
            await harness.send(user_id, "/start")
        yield harness


def trade(
    user_id: int,
    exit_ts: datetime,
    pnl: str = "1",
    fee: str = "0.1",
    symbol: str = "BTC",
    **extra: Any,
) -> TradeLog:
    fields: dict[str, Any] = {
        "user_id": user_id, "exchange": "paper", "account_type": "paper",
        "symbol": f"{symbol}/USDT:USDT", "side": "long", "qty": Decimal("0.5"),
        "entry_price": Decimal("100"), "exit_price": Decimal("102"), "pnl": Decimal(pnl),
        "fee": Decimal(fee), "entry_ts": exit_ts - timedelta(hours=1), "exit_ts": exit_ts,
        "close_reason": "manual",
    }  # fmt: skip
    fields.update(extra)
    return TradeLog(**fields)


async def seed(bot: BotHarness, trades: list[TradeLog]) -> None:
    await TradeRepository(bot.store).record_many(trades)


def buttons(call: ApiCall) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {}
    return [
        (b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
    ]


def stamps(text: str) -> list[str]:
    """The exit times of the listed trades, in order (HH:MM of 2026-01-10)."""
    return [line.split()[1] for line in text.splitlines()[1:]]


def answers(calls: list[ApiCall]) -> list[str]:
    return [str(c.params.get("text", "")) for c in calls if c.method == "answerCallbackQuery"]


async def test_trades_pages_newest_first_with_buttons(bot: BotHarness) -> None:
    await seed(bot, [trade(TRADER, BASE + timedelta(minutes=i)) for i in range(25)])
    calls = await bot.send(TRADER, "/trades")
    (text,) = texts(calls)
    assert text.startswith("Trades 1–10, newest first (UTC)")
    assert stamps(text) == [f"00:{m:02d}" for m in range(24, 14, -1)]
    assert buttons(calls[-1]) == [("Older ▶", "tr:10")]

    message = calls[-1].result
    calls = await bot.press(TRADER, message, "tr:10")
    (text,) = texts(calls)
    assert text.startswith("Trades 11–20") and stamps(text)[0] == "00:14"
    assert buttons(calls[-1]) == [("◀ Newer", "tr:0"), ("Older ▶", "tr:20")]
    assert answers(calls) == [""]

    calls = await bot.press(TRADER, message, "tr:20")
    (text,) = texts(calls)
    assert stamps(text) == [f"00:{m:02d}" for m in range(4, -1, -1)]
    assert buttons(calls[-1]) == [("◀ Newer", "tr:10")]

    (text,) = texts(await bot.press(TRADER, message, "tr:10"))
    assert text.startswith("Trades 11–20")


async def test_an_estimated_close_is_marked_until_its_fills_replace_it(bot: BotHarness) -> None:
    exact = trade(TRADER, BASE, pnl="1.5", order_id="o-exact")
    guess = trade(TRADER, BASE + timedelta(minutes=1), pnl="-0.7", estimated=True)
    await seed(bot, [exact, guess])
    (text,) = texts(await bot.send(TRADER, "/trades"))
    newest, oldest = text.splitlines()[1:3]
    assert "→ ~102" in newest and "~-0.70" in newest and "fee ~0.10" in newest
    assert "~" not in oldest and "+1.50" in oldest
    assert text.splitlines()[-1].startswith("~ estimated: the exchange's fills")
    (summary,) = texts(await bot.send(TRADER, "/pnl"))
    assert "1 close estimated (~ in /trades) until the exchange's fills are read" in summary
    await seed(bot, [trade(OTHER, BASE)])
    (plain,) = texts(await bot.send(OTHER, "/trades"))
    assert "~" not in plain and "estimated" not in plain
    (summary,) = texts(await bot.send(OTHER, "/pnl"))
    assert "estimated" not in summary


async def test_a_page_size_travels_in_the_buttons(bot: BotHarness) -> None:
    await seed(bot, [trade(TRADER, BASE + timedelta(minutes=i)) for i in range(25)])
    calls = await bot.send(TRADER, "/trades 5")
    assert stamps(texts(calls)[0]) == ["00:24", "00:23", "00:22", "00:21", "00:20"]
    assert buttons(calls[-1]) == [("Older ▶", "tr:5:5")]
    calls = await bot.press(TRADER, calls[-1].result, "tr:5:5")
    assert stamps(texts(calls)[0])[0] == "00:19"
    assert buttons(calls[-1]) == [("◀ Newer", "tr:0:5"), ("Older ▶", "tr:10:5")]


async def test_a_pressed_button_shows_only_the_pressers_trades(bot: BotHarness) -> None:
    await seed(bot, [trade(TRADER, BASE + timedelta(minutes=i)) for i in range(25)])
    await seed(bot, [trade(OTHER, BASE + timedelta(hours=5), symbol="DOGE")])
    message = (await bot.send(TRADER, "/trades"))[-1].result
    calls = await bot.press(NOBODY, message, "tr:0")
    assert answers(calls) == ["No trades on that page; send /trades again."]
    assert texts(calls) == []  # nothing edited
    (text,) = texts(await bot.press(OTHER, message, "tr:0"))
    assert "DOGE" in text and "BTC" not in text
    assert len(text.splitlines()) == 2


async def test_stale_or_forged_buttons_are_refused_politely(bot: BotHarness) -> None:
    await seed(bot, [trade(TRADER, BASE)])
    message = (await bot.send(TRADER, "/trades"))[-1].result
    for data in ("tr:abc", "tr:-5", "tr:1:2:3", "tr:", "tr:0:99"):
        calls = await bot.press(TRADER, message, data)
        assert texts(calls) == [], data
        (answer,) = answers(calls)
        assert "send /trades again" in answer or "1 to 50" in answer, (data, answer)


async def test_trade_lines_say_everything(bot: BotHarness) -> None:
    closed = datetime(2026, 2, 3, 14, 5, tzinfo=UTC)
    await seed(
        bot,
        [
            trade(TRADER, closed, pnl="-12.3456", fee="0.66", symbol="ETH", side="short",
                  qty=Decimal("1.25"), entry_price=Decimal("2000.5"),
                  exit_price=Decimal("2010.25"), close_reason="stop_loss"),
        ],
    )  # fmt: skip
    (text,) = texts(await bot.send(TRADER, "/trades"))
    line = text.splitlines()[1]
    assert line == (
        "2026-02-03 14:05 ETH short 1.25 @ 2,000.50 → 2,010.25 -12.35 fee 0.66 · stop loss"
    )


async def test_bad_trade_counts_get_the_usage(bot: BotHarness) -> None:
    (empty,) = texts(await bot.send(TRADER, "/trades"))
    assert empty.startswith("No realised trades yet")
    for bad in ("/trades abc", "/trades -3", "/trades 1e3", "/trades 5 6"):
        (text,) = texts(await bot.send(TRADER, bad))
        assert text == "Usage: /trades [N], N from 1 to 50 (default 10).", bad
    for out in ("/trades 0", "/trades 51"):
        (text,) = texts(await bot.send(TRADER, out))
        assert "1 to 50" in text


async def test_every_trade_count_out_of_range_gets_the_same_answer(bot: BotHarness) -> None:
    answers = {
        texts(await bot.send(TRADER, f"/trades {n}"))[0] for n in ("-1", "0", "51", "x", "+0")
    }
    assert answers == {"Usage: /trades [N], N from 1 to 50 (default 10)."}


async def test_a_full_page_of_long_lines_stays_within_one_message(bot: BotHarness) -> None:
    long = dict(symbol="1000SHIBAINUCOIN", qty=Decimal("123456789.123"),
                entry_price=Decimal("0.000012345678"), exit_price=Decimal("0.000012987654"),
                pnl="-123456.78", fee="1234.5678", close_reason="liquidation")  # fmt: skip
    await seed(bot, [trade(TRADER, BASE + timedelta(minutes=i), **long) for i in range(60)])
    calls = await bot.send(TRADER, "/trades 50")
    (text,) = texts(calls)
    shown = len(text.splitlines()) - 1
    assert len(text) <= 4096 and 10 < shown < 50
    assert buttons(calls[-1]) == [("Older ▶", f"tr:{shown}:50")]


async def test_pnl_numbers_for_each_period(bot: BotHarness) -> None:
    today = bot.services.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    long_ago = today.replace(day=1) - timedelta(days=40)
    await seed(
        bot,
        [
            trade(TRADER, today, pnl="30", fee="1"),
            trade(TRADER, today, pnl="-10", fee="0.5", symbol="ETH"),
            trade(TRADER, today, pnl="5", fee="0.25"),
            trade(TRADER, long_ago, pnl="100", fee="3", symbol="ETH"),
            trade(TRADER, long_ago, pnl="-40", fee="1.5", symbol="XRP"),
            trade(OTHER, today, pnl="999", fee="9"),
        ],
    )
    for period in ("day", "week", "month"):
        (text,) = texts(await bot.send(TRADER, f"/pnl {period}"))
        assert "PnL: +25.00 USDT after 1.75 USDT fees" in text, period
        assert "Trades: 3 · win rate 67% (2 won, 1 lost)" in text
        assert "Profit factor: 3.50" in text
        assert "Average win: +17.50 · average loss: -10.00" in text
        assert f"Best: +30.00 BTC long on {today:%Y-%m-%d}" in text
        assert "Worst: -10.00 ETH" in text
        assert "BTC: +35.00 · 2 trades · 100% won · fees 1.25" in text
        assert "ETH: -10.00 · 1 trade · 0% won · fees 0.50" in text
    (text,) = texts(await bot.send(TRADER, "/pnl"))
    assert text.startswith("Realised PnL all time")
    assert "PnL: +85.00 USDT after 6.25 USDT fees" in text
    assert "Trades: 5 · win rate 60% (3 won, 2 lost)" in text
    assert "Profit factor: 2.70" in text  # 135 / 50
    assert "Average win: +45.00 · average loss: -25.00" in text
    assert "Best: +100.00 ETH" in text and "Worst: -40.00 XRP" in text
    by_symbol = text.split("By symbol")[1].splitlines()[1:]
    assert [line.split(":")[0] for line in by_symbol] == ["ETH", "XRP", "BTC"]


async def test_pnl_without_trades_and_with_a_bad_period(bot: BotHarness) -> None:
    (text,) = texts(await bot.send(NOBODY, "/pnl week"))
    assert text.startswith("No realised trades this week (since Mon")
    (text,) = texts(await bot.send(NOBODY, "/pnl"))
    assert text.startswith("No realised trades yet")
    for bad in ("/pnl year", "/pnl day week", "/pnl <b>"):
        (text,) = texts(await bot.send(NOBODY, bad))
        assert text.startswith("Usage: /pnl [day|week|month|all]"), bad


async def test_a_paper_take_profit_lands_in_the_trade_log(bot: BotHarness) -> None:
    await bot.services.accounts.connect(TRADER, "paper", "paper")
    last = (await bot.services.market.ticker("paper", BTC)).last
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        await client.create_order(
            OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "tp-test-1",
                         take_profit=(last * Decimal("1.05")).quantize(Decimal("0.1")))
        )  # fmt: skip
        (position,) = await client.fetch_positions()
    exit_price = (position.entry_price * Decimal("1.1")).quantize(Decimal("0.1"))
    report = await bot.services.exchanges.paper_engine.on_prices({BTC: exit_price})
    assert report.tp_hits == 1
    assert await bot.services.history.record_paper_events(report) == 1
    (record,) = await bot.services.history.recent(TRADER)
    closing = (Decimal("0.01") * exit_price * Decimal("0.00055")).quantize(Decimal("1e-8"))
    opening = (Decimal("0.01") * position.entry_price * Decimal("0.00055")).quantize(
        Decimal("1e-8")
    )
    fee = opening + closing  # both legs
    gross = Decimal("0.01") * (exit_price - position.entry_price)
    assert record.trade.close_reason == "take_profit"
    assert (record.trade.qty, record.trade.entry_price) == (Decimal("0.01"), position.entry_price)
    assert (record.trade.exit_price, record.trade.fee) == (exit_price, fee)
    assert abs(record.trade.pnl - (gross - fee)) < Decimal("1e-8")
    (text,) = texts(await bot.send(TRADER, "/trades"))
    assert "BTC long 0.01" in text and "take profit" in text


async def test_pnl_counts_breakeven_trades_apart(bot: BotHarness) -> None:
    today = bot.services.clock.now()
    await seed(
        bot,
        [
            trade(TRADER, today, pnl="4"),
            trade(TRADER, today, pnl="0"),
            trade(TRADER, today, pnl="0", symbol="ETH"),
            trade(TRADER, today, pnl="-2"),
        ],
    )
    (text,) = texts(await bot.send(TRADER, "/pnl"))
    assert "Trades: 4 · win rate 25% (1 won, 1 lost, 2 breakeven)" in text
