"""A trade's PnL is what the wallet gained: both legs' fees, the opening one pro rata.

Through the real Application: open and close on paper and on the local Bybit server (real
ccxt), then /trades, /pnl and /balance agree with the wallet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.credentials import ApiCredentials
from db.repositories.intents import IntentRepository
from db.repositories.licenses import LicenseRepository
from handlers.render import money, signed
from tests.exchange_server import ExchangeServer
from tests.handlers.test_trading import _card, _open
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
KEY, SECRET = "fees-key", "fees-secret"
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
TINY = Decimal("1e-8")  # paper keeps money to 8 decimals


async def _licensed(bot: BotHarness) -> None:
    await LicenseRepository(bot.store).extend(TRADER, 30, "pro", "grant", bot.services.clock.now())


@pytest.fixture
async def paper_bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(TRADER, "/start")
        await harness.services.accounts.connect(TRADER, "paper", "paper")
        await _licensed(harness)
        yield harness


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=20, seed=5) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
async def bybit_bot(tmp_path: Path, server: ExchangeServer) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as harness:
        await harness.send(TRADER, "/start")
        await harness.services.accounts.connect(
            TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET)
        )
        await _licensed(harness)
        yield harness


async def _close(bot: BotHarness, text: str) -> str:
    message, cid = _card(await bot.send(TRADER, text))
    (done,) = texts(await bot.press(TRADER, message, f"ok:{cid}"))
    assert done.startswith("✅ Closed"), done
    return done


async def _order_fees(bot: BotHarness) -> list[Decimal]:
    """The fee each filled order paid, oldest first."""
    intents = await IntentRepository(bot.store).for_user(TRADER, 100)
    done = sorted((i for i in intents if i.filled_qty), key=lambda i: i.created_at)
    return [i.fee or Decimal(0) for i in done]


async def _equity(bot: BotHarness) -> Decimal:
    return (await bot.services.portfolio.balance(TRADER, fresh=True)).balance.equity


async def test_paper_open_and_close_is_the_wallets_change(paper_bot: BotHarness) -> None:
    before = await _equity(paper_bot)
    await _open(paper_bot, TRADER, "/long BTC 100 5")
    await _close(paper_bot, "/close BTC")
    change = await _equity(paper_bot) - before  # flat again: equity is the wallet
    (record,) = await paper_bot.services.history.recent(TRADER)
    opening, closing = await _order_fees(paper_bot)
    assert opening > 0 and closing > 0
    assert record.trade.fee == opening + closing
    assert abs(record.trade.pnl - change) < TINY
    (listed,) = texts(await paper_bot.send(TRADER, "/trades"))
    assert f"{signed(change)} fee {money(opening + closing)}" in listed
    (report,) = texts(await paper_bot.send(TRADER, "/pnl"))
    assert f"PnL: {signed(change)} USDT after {money(opening + closing)} USDT fees" in report
    (balance,) = texts(await paper_bot.send(TRADER, "/balance"))
    assert f"Equity: {money(before + change)} USDT" in balance


async def test_paper_partial_closes_share_the_opening_fee(paper_bot: BotHarness) -> None:
    before = await _equity(paper_bot)
    price = (await paper_bot.services.market.ticker("paper", ETH)).last
    amount = (price * Decimal("0.065")).quantize(Decimal("0.01"))
    await _open(paper_bot, TRADER, f"/long ETH {amount} 10")  # 0.06 ETH after lot rounding
    await _close(paper_bot, "/close eth 50")
    (half,) = await paper_bot.services.history.recent(TRADER)
    opening, closing = await _order_fees(paper_bot)
    assert half.trade.qty == Decimal("0.03")
    assert abs(half.trade.fee - (closing + opening / 2)) < TINY  # half the opening fee
    await _close(paper_bot, "/close eth")
    rest, first = await paper_bot.services.history.recent(TRADER)
    assert first.trade_id == half.trade_id
    _, _, last_closing = await _order_fees(paper_bot)
    assert abs(rest.trade.fee - (last_closing + opening / 2)) < TINY  # the other half
    change = await _equity(paper_bot) - before
    assert abs(first.trade.pnl + rest.trade.pnl - change) < TINY
    assert abs(first.trade.fee + rest.trade.fee - (opening + closing + last_closing)) < TINY


async def test_bybit_partial_and_final_close_are_the_wallets_change(
    bybit_bot: BotHarness, server: ExchangeServer
) -> None:
    wallet = server.account(KEY).wallet
    await _open(bybit_bot, TRADER, "/long BTC 1200 10")  # 0.02 BTC at 60,000: fee 0.66
    server.set_price("BTCUSDT", "61000")
    closed = await _close(bybit_bot, "/close BTC 50")
    assert "Realised PnL: +9.33 USDT (after fees of 0.6655 USDT, opening and closing)" in closed
    (half,) = await bybit_bot.services.history.recent(TRADER)
    # 0.01 closed: 10 − 0.3355 closing − 0.33 (half of the opening 0.66)
    assert (half.trade.fee, half.trade.pnl) == (Decimal("0.6655"), Decimal("9.3345"))
    server.set_price("BTCUSDT", "59200")  # above the stop loss at 59,100
    await _close(bybit_bot, "/close BTC")
    rest, _ = await bybit_bot.services.history.recent(TRADER)
    # the other 0.01: −8 − 0.3256 closing − 0.33, the rest of the opening fee
    assert (rest.trade.fee, rest.trade.pnl) == (Decimal("0.6556"), Decimal("-8.6556"))
    change = server.account(KEY).wallet - wallet
    assert change == Decimal("0.6789") == half.trade.pnl + rest.trade.pnl
    (report,) = texts(await bybit_bot.send(TRADER, "/pnl"))
    assert "PnL: +0.68 USDT after 1.32 USDT fees" in report  # 0.66 + 0.3355 + 0.3256
    (listed,) = texts(await bybit_bot.send(TRADER, "/trades"))
    assert "+9.33" in listed and "-8.66" in listed
