"""`tradewind run` at TRADEWIND_LOG_LEVEL=DEBUG with every library's request dump on: real
polling, /connect of a Bybit demo account on the local exchange server, and nothing secret in
the log."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from tests.botapi_server import BotApiServer
from tests.e2e.process import tradewind_run
from tests.e2e.test_connect_bybit import KEY, SECRET, TOKEN, Chat
from tests.exchange_server import ExchangeServer

pytestmark = pytest.mark.e2e


async def test_debug_log_of_a_connect_session_holds_no_secret(tmp_path: Path) -> None:
    async with ExchangeServer(symbols=5, seed=8) as exchange, BotApiServer() as telegram:
        exchange.add_account(KEY, SECRET, Decimal("25000.5"))
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": telegram.base_url,
            "TRADEWIND_DB": str(tmp_path / "tradewind.db"),
            "TRADEWIND_METRICS_ADDR": "",
            "TRADEWIND_EXCHANGE_URLS": json.dumps({"bybit": exchange.base_url}),
            "TRADEWIND_FLOOD": "off",  # the chat is driven faster than anyone types
            "TRADEWIND_LOG_LEVEL": "DEBUG",
            "TRADEWIND_LOG_WIRE": "1",
        }
        env.pop("TRADEWIND_MASTER_KEY", None)
        chat = Chat(telegram)
        async with tradewind_run(env, tmp_path) as bot:
            chat.say("/connect")
            prompt = await chat.reply("sendMessage", "Connect an account")
            chat.press(prompt, "connect:ex:bybit")
            prompt = await chat.reply("editMessageText", "Bybit — which account?")
            chat.press(prompt, "connect:type:demo")
            await chat.reply("editMessageText", "Bybit (demo): send the API key.")
            await chat.deleted(chat.say(KEY))
            await chat.reply("sendMessage", "Now send the API secret.")
            await chat.deleted(chat.say(SECRET))
            await chat.reply("sendMessage", "Connected Bybit (demo)")
            chat.say("/balance")
            await chat.reply("sendMessage", "")
    log = bot.stderr
    assert bot.returncode == 0, log[-2000:]
    # The dumps that once carried the secrets are there, masked.
    assert "getUpdates" in log and "Processing update" in log
    assert "'X-BAPI-API-KEY': '***'" in log and "/v5/account/wallet-balance" in log
    leaks = [s for s in (TOKEN, TOKEN.split(":")[1], KEY, SECRET) if s in log]
    assert leaks == []
