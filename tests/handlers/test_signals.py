"""/signals, /subscribe and /unsubscribe through the real Application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from db.repositories.signals import SignalDraft
from tests.harness import BotHarness, running_bot, texts

TRADER = 42


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(TRADER, "/start")
        yield harness


def buttons(call: ApiCall) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {}
    return [
        (b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
    ]


def sent(call: ApiCall) -> dict[str, Any]:
    assert isinstance(call.result, dict)
    return call.result


def draft(base: str, side: str = "long") -> SignalDraft:
    return SignalDraft(
        source="paper",
        symbol=f"{base}/USDT:USDT",
        side=side,
        score=0.82,
        price=Decimal("1.2345"),
        leverage=6,
        tp_pct=Decimal("3.2"),
        sl_pct=Decimal("1.6"),
        reasons=("volume ×4.2 vs 1h", "breakout above 4h high <now>"),
    )


async def test_subscribe_with_and_without_a_score_and_unsubscribe(bot: BotHarness) -> None:
    (text,) = texts(await bot.send(TRADER, "/subscribe"))
    assert text.startswith("Subscribed: you will get signals scoring 0.60 or more")
    (text,) = texts(await bot.send(TRADER, "/subscribe 0.8"))
    assert "scoring 0.80 or more" in text
    assert await bot.services.signals.subscription(TRADER) == (True, 0.8)

    (text,) = texts(await bot.send(TRADER, "/unsubscribe"))
    assert text.startswith("Unsubscribed")
    (text,) = texts(await bot.send(TRADER, "/unsubscribe"))
    assert text.startswith("You are not subscribed")
    assert await bot.services.signals.subscription(TRADER) == (False, 0.8)


@pytest.mark.parametrize("args", ["1.5", "-1", "often", "0.5 0.6"])
async def test_subscribe_refuses_a_bad_score_and_changes_nothing(
    bot: BotHarness, args: str
) -> None:
    (text,) = texts(await bot.send(TRADER, f"/subscribe {args}"))
    assert text == "Usage: /subscribe [MIN_SCORE], a score from 0 to 1 such as 0.7 (default 0.6)."
    assert await bot.services.signals.subscription(TRADER) == (False, 0.6)


async def test_signals_lists_the_newest_first_and_pages_with_buttons(bot: BotHarness) -> None:
    (text,) = texts(await bot.send(TRADER, "/signals"))
    assert text.startswith("No signals yet.")

    for i in range(7):
        await bot.services.signals.publish([draft(f"C{i}", "short" if i % 2 else "long")])
    calls = await bot.send(TRADER, "/signals")
    (text,) = texts(calls)
    lines = text.splitlines()
    assert lines[0] == "Latest signals"
    assert lines[2].startswith("📈 C6 long · score 0.82 · ")
    assert lines[3] == "at 1.2345 · 6× · TP +3.2 % · SL −1.6 %"
    assert lines[4] == "volume ×4.2 vs 1h · breakout above 4h high <now>"  # escaped on the wire
    assert "&lt;now&gt;" in calls[-1].params["text"]
    assert text.count("score 0.82") == 5
    assert buttons(calls[-1]) == [("Older ▶", "sg:1")]

    calls = await bot.press(TRADER, sent(calls[-1]), "sg:1")
    (text,) = texts(calls)
    assert text.startswith("Latest signals · page 2")
    assert "C1 short" in text and "C0 long" in text and "C2" not in text
    assert buttons(calls[-1]) == [("◀ Newer", "sg:0")]


async def test_an_out_of_date_page_button_is_answered_not_crashed(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/signals")
    calls = await bot.press(TRADER, sent(calls[-1]), "sg:x")
    answers = [c.params.get("text") for c in calls if c.method == "answerCallbackQuery"]
    assert answers == ["This button is out of date; send /signals again."]
