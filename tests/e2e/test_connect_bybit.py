"""`tradewind run` as a real process: /connect a Bybit demo account on the local exchange server
(real ccxt, every private request signed and checked), then /keys shows it active."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from bot.offline_updates import make_callback_update, make_message_update
from tests.botapi_server import BotApiServer
from tests.e2e.process import tradewind_run
from tests.exchange_server import ExchangeServer

pytestmark = pytest.mark.e2e

TOKEN = "123456789:E2E-token-for-the-local-bot-api-server"
TRADER = 42
KEY, SECRET = "e2e-demo-key-c3d4", "e2e-demo-secret"


class Chat:
    """The trader's side of the conversation, over the local Bot API server."""

    def __init__(self, server: BotApiServer) -> None:
        self.server = server
        self.update_id = 0

    def _next(self) -> int:
        self.update_id += 1
        return self.update_id

    def say(self, text: str) -> int:
        """Send a text; its message id."""
        update = self.server.push_update(make_message_update(self._next(), TRADER, text))
        return int(update["message"]["message_id"])

    def press(self, message: dict[str, Any], data: str) -> None:
        self.server.push_update(make_callback_update(self._next(), TRADER, message, data))

    async def reply(self, method: str, starts: str) -> dict[str, Any]:
        def wanted(call: ApiCall) -> bool:  # the text as shown, HTML tags parsed away
            return isinstance(call.result, dict) and str(call.result["text"]).startswith(starts)

        call = await self.server.wait_for_call(method, wanted, timeout=30)
        assert isinstance(call.result, dict)
        return call.result

    async def deleted(self, message_id: int) -> None:
        def wanted(call: ApiCall) -> bool:
            return call.params.get("message_id") == message_id

        await self.server.wait_for_call("deleteMessage", wanted, timeout=30)


async def test_connect_bybit_demo_then_keys_shows_it_active(tmp_path: Path) -> None:
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
            await chat.reply("sendMessage", "Connected Bybit (demo) — balance 25,000.50 USDT.")
            assert exchange.stats.requests["/v5/account/wallet-balance"] >= 1
            assert exchange.stats.auth_failures == 0

            chat.say("/keys")
            keys = await chat.reply("sendMessage", "Your accounts")
            assert "● Bybit (demo) — active" in keys["text"] and "key …c3d4" in keys["text"]
            texts = [str(m.get("text", "")) for m in telegram.state.chat_messages(TRADER)]
            assert not any(KEY in t or SECRET in t for t in texts)
        log = bot.stderr
        assert bot.returncode == 0, log[-2000:]
        assert "Traceback" not in log, log[-2000:]
        assert KEY not in log and SECRET not in log
