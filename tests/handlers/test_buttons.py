"""Buttons no handler knows (an older version's, or forged) are still answered."""

from __future__ import annotations

from pathlib import Path

from handlers.fallback import STALE_BUTTON
from tests.harness import running_bot, texts

TRADER = 42


async def test_unknown_button_data_is_answered_as_no_longer_valid(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        (sent,) = [c for c in await bot.send(TRADER, "/help") if c.method == "sendMessage"]
        for data in ("zz:1:2", "legacy_button", "adm"):
            calls = await bot.press(TRADER, sent.result, data)
            (answer,) = [c for c in calls if c.method == "answerCallbackQuery"]
            assert answer.params["text"] == STALE_BUTTON
            assert texts(calls) == []  # nothing sent or edited


async def test_known_buttons_are_not_answered_twice(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        (sent,) = [c for c in await bot.send(TRADER, "/signals") if c.method == "sendMessage"]
        calls = await bot.press(TRADER, sent.result, "sg:x")
        answers = [c for c in calls if c.method == "answerCallbackQuery"]
        assert len(answers) == 1 and answers[0].params["text"] != STALE_BUTTON
