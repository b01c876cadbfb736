"""The scanner end to end: one tickers request per scan, candles for the top K only, signals
stored with their deliveries on the synthetic market."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from core.paper.synthetic import SyntheticMarket
from db.repositories.markets import MarketRepository
from db.repositories.notifications import NotificationRepository
from db.repositories.signals import SignalRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.market_registry import MarketRegistry
from services.outbox import Outbox
from services.scanner import Scanner
from services.signals import SignalService
from services.unit_of_work import UnitOfWork
from tests.exchange_server import ExchangeServer
from tests.fakes.clock import FakeClock
from tests.fakes.gateways import local_gateway

NOW = datetime(2026, 5, 1, 6, tzinfo=UTC)


def build(store: Store, clock: FakeClock, source: str, base_url: str = "") -> Scanner:
    market = SyntheticMarket(clock=clock, genesis=NOW)
    gateway = local_gateway(store, clock, base_url=base_url, source=source, market=market)
    registry = MarketRegistry(gateway, MarketRepository(store), clock)
    outbox = Outbox(NotificationRepository(store), clock)
    signals = SignalService(SignalRepository(store), UnitOfWork(store, outbox), clock)
    return Scanner(gateway, registry, signals, clock)


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=120, seed=5) as running:
        yield running


async def test_one_tickers_request_per_scan_and_candles_for_the_top_k_only(
    store: Store, server: ExchangeServer
) -> None:
    clock = FakeClock(datetime.now(UTC))
    scanner = build(store, clock, "bybit", server.base_url)
    try:
        await scanner._registry.sync()  # loads the markets once
        for scan in range(3):
            server.stats.reset()
            report = await scanner.scan()
            clock.advance(10)
            # The first scan reads the tape the sync just filled; later ones, 10 s apart, one each.
            tickers = server.stats.requests["/v5/market/tickers"]
            assert tickers == (0 if scan == 0 else 1), scan
            klines = server.stats.requests["/v5/market/kline"]
            assert klines == report.candidates <= 10
            assert server.stats.total == tickers + klines
            assert report.symbols == 120
    finally:
        await scanner._gateway.aclose()


async def test_synthetic_market_signals_reach_subscribers_in_the_first_scans(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    scanner = build(store, clock, "paper")
    users = UserRepository(store)
    await users.upsert(UserProfile(7, 70, "Sub"), NOW)
    await users.upsert(UserProfile(8, 80, "Not"), NOW)
    await scanner._signals.subscribe(7, "0")
    await scanner._registry.sync()

    found = []
    for _ in range(6):  # one minute at the default interval
        report = await scanner.scan()
        assert report.symbols == 530 and report.candidates <= 10
        assert len(report.signals) <= scanner.max_per_scan
        found.extend(report.signals)
        clock.advance(10)

    assert found, "the synthetic market's regimes should give signals within a minute"
    assert len({(s.symbol, s.side) for s in found}) == len(found)  # cooldown: no repeats
    for signal in found:
        assert 0.6 <= signal.score <= 1 and signal.side in ("long", "short")
        assert signal.reasons and 1 <= signal.leverage <= 20
        assert signal.sl_pct > 0 and signal.tp_pct == 2 * signal.sl_pct
    rows = await store.fetchall("t.sent", "SELECT user_id, dedup_key FROM notifications")
    assert sorted(r[1] for r in rows) == sorted(f"signal:{s.id}:7" for s in found)
