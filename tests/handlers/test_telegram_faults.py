"""Telegram failing under the real Application: flood control mid-broadcast, a blocked chat,
HTML Telegram cannot parse, broken connections; each injected by the offline Bot API."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from bot.offline_api import ApiCall, FakeTelegramState
from bot.offline_faults import FaultKind
from bot.telegram_limits import plain_text
from services.dispatcher import DispatchPolicy
from tests.harness import BotHarness, running_bot, texts

ADMIN, TRADER = 99, 42
TRADERS = list(range(2000, 2012))
TEXT = "Maintenance tonight <22:00 UTC> & a new plan"
# Real limits, quick retries: a failed delivery is tried again 0.2 s later.
QUICK = DispatchPolicy(backoff_s=0.2, max_backoff_s=1.0)


async def _eventually(
    state: FakeTelegramState, done: Callable[[], bool], seconds: float = 30
) -> None:
    changed = asyncio.Event()
    unsubscribe = state.subscribe(lambda _call: changed.set())
    try:
        async with asyncio.timeout(seconds):
            while not done():
                changed.clear()
                await changed.wait()
    finally:
        unsubscribe()


def _copies(state: FakeTelegramState) -> Counter[int]:
    """Broadcast messages each trader received (as HTML, or re-sent as plain text)."""
    return Counter(
        int(call.params["chat_id"])
        for call in state.calls_to("sendMessage")
        if call.params["text"] in (escape(TEXT), TEXT) and call.params["chat_id"] != ADMIN
    )


async def _broadcast(bot: BotHarness) -> tuple[int, int]:
    """/broadcast, then Confirm; the broadcast id and the progress message's id."""
    calls = await bot.send(ADMIN, f"/broadcast {TEXT}")
    message = next(
        dict(c.result)
        for c in reversed(calls)
        if isinstance(c.result, dict) and "inline_keyboard" in c.result.get("reply_markup", {})
    )
    data = message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await bot.press(ADMIN, message, data)
    return int(data.rsplit(":", 1)[1]), message["message_id"]


async def test_every_telegram_fault_mid_broadcast_loses_nothing(tmp_path: Path) -> None:
    state = FakeTelegramState()
    accepted: list[tuple[float, ApiCall]] = []
    state.subscribe(lambda call: accepted.append((time.monotonic(), call)))
    flooded, blocked, broken, lost, unparsable = (
        TRADERS[3],
        TRADERS[5],
        TRADERS[7],
        TRADERS[8],
        TRADERS[9],
    )
    async with running_bot(tmp_path, state=state, dispatch_policy=QUICK) as bot:
        for user_id in TRADERS:
            await bot.send(user_id, "/start")
        state.faults.add(FaultKind.RETRY_AFTER, chat_id=flooded, retry_after=1)
        state.faults.add(FaultKind.BLOCKED, chat_id=blocked)
        state.faults.add(FaultKind.NETWORK, chat_id=broken)
        state.faults.add(FaultKind.ANSWER_LOST, chat_id=lost)
        state.faults.add(FaultKind.CANT_PARSE, chat_id=unparsable)
        broadcast_id, progress_id = await _broadcast(bot)
        final = (
            f"Broadcast #{broadcast_id} finished: {len(TRADERS)} / {len(TRADERS) + 1} sent"
            " · 1 blocked · 0 failed"
        )
        await _eventually(state, lambda: state.messages[ADMIN][progress_id]["text"] == final)
        user = await bot.services.users.get(blocked)
        assert user is not None and not user.is_active  # the chat is marked: nothing more goes
        retry_after = _sample(bot, "retry_after")

    copies = _copies(state)
    assert set(copies) == set(TRADERS) - {blocked}
    assert copies[lost] == 2  # delivered, answer lost, delivered again: the one duplicate
    assert {c for c, n in copies.items() if n != 1} == {lost}
    for kind in FaultKind:
        assert state.faults.count(kind) == 1  # each fault met once: nobody retried blindly
    # One layer handled the 429: the dispatcher saw it (PTB did not retry it away) ...
    assert retry_after == 1
    # ... and paused every delivery for the second Telegram asked for, then went on.
    (flood,) = [f for f in state.faults.fired if f.kind is FaultKind.RETRY_AFTER]
    during = [c for t, c in accepted if flood.at < t < flood.at + 0.95]
    assert not [c for c in during if c.method == "sendMessage" and c.params["chat_id"] != ADMIN]
    assert any(c.params.get("chat_id") == flooded for t, c in accepted if t > flood.at + 1)
    (plain,) = [
        c
        for c in state.calls_to("sendMessage")
        if c.params["chat_id"] == unparsable and c.params["text"] in (TEXT, escape(TEXT))
    ]
    assert plain.params["text"] == TEXT and "parse_mode" not in plain.params


def _sample(bot: BotHarness, outcome: str) -> float:
    for family in bot.services.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "tradewind_notifications_total" and sample.labels == {
                "outcome": outcome
            }:
                return sample.value
    return 0.0


async def test_a_reply_telegram_cannot_parse_is_sent_as_plain_text(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.send(TRADER, "/start")
        normal = await bot.send(TRADER, "/help")
        bot.state.faults.add(FaultKind.CANT_PARSE, chat_id=TRADER)
        faulted = await bot.send(TRADER, "/help")
    (html,) = [c for c in normal if c.method == "sendMessage"]
    (plain,) = [c for c in faulted if c.method == "sendMessage"]
    assert bot.state.faults.count(FaultKind.CANT_PARSE) == 1
    assert "parse_mode" not in plain.params
    assert plain.params["text"] == plain_text(html.params["text"])
    assert texts(faulted) == texts(normal)  # what the trader reads is the same


async def test_a_reply_hit_by_flood_control_is_retried_once_after_the_wait(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.send(TRADER, "/start")
        bot.state.faults.add(FaultKind.RETRY_AFTER, chat_id=TRADER, retry_after=1)
        started = time.monotonic()
        calls = await bot.send(TRADER, "/help")
        waited = time.monotonic() - started
    assert [c.method for c in calls].count("sendMessage") == 1
    assert bot.state.faults.count(FaultKind.RETRY_AFTER) == 1
    assert waited >= 1.0
    rejected: list[Any] = [c for c in bot.state.rejected if c.params.get("chat_id") == TRADER]
    assert len(rejected) == 1 and rejected[0].result.error_code == 429
