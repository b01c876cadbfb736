"""A DEBUG session with /connect (real Application, real ccxt against the local Bybit server,
OKX with a passphrase) writes neither the bot token nor any key, secret or passphrase to a log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from bot.logs import WIRE_LOGGERS, configure_logging
from bot.offline_api import ApiCall
from bot.offline_updates import make_callback_update, make_message_update
from core.exchange.ccxt_venue import rebase_urls
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot

TRADER = 42
TOKEN = "123456:TEST-token-for-the-offline-bot-api"  # the harness's token
KEY, SECRET = "log-key-7c1d9e", "log-secret-4b8a2f"
OKX_KEY, OKX_SECRET, OKX_PHRASE = "okx-key-5e6f7a", "okx-secret-8b9c0d", "okx-phrase-1a2b"
SECRETS = (TOKEN, TOKEN.split(":")[1], KEY, SECRET, OKX_KEY, OKX_SECRET, OKX_PHRASE)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Let the test configure logging for the process, then put pytest's set-up back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {name: logging.getLogger(name).level for name in (*WIRE_LOGGERS, "apscheduler")}
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in named.items():
        logging.getLogger(name).setLevel(saved)


class Polled:
    """The trader's side: each update is fetched with getUpdates and queued for the running
    Application, as polling delivers it (so PTB logs both the result and "Processing update")."""

    def __init__(self, bot: BotHarness) -> None:
        self.bot = bot
        self.offset = 1

    async def _deliver(self, raw: dict[str, Any]) -> None:
        self.bot.state.push_update(raw)
        (update,) = await self.bot.app.bot.get_updates(offset=self.offset, timeout=0)
        self.offset = update.update_id + 1
        await self.bot.app.update_queue.put(update)

    async def say(self, text: str) -> None:
        await self._deliver(make_message_update(0, TRADER, text))

    async def press(self, message: dict[str, Any], data: str) -> None:
        await self._deliver(make_callback_update(0, TRADER, message, data))

    async def reply(self, method: str, starts: str) -> dict[str, Any]:
        def wanted(call: ApiCall) -> bool:
            return isinstance(call.result, dict) and str(call.result["text"]).startswith(starts)

        call = await self.bot.state.wait_for_call(method, wanted, timeout=30)
        assert isinstance(call.result, dict)
        return call.result


async def _connect(chat: Polled, exchange: str, title: str, *typed: str) -> None:
    await chat.say("/connect")
    prompt = await chat.reply("sendMessage", "Connect an account")
    await chat.press(prompt, f"connect:ex:{exchange}")
    prompt = await chat.reply("editMessageText", f"{title} — which account?")
    await chat.press(prompt, "connect:type:demo")
    await chat.reply("editMessageText", f"{title} (demo): send the API key.")
    for text in typed:
        await chat.say(text)


async def test_debug_session_with_connect_logs_no_secret(
    tmp_path: Path, restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "data" / "tradewind.log"
    configure_logging("DEBUG", log_file, wire=True)  # every library's request dump included
    async with ExchangeServer(symbols=5, seed=4) as server:
        server.add_account(KEY, SECRET, Decimal("10000"))
        urls = {"bybit": server.base_url, "okx": "http://127.0.0.1:9"}
        async with running_bot(tmp_path, exchange_urls=urls) as bot:
            chat = Polled(bot)
            await _connect(chat, "bybit", "Bybit", KEY, SECRET)
            await chat.reply("sendMessage", "Connected Bybit (demo)")
            await chat.say("/balance")
            await chat.reply("sendMessage", "")
            await _connect(chat, "okx", "OKX", OKX_KEY, OKX_SECRET, OKX_PHRASE)
            await chat.reply("sendMessage", "Could not check the keys: OKX")
            # The connected account's client lives in the pool while the bot runs, so its
            # secret is registered for certain (the failed OKX try's may be collected by now).
            logging.getLogger("tradewind.test").error("failed with %s", SECRET)
    for handler in logging.getLogger().handlers:
        handler.flush()

    log = log_file.read_text()
    stderr = capsys.readouterr().err
    # The dumps that used to carry the secrets were written, masked:
    assert "getUpdates" in log and "Processing update" in log and "text='***'" in log
    assert "/v5/account/wallet-balance" in log  # ccxt's own request log, at DEBUG
    assert "'X-BAPI-API-KEY': '***'" in log and "'X-BAPI-SIGN': '***'" in log
    assert "Set Bot API URL: https://api.telegram.org/bot***" in log
    assert "failed with ***" in stderr
    leaks = [s for s in SECRETS if s in log or s in stderr]
    assert leaks == []
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert log_file.parent.stat().st_mode & 0o777 == 0o700


def test_library_request_dumps_stay_quiet_unless_wanted(
    tmp_path: Path, restored_logging: None
) -> None:
    configure_logging("DEBUG", tmp_path / "t.log")
    for name in WIRE_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("telegram.ext.Application").isEnabledFor(logging.DEBUG)
    configure_logging("DEBUG", tmp_path / "t.log", wire=True)
    assert logging.getLogger("ccxt.base.exchange").isEnabledFor(logging.DEBUG)


@pytest.mark.parametrize(
    ("exchange", "path", "api", "masked"),
    [
        (
            "okx",
            "account/balance",
            "private",
            ["'OK-ACCESS-PASSPHRASE': '***'", "'OK-ACCESS-SIGN': '***'"],
        ),
        ("binance", "balance", "fapiPrivateV2", ["'X-MBX-APIKEY': '***'", "signature=***"]),
    ],
)
async def test_signing_headers_are_masked_even_for_keys_never_registered(
    tmp_path: Path, restored_logging: None, exchange: str, path: str, api: str, masked: list[str]
) -> None:
    """ccxt logs each signed request with its headers at DEBUG; the shapes alone are masked."""
    log_file = tmp_path / "tradewind.log"
    configure_logging("DEBUG", log_file, wire=True)
    key, secret, phrase = "unregistered-key", "unregistered-secret", "unregistered-phrase"
    client = getattr(ccxt_async, exchange)({"apiKey": key, "secret": secret, "password": phrase})
    client.urls["api"] = rebase_urls(client.urls["api"], "http://127.0.0.1:9")
    try:
        with pytest.raises(ccxt.NetworkError):
            await client.fetch2(path, [api], "GET", {})
    finally:
        await client.close()
    log = log_file.read_text()
    assert all(m in log for m in masked), log
    assert key not in log and phrase not in log
