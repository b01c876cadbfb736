"""Auto-trade trades a signal only for traders auto-trading when it was published, only once,
and only while it is fresh: not after the price moved too far, not once it is too old."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.ids import client_order_id
from db.store import Store
from tests.integration.autotrade_world import World, world

PAPER_USER, BYBIT_USER = 1, 2


@pytest.fixture
async def w(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    async with world(store, tmp_path) as running:
        yield running


async def _paper_fills(w: World, user_id: int) -> int:
    async with w.services.exchanges.lease(user_id, "paper", "paper") as client:
        return len(await client.recent_fills())  # type: ignore[attr-defined]


async def _turn_on(w: World, user_id: int) -> None:
    services = w.services
    await services.strategy.change(
        user_id, "auto_trade", "on", accounts=services.accounts, market=services.market
    )


async def _audited(w: World) -> list[tuple[str, dict[str, object]]]:
    rows = await w.rows("SELECT target, details FROM audit_log WHERE action = 'autotrade_stale'")
    return [(str(target), json.loads(str(details))) for target, details in rows]


async def test_signals_before_auto_trade_was_on_are_not_traded_after_a_restart(
    w: World,
) -> None:
    await w.trader(PAPER_USER, "paper", auto_trade=False, max_positions=1)
    await w.trader(BYBIT_USER, "bybit", auto_trade=False)
    earlier = [await w.signal(), await w.signal(side="short"), await w.signal("ETH/USDT:USDT")]
    w.clock.advance(60)  # a minute later both traders turn auto-trade on
    await _turn_on(w, PAPER_USER)
    await _turn_on(w, BYBIT_USER)
    w.clock.advance(10)  # then the bot restarts

    assert await w.services.autotrader.resume() == len(earlier)  # looked at: all recent
    await w.services.autotrader.aclose()

    assert await w.rows("SELECT signal_id FROM executions") == []
    assert await w.rows("SELECT dedup_key FROM notifications") == []
    assert await _paper_fills(w, PAPER_USER) == 0
    for signal in earlier:
        assert w.orders_with(BYBIT_USER, client_order_id("auto", signal.id, BYBIT_USER)) == 0


async def test_a_signal_after_auto_trade_went_on_is_traded(w: World) -> None:
    await w.trader(PAPER_USER, "paper", auto_trade=False)
    await _turn_on(w, PAPER_USER)
    await _turn_on(w, PAPER_USER)  # saying it again keeps the first start
    w.clock.advance(1)
    signal = await w.signal()

    report = await w.services.autotrader.on_signal(signal)

    assert report.counts == {"filled": 1}
    since = await w.rows("SELECT auto_trade_since FROM strategy_settings WHERE user_id = 1")
    assert since[0][0] is not None and int(str(since[0][0])) < int(
        signal.created_at.timestamp() * 1000
    )
    await w.services.strategy.change(
        PAPER_USER, "auto_trade", "off", accounts=w.services.accounts, market=w.services.market
    )
    assert await w.rows("SELECT auto_trade_since FROM strategy_settings") == [(None,)]


async def test_a_price_past_the_drift_is_skipped_quietly_and_audited(w: World) -> None:
    await w.trader(PAPER_USER, "paper")
    await w.trader(BYBIT_USER, "bybit")
    await w.trader(3, "paper", max_drift_pct=Decimal(1))  # this trader accepts a 1 % move
    signal = await w.signal()  # at 60,000
    w.server.set_price("BTCUSDT", "60240")  # +0.4 %: past the default 0.3 %
    w.clock.advance(6)  # the cached tickers are read again

    report = await w.services.autotrader.on_signal(signal)

    assert report.counts == {"skipped: price moved": 2, "filled": 1}
    outcomes = await w.rows(
        "SELECT user_id, status, reason FROM executions WHERE signal_id = ? ORDER BY user_id",
        signal.id,
    )
    assert outcomes == [
        (PAPER_USER, "skipped", "price moved"),
        (BYBIT_USER, "skipped", "price moved"),
        (3, "filled", None),
    ]
    assert await w.rows("SELECT user_id FROM notifications") == [(3,)]  # only the trade
    assert w.orders_with(BYBIT_USER, client_order_id("auto", signal.id, BYBIT_USER)) == 0
    ((target, details),) = await _audited(w)
    assert target == f"signal {signal.id}"
    assert details["reason"] == "price moved" and details["count"] == 2
    assert details["users"] == {str(PAPER_USER): "0.40 %", str(BYBIT_USER): "0.40 %"}


async def test_a_signal_older_than_the_limit_is_skipped_quietly_and_audited(w: World) -> None:
    await w.trader(PAPER_USER, "paper")
    await w.trader(3, "paper", max_signal_age_s=300)
    signal = await w.signal()
    w.clock.advance(150)  # the trading of it was held up (a slow exchange, a restart)

    report = await w.services.autotrader.on_signal(signal)

    assert report.counts == {"skipped: signal too old": 1, "filled": 1}
    assert await w.rows("SELECT user_id FROM notifications") == [(3,)]
    assert await _paper_fills(w, PAPER_USER) == 0
    ((_, details),) = await _audited(w)
    assert details["reason"] == "signal too old"
    assert details["users"] == {str(PAPER_USER): "150 s"}


async def test_a_fresh_signal_is_traded_once_however_often_it_is_processed(w: World) -> None:
    await w.trader(PAPER_USER, "paper")
    await w.trader(BYBIT_USER, "bybit")
    signal = await w.signal()
    await w.services.autotrader.on_signal(signal)
    await w.services.autotrader.on_signals([signal])  # redelivered
    w.clock.advance(5)

    assert await w.services.autotrader.resume() == 1  # and looked at again after a restart
    await w.services.autotrader.aclose()

    assert w.orders_with(BYBIT_USER, client_order_id("auto", signal.id, BYBIT_USER)) == 1
    assert await _paper_fills(w, PAPER_USER) == 1
    executions = await w.rows("SELECT user_id FROM executions ORDER BY user_id")
    assert executions == [(PAPER_USER,), (BYBIT_USER,)]
    notices = await w.rows("SELECT user_id FROM notifications ORDER BY user_id")
    assert notices == [(PAPER_USER,), (BYBIT_USER,)]
    assert await _audited(w) == []


async def test_an_order_sent_before_a_crash_is_recorded_as_it_is_not_as_stale(w: World) -> None:
    await w.trader(PAPER_USER, "paper")
    await w.trader(BYBIT_USER, "bybit")
    signal = await w.signal()
    await w.services.autotrader.on_signal(signal)
    # The crash came after the orders left but before the outcomes were written; the bot
    # is back when the signal is stale for anyone who had not been served.
    await w.store.execute("t.forget", "DELETE FROM executions WHERE signal_id = ?", (signal.id,))
    await w.trader(3, "paper")  # on since the signal's very moment, never served
    w.clock.advance(150)

    report = await w.services.autotrader.on_signal(signal)

    assert report.counts == {"filled": 1, "placed": 1, "skipped: signal too old": 1}
    assert w.orders_with(BYBIT_USER, client_order_id("auto", signal.id, BYBIT_USER)) == 1
    assert await _paper_fills(w, PAPER_USER) == 1
    ((_, details),) = await _audited(w)
    assert details["users"] == {"3": "150 s"}
