"""/cancel takes the ids /orders shows, and says what was cancelled, on the local Bybit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.credentials import ApiCredentials
from core.exchange.models import OrderRequest, OrderType, Side
from handlers.trading import USAGE
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
BTC = "BTC/USDT:USDT"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=5, seed=5) as running:
        running.add_account("key-42", "secret-42", Decimal("5000"))
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
async def bot(tmp_path: Path, server: ExchangeServer) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as harness:
        await harness.send(TRADER, "/start")
        creds = ApiCredentials("key-42", "secret-42")
        await harness.services.accounts.connect(TRADER, "bybit", "demo", creds)
        yield harness


async def _rest(bot: BotHarness, cid: str, qty: str = "0.002") -> str:
    """A buy limit far below the market, resting until cancelled; its exchange id."""
    request = OrderRequest(
        BTC, Side.BUY, OrderType.LIMIT, Decimal(qty), cid, price=Decimal("30000")
    )
    async with bot.services.exchanges.lease(TRADER, "bybit", "demo") as client:
        return (await client.create_order(request)).order_id


async def _reply(bot: BotHarness, text: str) -> str:
    (answer,) = texts(await bot.send(TRADER, text))
    return answer


async def _shown_ids(bot: BotHarness) -> list[str]:
    return re.findall(r"id (\S+)$", await _reply(bot, "/orders"), re.MULTILINE)


async def test_the_ids_orders_shows_cancel_and_the_reply_keeps_the_size(
    bot: BotHarness, server: ExchangeServer
) -> None:
    alpha = await _rest(bot, "twtestalpha1")
    beta = await _rest(bot, "twtestbeta22", qty="0.003")
    assert sorted(await _shown_ids(bot)) == ["twtestalph", "twtestbeta"]

    ambiguous = await _reply(bot, "/cancel twtest")
    assert "twtest starts 2 open orders" in ambiguous and "nothing was cancelled" in ambiguous
    assert alpha in ambiguous and beta in ambiguous

    cancelled = await _reply(bot, "/cancel twtestalph")
    assert cancelled == f"✖️ Order cancelled: buy 0.002 BTC/USDT:USDT (id {alpha})"
    # The exchange id's start works too, in any case (e.g. 685bd851-9).
    cancelled = await _reply(bot, f"/cancel {beta[:10].upper()}")
    assert cancelled == f"✖️ Order cancelled: buy 0.003 BTC/USDT:USDT (id {beta})"
    assert {o.status for o in server.account("key-42").orders.values()} == {"Cancelled"}


async def test_too_short_or_unknown_ids_cancel_nothing(bot: BotHarness) -> None:
    await _rest(bot, "twtestalpha1")
    assert (
        await _reply(bot, "/cancel twt")
        == "No open order twt on Bybit (demo). /orders lists yours."
    )
    assert (
        await _reply(bot, "/cancel zzzz1234") == "No open order zzzz1234 on Bybit (demo). "
        "/orders lists yours."
    )
    assert await _shown_ids(bot) == ["twtestalph"]
    assert await _reply(bot, "/cancel") == USAGE["cancel"]
