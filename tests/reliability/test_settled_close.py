"""A close the bot placed but died before logging reaches the trade ledger at the next start.

The crash soak found it: killed between the exchange's answer to a /close and the commit, the
restarted bot settled the order as filled, but no trade was ever logged (position sync had not
seen the position, opened seconds earlier). Settlement now logs such a close itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import FakeTelegramState
from core.exchange.credentials import ApiCredentials
from core.exchange.models import OrderRequest, OrderType, Side
from core.lifecycle import IntentStatus
from db.repositories.intents import IntentRepository, IntentUpdate, NewIntent
from db.repositories.licenses import LicenseRepository
from services.history import TradeRecord
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot

TRADER = 42
BTC = "BTC/USDT:USDT"
KEY, SECRET = "key-42", "secret-42"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=5, seed=7) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


async def _open_long(bot: BotHarness) -> None:
    await bot.send(TRADER, "/start")
    await bot.services.accounts.connect(TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET))
    await LicenseRepository(bot.store).extend(TRADER, 30, "pro", "grant", datetime.now(UTC))
    (card,) = [c.result for c in await bot.send(TRADER, "/long BTC 600 10")]
    assert isinstance(card, dict)
    data = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await bot.press(TRADER, card, data)


async def _close_cut_off(bot: BotHarness) -> None:
    """The close was recorded, sent and filled; the bot died before hearing the answer."""
    intents = IntentRepository(bot.store)
    now = datetime.now(UTC)
    close = NewIntent(
        "twclose1", TRADER, "bybit", "demo", BTC, "sell", "market", Decimal("0.01"), "close",
        reduce_only=True,
    )  # fmt: skip
    await intents.create(close, now)
    await intents.mark_sent("twclose1", now)
    request = OrderRequest(
        BTC, Side.SELL, OrderType.MARKET, Decimal("0.01"), "twclose1", reduce_only=True
    )
    async with bot.services.exchanges.lease(TRADER, "bybit", "demo") as client:
        await client.create_order(request)


async def _trades(bot: BotHarness, count: int) -> list[TradeRecord]:
    for _ in range(100):
        found = await bot.services.history.recent(TRADER)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return await bot.services.history.recent(TRADER)


async def test_a_close_cut_off_by_a_crash_is_logged_once_at_the_next_start(
    tmp_path: Path, server: ExchangeServer
) -> None:
    state = FakeTelegramState()
    urls: dict[str, Any] = {"exchange_urls": {"bybit": server.base_url}}
    async with running_bot(tmp_path, state=state, **urls) as bot:
        await _open_long(bot)
        server.set_price("BTCUSDT", "61000")
        await _close_cut_off(bot)
        assert await bot.services.history.recent(TRADER) == []

    async with running_bot(tmp_path, state=state, **urls) as bot:
        (record,) = await _trades(bot, 1)
        intent = await IntentRepository(bot.store).get("twclose1")
        assert intent is not None and intent.status == IntentStatus.FILLED
    trade = record.trade
    assert (trade.side, trade.qty, trade.entry_price, trade.exit_price) == (
        "long", Decimal("0.01"), Decimal("60000"), Decimal("61000"),
    )  # fmt: skip
    assert trade.fee == Decimal("0.6655")  # both legs, as the Confirm would have logged it
    assert trade.pnl == Decimal("9.3345") == server.account(KEY).wallet - 10000  # what it gained

    async with running_bot(tmp_path, state=state, **urls) as bot:
        await asyncio.sleep(0.5)  # a third start settles nothing and logs nothing again
        assert len(await bot.services.history.recent(TRADER)) == 1


async def test_a_close_settled_but_not_logged_before_a_crash_is_logged_at_the_next_start(
    tmp_path: Path, server: ExchangeServer
) -> None:
    state = FakeTelegramState()
    urls: dict[str, Any] = {"exchange_urls": {"bybit": server.base_url}}
    async with running_bot(tmp_path, state=state, **urls) as bot:
        await _open_long(bot)
        server.set_price("BTCUSDT", "61000")
        await _close_cut_off(bot)
        # The order was settled (its own commit), then the process died before the trade's.
        intents = IntentRepository(bot.store)
        async with bot.services.exchanges.lease(TRADER, "bybit", "demo") as client:
            order = await client.fetch_order(BTC, client_order_id="twclose1")
        await intents.update("twclose1", IntentUpdate.of_order(order), datetime.now(UTC))
        assert await bot.services.history.recent(TRADER) == []

    async with running_bot(tmp_path, state=state, **urls) as bot:
        (record,) = await _trades(bot, 1)
        assert (record.trade.qty, record.trade.exit_price) == (Decimal("0.01"), Decimal("61000"))
        assert record.trade.pnl == Decimal("9.3345")
    async with running_bot(tmp_path, state=state, **urls) as bot:
        await asyncio.sleep(0.5)
        assert len(await bot.services.history.recent(TRADER)) == 1
