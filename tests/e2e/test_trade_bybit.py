"""A trader opens and closes a position on Bybit (demo) through the bot: real ccxt, local server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from core.exchange.credentials import ApiCredentials
from db.repositories.licenses import LicenseRepository
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot, texts

pytestmark = pytest.mark.e2e

TRADER = 42
KEY, SECRET = "demo-key", "demo-secret"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=20, seed=5) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
async def bot(tmp_path: Path, server: ExchangeServer) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as harness:
        await harness.send(TRADER, "/start")
        await harness.services.accounts.connect(
            TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET)
        )
        store = harness.store
        await LicenseRepository(store).extend(
            TRADER, 30, "pro", "grant", harness.services.clock.now()
        )
        yield harness


def _card(calls: list[ApiCall]) -> tuple[dict[str, Any], str]:
    (message,) = [c.result for c in calls if c.method == "sendMessage"]
    assert isinstance(message, dict), texts(calls)
    data = message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    return message, data.removeprefix("ok:")


def _orders_with(server: ExchangeServer, cid: str) -> int:
    return sum(1 for o in server.account(KEY).orders.values() if o.link_id == cid)


async def test_long_then_close_on_bybit_logs_the_right_pnl(
    bot: BotHarness, server: ExchangeServer
) -> None:
    wallet = server.account(KEY).wallet
    message, opening = _card(await bot.send(TRADER, "/long BTC 600 10"))
    assert message["text"].startswith("Confirm LONG BTC/USDT:USDT · Bybit (demo)")
    assert "Quantity: 0.01 BTC" in message["text"]
    assert _orders_with(server, opening) == 0  # nothing sent before Confirm
    (opened,) = texts(await bot.press(TRADER, message, f"ok:{opening}"))
    assert opened.startswith("✅ Opened: LONG BTC/USDT:USDT · Bybit (demo)")
    assert "Filled 0.01 BTC at 60,000 USDT" in opened and "Fee: 0.3300 USDT" in opened
    await bot.press(TRADER, message, f"ok:{opening}")  # a repeated press sends nothing
    assert _orders_with(server, opening) == 1
    assert server.account(KEY).lev(server.market.instrument("BTCUSDT")) == Decimal(10)

    (held,) = texts(await bot.send(TRADER, "/positions"))
    assert "BTC/USDT:USDT · LONG 0.01 · 10×" in held and "TP 61,800.0 · SL 59,100.0" in held

    server.set_price("BTCUSDT", "61000")
    message, closing = _card(await bot.send(TRADER, "/close BTC"))
    assert "Confirm closing 100% of your LONG BTC/USDT:USDT" in message["text"]
    (closed,) = texts(await bot.press(TRADER, message, f"ok:{closing}"))
    assert closed.startswith("✅ Closed: LONG BTC/USDT:USDT · Bybit (demo)")
    assert "Filled 0.01 BTC at 61,000 USDT" in closed
    assert "Realised PnL: +9.33 USDT (after fees of 0.6655 USDT, opening and closing)" in closed
    assert _orders_with(server, closing) == 1
    assert server.account(KEY).position("BTCUSDT").size == 0

    (record,) = await bot.services.history.recent(TRADER)
    trade = record.trade
    assert (trade.exchange, trade.account_type, trade.side) == ("bybit", "demo", "long")
    assert (trade.qty, trade.entry_price, trade.exit_price) == (
        Decimal("0.01"),
        Decimal("60000"),
        Decimal("61000"),
    )
    assert trade.fee == Decimal("0.6655")  # both legs: (600 + 610) USDT × 0.055 %
    assert trade.pnl == Decimal("9.3345")  # (61,000 − 60,000) × 0.01 − 0.6655
    assert trade.pnl == server.account(KEY).wallet - wallet  # what the wallet gained
    assert trade.close_reason == "manual" and trade.leverage == 10

    (listed,) = texts(await bot.send(TRADER, "/trades"))
    assert "BTC long 0.01 @ 60,000.00 → 61,000.00 +9.33" in listed
    (summary,) = texts(await bot.send(TRADER, "/pnl"))
    assert "+9.33" in summary
    (flat,) = texts(await bot.send(TRADER, "/positions"))
    assert "No open positions" in flat
