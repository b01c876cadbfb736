"""Per-trader anti-flood through the real Application: one "slow down", then silence."""

from __future__ import annotations

from pathlib import Path

from core.config import DEFAULT_FLOOD
from handlers.registry import SLOW_DOWN, TOO_FAST
from tests.fakes.clock import FakeClock
from tests.harness import BotHarness, running_bot, texts

ADMIN, TRADER, OTHER = 99, 42, 43
SLOW = SLOW_DOWN.split(":", 1)[0]


async def _replies(bot: BotHarness, user: int, count: int) -> list[list[str]]:
    """Send /help `count` times in a row; the texts of each one's replies."""
    return [texts(await bot.send(user, "/help")) for _ in range(count)]


async def test_a_flood_gets_its_burst_then_one_slow_down_then_silence(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_bot(tmp_path, clock=clock, flood=DEFAULT_FLOOD) as bot:
        replies = await _replies(bot, TRADER, 30)
        answered = [r for r in replies if r and not r[0].startswith(SLOW)]
        warned = [r for r in replies if r and r[0].startswith(SLOW)]
        assert len(answered) == DEFAULT_FLOOD.burst
        assert replies[: DEFAULT_FLOOD.burst] == answered  # the first ones, in order
        assert len(warned) == 1 and replies[DEFAULT_FLOOD.burst] == warned[0]
        assert "20 commands a minute" in warned[0][0] and "Try again in 3 s" in warned[0][0]
        assert all(r == [] for r in replies[DEFAULT_FLOOD.burst + 1 :])  # dropped silently
        # Another trader is not held up by the first one's flood.
        assert len(texts(await bot.send(OTHER, "/help"))) == 1
        assert not texts(await bot.send(OTHER, "/help"))[0].startswith(SLOW)


async def test_after_the_window_commands_work_again(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_bot(tmp_path, clock=clock, flood=DEFAULT_FLOOD) as bot:
        await _replies(bot, TRADER, 10)
        assert texts(await bot.send(TRADER, "/help")) == []  # still inside the window
        clock.advance(3)  # one token back (20 a minute)
        (reply,) = texts(await bot.send(TRADER, "/help"))
        assert not reply.startswith(SLOW)
        assert texts(await bot.send(TRADER, "/help"))[0].startswith(SLOW)  # warned anew
        clock.advance(60)
        replies = await _replies(bot, TRADER, 6)
        assert [len(r) for r in replies[:5]] == [1] * 5
        assert not any(r[0].startswith(SLOW) for r in replies[:5])
        assert replies[5][0].startswith(SLOW)


async def test_an_admin_is_never_limited(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=FakeClock(), flood=DEFAULT_FLOOD) as bot:
        replies = await _replies(bot, ADMIN, 30)
        assert all(len(r) == 1 and not r[0].startswith(SLOW) for r in replies)


async def test_buttons_past_the_rate_get_a_toast_and_do_nothing(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=FakeClock(), flood=DEFAULT_FLOOD) as bot:
        (sent,) = [c for c in await bot.send(TRADER, "/signals") if c.method == "sendMessage"]
        presses = [await bot.press(TRADER, sent.result, "sg:x") for _ in range(8)]
        toasts = [
            c.params.get("text") for calls in presses for c in calls
            if c.method == "answerCallbackQuery"
        ]  # fmt: skip
        assert len(toasts) == 8  # every press is answered, so no spinner is left turning
        assert toasts[4:] == [TOO_FAST] * 4  # the /signals message took one token
        assert TOO_FAST not in toasts[:4]
        assert all(
            c.method == "answerCallbackQuery" for calls in presses[4:] for c in calls
        )  # and nothing else happened: no edit, no message


async def test_without_the_setting_nothing_is_limited(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=FakeClock()) as bot:
        replies = await _replies(bot, TRADER, 30)
        assert all(len(r) == 1 and not r[0].startswith(SLOW) for r in replies)


async def test_a_dropped_command_does_not_act(tmp_path: Path) -> None:
    async with running_bot(tmp_path, clock=FakeClock(), flood=DEFAULT_FLOOD) as bot:
        await _replies(bot, TRADER, 6)  # the burst, then the warning
        assert texts(await bot.send(TRADER, "/set leverage 9")) == []
        leverage = await bot.store.fetchval(
            "t.leverage", "SELECT leverage FROM strategy_settings WHERE user_id = ?", (TRADER,)
        )
        assert leverage != 9
