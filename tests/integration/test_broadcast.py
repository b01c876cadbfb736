"""A broadcast interrupted by a crash carries on after the restart, and nobody gets it twice."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from bot.offline_api import FakeTelegramState
from tests.fakes.clock import FakeClock
from tests.harness import BotHarness, running_bot, texts

ADMIN = 99
TRADERS = range(1000, 1040)
TEXT = "Maintenance tonight <22:00 UTC> & a new plan"


async def _eventually(
    state: FakeTelegramState, done: Callable[[], bool], seconds: float = 30.0
) -> None:
    """Wait (bounded) until `done()` holds, looking again after every Bot API call."""
    changed = asyncio.Event()
    unsubscribe = state.subscribe(lambda _call: changed.set())
    try:
        async with asyncio.timeout(seconds):
            while not done():
                changed.clear()
                await changed.wait()
    finally:
        unsubscribe()


def _sent(state: FakeTelegramState) -> list[int]:
    """The chats each message with the broadcast's text went to (the admin's preview too)."""
    return [
        call.params["chat_id"]
        for call in state.calls_to("sendMessage")
        if call.params["text"] == escape(TEXT)
    ]


def _deliveries(state: FakeTelegramState) -> Counter[int]:
    """Broadcast messages delivered to the traders, per chat."""
    return Counter(chat for chat in _sent(state) if chat != ADMIN)


def _keyboard_message(calls: list[Any]) -> dict[str, Any]:
    for call in reversed(calls):
        if isinstance(call.result, dict) and "inline_keyboard" in call.result.get(
            "reply_markup", {}
        ):
            return dict(call.result)
    raise AssertionError("no message with buttons")


async def _start_broadcast(bot: BotHarness) -> tuple[int, int]:
    """Preview, confirm; return the broadcast id and the progress message id."""
    calls = await bot.send(ADMIN, f"/broadcast {TEXT}")
    preview, question = texts(calls)
    assert preview == TEXT
    assert question == f"Send the message above to {len(TRADERS) + 1} users?"
    message = _keyboard_message(calls)
    data = message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    pressed = await bot.press(ADMIN, message, data)
    # The dispatcher may already be sending while the press is answered: keep the edit.
    (progress,) = texts([call for call in pressed if call.method == "editMessageText"])
    broadcast_id = int(data.rsplit(":", 1)[1])
    assert (
        progress
        == f"Broadcast #{broadcast_id} sending: 0 / {len(TRADERS) + 1} sent · 0 blocked · 0 failed"
    )
    return broadcast_id, message["message_id"]


async def test_a_broadcast_resumes_after_a_crash_without_resending(tmp_path: Path) -> None:
    state = FakeTelegramState()
    # Frozen time: the dispatcher's flood window never reopens after its first 30 messages,
    # so the first run stops mid-broadcast at a known point.
    frozen = FakeClock(datetime.now(UTC))
    async with running_bot(tmp_path, clock=frozen, state=state) as bot:
        for user_id in TRADERS:
            await bot.send(user_id, "/start")
        broadcast_id, progress_id = await _start_broadcast(bot)
        # 30 messages: the window's worth (one of them may be the admin's own copy).
        await _eventually(state, lambda: len(_sent(state)) - 1 >= 30)
    first_run = _deliveries(state)

    db = tmp_path / "tradewind.db"
    with sqlite3.connect(db) as conn:
        waiting = [
            row[0]
            for row in conn.execute(
                "SELECT user_id FROM notifications WHERE broadcast_id = ? AND status = 'pending' "
                "AND user_id != ? ORDER BY user_id",
                (broadcast_id, ADMIN),
            )
        ]
        # The crash: three rows claimed by the dead process, never answered.
        conn.execute(
            "UPDATE notifications SET status = 'sending', claimed_at = 1 "
            f"WHERE broadcast_id = ? AND user_id IN ({waiting[0]}, {waiting[1]}, {waiting[2]})",
            (broadcast_id,),
        )
    conn.close()
    assert waiting and not set(waiting) & set(first_run)
    state.blocked.add(waiting[-1])  # one trader blocked the bot meanwhile

    async with running_bot(tmp_path, state=state) as bot:
        final = (
            f"Broadcast #{broadcast_id} finished: {len(TRADERS)} / {len(TRADERS) + 1} sent"
            " · 1 blocked · 0 failed"
        )
        await _eventually(state, lambda: state.messages[ADMIN][progress_id]["text"] == final)
        # The job closes the broadcast right after showing its final report.
        store, status = bot.store, None
        for _ in range(200):
            sql = "SELECT status FROM broadcasts WHERE id = ?"
            status = await store.fetchval("t.status", sql, (broadcast_id,))
            if status == "done":
                break
            await asyncio.sleep(0.05)
        assert status == "done"
        progress = state.messages[ADMIN][progress_id]
        calls = await bot.press(ADMIN, progress, f"bc:go:{broadcast_id}")
        (answer,) = [c for c in calls if c.method == "answerCallbackQuery"]
        assert answer.params["text"] == "This broadcast was already sent or cancelled."

    delivered = _deliveries(state)
    assert set(delivered) == set(TRADERS) - {waiting[-1]}
    assert set(delivered.values()) == {1}  # nobody got it twice
    assert first_run == Counter({chat: 1 for chat in first_run})
    audit = sqlite3.connect(db)
    actions = [
        row[0]
        for row in audit.execute(
            "SELECT action FROM audit_log WHERE action LIKE 'broadcast.%' ORDER BY id"
        )
    ]
    audit.close()
    assert actions == ["broadcast.draft", "broadcast.start"]
