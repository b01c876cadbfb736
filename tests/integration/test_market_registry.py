"""Market registry sync against the local exchange server (real ccxt) and the paper market."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from core.cache import CacheLayer
from core.exchange.retry import RetryPolicy
from core.metrics import Metrics
from core.paper.market_source import LISTING_EVERY
from core.paper.synthetic import SyntheticMarket
from db.repositories.markets import DELISTED, TRADING, MarketRepository
from db.store import Store
from services.caching import TICKERS
from services.exchanges import ExchangeGateway
from services.market_registry import MarketRegistry
from services.monitoring import MonitoringService
from tests.exchange_server import ExchangeServer, FaultKind
from tests.fakes.clock import FakeClock
from tests.fakes.gateways import local_gateway

NOW = datetime(2026, 5, 1, tzinfo=UTC)
NEW = "ZAZUUSDT"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=20, seed=3) as running:
        yield running


def gateway(store: Store, clock: FakeClock, source: str, base_url: str = "") -> ExchangeGateway:
    market = SyntheticMarket(symbols=40, clock=clock, genesis=NOW)
    return local_gateway(
        store, clock, base_url=base_url, source=source, market=market,
        retry=RetryPolicy(attempts=1),
    )  # fmt: skip


@pytest.fixture
async def bybit(store: Store, server: ExchangeServer) -> AsyncIterator[MarketRegistry]:
    clock = FakeClock(datetime.now(UTC))  # the server lists at its own wall-clock time
    gw = gateway(store, clock, "bybit", server.base_url)
    yield MarketRegistry(gw, MarketRepository(store), clock)
    await gw.aclose()


async def test_first_sync_imports_the_market_without_listing_events(
    store: Store, bybit: MarketRegistry
) -> None:
    report = await bybit.sync()
    assert report.imported and report.error is None
    assert (report.symbols, report.listed, report.delisted, report.written) == (20, 0, 0, 20)
    assert bybit.size() == 20 and "BTC/USDT:USDT" in bybit.snapshot.rows
    health = MonitoringService(Metrics(), CacheLayer(), markets=bybit.size)
    assert health.health_info() == {"markets": 20}  # /health's `markets`
    assert len(await MarketRepository(store).by_status("bybit", TRADING)) == 20
    assert await MarketRepository(store).history("BTC/USDT:USDT") == []


async def test_sync_detects_a_listing_and_a_delisting(
    store: Store, server: ExchangeServer, bybit: MarketRegistry
) -> None:
    await bybit.sync()
    before = bybit.snapshot
    server.add_symbol(NEW, "1.25")
    server.delist("SOLUSDT")

    report = await bybit.sync()

    assert (report.listed, report.delisted, report.symbols) == (1, 1, 20)
    line = report.line()
    assert line.startswith("registry sync: fetch ") and " ms, diff " in line
    assert line.endswith("— 20 symbols, +1 listed, -1 delisted")
    assert bybit.snapshot is not before  # swapped, never mutated
    assert "ZAZU/USDT:USDT" not in before.rows and before.rows["SOL/USDT:USDT"].status == TRADING
    repo = MarketRepository(store)
    new = (await repo.new_listings("bybit"))[0]  # newest first
    assert new.symbol == "ZAZU/USDT:USDT" and new.is_new and new.status == TRADING
    (sol,) = await repo.by_status("bybit", DELISTED)
    assert sol.symbol == "SOL/USDT:USDT" and sol.delisted_at is not None
    (listed,) = await repo.history("ZAZU/USDT:USDT")
    (delisted,) = await repo.history("SOL/USDT:USDT")
    assert (listed.event, listed.new_status) == ("listed", TRADING)
    assert (delisted.event, delisted.old_status, delisted.new_status) == (
        "delisted",
        TRADING,
        DELISTED,
    )

    quiet = await bybit.sync()  # nothing changed on the exchange: no event twice
    assert (quiet.listed, quiet.delisted) == (0, 0)
    assert len(await repo.history("SOL/USDT:USDT")) == 1


async def test_a_failed_fetch_keeps_the_old_snapshot_and_counts_the_failure(
    server: ExchangeServer, bybit: MarketRegistry
) -> None:
    await bybit.sync()
    snapshot = bybit.snapshot
    server.faults.add(path="/v5/market/tickers", kind=FaultKind.HTTP_5XX, times=None)
    clock = bybit._clock
    assert isinstance(clock, FakeClock)
    clock.advance(TICKERS.ttl)  # the shared tape is stale: the sync must ask again

    report = await bybit.sync()

    assert report.error is not None and report.line().startswith("registry sync failed")
    assert bybit.snapshot is snapshot and bybit.size() == 20
    assert bybit.failures == 1


async def test_a_restart_diffs_against_the_stored_rows(
    store: Store, server: ExchangeServer, bybit: MarketRegistry
) -> None:
    await bybit.sync()
    server.add_symbol(NEW, "2")
    gw = gateway(store, FakeClock(NOW), "bybit", server.base_url)
    try:
        restarted = MarketRegistry(gw, MarketRepository(store), FakeClock(NOW))
        report = await restarted.sync()
    finally:
        await gw.aclose()
    assert not report.imported and (report.listed, report.delisted) == (1, 0)


async def test_paper_market_listings_reach_the_registry(store: Store) -> None:
    clock = FakeClock(NOW)
    registry = MarketRegistry(gateway(store, clock, "paper"), MarketRepository(store), clock)
    first = await registry.sync()
    assert first.symbols == 40 and first.imported
    clock.advance(2 * LISTING_EVERY + 60)  # one listing per 20-minute slot
    later = await registry.sync()
    assert later.listed >= 1 and later.symbols == 40 + later.listed - later.delisted
    fresh = [r for r in registry.snapshot.rows.values() if r.is_new]
    assert len(fresh) == later.listed
    assert all(NOW < r.listed_at <= clock.now() for r in fresh)
    assert clock.now() - fresh[0].listed_at < timedelta(hours=1)
