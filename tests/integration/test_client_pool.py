"""The per-user client pool with real ccxt clients against the local Bybit server."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.pool import ClientPool, PooledClient, PoolKey
from core.exchange.venues import VENUES
from tests.exchange_server import ExchangeServer
from tests.fakes.clock import FakeClock


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=20, seed=5) as running:
        for user in range(1, 6):
            running.add_account(f"key-{user}", f"secret-{user}", Decimal(1000 * user))
        yield running


@pytest.fixture
async def venue(server: ExchangeServer) -> AsyncIterator[CcxtVenue]:
    adapter = CcxtVenue(VENUES["bybit"], base_url=server.base_url)
    yield adapter
    await adapter.aclose()


class Factory:
    """Builds user clients from a credentials table, counting creations."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.venue = venue
        self.secrets = {u: ApiCredentials(f"key-{u}", f"secret-{u}") for u in range(1, 6)}
        self.created: list[CcxtClient] = []

    async def __call__(self, key: PoolKey) -> PooledClient:
        await asyncio.sleep(0.01)  # creation takes time, so concurrent callers overlap
        client = await self.venue.client(key[2], self.secrets[key[0]])
        self.created.append(client)
        return client


async def test_concurrent_first_requests_create_one_client(venue: CcxtVenue) -> None:
    factory = Factory(venue)
    async with ClientPool(factory) as pool:

        async def equity() -> Decimal:
            async with pool.lease(3, "bybit", "live") as client:
                return (await client.fetch_balance()).equity

        results = await asyncio.gather(*(equity() for _ in range(100)))
    assert set(results) == {Decimal(3000)}
    assert len(factory.created) == 1


async def test_lru_bound_closes_the_least_recently_used(venue: CcxtVenue) -> None:
    factory = Factory(venue)
    async with ClientPool(factory, max_size=2) as pool:
        for user in (1, 2, 1, 3):  # 2 is least recently used when 3 arrives
            async with pool.lease(user, "bybit", "live"):
                pass
        by_user = {c.api.apiKey: c for c in factory.created}
        assert by_user["key-2"].closed and not by_user["key-1"].closed
        assert pool.stats().size == 2 and pool.stats().evicted == 1
    assert all(c.closed for c in factory.created)


async def test_idle_clients_are_evicted_and_closed(venue: CcxtVenue) -> None:
    clock = FakeClock()
    factory = Factory(venue)
    async with ClientPool(factory, idle_ttl_s=900, clock=clock) as pool:
        async with pool.lease(1, "bybit", "live"):
            pass
        clock.advance(600)
        async with pool.lease(2, "bybit", "live"):
            pass
        clock.advance(400)
        assert await pool.evict_idle() == 1  # only user 1 sat idle for 15 min
        assert factory.created[0].closed and not factory.created[1].closed


async def test_a_leased_client_is_closed_only_after_its_lease(venue: CcxtVenue) -> None:
    factory = Factory(venue)
    async with ClientPool(factory) as pool, pool.lease(1, "bybit", "live") as client:
        assert await pool.drop(1) == 1
        assert not factory.created[0].closed  # still in use
        await client.fetch_balance()
    assert factory.created[0].closed


async def test_credential_change_drops_the_pooled_client(venue: CcxtVenue) -> None:
    factory = Factory(venue)
    async with ClientPool(factory) as pool:
        async with pool.lease(4, "bybit", "live"):
            pass
        assert await pool.drop(4, "bybit", "live") == 1
        factory.secrets[4] = ApiCredentials("key-5", "secret-5")  # replaced keys
        async with pool.lease(4, "bybit", "live") as client:
            assert (await client.fetch_balance()).equity == Decimal(5000)
    assert len(factory.created) == 2 and factory.created[0].closed


async def test_unhealthy_idle_client_is_replaced(venue: CcxtVenue) -> None:
    clock = FakeClock()
    factory = Factory(venue)
    async with ClientPool(factory, health_check_after_s=60, clock=clock) as pool:
        async with pool.lease(1, "bybit", "live") as first:
            await first.close()  # e.g. its session died
        clock.advance(120)
        async with pool.lease(1, "bybit", "live") as second:
            assert second is not first
            await second.fetch_balance()
        assert pool.stats().replaced_unhealthy == 1


async def test_failed_creation_is_not_cached(venue: CcxtVenue) -> None:
    attempts = 0

    async def flaky(key: PoolKey) -> PooledClient:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("first try fails")
        return await venue.client("live", ApiCredentials("key-1", "secret-1"))

    async with ClientPool(flaky) as pool:
        with pytest.raises(ConnectionError):
            async with pool.lease(1, "bybit", "live"):
                pass
        async with pool.lease(1, "bybit", "live") as client:
            assert client.exchange == "bybit"


async def test_no_unclosed_session_warnings(server: ExchangeServer) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        venue = CcxtVenue(VENUES["bybit"], base_url=server.base_url)
        async with ClientPool(Factory(venue), max_size=2) as pool:
            for user in range(1, 6):
                async with pool.lease(user, "bybit", "live") as client:
                    await client.fetch_balance()
        await venue.aclose()
        gc.collect()
    assert not [w for w in caught if "nclosed" in str(w.message)]


async def test_closed_pool_refuses_use(venue: CcxtVenue) -> None:
    pool = ClientPool(Factory(venue))
    await pool.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        async with pool.lease(1, "bybit", "live"):
            pass
