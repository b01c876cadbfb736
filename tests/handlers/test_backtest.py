"""/backtest through the real Application on the synthetic market: progress edits of one
message, the figures and the equity curve, Cancel, one run per trader, the admins' cap and
refusals of bad input."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import console
from bot.console import ConsoleChat
from bot.offline_api import ApiCall
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER = 42, 43


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, backtest_workers=2) as harness:
        await harness.services.registry.sync()
        for user_id in (TRADER, OTHER):
            await harness.send(user_id, "/start")
        yield harness


def photos(calls: list[ApiCall]) -> list[bytes]:
    found = []
    for call in calls:
        if call.method == "sendPhoto" and isinstance(call.result, dict):
            (size,) = call.result["photo"]
            found.append(Path(size["file_id"]).read_bytes())
    return found


async def test_a_backtest_edits_one_message_with_progress_then_sends_the_curve(
    bot: BotHarness,
) -> None:
    calls = await bot.send(TRADER, "/backtest 7d BTC eth")
    (first,) = [c for c in calls if c.method == "sendMessage"]
    assert isinstance(first.result, dict)
    status = first.result["message_id"]
    assert "Backtest, last 7d · 2 symbols" in first.result["text"]
    edits = [c for c in calls if c.method == "editMessageText"]
    assert edits and all(c.params["message_id"] == status for c in edits)
    shown = texts(edits)
    assert any("% · 2/2 symbols (judging candles)" in t for t in shown)
    final = shown[-1]
    assert "Signals:" in final and "trades:" in final and "win rate" in final
    assert "Strategy: 50 USDT × 5, TP 3 % / SL 1.5 %, max 5 positions, min score 0.7" in final
    if "No trade" not in final:
        assert "PnL:" in final and "Max drawdown:" in final and "profit factor" in final
    assert "reply_markup" not in edits[-1].params or not edits[-1].params["reply_markup"]
    (png,) = photos(calls)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # The candles are stored now: a second run over the same range fetches nothing.
    before = bot.services.candles.requests
    again = await bot.send(TRADER, "/backtest 7d BTC ETH")
    assert bot.services.candles.requests == before
    assert texts(again)[-1].split("\n")[1:] == final.split("\n")[1:]


async def test_cancel_stops_the_run_and_only_its_owner_can(bot: BotHarness) -> None:
    running = asyncio.create_task(bot.send(TRADER, "/backtest 30d"))
    message, data = await _status_with_cancel(bot)
    other = await bot.press(OTHER, message, data)
    assert _answer(other) == "This backtest is over or not yours."
    busy = await bot.send(TRADER, "/backtest 7d BTC")
    assert "Your backtest is still running" in texts(busy)[-1]
    pressed = await bot.press(TRADER, message, data)
    assert _answer(pressed) == "Cancelling…"
    calls = await asyncio.wait_for(running, 120)
    assert texts(calls)[-1].endswith("Cancelled: nothing was kept.")
    assert photos(calls) == []
    assert bot.services.backtests.running() == 0


async def test_the_console_reads_on_while_a_backtest_runs_so_cancel_reaches_it(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "ANSWER_WAIT_S", 0.0)  # no line waits for its answer
    out = io.StringIO()
    chat = ConsoleChat(bot.app, bot.state, out, first_update_id=1_000_000)
    await chat.handle_line("/start")
    await chat.handle_line("/backtest 30d")
    deadline = asyncio.get_running_loop().time() + 60
    while "✖ Cancel" not in out.getvalue():  # the status with its button is shown
        assert asyncio.get_running_loop().time() < deadline, out.getvalue()
        await asyncio.sleep(0.01)
    await chat.handle_line(":1")  # read while the run goes on: before, it waited for the end
    await chat.finish()
    shown = out.getvalue()
    assert "ⓘ Cancelling…" in shown and shown.rstrip().endswith("Cancelled: nothing was kept.")
    assert bot.services.backtests.running() == 0


async def test_admins_cap_how_many_run_at_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path, backtest_workers=1) as bot:
        await bot.services.registry.sync()
        await bot.send(OTHER, "/start")
        held = bot.services.backtests.begin(TRADER)  # another trader's run in progress
        refused = texts(await bot.send(OTHER, "/backtest 7d BTC"))[-1]
        assert "1 backtests are running, the most this bot runs at once" in refused
        bot.services.backtests.release(held)
        assert "Signals:" in texts(await bot.send(OTHER, "/backtest 7d BTC"))[-1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/backtest 45d", "The span is 7d, 30d or 90d"),
        ("/backtest 7d NOSUCHCOIN", "NOSUCHCOIN is not traded on the scanner"),
        ("/backtest 7d " + " ".join(["BTC"] * 21), "at most 20 symbols"),
        ("/backtest 7d <b>", "&lt;b&gt; is not traded"),
    ],
)
async def test_bad_input_gets_the_usage(bot: BotHarness, text: str, expected: str) -> None:
    calls = await bot.send(TRADER, text)
    (reply,) = [c for c in calls if c.method == "sendMessage"]
    assert isinstance(reply.result, dict)
    assert expected in reply.params["text"] and "Usage: /backtest" in reply.params["text"]
    assert bot.services.backtests.running() == 0
    assert photos(calls) == []


async def _status_with_cancel(bot: BotHarness) -> tuple[dict[str, Any], str]:
    """The status message once it shows its Cancel button, and the button's data."""
    for _ in range(400):
        for call in reversed(bot.state.calls):
            result = call.result
            if call.method == "sendMessage" and isinstance(result, dict):
                rows = (result.get("reply_markup") or {}).get("inline_keyboard") or []
                if rows and str(rows[0][0]["callback_data"]).startswith("bt:"):
                    return result, str(rows[0][0]["callback_data"])
        await asyncio.sleep(0.05)
    raise AssertionError("no status message with a Cancel button")


def _answer(calls: list[ApiCall]) -> str:
    (answer,) = [c for c in calls if c.method == "answerCallbackQuery"]
    return str(answer.params.get("text"))


async def test_the_reply_names_the_trailing_stop_and_the_ladder_it_applied(
    bot: BotHarness,
) -> None:
    for setting in ("trail_pct 1.5", "trail_activation_pct 2", "tp_ladder 2%:50,4%:30,8%:20"):
        await bot.send(TRADER, f"/set {setting}")
    final = texts(await bot.send(TRADER, "/backtest 7d BTC ETH"))[-1]
    assert "Managed: trail 1.5 % from +2 % · ladder 2%:50,4%:30,8%:20 · break-even on" in final
    assert "trailing stop moves at bar closes" in final
    # and the worker's strategy carries them (the ladder as fractions of 100)
    settings = await bot.services.strategy.settings(TRADER)
    applied = bot.services.backtests.strategy(settings)
    assert (applied.trail_pct, applied.trail_activation_pct) == (1.5, 2.0)
    assert applied.ladder == ((2.0, 50.0), (4.0, 30.0), (8.0, 20.0))
    assert applied.ladder_breakeven and applied.managed
