"""Auto-trading: one order per (signal, user) whatever happens, every outcome audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.ids import client_order_id
from db.repositories.positions import ActivePosition, PositionRepository
from db.store import Store
from tests.integration.autotrade_world import BTC, World, world

PAPER_USER, BYBIT_USER = 1, 2


@pytest.fixture
async def w(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    async with world(store, tmp_path) as running:
        yield running


async def _paper_fills(w: World, user_id: int) -> int:
    async with w.services.exchanges.lease(user_id, "paper", "paper") as client:
        return len(await client.recent_fills())  # type: ignore[attr-defined]


async def test_same_signal_twice_places_one_order_per_user(w: World) -> None:
    await w.trader(PAPER_USER, "paper")
    await w.trader(BYBIT_USER, "bybit")
    signal = await w.signal()

    both = await asyncio.gather(
        w.services.autotrader.on_signal(signal), w.services.autotrader.on_signal(signal)
    )
    later = await w.services.autotrader.on_signals([signal])  # redelivered afterwards

    assert sum(report.candidates for report in both) >= 2 and later[0].candidates == 0
    assert w.orders_with(BYBIT_USER, client_order_id("auto", signal.id, BYBIT_USER)) == 1
    assert await _paper_fills(w, PAPER_USER) == 1
    outcomes = await w.rows(
        "SELECT user_id, status, fill_price IS NOT NULL FROM executions WHERE signal_id = ? "
        "ORDER BY user_id",
        signal.id,
    )
    # Paper fills at once; the venue only acknowledges a market order: its fill comes later.
    assert outcomes == [(PAPER_USER, "filled", 1), (BYBIT_USER, "placed", 0)]
    notices = await w.rows("SELECT dedup_key, kind FROM notifications ORDER BY dedup_key")
    assert notices == [
        (f"auto:{signal.id}:{PAPER_USER}", "fill"),
        (f"auto:{signal.id}:{BYBIT_USER}", "fill"),
    ]


async def test_crash_after_sending_does_not_send_again(w: World) -> None:
    await w.trader(PAPER_USER, "paper")
    await w.trader(BYBIT_USER, "bybit")
    signal = await w.signal()
    await w.services.autotrader.on_signal(signal)
    # A crash after the orders left but before the outcomes were written: none recorded.
    await w.store.execute("t.forget", "DELETE FROM executions WHERE signal_id = ?", (signal.id,))

    report = await w.services.autotrader.on_signal(signal)

    assert report.candidates == 2
    assert w.orders_with(BYBIT_USER, client_order_id("auto", signal.id, BYBIT_USER)) == 1
    assert await _paper_fills(w, PAPER_USER) == 1
    assert len(await w.rows("SELECT id FROM executions WHERE signal_id = ?", signal.id)) == 2


async def test_order_carries_strategy_size_leverage_and_levels(w: World) -> None:
    await w.trader(BYBIT_USER, "bybit", size_usdt=Decimal(600), leverage=7)
    signal = await w.signal()
    await w.services.autotrader.on_signal(signal)

    account = w.server.account(f"key{BYBIT_USER}")
    (order,) = [o for o in account.orders.values() if o.link_id]  # TP/SL mirrors have none
    assert (order.side, order.qty) == ("Buy", Decimal("0.01"))  # 600 USDT at 60,000
    assert (order.take_profit, order.stop_loss) == (Decimal("61800"), Decimal("59100"))
    assert account.leverage["BTCUSDT"] == Decimal(7)


async def test_skips_are_audited_with_their_reason(w: World) -> None:
    await w.trader(10, "paper", licensed=False)
    await w.trader(11, "paper", max_positions=1)
    await w.trader(12, "paper", size_usdt=Decimal(5))  # 5 USDT buys no 0.001 BTC lot
    await w.trader(13, "paper", deny_symbols=(BTC,))
    await w.trader(14, "paper", size_usdt=Decimal(1_000_000))  # 200k margin on a 10k account
    await w.trader(15, "paper", min_score=0.95)  # the signal is not good enough: not asked
    now = w.clock.now()
    held = ActivePosition(11, "paper", "paper", "ETH/USDT:USDT", "long", Decimal(1),
                          Decimal(3000), 5, now, now)  # fmt: skip
    await PositionRepository(w.store).upsert_many([held])
    signal = await w.signal()

    report = await w.services.autotrader.on_signal(signal)

    assert report.candidates == 5
    outcomes = await w.rows(
        "SELECT user_id, status, reason FROM executions WHERE signal_id = ? ORDER BY user_id",
        signal.id,
    )
    assert outcomes == [
        (10, "skipped", "no licence"),
        (11, "skipped", "max positions"),
        (12, "skipped", "below minimum notional"),
        (13, "skipped", "symbol denied"),
        (14, "skipped", "insufficient margin"),
    ]
    told = await w.rows("SELECT user_id FROM notifications ORDER BY user_id")
    assert told == [(10,), (11,), (12,), (14,)]  # a symbol the trader denied is no news
    for user_id in (10, 12, 13, 14):
        async with w.services.exchanges.lease(user_id, "paper", "paper") as client:
            assert await client.fetch_positions() == []


async def test_one_users_failure_leaves_the_others_trading(w: World) -> None:
    await w.trader(BYBIT_USER, "bybit")
    await w.trader(3, "bybit", balance="1")  # the venue refuses: not enough margin
    await w.trader(PAPER_USER, "paper")
    signal = await w.signal()

    await w.services.autotrader.on_signal(signal)

    outcomes = await w.rows(
        "SELECT user_id, status, reason FROM executions WHERE signal_id = ? ORDER BY user_id",
        signal.id,
    )
    assert outcomes == [
        (PAPER_USER, "filled", None),
        (BYBIT_USER, "placed", None),
        (3, "skipped", "insufficient margin"),
    ]
    opened = await w.rows("SELECT user_id, origin, signal_id FROM active_positions ORDER BY 1")
    assert opened == [(PAPER_USER, "auto", signal.id), (BYBIT_USER, "auto", signal.id)]


async def test_after_a_restart_fresh_signals_are_finished_and_stale_ones_left(w: World) -> None:
    await w.trader(PAPER_USER, "paper")
    await w.signal()  # stale by the time of the restart
    w.clock.advance(300)  # five minutes later: that move is over
    fresh = await w.signal(side="short")
    late = await w.signal(symbol="ETH/USDT:USDT")  # stored, but the crash came before trading
    await w.services.autotrader.on_signal(fresh)  # traded before the crash

    assert await w.services.autotrader.resume() == 2  # only the fresh ones are looked at again
    await w.services.autotrader.aclose()  # waits for the background run to finish
    outcomes = await w.rows("SELECT signal_id, user_id, status FROM executions ORDER BY signal_id")
    assert outcomes == [(fresh.id, PAPER_USER, "filled"), (late.id, PAPER_USER, "filled")]
    assert await _paper_fills(w, PAPER_USER) == 2  # one order each, none for the stale signal
