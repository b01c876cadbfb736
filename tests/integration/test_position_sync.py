"""Position sync and limit order expiry against the local Bybit server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.ids import client_order_id
from db.repositories.intents import NewIntent
from db.store import Store
from tests.integration.autotrade_world import BTC, World, world

USER = 2


@pytest.fixture
async def w(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    async with world(store, tmp_path) as running:
        await running.trader(USER, "bybit", size_usdt=Decimal(600))
        yield running


async def _auto_position(w: World) -> int:
    signal = await w.signal()
    await w.services.autotrader.on_signal(signal)
    await w.services.position_sync.sync_once()
    return signal.id


async def test_first_sync_records_the_fill_of_an_auto_trade(w: World) -> None:
    signal_id = await _auto_position(w)

    outcome = await w.rows(
        "SELECT status, CAST(fill_price AS REAL) FROM executions WHERE signal_id = ?", signal_id
    )
    assert outcome == [("filled", 60000.0)]
    stored = await w.rows("SELECT symbol, side, CAST(qty AS REAL), origin FROM active_positions")
    assert stored == [(BTC, "long", 0.01, "auto")]
    told = await w.rows("SELECT dedup_key FROM notifications ORDER BY id")
    assert told == [(f"auto:{signal_id}:{USER}",), (f"auto-fill:{signal_id}:{USER}",)]


async def test_take_profit_on_the_exchange_becomes_exactly_one_trade(w: World) -> None:
    signal_id = await _auto_position(w)
    w.server.set_price("BTCUSDT", "62000")  # through the 61,800 take profit
    w.clock.advance(11)  # the cached positions expire

    first = await w.services.position_sync.sync_once()
    w.clock.advance(31)
    await w.services.position_sync.sync_once()

    assert first.closed == 1 and first.logged == 1
    trades = await w.rows(
        "SELECT side, CAST(qty AS REAL), CAST(entry_price AS REAL), CAST(exit_price AS REAL), "
        "close_reason, origin, signal_id FROM trade_logs"
    )
    # the exchange filled the take profit at the gap price, 62,000, not at its 61,800 level
    assert trades == [("long", 0.01, 60000.0, 62000.0, "take_profit", "auto", signal_id)]
    assert await w.rows("SELECT id FROM active_positions") == []
    stops = await w.rows("SELECT kind FROM notifications WHERE dedup_key LIKE 'fill-close:%'")
    assert stops == [("stop",)]


async def test_manual_close_on_the_exchange_is_picked_up(w: World) -> None:
    await _auto_position(w)
    exchange = w.server.ccxt(f"key{USER}", f"secret{USER}")
    try:  # the trader closes it in the exchange's own app
        await exchange.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    finally:
        await exchange.close()
    w.clock.advance(11)

    report = await w.services.position_sync.sync_once()

    assert report.closed == 1
    trades = await w.rows(
        "SELECT CAST(qty AS REAL), CAST(exit_price AS REAL), close_reason, pnl < 0 FROM trade_logs"
    )
    assert trades == [(0.01, 60000.0, "exchange", 1)]  # flat price: the fee is the loss
    # both legs: 600 USDT × 0.055 % to open and to close; the wallet lost 0.66
    fees = await w.rows("SELECT CAST(fee AS REAL), CAST(pnl AS REAL) FROM trade_logs")
    assert fees == [(0.66, -0.66)]
    assert await w.rows("SELECT id FROM active_positions") == []
    told = await w.rows("SELECT kind FROM notifications WHERE dedup_key LIKE 'fill-close:%'")
    assert told == [("fill",)]


async def test_close_logged_by_the_bot_is_not_logged_again(w: World) -> None:
    await _auto_position(w)
    card = await w.services.trading.close_card(USER, "BTC", None)
    await w.services.trading.confirm(USER, card.client_order_id)
    w.clock.advance(11)

    await w.services.position_sync.sync_once()

    assert len(await w.rows("SELECT id FROM trade_logs")) == 1
    assert await w.rows("SELECT id FROM active_positions") == []


async def test_limit_order_past_its_time_is_cancelled(w: World) -> None:
    services = w.services
    await services.strategy.change(
        USER, "limit_order_ttl_min", "5", accounts=services.accounts, market=services.market
    )
    cid = client_order_id("manual", USER, "resting")
    await w.services.executor.record(
        NewIntent(cid, USER, "bybit", "demo", BTC, "buy", "limit", Decimal("0.01"), "manual",
                  price=Decimal(50000))
    )  # fmt: skip
    async with w.services.exchanges.lease(USER, "bybit", "demo") as client:
        await w.services.executor.place(client, cid)
    await w.services.position_sync.sync_once()  # notes the resting order and its deadline

    early = await w.services.order_expiry.expire_once()
    w.clock.advance(6 * 60)
    due = await w.services.order_expiry.expire_once()

    assert (early.due, due.cancelled) == (0, 1)
    order = w.server.account(f"key{USER}").by_link[cid]
    assert order.status == "Cancelled"
    assert await w.rows("SELECT status FROM pending_limit_orders") == [("expired",)]
    assert await w.rows("SELECT status FROM order_intents WHERE client_order_id = ?", cid) == [
        ("cancelled",)
    ]
    assert (await w.services.order_expiry.expire_once()).due == 0
