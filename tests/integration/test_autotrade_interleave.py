"""Signals found in one scan share the request budget: their orders go out round-robin, each
signal's first traders before any signal's later ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.ids import client_order_id
from db.repositories.executions import ExecutionRepository
from db.repositories.intents import IntentRepository
from db.repositories.positions import PositionRepository
from db.repositories.signals import SignalDraft, SignalRecord, SignalRepository
from db.store import Store
from services.autotrade import AutoTrader
from services.unit_of_work import UnitOfWork
from tests.integration.autotrade_world import World, world

TRADERS = (11, 12, 13, 14)


@pytest.fixture
async def w(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    async with world(store, tmp_path) as running:
        yield running


def _one_at_a_time(w: World) -> AutoTrader:
    """The bot's auto-trader with room for one order at a time: the tightest budget."""
    s = w.services
    return AutoTrader(
        work=UnitOfWork(w.store, s.outbox, on_change=[s.analytics.invalidate]),
        executions=ExecutionRepository(w.store),
        intents=IntentRepository(w.store),
        positions=PositionRepository(w.store),
        executor=s.executor,
        market=s.market,
        gateway=s.exchanges,
        clock=w.clock,
        signals=SignalRepository(w.store),
        audit=s.audit,
        concurrency=1,
    )


async def _paper_signal(w: World, symbol: str) -> SignalRecord:
    price = (await w.services.market.ticker("paper", symbol)).last
    draft = SignalDraft(
        "paper", symbol, "long", 0.9, price, 5, Decimal(3), Decimal("1.5"), ("test",)
    )
    return await SignalRepository(w.store).insert(draft, w.clock.now())


async def test_three_signals_take_turns_trader_by_trader(w: World) -> None:
    for user_id in TRADERS:
        await w.trader(user_id, "paper", size_usdt=Decimal(20))
    markets = await w.services.market.markets("paper")
    symbols = sorted(s for s, m in markets.items() if m.min_notional <= 20)[:3]
    signals = [await _paper_signal(w, symbol) for symbol in symbols]
    owner = {
        client_order_id("auto", signal.id, user_id): (n, user_id)
        for n, signal in enumerate(signals)
        for user_id in TRADERS
    }

    reports = await _one_at_a_time(w).on_signals(signals)

    assert [r.counts for r in reports] == [{"filled": len(TRADERS)}] * 3
    placed = await w.rows(
        "SELECT o.client_order_id FROM paper_fills f JOIN paper_orders o ON o.id = f.order_id "
        "ORDER BY f.id"
    )
    order = [owner[str(cid)] for (cid,) in placed]
    # Round-robin: signal 0, 1, 2 for the first trader, then for the next, and so on.
    assert [n for n, _ in order] == [0, 1, 2] * len(TRADERS)
    firsts = [user for n, user in order[:3]]
    assert len(set(firsts)) == 1  # each signal's first trader went out before anyone's second
    assert len({user for _, user in order}) == len(TRADERS)


async def test_earlier_signals_of_the_scan_count_towards_max_positions(w: World) -> None:
    await w.trader(11, "paper", size_usdt=Decimal(20), max_positions=2)
    markets = await w.services.market.markets("paper")
    symbols = sorted(s for s, m in markets.items() if m.min_notional <= 20)[:3]
    signals = [await _paper_signal(w, symbol) for symbol in symbols]

    reports = await w.services.autotrader.on_signals(signals)

    assert [r.counts for r in reports] == [
        {"filled": 1},
        {"filled": 1},
        {"skipped: max positions": 1},
    ]
