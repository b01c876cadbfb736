"""A slow step shows "typing…" in the chat; a fast one shows nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.credentials import ApiCredentials
from tests.exchange_server import ExchangeServer, FaultKind
from tests.harness import running_bot, texts

TRADER = 42


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=5, seed=5) as running:
        running.add_account("key-42", "secret-42", Decimal("5000"))
        yield running


def _actions(calls: list[object]) -> list[str]:
    return [
        c.params["action"]  # type: ignore[attr-defined]
        for c in calls
        if c.method == "sendChatAction"  # type: ignore[attr-defined]
    ]


async def test_connect_shows_typing_while_the_keys_are_checked(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        prompt = (await bot.send(TRADER, "/connect"))[-1].result
        assert isinstance(prompt, dict)
        calls = await bot.press(TRADER, prompt, "connect:ex:paper")
        assert _actions(calls) == ["typing"]
        assert [c.params["chat_id"] for c in calls if c.method == "sendChatAction"] == [TRADER]
        (reply,) = texts(calls)
        assert reply.startswith("Connected Paper")


async def test_a_cold_account_read_shows_typing_a_cached_one_does_not(
    tmp_path: Path, server: ExchangeServer
) -> None:
    async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as bot:
        await bot.send(TRADER, "/start")
        creds = ApiCredentials("key-42", "secret-42")
        await bot.services.accounts.connect(TRADER, "bybit", "demo", creds)
        bot.services.cache.clear()
        server.faults.add("/v5/account/wallet-balance", FaultKind.LATENCY, times=None, delay_ms=700)
        cold = await bot.send(TRADER, "/balance")
        assert _actions(cold) == ["typing"]
        assert texts(cold)[0].startswith("Balance · Bybit (demo)")
        warm = await bot.send(TRADER, "/balance")  # served from the cache
        assert _actions(warm) == []
        assert texts(warm)[0].startswith("Balance · Bybit (demo)")
