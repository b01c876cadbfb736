"""Limit orders on the local Bybit server through the real Application and real ccxt:
resting, filled after a price move, filled in part then expired, post-only, and a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.exchange.credentials import ApiCredentials
from db.repositories.intents import IntentRepository
from db.repositories.licenses import LicenseRepository
from tests.exchange_server import ExchangeServer
from tests.fakes.clock import FakeClock
from tests.handlers.test_trading import _card
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
KEY, SECRET = "limit-key", "limit-secret"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=20, seed=5) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


def _options(server: ExchangeServer, clock: FakeClock) -> dict[str, Any]:
    return {"exchange_urls": {"bybit": server.base_url}, "clock": clock}


async def _ready(bot: BotHarness) -> None:
    await bot.send(TRADER, "/start")
    await bot.services.accounts.connect(TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET))
    now = bot.services.clock.now()
    await LicenseRepository(bot.store).extend(TRADER, 30, "pro", "grant", now)
    await bot.send(TRADER, "/set limit_order_ttl_min 5")


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def bot(
    tmp_path: Path, server: ExchangeServer, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, **_options(server, clock)) as harness:
        await _ready(harness)
        yield harness


async def _place(bot: BotHarness, text: str) -> tuple[str, str]:
    """Send a limit command, confirm its card; return the reply and the client order id."""
    message, cid = _card(await bot.send(TRADER, text))
    (done,) = texts(await bot.press(TRADER, message, f"ok:{cid}"))
    return done, cid


async def _rows(bot: BotHarness, sql: str, *params: object) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await bot.store.fetchall("t", sql, params)]


async def _told(bot: BotHarness, needle: str) -> str:
    call = await bot.state.wait_for_call("sendMessage", lambda c: needle in str(c.params["text"]))
    return str(call.params["text"])


async def test_a_limit_rests_then_fills_when_the_price_comes_to_it(
    bot: BotHarness, server: ExchangeServer, clock: FakeClock
) -> None:
    done, cid = await _place(bot, "/long BTC 600 5 @ 59k")

    assert done.startswith("📌 Limit order placed: LONG BTC/USDT:USDT · Bybit (demo)"), done
    assert "Buy 0.01 BTC at 59,000 USDT, resting on the book" in done
    assert "Cancelled at 2026-03-02 09:05 UTC if still unfilled." in done
    order = server.account(KEY).by_link[cid]
    assert (order.order_type, order.price, order.time_in_force) == ("Limit", 59000, "GTC")
    assert order.status == "New"
    assert await _rows(bot, "SELECT status, price FROM pending_limit_orders") == [
        ("open", "59000.0")
    ]
    assert await bot.services.position_sync.sync_once()  # nothing filled: no position yet
    assert await _rows(bot, "SELECT symbol FROM active_positions") == []

    server.set_price("BTCUSDT", "58950")  # trades through the limit: it fills at 59,000
    assert order.status == "Filled"
    clock.advance(30)  # the next sync, past the cached read of the first one
    await bot.services.position_sync.sync_once()

    ((side, qty, entry),) = await _rows(bot, "SELECT side, qty, entry_price FROM active_positions")
    assert (side, Decimal(qty), Decimal(entry)) == ("long", Decimal("0.01"), 59000)
    assert await _rows(bot, "SELECT status FROM pending_limit_orders") == [("closed",)]
    # The fill is told from the exchange's own execution, once, at its real price and fee.
    await bot.services.fill_catchup.catch_up_active()
    told = await _told(bot, "Order filled")
    assert "Order filled: BUY 0.01 BTC/USDT:USDT at 59000, fee " in told, told
    assert (await bot.services.order_expiry.expire_once()).due == 0


async def test_a_part_filled_limit_expires_and_the_notice_says_how_much_filled(
    bot: BotHarness, server: ExchangeServer, clock: FakeClock
) -> None:
    _, cid = await _place(bot, "/long BTC 600 5 @-1%")  # 59,400
    server.fill_part(KEY, cid, "0.004")

    clock.advance(4 * 60)
    early = await bot.services.order_expiry.expire_once()
    clock.advance(2 * 60)
    due = await bot.services.order_expiry.expire_once()

    assert (early.due, due.cancelled) == (0, 1)
    assert server.account(KEY).by_link[cid].status == "PartiallyFilledCanceled"
    told = await _told(bot, "Limit order expired")
    assert "buy 0.010 BTC/USDT:USDT at 59400" in told, told
    assert "0.004 of 0.010 had filled at 59400; the other 0.006 is cancelled." in told
    intent = await IntentRepository(bot.store).get(cid)
    assert intent is not None
    assert (intent.status, intent.filled_qty, intent.avg_price) == (
        "cancelled",
        Decimal("0.004"),
        Decimal("59400"),
    )
    assert await _rows(bot, "SELECT status FROM pending_limit_orders") == [("expired",)]
    await bot.services.position_sync.sync_once()  # the filled part is a position like any fill
    ((qty,),) = await _rows(bot, "SELECT qty FROM active_positions")
    assert Decimal(qty) == Decimal("0.004")


async def test_an_unfilled_limit_expires_with_a_notice_that_nothing_filled(
    bot: BotHarness, server: ExchangeServer, clock: FakeClock
) -> None:
    _, cid = await _place(bot, "/short BTC 600 5 @+1%")  # 60,600

    clock.advance(6 * 60)
    assert (await bot.services.order_expiry.expire_once()).cancelled == 1

    assert server.account(KEY).by_link[cid].status == "Cancelled"
    told = await _told(bot, "Limit order expired")
    assert "sell 0.009 BTC/USDT:USDT at 60600" in told and told.endswith("Nothing had filled.")


async def test_post_only_goes_to_bybit_and_one_that_would_take_is_cancelled(
    bot: BotHarness, server: ExchangeServer
) -> None:
    assert "post_only is now on" in texts(await bot.send(TRADER, "/set post_only on"))[0]
    _, resting = await _place(bot, "/long BTC 600 5 @ 59000")
    assert server.account(KEY).by_link[resting].time_in_force == "PostOnly"

    message, cid = _card(await bot.send(TRADER, "/long BTC 600 5 @-0.5%"))  # 59,700
    server.set_price("BTCUSDT", "59650")  # by Confirm the price has gone through it
    (done,) = texts(await bot.press(TRADER, message, f"ok:{cid}"))

    assert done.startswith("❌ Not placed: LONG BTC/USDT:USDT · Bybit (demo)"), done
    assert "Post-only: the exchange cancelled it because it would have filled at once" in done
    order = server.account(KEY).by_link[cid]
    assert (order.status, order.cum_qty) == ("Cancelled", 0)
    assert order.reject_reason == "EC_PostOnlyWillTakeLiquidity"
    assert await _rows(
        bot, "SELECT client_order_id FROM pending_limit_orders WHERE status = 'open'"
    ) == [(resting,)]


async def test_a_resting_limit_is_still_known_after_a_restart_and_expires(
    tmp_path: Path, server: ExchangeServer, clock: FakeClock
) -> None:
    async with running_bot(tmp_path, **_options(server, clock)) as bot:
        await _ready(bot)
        done, cid = await _place(bot, "/long BTC 600 5 @ 58000")
        assert done.startswith("📌 Limit order placed"), done
        state = bot.state

    clock.advance(6 * 60)
    async with running_bot(tmp_path, state=state, **_options(server, clock)) as bot:
        assert bot.app.job_queue is not None
        (job,) = bot.app.job_queue.get_jobs_by_name("order_expiry")
        await job.run(bot.app)
        told = await _told(bot, "Limit order expired")
        assert "buy 0.010 BTC/USDT:USDT at 58000" in told and "Nothing had filled." in told
        assert server.account(KEY).by_link[cid].status == "Cancelled"
        assert (await bot.services.order_expiry.expire_once()).due == 0
    expired = [c for c in state.calls if "Limit order expired" in str(c.params.get("text"))]
    assert len(expired) == 1


async def test_a_limit_that_fills_hours_after_it_was_placed_is_still_picked_up(
    bot: BotHarness, server: ExchangeServer, clock: FakeClock
) -> None:
    await bot.send(TRADER, "/set limit_order_ttl_min 600")
    _, cid = await _place(bot, "/long BTC 600 5 @ 59k")
    clock.advance(3 * 3600)  # long past the hour position sync looks back on for new orders
    await bot.services.position_sync.sync_once()
    assert await _rows(bot, "SELECT symbol FROM active_positions") == []

    server.set_price("BTCUSDT", "58900")
    clock.advance(30)
    await bot.services.position_sync.sync_once()

    assert await _rows(bot, "SELECT side FROM active_positions") == [("long",)]
    assert await _rows(bot, "SELECT status FROM pending_limit_orders") == [("closed",)]
    assert server.account(KEY).by_link[cid].status == "Filled"
