"""A trader connects each venue through /connect and trades it through the real Application:
Bybit, Binance USDⓈ-M and OKX demo accounts on their local servers, real ccxt throughout.

/connect validates the keys against the venue, stores them encrypted, deletes the messages
that carried them and checks the account's position mode; /long → Confirm → /close → /trades
then runs the whole order path (client ids, lookups, TP/SL, leverage, fees) on each venue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from db.repositories.credentials import CredentialRepository
from db.repositories.licenses import LicenseRepository
from tests.exchange_server import ExchangeServer
from tests.exchange_server.binance import BinanceServer
from tests.exchange_server.okx import OkxServer
from tests.harness import BotHarness, running_bot, texts

pytestmark = pytest.mark.e2e

TRADER = 42
KEY, SECRET, PHRASE = "venue-key-9f3e", "venue-secret-77", "venue-phrase-1"
SERVERS: dict[str, type[ExchangeServer]] = {
    "bybit": ExchangeServer,
    "binance": BinanceServer,
    "okx": OkxServer,
}
TITLES = {"bybit": "Bybit", "binance": "Binance", "okx": "OKX"}


@pytest.fixture(params=list(SERVERS))
async def world(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, ExchangeServer, BotHarness]]:
    venue = request.param
    async with SERVERS[venue](symbols=20, seed=6) as server:
        if isinstance(server, OkxServer):
            server.add_account(KEY, SECRET, Decimal("10000"), passphrase=PHRASE)
        else:
            server.add_account(KEY, SECRET, Decimal("10000"))
        server.set_price("BTCUSDT", "60000")
        async with running_bot(tmp_path, exchange_urls={venue: server.base_url}) as bot:
            await bot.send(TRADER, "/start")
            clock = bot.services.clock
            await LicenseRepository(bot.store).extend(TRADER, 30, "pro", "grant", clock.now())
            yield venue, server, bot


def _last(calls: list[ApiCall]) -> dict[str, Any]:
    message = calls[-1].result
    assert isinstance(message, dict), texts(calls)
    return message


async def _connect(bot: BotHarness, venue: str) -> str:
    """/connect <venue> demo, keys typed in; the bot's last words."""
    prompt = _last(await bot.send(TRADER, "/connect"))
    prompt = _last(await bot.press(TRADER, prompt, f"connect:ex:{venue}"))
    await bot.press(TRADER, prompt, "connect:type:demo")
    typed = [KEY, SECRET] + ([PHRASE] if venue == "okx" else [])
    for value in typed:
        calls = await bot.send(TRADER, value)
        assert [c.method for c in calls].count("deleteMessage") == 1  # the key's message
    (reply,) = texts(calls)
    return reply


def _protection(server: ExchangeServer) -> tuple[Decimal, Decimal]:
    """The TP and SL the venue holds for BTC: Bybit on the position, Binance as conditional
    orders of their own, OKX as algo orders."""
    if isinstance(server, OkxServer):
        live = server.algos.live(server.account(KEY), "BTCUSDT")
        return max((a.tp for a in live), default=Decimal(0)), max(
            (a.sl for a in live), default=Decimal(0)
        )
    if isinstance(server, BinanceServer):
        live = [a for a in server.algos(server.account(KEY)) if a["algoStatus"] == "NEW"]
        levels = {a["orderType"]: Decimal(a["triggerPrice"]) for a in live}
        return levels.get("TAKE_PROFIT_MARKET", Decimal(0)), levels.get("STOP_MARKET", Decimal(0))
    held = server.account(KEY).position("BTCUSDT")
    return held.take_profit, held.stop_loss


def _card(calls: list[ApiCall]) -> tuple[dict[str, Any], str]:
    (message,) = [c.result for c in calls if c.method == "sendMessage"]
    assert isinstance(message, dict), texts(calls)
    data = message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    return message, data.removeprefix("ok:")


async def test_connect_then_long_close_and_trades(
    world: tuple[str, ExchangeServer, BotHarness],
) -> None:
    venue, server, bot = world
    name = f"{TITLES[venue]} (demo)"
    reply = await _connect(bot, venue)
    assert reply.startswith(f"Connected {name} — balance 10,000 USDT."), reply
    chat = [str(m.get("text", "")) for m in bot.state.chat_messages(TRADER)]
    assert not any(KEY in t or SECRET in t or PHRASE in t for t in chat)
    (stored,) = await CredentialRepository(bot.store).for_user(TRADER)
    assert KEY not in stored.api_key_enc and SECRET not in stored.api_secret_enc

    message, opening = _card(await bot.send(TRADER, "/long BTC 600 10"))
    assert message["text"].startswith(f"Confirm LONG BTC/USDT:USDT · {name}")
    (opened,) = texts(await bot.press(TRADER, message, f"ok:{opening}"))
    assert opened.startswith(f"✅ Opened: LONG BTC/USDT:USDT · {name}"), opened
    assert "Filled 0.01 BTC at 60,000 USDT" in opened and "Fee: 0.3300 USDT" in opened
    await bot.press(TRADER, message, f"ok:{opening}")  # a repeated press sends nothing
    account = server.account(KEY)
    assert sum(1 for o in account.orders.values() if o.link_id == opening) == 1
    assert account.position("BTCUSDT").size == Decimal("0.01")
    assert account.lev(server.market.instrument("BTCUSDT")) == Decimal(10)
    take_profit, stop_loss = _protection(server)
    assert take_profit > 60000 > stop_loss > 0  # the default TP/SL reached the venue

    server.set_price("BTCUSDT", "61000")
    message, closing = _card(await bot.send(TRADER, "/close BTC"))
    (closed,) = texts(await bot.press(TRADER, message, f"ok:{closing}"))
    assert closed.startswith(f"✅ Closed: LONG BTC/USDT:USDT · {name}"), closed
    assert "Filled 0.01 BTC at 61,000 USDT" in closed and "Realised PnL: +9.33 USDT" in closed
    assert account.position("BTCUSDT").size == 0
    assert _protection(server) == (0, 0)  # no TP/SL left behind to close a later position

    (listed,) = texts(await bot.send(TRADER, "/trades"))
    assert "BTC long 0.01 @ 60,000.00 → 61,000.00 +9.33" in listed  # after both legs' fees
    (record,) = await bot.services.history.recent(TRADER)
    assert (record.trade.exchange, record.trade.fee) == (venue, Decimal("0.6655"))


@pytest.mark.parametrize("venue", list(SERVERS))
async def test_connect_explains_a_position_mode_tradewind_cannot_trade(
    venue: str, tmp_path: Path
) -> None:
    async with SERVERS[venue](symbols=5, seed=6) as server:
        if isinstance(server, OkxServer):
            server.add_account(KEY, SECRET, passphrase=PHRASE)
            server.long_short.add(KEY)
            change = "Switch it in Trade → Settings → Position mode"
        elif isinstance(server, BinanceServer):
            server.add_account(KEY, SECRET)
            server.hedge_mode.add(KEY)
            change = "Switch it in Binance Futures → Preferences → Position Mode"
        else:
            server.add_account(KEY, SECRET).hedge = True
            change = "Switch it in Derivatives → Preferences → Position Mode"
        async with running_bot(tmp_path, exchange_urls={venue: server.base_url}) as bot:
            await bot.send(TRADER, "/start")
            reply = await _connect(bot, venue)
            assert change in reply and reply.endswith("Nothing was stored."), reply
            assert await bot.services.accounts.accounts(TRADER) == []
