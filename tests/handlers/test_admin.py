"""/admin, /stats and /users through the real Application: figures, cards, grant, block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from db.repositories.trades import TradeLog, TradeRepository
from handlers.admin import BAD_BUTTON, GRANTED_ALREADY
from tests.harness import BotHarness, running_bot, texts

ADMIN = 99
ALICE = 42
BOB = 43


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(ALICE, "/start", first_name="Alice")
        await harness.send(BOB, "/start", first_name="Bob")
        yield harness


def _trade(user_id: int, symbol: str, pnl: str, harness: BotHarness) -> TradeLog:
    now = harness.services.clock.now()
    return TradeLog(
        user_id=user_id,
        exchange="paper",
        account_type="paper",
        symbol=symbol,
        side="long",
        qty=Decimal("1"),
        entry_price=Decimal("100"),
        exit_price=Decimal("110"),
        pnl=Decimal(pnl),
        fee=Decimal("0.1"),
        entry_ts=now - timedelta(hours=1),
        exit_ts=now,
    )


def _to(chat_id: int, calls: list[Any]) -> list[str]:
    """Texts sent or edited in one chat (a grant also notifies the trader)."""
    mine = [c for c in calls if isinstance(c.result, dict) and c.result["chat"]["id"] == chat_id]
    return texts(mine)


def _card_message(calls: list[Any]) -> dict[str, Any]:
    """The last message sent or edited that carries the card's buttons."""
    for call in reversed(calls):
        if isinstance(call.result, dict) and "inline_keyboard" in call.result.get(
            "reply_markup", {}
        ):
            return dict(call.result)
    raise AssertionError("no card in these calls")


def _button(calls: list[Any], label: str) -> str:
    keyboard = _card_message(calls)["reply_markup"]["inline_keyboard"]
    (data,) = [b["callback_data"] for row in keyboard for b in row if b["text"] == label]
    return str(data)


async def _ask_grant(bot: BotHarness, calls: list[Any]) -> list[Any]:
    """Press the card's Grant button: the card asks to confirm."""
    return await bot.press(ADMIN, _card_message(calls), _button(calls, "Grant 30 d"))


async def _grant(bot: BotHarness, calls: list[Any]) -> list[Any]:
    """Grant from the card: Grant, then the confirmation's button."""
    asked = await _ask_grant(bot, calls)
    return await bot.press(ADMIN, _card_message(asked), _button(asked, "✅ Grant 30 d"))


async def test_admin_dashboard_counts_users_and_is_cached(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(ADMIN, "/admin"))
    # Alice, Bob and the admin himself (registered by his first message).
    assert "Users: 3 · active 24 h" in reply
    assert "Licences: 0 active · 0 expiring in 24 h" in reply
    assert "Open positions: 0" in reply
    await bot.send(7, "/start")
    (cached,) = texts(await bot.send(ADMIN, "/admin"))
    assert "Users: 3 ·" in cached  # served from cache until something it counts changes


async def test_a_grant_from_the_card_shows_at_once_on_the_dashboard(bot: BotHarness) -> None:
    await bot.send(ADMIN, "/admin")  # fill the cache
    calls = await bot.send(ADMIN, f"/users {ALICE}")
    (card,) = texts(calls)
    assert "Alice" in card and "Licence: none yet" in card
    calls = await _grant(bot, calls)
    (granted,) = _to(ADMIN, calls)
    assert "active until" in granted and "(30 days left)" in granted
    (reply,) = _to(ADMIN, await bot.send(ADMIN, "/admin"))  # the trader's notice may land too
    assert "Licences: 1 active" in reply
    grants = [e for e in await bot.services.audit.recent() if e.action == "grant"]
    assert [(e.actor_id, e.target) for e in grants] == [(ADMIN, f"user:{ALICE}")]


async def test_revoke_from_the_card(bot: BotHarness) -> None:
    calls = await bot.send(ADMIN, f"/users {ALICE}")
    calls = await _grant(bot, calls)
    calls = await bot.press(ADMIN, _card_message(calls), f"adm:revoke:{ALICE}")
    (revoked,) = _to(ADMIN, calls)
    assert "Licence: revoked" in revoked
    state = await bot.services.licenses.state(ALICE)
    assert not state.can_open_positions


async def test_a_blocked_user_is_refused_everything_until_unblocked(bot: BotHarness) -> None:
    calls = await bot.send(ADMIN, f"/users {BOB}")
    calls = await bot.press(ADMIN, _card_message(calls), f"adm:block:{BOB}")
    (blocked_card,) = texts(calls)
    assert "Status: blocked" in blocked_card
    for text in ("/start", "/balance", "hello"):
        (reply,) = texts(await bot.send(BOB, text))
        assert reply.startswith("Sorry, your access to this bot has been suspended.")
    calls = await bot.press(ADMIN, _card_message(calls), f"adm:unblock:{BOB}")
    assert "blocked" not in texts(calls)[0]
    (welcome,) = texts(await bot.send(BOB, "/start", first_name="Bob"))
    assert welcome.startswith("Welcome back, Bob")
    actions = [e.action for e in await bot.services.audit.recent() if e.actor_id == ADMIN]
    assert actions[:2] == ["unblock", "block"]


async def test_an_admin_cannot_be_blocked(bot: BotHarness) -> None:
    calls = await bot.send(ADMIN, f"/users {ADMIN}")
    calls = await bot.press(ADMIN, _card_message(calls), f"adm:block:{ADMIN}")
    (answer,) = bot.state.calls_to("answerCallbackQuery")[-1:]
    assert answer.params["text"] == "Admins cannot be blocked."
    user = await bot.services.users.get(ADMIN)
    assert user is not None and not user.is_blocked


async def test_users_finds_by_username_prefix(bot: BotHarness) -> None:
    store = bot.store
    await store.execute("t.names", "UPDATE users SET username = 'alice_t' WHERE id = ?", (ALICE,))
    await store.execute("t.names", "UPDATE users SET username = 'alina' WHERE id = ?", (BOB,))
    (listing,) = texts(calls := await bot.send(ADMIN, "/users @ali"))
    assert "2 users match" in listing and "@alice_t" in listing and "@alina" in listing
    keyboard = calls[-1].params["reply_markup"]["inline_keyboard"]
    assert [row[0]["callback_data"] for row in keyboard] == [f"adm:card:{ALICE}", f"adm:card:{BOB}"]
    (card,) = texts(await bot.press(ADMIN, _card_message(calls), f"adm:card:{BOB}"))
    assert "@alina" in card
    (one,) = texts(await bot.send(ADMIN, "/users ALIN"))
    assert "Bob" in one and "@alina" in one  # one match: straight to the card


async def test_users_bad_queries_get_usage(bot: BotHarness) -> None:
    (usage,) = texts(await bot.send(ADMIN, "/users"))
    assert usage.startswith("Usage: /users ID or /users NAME")
    (missing,) = texts(await bot.send(ADMIN, "/users 123456"))
    assert missing.startswith("There is no user 123456.")
    (nobody,) = texts(await bot.send(ADMIN, "/users zed"))
    assert nobody.startswith("No user's username starts with 'zed'.")


async def test_stats_ranks_traders_and_symbols(bot: BotHarness) -> None:
    trades = TradeRepository(bot.store)
    await bot.send(ADMIN, "/stats")  # cached before the trades close
    await bot.services.history.record_close(_trade(ALICE, "BTC/USDT:USDT", "25.5", bot))
    await bot.services.history.record_close(_trade(BOB, "ETH/USDT:USDT", "-4", bot))
    await trades.record(_trade(BOB, "ETH/USDT:USDT", "1", bot))
    bot.services.analytics.invalidate()
    (reply,) = texts(await bot.send(ADMIN, "/stats"))
    assert "New users, last 30 days: 3" in reply
    top = reply.split("Top traders by realised PnL (all time)\n")[1].split("\n\n")[0]
    assert top.splitlines() == ["Alice · +25.50 USDT · 1 trades", "Bob · -3.00 USDT · 2 trades"]
    assert "BTC/USDT:USDT: +25.50 USDT · 1 trades · 100% won" in reply
    assert "ETH/USDT:USDT: -3.00 USDT · 2 trades · 50% won" in reply


async def test_card_shows_trade_totals(bot: BotHarness) -> None:
    await bot.services.history.record_close(_trade(ALICE, "BTC/USDT:USDT", "10", bot))
    (card,) = texts(await bot.send(ADMIN, f"/users {ALICE}"))
    assert "Trades: 1 (1 won) · PnL +10.00 USDT · volume 110 USDT" in card


async def test_grant_asks_first_and_its_confirmation_grants_once(bot: BotHarness) -> None:
    calls = await bot.send(ADMIN, f"/users {ALICE}")
    asked = await _ask_grant(bot, calls)
    (question,) = _to(ADMIN, asked)
    assert question.endswith("Grant 30 more days to this trader?")
    assert not (await bot.services.licenses.state(ALICE)).can_open_positions  # not yet
    confirm, data = _card_message(asked), _button(asked, "✅ Grant 30 d")
    first = await bot.press(ADMIN, confirm, data)
    (granted,) = _to(ADMIN, first)
    assert "(30 days left)" in granted and "Grant 30 more days" not in granted
    again = await bot.press(ADMIN, confirm, data)  # a double tap, or the same button later
    (answer,) = [c for c in again if c.method == "answerCallbackQuery"]
    assert answer.params["text"] == GRANTED_ALREADY and answer.params["show_alert"] is True
    assert (await bot.services.licenses.state(ALICE)).days_left == 30
    grants = [e for e in await bot.services.audit.recent() if e.action == "grant"]
    assert len(grants) == 1
    # Asking again over the new licence is a new question: it grants another 30 days, once.
    await _grant(bot, first)
    assert (await bot.services.licenses.state(ALICE)).days_left == 60


async def test_two_confirmations_at_once_grant_once(bot: BotHarness) -> None:
    asked = await _ask_grant(bot, await bot.send(ADMIN, f"/users {BOB}"))
    confirm, data = _card_message(asked), _button(asked, "✅ Grant 30 d")
    await asyncio.gather(bot.press(ADMIN, confirm, data), bot.press(ADMIN, confirm, data))
    assert (await bot.services.licenses.state(BOB)).days_left == 30


async def test_back_from_the_question_grants_nothing(bot: BotHarness) -> None:
    asked = await _ask_grant(bot, await bot.send(ADMIN, f"/users {BOB}"))
    (card,) = _to(ADMIN, await bot.press(ADMIN, _card_message(asked), _button(asked, "Back")))
    assert "Licence: none yet" in card and "Grant 30 more days" not in card
    assert not (await bot.services.licenses.state(BOB)).can_open_positions


async def test_a_grant_confirmation_without_the_licence_it_asked_over_is_out_of_date(
    bot: BotHarness,
) -> None:
    calls = await bot.send(ADMIN, f"/users {ALICE}")
    calls = await bot.press(ADMIN, _card_message(calls), f"adm:granted:{ALICE}")
    (answer,) = [c for c in calls if c.method == "answerCallbackQuery"]
    assert answer.params["text"] == BAD_BUTTON
    assert not (await bot.services.licenses.state(ALICE)).can_open_positions


async def test_card_speaks_of_the_trader_not_to_them(bot: BotHarness) -> None:
    (card,) = texts(await bot.send(ADMIN, f"/users {ALICE}"))
    assert "Licence: none yet (may look around and connect; cannot open positions)." in card
    assert "You " not in card and "you " not in card
    calls = await bot.send(ADMIN, f"/users {ALICE}")
    calls = await _grant(bot, calls)
    calls = await bot.press(ADMIN, _card_message(calls), f"adm:revoke:{ALICE}")
    (revoked,) = _to(ADMIN, calls)
    assert "Licence: revoked (may still view, close and cancel" in revoked
    assert "You " not in revoked


async def test_users_finds_by_first_or_last_name_prefix_in_any_case(bot: BotHarness) -> None:
    store = bot.services.users._users.store
    await store.execute("t.names", "UPDATE users SET last_name = 'Smith' WHERE id = ?", (BOB,))
    (by_first,) = texts(await bot.send(ADMIN, "/users aLi"))
    assert by_first.startswith("Alice") and f"{ALICE}" in by_first
    (by_last,) = texts(await bot.send(ADMIN, "/users SMI"))
    assert by_last.startswith("Bob") and f"{BOB}" in by_last
    (nobody,) = texts(await bot.send(ADMIN, "/users 100%"))
    assert nobody.startswith("No user's username starts with '100%'. Nor does a first or last")
