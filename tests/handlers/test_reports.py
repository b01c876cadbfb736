"""/daily, /weekly, /monthly and /performance through the real Application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.offline_api import ApiCall
from db.repositories.trades import TradeLog, TradeRepository
from tests.fakes.clock import FakeClock
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER = 42, 43
NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)  # Monday, the day after Europe's spring change


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, clock=FakeClock(NOW)) as harness:
        for user_id in (TRADER, OTHER):
            await harness.send(user_id, "/start")
        yield harness


def trade(user_id: int, exit_ts: datetime, pnl: str, symbol: str = "BTC") -> TradeLog:
    return TradeLog(
        user_id=user_id, exchange="paper", account_type="paper", symbol=f"{symbol}/USDT:USDT",
        side="long", qty=Decimal(1), entry_price=Decimal(100), exit_price=Decimal(101),
        pnl=Decimal(pnl), fee=Decimal("0.1"), entry_ts=exit_ts - timedelta(hours=1),
        exit_ts=exit_ts,
    )  # fmt: skip


def buttons(call: ApiCall) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {}
    return [
        (b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
    ]


def answers(calls: list[ApiCall]) -> list[str]:
    return [str(c.params.get("text", "")) for c in calls if c.method == "answerCallbackQuery"]


def table_rows(text: str) -> list[str]:
    """The table's rows under its column heads (the chat shows the text, tags parsed)."""
    lines = text.splitlines()
    heads = next(i for i, line in enumerate(lines) if line.split()[0] in HEADS)
    return lines[heads + 1 :]


HEADS = ("Day", "Week", "Month", "Symbol")


async def test_daily_shows_one_row_per_day_newest_first(bot: BotHarness) -> None:
    await TradeRepository(bot.store).record_many(
        [
            trade(TRADER, NOW - timedelta(hours=1), "10"),
            trade(TRADER, NOW - timedelta(hours=2), "0"),
            trade(TRADER, NOW - timedelta(days=2), "-4"),
            trade(OTHER, NOW - timedelta(hours=1), "999"),
        ]
    )
    calls = await bot.send(TRADER, "/daily 3")
    (text,) = texts(calls)
    assert text.startswith("Daily results, last 3 days (UTC)")
    assert "3 trades · +6.00 USDT · win rate 33% (1 won, 1 lost, 1 breakeven)" in text
    rows = table_rows(text)
    assert [r.split()[:3] for r in rows] == [
        ["2026-03-30", "Mon", "2"], ["2026-03-29", "Sun", "0"], ["2026-03-28", "Sat", "1"],
    ]  # fmt: skip
    assert rows[0].split()[3:] == ["+10.00", "50%", "0.20"]
    assert buttons(calls[-1]) == [("📊 Chart", "cb:3")]  # no pages: only the chart


async def test_weekly_and_monthly_defaults(bot: BotHarness) -> None:
    await TradeRepository(bot.store).record_many([trade(TRADER, NOW - timedelta(days=40), "5")])
    (text,) = texts(await bot.send(TRADER, "/weekly"))
    rows = table_rows(text)
    assert len(rows) == 8 and rows[0].startswith("2026-03-30") and rows[1].startswith("2026-03-23")
    (text,) = texts(await bot.send(TRADER, "/monthly"))
    rows = table_rows(text)
    assert [r.split()[:2] for r in rows[:3]] == [
        ["2026-03", "0"],
        ["2026-02", "1"],
        ["2026-01", "0"],
    ]


@pytest.mark.parametrize("args", ["0", "abc", "731", "-1", "2 3", "1e3"])
async def test_daily_refuses_a_bad_count_with_its_usage(bot: BotHarness, args: str) -> None:
    (text,) = texts(await bot.send(TRADER, f"/daily {args}"))
    assert text == "Usage: /daily [N], N from 1 to 730 (default 7): the last N days, newest first."


async def test_a_long_table_is_paged_with_buttons(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/daily 365")
    (text,) = texts(calls)
    assert len(text) <= 4096 and "page 1/13" in text and len(table_rows(text)) == 30
    assert buttons(calls[-1]) == [("Older ▶", "rt:d:365:1"), ("📊 Chart", "cb:365")]
    message = calls[-1].result
    calls = await bot.press(TRADER, message, "rt:d:365:12")
    (text,) = texts(calls)
    assert "page 13/13" in text and len(table_rows(text)) == 5
    assert table_rows(text)[-1].startswith("2025-03-31")
    assert buttons(calls[-1]) == [("◀ Newer", "rt:d:365:11"), ("📊 Chart", "cb:365")]
    assert answers(calls) == [""]


@pytest.mark.parametrize("data", ["rt:x:5:0", "rt:d:5", "rt:d:5:-1", "rt:d:a:0"])
async def test_an_unknown_table_button_is_answered_not_obeyed(bot: BotHarness, data: str) -> None:
    message = (await bot.send(TRADER, "/daily"))[-1].result
    calls = await bot.press(TRADER, message, data)
    assert answers(calls) == ["This button is out of date; send the command again."]
    assert texts(calls) == []


async def test_a_table_button_shows_the_pressers_own_figures(bot: BotHarness) -> None:
    await TradeRepository(bot.store).record_many([trade(OTHER, NOW - timedelta(hours=1), "77")])
    calls = await bot.send(OTHER, "/daily 40")
    message = calls[-1].result
    (text,) = texts(await bot.press(TRADER, message, "rt:d:40:0"))
    assert "+77.00" not in text and "0 trades" in text


async def test_performance_lists_symbols_best_first_escaped_and_paged(bot: BotHarness) -> None:
    trades = [trade(TRADER, NOW - timedelta(hours=1), str(i - 20), f"S{i:02d}") for i in range(40)]
    trades.append(trade(TRADER, NOW, "100", "<b>"))
    await TradeRepository(bot.store).record_many(trades)
    calls = await bot.send(TRADER, "/performance")
    (text,) = texts(calls)
    assert text.startswith("Performance by symbol, all time · 41 symbols · page 1/2")
    rows = table_rows(text)
    assert rows[0].split() == ["<b>", "1", "+100.00", "100%", "0.10"]
    assert rows[1].split()[0] == "S39" and len(rows) == 30
    assert buttons(calls[-1]) == [("Older ▶", "pf:1")]
    (text,) = texts(await bot.press(TRADER, calls[-1].result, "pf:1"))
    assert table_rows(text)[-1].split()[:3] == ["S00", "1", "-20.00"]
    (text,) = texts(await bot.send(TRADER, "/performance BTC"))
    assert text == "Usage: /performance (it takes no arguments)."
    (text,) = texts(await bot.send(OTHER, "/performance"))
    assert text == "No realised trades yet. Closed positions appear here."


async def test_the_traders_timezone_sets_every_boundary_and_time(bot: BotHarness) -> None:
    late_sunday_utc = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)  # Monday 00:30 in Berlin (CEST)
    saturday_night = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # Sunday 00:30 in Berlin (CET)
    await TradeRepository(bot.store).record_many(
        [trade(TRADER, late_sunday_utc, "3"), trade(TRADER, saturday_night, "-1")]
    )
    (text,) = texts(await bot.send(TRADER, "/daily 3"))
    assert [r.split()[:3] for r in table_rows(text)] == [
        ["2026-03-30", "Mon", "0"], ["2026-03-29", "Sun", "1"], ["2026-03-28", "Sat", "1"],
    ]  # fmt: skip
    (text,) = texts(await bot.send(TRADER, "/set tz europe/berlin"))
    assert text.startswith("✅ tz is now Europe/Berlin.")
    (text,) = texts(await bot.send(TRADER, "/daily 3"))
    assert "last 3 days (Europe/Berlin)" in text
    assert [r.split()[:3] for r in table_rows(text)] == [
        ["2026-03-30", "Mon", "1"], ["2026-03-29", "Sun", "1"], ["2026-03-28", "Sat", "0"],
    ]  # fmt: skip
    (text,) = texts(await bot.send(TRADER, "/pnl day"))
    assert "today (since Mon 2026-03-30 00:00 Europe/Berlin)" in text
    assert "PnL: +3.00 USDT after 0.10 USDT fees" in text  # only the Monday trade
    (text,) = texts(await bot.send(TRADER, "/trades"))
    assert "newest first (Europe/Berlin)" in text and "2026-03-30 00:30 BTC" in text
    (text,) = texts(await bot.send(OTHER, "/daily 1"))
    assert "(UTC)" in text  # one trader's timezone is nobody else's


@pytest.mark.parametrize(("value", "hint"), [
    ("Europe/Berln", "Did you mean Europe/Berlin"),
    ("america/new york", "Did you mean America/New_York"),
    ("Mars/Olympus", "is not a timezone. Use an IANA name"),
    ("<b>", "“&lt;b&gt;” is not a timezone"),
])  # fmt: skip
async def test_a_wrong_timezone_is_refused_with_the_nearest_names(
    bot: BotHarness, value: str, hint: str
) -> None:
    calls = await bot.send(TRADER, f"/set tz {value}")
    sent = [str(c.params.get("text", "")) for c in calls if c.method == "sendMessage"]
    assert len(sent) == 1 and hint in sent[0]
    assert str(await bot.services.strategy.timezone(TRADER)) == "UTC"


@pytest.mark.parametrize(("value", "reply"), [
    ("8:05", "✅ report_time is now 08:05.\nDaily at 08:05 UTC, weekly on Mondays."),
    ("23.59", "✅ report_time is now 23:59."),
    ("off", "✅ report_time is now off."),
    ("24:00", "report_time is a time of day in your timezone, 00:00 to 23:59, or off"),
    ("8am", "report_time is a time of day in your timezone"),
    ("<i>", "report_time is a time of day in your timezone"),
])  # fmt: skip
async def test_set_report_time(bot: BotHarness, value: str, reply: str) -> None:
    (text,) = texts(await bot.send(TRADER, f"/set report_time {value}"))
    assert text.startswith(reply)
    record = await bot.services.strategy.settings(TRADER)
    expected = {"8:05": "08:05", "23.59": "23:59"}.get(value)
    assert record.report_time == expected


async def test_a_due_report_reaches_the_trader_through_the_outbox(bot: BotHarness) -> None:
    await bot.send(TRADER, "/set tz Europe/Berlin")
    await bot.send(TRADER, "/set report_time 12:00")  # NOW is 12:00 in Berlin (CEST)
    await TradeRepository(bot.store).record_many([trade(TRADER, NOW - timedelta(days=1), "5")])
    assert await bot.services.scheduled_reports.send_due() == 2  # Monday: daily and weekly
    rows = await bot.store.fetchall(
        "t.q", "SELECT user_id, kind, dedup_key FROM notifications ORDER BY dedup_key"
    )
    assert [(r["user_id"], r["kind"], r["dedup_key"]) for r in rows] == [
        (TRADER, "report", "report:daily:42:2026-03-29"),
        (TRADER, "report", "report:weekly:42:2026-03-23"),
    ]
    # The dispatcher delivers them in the background; let it finish, so that its message is
    # not taken for the reply to /strategy below.
    sql = "SELECT count(*) FROM notifications WHERE status != 'sent'"
    async with asyncio.timeout(10):
        while await bot.store.fetchval("t.unsent", sql):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    (text,) = texts(await bot.send(TRADER, "/strategy"))
    assert "Daily report (weekly on Mondays) at: 12:00 (report_time)" in text
