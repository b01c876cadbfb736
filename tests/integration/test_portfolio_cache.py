"""PortfolioService's reads against the local Bybit server: single-flight, TTLs, fresh reads.

Real SQLite, real ccxt, real gateway and accounts; only time is fake, so expiry is exact.
The server's request counters are the exchange calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from core.cache import CacheLayer
from core.crypto import SecretBox, generate_key
from core.errors import Forbidden
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import RateLimited
from core.exchange.models import OrderRequest, OrderType, Side
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.accounts import AccountService
from services.caching import define_trader_caches
from services.exchanges import ExchangeGateway
from services.market import MarketService
from services.portfolio import PortfolioService
from tests.exchange_server import ExchangeServer, FaultKind
from tests.fakes.clock import FakeClock
from tests.fakes.gateways import QUICK, local_gateway
from tests.harness import running_bot

USER = 7
BTC = "BTC/USDT:USDT"
WALLET, POSITIONS, ORDERS = "/v5/account/wallet-balance", "/v5/position/list", "/v5/order/realtime"
# Give up at once on a long retry-after, so a refusal reaches the caller without waiting.


@dataclass
class World:
    portfolio: PortfolioService
    accounts: AccountService
    gateway: ExchangeGateway
    clock: FakeClock
    server: ExchangeServer

    def calls(self, path: str) -> int:
        return self.server.stats.requests[path]


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    cache = CacheLayer(clock)
    define_trader_caches(cache)
    box = SecretBox([generate_key()])
    async with ExchangeServer(symbols=10, seed=4) as server:
        server.add_account("key-7", "secret-7", Decimal("2500"))

        gateway = local_gateway(
            store, clock, base_url=server.base_url, secrets=box, cache=cache, retry=QUICK
        )
        accounts = AccountService(store, gateway, box, cache, clock, ("paper", "bybit"))
        await UserRepository(store).upsert(UserProfile(USER, USER, "T"), clock.now())
        await accounts.connect(USER, "bybit", "demo", ApiCredentials("key-7", "secret-7"))
        market = MarketService(gateway)
        try:
            portfolio = PortfolioService(gateway, accounts, market)
            yield World(portfolio, accounts, gateway, clock, server)
        finally:
            await gateway.aclose()


async def test_hundred_concurrent_balance_reads_make_one_call(world: World) -> None:
    before = world.calls(WALLET)
    views = await asyncio.gather(*(world.portfolio.balance(USER) for _ in range(100)))
    assert world.calls(WALLET) == before + 1
    assert {v.balance.equity for v in views} == {Decimal("2500")}
    assert all(v.account.label == "Bybit (demo)" for v in views)


async def test_invalidate_makes_the_next_read_call_again(world: World) -> None:
    before = world.calls(WALLET)
    await world.portfolio.balance(USER)
    await world.portfolio.balance(USER)
    assert world.calls(WALLET) == before + 1
    world.portfolio.invalidate(USER)
    await world.portfolio.balance(USER)
    assert world.calls(WALLET) == before + 2


async def test_balance_expires_after_15_seconds(world: World) -> None:
    before = world.calls(WALLET)
    await world.portfolio.balance(USER)
    world.clock.advance(14.9)
    await world.portfolio.balance(USER)
    assert world.calls(WALLET) == before + 1
    world.clock.advance(0.2)
    await world.portfolio.balance(USER)
    assert world.calls(WALLET) == before + 2


async def test_positions_and_orders_expire_after_10_seconds(world: World) -> None:
    before = world.calls(POSITIONS), world.calls(ORDERS)
    await asyncio.gather(world.portfolio.positions(USER), world.portfolio.open_orders(USER))
    world.clock.advance(9.9)
    await asyncio.gather(world.portfolio.positions(USER), world.portfolio.open_orders(USER))
    assert (world.calls(POSITIONS), world.calls(ORDERS)) == (before[0] + 1, before[1] + 1)
    world.clock.advance(0.2)
    await asyncio.gather(world.portfolio.positions(USER), world.portfolio.open_orders(USER))
    assert (world.calls(POSITIONS), world.calls(ORDERS)) == (before[0] + 2, before[1] + 2)


async def test_fresh_bypasses_and_refreshes_the_cache(world: World) -> None:
    assert (await world.portfolio.positions(USER)).positions == ()
    async with world.gateway.lease(USER, "bybit", "demo") as client:
        await client.create_order(
            OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "twcachefresh1")
        )
    assert (await world.portfolio.positions(USER)).positions == ()  # still the cached answer
    before = world.calls(POSITIONS)
    fresh = await asyncio.gather(*(world.portfolio.positions(USER, fresh=True) for _ in range(5)))
    assert world.calls(POSITIONS) == before + 1  # a double-pressed Refresh shares one call
    (line,) = fresh[0].positions
    assert (line.market_id, line.position.qty) == ("BTCUSDT", Decimal("0.01"))
    assert (await world.portfolio.positions(USER)).positions == fresh[0].positions
    assert world.calls(POSITIONS) == before + 1  # the fresh answer refilled the cache


async def test_exchange_errors_propagate_and_are_not_cached(world: World) -> None:
    fault = world.server.faults.add(path=WALLET, kind=FaultKind.HTTP_429, times=None)
    with pytest.raises(RateLimited, match="Bybit is rate limiting us"):
        await world.portfolio.balance(USER)
    world.server.faults.remove(fault)
    assert (await world.portfolio.balance(USER)).balance.equity == Decimal("2500")


async def test_a_list_of_another_account_is_refused(world: World) -> None:
    ref = await world.accounts.require_active(USER)
    assert (await world.portfolio.positions(USER, account_id=ref.credential_id)).account == ref
    with pytest.raises(Forbidden):
        await world.portfolio.positions(USER, account_id=ref.credential_id + 1)


async def test_warming_every_kind_through_the_real_services(tmp_path: Path) -> None:
    """Account, balance, positions and orders entries are all reloadable by the warmer."""
    async with running_bot(tmp_path) as bot:
        services = bot.services
        await bot.send(5, "/start")
        await services.accounts.connect(5, "paper", "paper")
        await services.portfolio.balance(5)
        await services.portfolio.positions(5)
        await services.portfolio.open_orders(5)
        for kind, key in (
            ("accounts", "5:active"),
            ("balance", "5:paper:paper"),
            ("positions", "5:paper:paper"),
            ("orders", "5:paper:paper"),
        ):
            await services.portfolio.warm(kind, key)
            assert services.cache.cache(kind).peek_ttl_left(key) is not None
