"""Orders a crash left unknown are settled as the bot starts again, and their traders told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.offline_api import FakeTelegramState
from core.exchange.credentials import ApiCredentials
from core.exchange.models import OrderRequest, OrderType, Side
from core.lifecycle import IntentStatus as status
from db.repositories.intents import IntentRepository, NewIntent
from services.notices import settled_text
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
BTC = "BTC/USDT:USDT"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=5, seed=7) as running:
        running.add_account("key-42", "secret-42", Decimal("5000"))
        running.set_price("BTCUSDT", "60000")
        yield running


def _intent(cid: str, qty: str) -> NewIntent:
    return NewIntent(cid, TRADER, "bybit", "demo", BTC, "buy", "market", Decimal(qty), "manual")


async def _interrupted(bot: BotHarness) -> IntentRepository:
    """Three orders a crash cut off: one reached the exchange, one did not, one never left."""
    intents = IntentRepository(bot.services.users._users.store)
    now = datetime.now(UTC)
    for cid, qty in (("twfilled1", "0.001"), ("twlost2", "0.002"), ("twunsent3", "0.003")):
        await intents.create(_intent(cid, qty), now)
    await intents.mark_sent("twfilled1", now)
    await intents.mark_sent("twlost2", now)
    request = OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.001"), "twfilled1")
    async with bot.services.exchanges.lease(TRADER, "bybit", "demo") as client:
        await client.create_order(request)  # the answer was lost in the crash
    return intents


async def _told(bot: BotHarness, count: int) -> list[str]:
    for _ in range(100):
        # The dispatcher may join one chat's notices into a digest, one notice a paragraph.
        paragraphs = [p for t in texts(bot.state.calls) for p in t.split("\n\n")]
        found = [p for p in paragraphs if "interrupted before" in p]
        if len(found) >= count:
            return sorted(found)
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} settlement notices: {texts(bot.state.calls)}")


async def test_a_restart_settles_what_the_crash_left_and_tells_the_trader(
    tmp_path: Path, server: ExchangeServer
) -> None:
    state = FakeTelegramState()
    urls = {"bybit": server.base_url}
    async with running_bot(tmp_path, state=state, exchange_urls=urls) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(
            TRADER, "bybit", "demo", ApiCredentials("key-42", "secret-42")
        )
        intents = await _interrupted(bot)

    async with running_bot(tmp_path, state=state, exchange_urls=urls) as bot:
        # Seconds after the start, not a minute: these are younger than 30 s, but no sender
        # of this run holds them.
        told = await _told(bot, 3)
        intents = IntentRepository(bot.services.users._users.store)
        filled = await intents.get("twfilled1")
        assert filled is not None and filled.status == status.FILLED
        assert filled.avg_price is not None
        for cid in ("twlost2", "twunsent3"):
            record = await intents.get(cid)
            assert record is not None and record.status == status.REJECTED
        assert told == [
            "✅ Your order buy 0.001 BTC/USDT:USDT, interrupted before Bybit answered, was "
            f"filled: 0.001 at {filled.avg_price}. /positions shows it.",
            "❌ Your order buy 0.002 BTC/USDT:USDT, interrupted before Bybit answered, was "
            "not placed: it never got there. Nothing was traded.",
            "❌ Your order buy 0.003 BTC/USDT:USDT, interrupted before Bybit answered, was "
            "not placed: it was never sent. Nothing was traded.",
        ]
        assert await bot.services.settlement.settle() == []  # each is settled and told once
    orders = server.account("key-42").orders.values()
    assert sorted(o.link_id for o in orders if o.link_id) == ["twfilled1"]  # nothing resent


async def test_orders_of_this_run_wait_until_they_are_30_s_old(
    tmp_path: Path, server: ExchangeServer
) -> None:
    async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(
            TRADER, "bybit", "demo", ApiCredentials("key-42", "secret-42")
        )
        await asyncio.sleep(0.05)  # the start-up settlement has run
        intents = IntentRepository(bot.services.users._users.store)
        now = datetime.now(UTC)
        await intents.create(_intent("twyoung1", "0.001"), now)
        await intents.mark_sent("twyoung1", now)  # its sender may still be waiting
        assert await bot.services.settlement.settle() == []
        settled = await bot.services.settlement.settle(older_than_s=0)
        assert [i.client_order_id for i in settled] == ["twyoung1"]
        assert settled_text(settled[0]).startswith("❌ Your order buy 0.001")
        assert now - settled[0].created_at < timedelta(seconds=5)
