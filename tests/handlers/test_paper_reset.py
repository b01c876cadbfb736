"""/paper_reset through the real Application: a card, one reset per card, audited, paper only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.exchange.credentials import ApiCredentials
from core.exchange.models import OrderRequest, OrderType, Side
from services.paper_reset import USED_CARD
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER = 42, 43
BTC = "BTC/USDT:USDT"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        for user_id in (TRADER, OTHER):
            await harness.send(user_id, "/start")
            await harness.services.accounts.connect(user_id, "paper", "paper")
        yield harness


async def _trade(bot: BotHarness, cid: str) -> None:
    """One open position and one resting limit order on the trader's paper account."""
    market = (await bot.services.market.markets("paper"))[BTC]
    qty = market.min_qty * 10
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        last = (await client.fetch_ticker(BTC)).last
        await client.create_order(OrderRequest(BTC, Side.BUY, OrderType.MARKET, qty, cid))
        low = market.round_price(last / 2)
        await client.create_order(
            OrderRequest(BTC, Side.BUY, OrderType.LIMIT, qty, cid + "l", price=low)
        )


async def _held(bot: BotHarness) -> tuple[int, int, Decimal]:
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        positions, orders = await client.fetch_positions(), await client.fetch_open_orders()
        return len(positions), len(orders), (await client.fetch_balance()).equity


def _card(calls: list[Any]) -> tuple[dict[str, Any], str, str]:
    sent = calls[-1]
    (reset, keep) = sent.params["reply_markup"]["inline_keyboard"][0]
    return sent.result, reset["callback_data"], keep["callback_data"]


async def test_reset_closes_everything_restores_the_balance_once_and_is_audited(
    bot: BotHarness,
) -> None:
    await _trade(bot, "twtestreset1")
    calls = await bot.send(TRADER, "/paper_reset")
    (card,) = texts(calls)
    assert card.startswith("Reset your paper account?")
    assert "closes 1 position and cancels 1 open order" in card and "10,000 USDT" in card
    assert (await _held(bot))[:2] == (1, 1)  # nothing before the press
    message, reset, _ = _card(calls)

    pressed = await bot.press(TRADER, message, reset)
    (done,) = texts(pressed)
    assert done == (
        "♻️ Paper account reset: 1 position closed, 1 open order cancelled, balance 10,000 USDT."
    )
    assert await _held(bot) == (0, 0, Decimal(10_000))
    (balance,) = texts(await bot.send(TRADER, "/balance"))
    assert "Equity: 10,000.00 USDT" in balance  # not a cached pre-reset figure
    (entry,) = [e for e in await bot.services.audit.recent() if e.action == "paper_reset"]
    assert entry.actor_id == TRADER and entry.details["positions"] == 1

    await _trade(bot, "twtestreset2")  # trading goes on after the reset
    again = await bot.press(TRADER, message, reset)  # the same card, pressed later
    (answer,) = [c for c in again if c.method == "answerCallbackQuery"]
    assert answer.params["text"] == USED_CARD
    assert (await _held(bot))[:2] == (1, 1)
    assert len([e for e in await bot.services.audit.recent() if e.action == "paper_reset"]) == 1


async def test_keep_resets_nothing_and_others_cannot_press(bot: BotHarness) -> None:
    await _trade(bot, "twtestkeep1")
    message, reset, keep = _card(await bot.send(TRADER, "/paper_reset"))
    foreign = await bot.press(OTHER, message, reset)
    (answer,) = [c for c in foreign if c.method == "answerCallbackQuery"]
    assert answer.params["text"].startswith("Your active account changed since this card")
    (kept,) = texts(await bot.press(TRADER, message, keep))
    assert kept == "✖️ Kept as it was — nothing was reset."
    assert (await _held(bot))[:2] == (1, 1)


async def test_help_lists_paper_reset(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/help"))
    assert "/paper_reset — Start your paper account over" in reply


async def test_a_live_account_is_refused(tmp_path: Path) -> None:
    async with ExchangeServer(symbols=3, seed=5) as server:
        server.add_account("key-42", "secret-42", Decimal("5000"))
        urls = {"bybit": server.base_url}
        async with running_bot(tmp_path, exchange_urls=urls) as bot:
            await bot.send(TRADER, "/start")
            creds = ApiCredentials("key-42", "secret-42")
            await bot.services.accounts.connect(TRADER, "bybit", "demo", creds)
            calls = await bot.send(TRADER, "/paper_reset")
            (reply,) = texts(calls)
            assert reply.startswith(
                "Only a paper account can be reset; your active account is Bybit (demo)"
            )
            assert "inline_keyboard" not in str(calls[-1].params.get("reply_markup"))
            assert not [e for e in await bot.services.audit.recent() if e.action == "paper_reset"]
