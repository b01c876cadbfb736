"""Key health through the real Application and the real ccxt against the local Bybit server:
/connect refuses a key that cannot trade and warns about withdrawals and a missing IP
whitelist; /keys and its Re-check show the same; a healthy key connects silently."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.exchange.key_info import KeyInfo
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
KEY, SECRET = "health-key-a1b2", "health-secret-9f8e"
CONNECTED = "Connected Bybit (demo) — balance 10,000 USDT."
WITHDRAW = "⚠️ Bybit says this key can withdraw funds."
NO_IP = "⚠️ This key has no IP whitelist on Bybit"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=5, seed=4) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        yield running


@pytest.fixture
async def bot(tmp_path: Path, server: ExchangeServer) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as harness:
        yield harness


async def set_key(server: ExchangeServer, **permissions: Any) -> None:
    """Through the server's /test control endpoint, as a separate process would."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.base_url}/test/key", data=json.dumps({"api_key": KEY, **permissions})
        ) as answer,
    ):
        assert answer.status == 200 and (await answer.json())["ok"] is True


async def connect(bot: BotHarness) -> str:
    """/connect → Bybit → demo → key → secret; the final reply."""
    prompt = (await bot.send(TRADER, "/connect"))[-1].result
    assert isinstance(prompt, dict)
    prompt = (await bot.press(TRADER, prompt, "connect:ex:bybit"))[-1].result
    assert isinstance(prompt, dict)
    await bot.press(TRADER, prompt, "connect:type:demo")
    await bot.send(TRADER, KEY)
    (reply,) = texts(await bot.send(TRADER, SECRET))
    return reply


async def test_healthy_key_is_accepted_silently(bot: BotHarness, server: ExchangeServer) -> None:
    reply = await connect(bot)
    assert reply == f"{CONNECTED}\nIt is now your active account; /keys lists your accounts."
    assert server.stats.requests["/v5/user/query-api"] >= 1  # it was asked
    (listing,) = texts(await bot.send(TRADER, "/keys"))
    assert "⚠️" not in listing and "⛔" not in listing


async def test_withdraw_enabled_key_is_connected_with_a_warning(
    bot: BotHarness, server: ExchangeServer
) -> None:
    await set_key(server, withdraw=True)
    reply = await connect(bot)
    assert reply.startswith(CONNECTED)
    assert WITHDRAW in reply and "without the withdrawal permission" in reply
    assert NO_IP not in reply
    (account,) = await bot.services.accounts.accounts(TRADER)
    assert account.ref.exchange == "bybit"  # stored: it trades
    (listing,) = texts(await bot.send(TRADER, "/keys"))
    assert "⚠️ withdrawals enabled: a key without them is safer" in listing


async def test_key_without_ip_whitelist_is_connected_with_a_warning(
    bot: BotHarness, server: ExchangeServer
) -> None:
    await set_key(server, ips=["*"])
    reply = await connect(bot)
    assert reply.startswith(CONNECTED) and NO_IP in reply and WITHDRAW not in reply
    await set_key(server, ips=["*"], withdraw=True)
    message = (await bot.send(TRADER, "/keys"))[-1].result
    assert isinstance(message, dict)
    assert "⚠️ no IP whitelist: a key without them" in message["text"]  # cached for 10 min
    (account,) = await bot.services.accounts.accounts(TRADER)
    calls = await bot.press(TRADER, message, f"keys:check:{account.ref.credential_id}")
    (toast,) = [str(c.params.get("text")) for c in calls if c.method == "answerCallbackQuery"]
    assert toast == "Bybit (demo) OK — balance 10,000 USDT · ⚠️ withdrawals enabled, no IP whitelist"
    (edited,) = texts(calls)
    assert "⚠️ withdrawals enabled, no IP whitelist: a key without them is safer" in edited


async def test_read_only_key_is_refused_and_nothing_is_stored(
    bot: BotHarness, server: ExchangeServer
) -> None:
    await set_key(server, read_only=True, trade=False)
    reply = await connect(bot)
    assert reply.startswith("Bybit says this key cannot trade (read-only")
    assert "Create a key with contract trading" in reply
    assert reply.endswith("Nothing was stored. Send /connect to try again.")
    assert await bot.services.accounts.accounts(TRADER) == []
    assert server.stats.requests["/v5/account/wallet-balance"] == 0  # refused before the rest


async def test_key_turned_read_only_later_is_flagged_by_keys(
    bot: BotHarness, server: ExchangeServer
) -> None:
    assert (await connect(bot)).startswith(CONNECTED)
    await set_key(server, read_only=True)
    message = (await bot.send(TRADER, "/keys"))[-1].result
    assert isinstance(message, dict)
    (account,) = await bot.services.accounts.accounts(TRADER)
    calls = await bot.press(TRADER, message, f"keys:check:{account.ref.credential_id}")
    (toast,) = [str(c.params.get("text")) for c in calls if c.method == "answerCallbackQuery"]
    assert toast.startswith("Bybit (demo): Bybit says this key cannot trade")
    (edited,) = texts(calls)
    assert "⛔ this key cannot trade: /connect a key with trading enabled" in edited


async def test_paper_key_is_healthy(bot: BotHarness) -> None:
    prompt = (await bot.send(TRADER, "/connect"))[-1].result
    assert isinstance(prompt, dict)
    (reply,) = texts(await bot.press(TRADER, prompt, "connect:ex:paper"))
    assert "⚠️" not in reply
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        assert await client.fetch_key_info() == KeyInfo.healthy()
