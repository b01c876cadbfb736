"""Auto-trade entering with a limit at the signal's price (`/set autotrade_entry limit`), on
the local Bybit server: it rests, fills later and is then recorded like any auto-trade fill;
with post-only, one the price has not left is cancelled by the venue and said so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.ids import client_order_id
from db.store import Store
from services.autotrade import POST_ONLY_TOOK
from tests.integration.autotrade_world import World, world

USER = 2


@pytest.fixture
async def w(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    async with world(store, tmp_path) as running:
        yield running


async def test_a_limit_entry_rests_at_the_signal_price_and_its_fill_is_recorded(w: World) -> None:
    await w.trader(USER, "bybit", size_usdt=Decimal(600), autotrade_entry="limit")
    signal = await w.signal()  # at 60,000
    w.server.set_price("BTCUSDT", "60100")  # gone up since: a buy limit at 60,000 rests

    await w.services.autotrader.on_signal(signal)

    cid = client_order_id("auto", signal.id, USER)
    order = w.server.account(f"key{USER}").by_link[cid]
    assert (order.order_type, order.price, order.status) == ("Limit", Decimal(60000), "New")
    assert order.time_in_force == "GTC"
    assert await w.rows("SELECT status FROM executions WHERE signal_id = ?", signal.id) == [
        ("placed",)
    ]
    assert await w.rows("SELECT id FROM active_positions") == []  # a resting limit opened nothing
    (payload,) = await w.rows("SELECT payload FROM notifications WHERE dedup_key LIKE 'auto:%'")
    assert "Auto-trade limit placed: LONG BTC/USDT:USDT 0.010 at 60000" in str(payload[0])

    await w.services.position_sync.sync_once()  # notes the resting order for expiry
    assert await w.rows("SELECT status FROM pending_limit_orders") == [("open",)]
    w.server.set_price("BTCUSDT", "59990")
    assert order.status == "Filled"
    w.clock.advance(30)
    await w.services.position_sync.sync_once()

    ((status, fill_price),) = await w.rows(
        "SELECT status, fill_price FROM executions WHERE signal_id = ?", signal.id
    )
    assert (status, Decimal(str(fill_price))) == ("filled", Decimal(60000))
    assert await w.rows("SELECT origin, signal_id FROM active_positions") == [("auto", signal.id)]
    assert await w.rows("SELECT status FROM pending_limit_orders") == [("closed",)]


async def test_a_post_only_limit_entry_the_price_has_not_left_is_cancelled(w: World) -> None:
    await w.trader(USER, "bybit", size_usdt=Decimal(600), autotrade_entry="limit", post_only=True)
    signal = await w.signal()  # the price is still the signal's: a buy there would take

    await w.services.autotrader.on_signal(signal)

    order = w.server.account(f"key{USER}").by_link[client_order_id("auto", signal.id, USER)]
    assert (order.time_in_force, order.status) == ("PostOnly", "Cancelled")
    assert await w.rows("SELECT status, reason FROM executions WHERE signal_id = ?", signal.id) == [
        ("failed", POST_ONLY_TOOK)
    ]
    assert await w.rows("SELECT id FROM active_positions") == []
