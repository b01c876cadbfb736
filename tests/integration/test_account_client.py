"""The account client against the local Bybit server: cached single-flight reads, writes that
drop exactly what they change (even when the exchange refuses), pushed values served as is.

Real SQLite, real ccxt, the real gateway; only time is fake. The server's request counters
are the exchange calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.cache import CacheLayer
from core.clock import SystemClock
from core.crypto import SecretBox, generate_key
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import ExchangeError, InvalidOrder, TemporaryError
from core.exchange.models import (
    ZERO,
    Balance,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
)
from core.lifecycle import IntentStatus
from db.repositories.intents import IntentRepository, NewIntent
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.account_client import AccountClient
from services.accounts import AccountService
from services.caching import define_trader_caches
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from tests.exchange_server import ExchangeServer, FaultKind
from tests.fakes.clock import FakeClock
from tests.fakes.gateways import QUICK, local_gateway

USER = 7
BTC = "BTC/USDT:USDT"
WALLET, POSITIONS, ORDERS = "/v5/account/wallet-balance", "/v5/position/list", "/v5/order/realtime"
CREATE, CANCEL, LEVERAGE = "/v5/order/create", "/v5/order/cancel", "/v5/position/set-leverage"
PUSHED = Balance(Decimal("1234"), Decimal("1000"), Decimal("234"), ZERO)


@dataclass
class World:
    gateway: ExchangeGateway
    cache: CacheLayer
    server: ExchangeServer
    store: Store

    @property
    def client(self) -> AccountClient:
        return self.gateway.account(USER, "bybit", "demo")

    def calls(self, path: str) -> int:
        return self.server.stats.requests[path]

    def cached(self, client: AccountClient) -> tuple[bool, bool, bool]:
        """Which of (balance, positions, orders) the cache holds for the account."""
        return tuple(  # type: ignore[return-value]
            self.cache.cache(kind).peek_ttl_left(client.key) is not None
            for kind in ("balance", "positions", "orders")
        )


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
        try:
            yield World(gateway, cache, server, store)
        finally:
            await gateway.aclose()


async def _fill_cache(world: World) -> None:
    await asyncio.gather(
        world.client.balance(), world.client.positions(), world.client.open_orders()
    )
    assert world.cached(world.client) == (True, True, True)


def _others(world: World) -> list[AccountClient]:
    """Another account of the same trader and another trader's account, both cached."""
    others = [
        world.gateway.account(USER, "bybit", "live"),
        world.gateway.account(8, "bybit", "demo"),
    ]
    for other in others:
        other.push_balance(PUSHED)
        other.push_positions(())
        other.push_orders(())
    return others


def _limit(cid: str, qty: str = "0.01") -> OrderRequest:
    return OrderRequest(BTC, Side.BUY, OrderType.LIMIT, Decimal(qty), cid, price=Decimal("1000"))


async def test_the_gateway_hands_out_one_client_per_account(world: World) -> None:
    assert world.gateway.account(USER, "bybit", "demo") is world.client
    assert world.gateway.account(USER, "bybit", "live") is not world.client


async def test_concurrent_reads_make_one_call_per_kind_and_then_none(world: World) -> None:
    before = [world.calls(p) for p in (WALLET, POSITIONS, ORDERS)]
    reads = await asyncio.gather(
        *(world.client.balance() for _ in range(50)),
        *(world.client.positions() for _ in range(50)),
        *(world.client.open_orders() for _ in range(50)),
    )
    assert [world.calls(p) for p in (WALLET, POSITIONS, ORDERS)] == [n + 1 for n in before]
    assert {r.equity for r in reads[:50] if isinstance(r, Balance)} == {Decimal("2500")}
    await asyncio.gather(world.client.balance(), world.client.positions())
    assert [world.calls(p) for p in (WALLET, POSITIONS, ORDERS)] == [n + 1 for n in before]


async def test_placing_an_order_drops_balance_positions_and_orders_of_that_account(
    world: World,
) -> None:
    await _fill_cache(world)
    others = _others(world)
    order = await world.client.create_order(
        OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "twacct0001")
    )
    assert order.client_order_id == "twacct0001"
    assert world.cached(world.client) == (False, False, False)
    assert [world.cached(o) for o in others] == [(True, True, True)] * 2
    (position,) = await world.client.positions()  # read again: the new position is there
    assert position.qty == Decimal("0.01")


async def test_cancelling_drops_orders_and_balance_but_keeps_positions(world: World) -> None:
    placed = await world.client.create_order(_limit("twacct0002"))
    await _fill_cache(world)
    assert [o.order_id for o in await world.client.open_orders()] == [placed.order_id]
    others = _others(world)
    await world.client.cancel_order(BTC, placed.order_id)
    assert world.cached(world.client) == (False, True, False)
    assert [world.cached(o) for o in others] == [(True, True, True)] * 2
    assert await world.client.open_orders() == ()


async def test_setting_leverage_drops_balance_and_positions_but_keeps_orders(
    world: World,
) -> None:
    await _fill_cache(world)
    await world.client.set_leverage(BTC, 7)
    assert world.calls(LEVERAGE) >= 1
    assert world.cached(world.client) == (False, False, True)


async def test_a_refused_order_still_drops_what_it_could_have_changed(world: World) -> None:
    await _fill_cache(world)
    with pytest.raises(InvalidOrder, match="refused"):
        await world.client.create_order(_limit("twacct0003", qty="1000"))
    assert world.cached(world.client) == (False, False, False)


async def test_a_failed_cancel_still_drops_orders_and_balance(world: World) -> None:
    await _fill_cache(world)
    world.server.faults.add(path=CANCEL, kind=FaultKind.HTTP_5XX, times=None)
    with pytest.raises(ExchangeError):
        await world.client.cancel_order(BTC, "no-such-order")
    assert world.cached(world.client) == (False, True, False)


async def test_a_read_in_flight_during_a_write_does_not_store_the_old_state(
    world: World,
) -> None:
    world.server.faults.add(path=POSITIONS, kind=FaultKind.LATENCY, delay_ms=300)
    slow_read = asyncio.create_task(world.client.positions())
    await asyncio.sleep(0.05)  # the read is on its way when the order is placed
    await world.client.create_order(
        OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "twacct0004")
    )
    await slow_read
    assert world.cached(world.client)[1] is False  # whatever it saw is not kept
    (position,) = await world.client.positions()
    assert position.qty == Decimal("0.01")


async def test_pushed_values_replace_cached_ones_and_are_served_without_a_call(
    world: World,
) -> None:
    await _fill_cache(world)
    before = [world.calls(p) for p in (WALLET, POSITIONS, ORDERS)]
    position = Position(
        BTC, PositionSide.LONG, Decimal("0.5"), Decimal("60000"), Decimal("60100"),
        Decimal("50"), 5, Decimal("6000"),
    )  # fmt: skip
    order = Order(
        "o-1", "tw-1", BTC, Side.BUY, OrderType.LIMIT, Decimal("0.1"), Decimal("59000"),
        OrderStatus.OPEN,
    )  # fmt: skip
    world.client.push_balance(PUSHED)
    world.client.push_positions([position])
    world.client.push_orders([order])
    assert await world.client.balance() == PUSHED
    assert await world.client.positions() == (position,)
    assert await world.client.open_orders() == (order,)
    assert world.client.cached_balance() == PUSHED
    assert [world.calls(p) for p in (WALLET, POSITIONS, ORDERS)] == before


async def test_a_push_before_any_read_is_served_too(world: World) -> None:
    before = world.calls(WALLET)
    world.client.push_balance(PUSHED)
    assert await world.client.balance() == PUSHED
    assert world.calls(WALLET) == before


async def test_fresh_reads_reach_the_exchange_and_refill_the_cache(world: World) -> None:
    world.client.push_balance(PUSHED)
    before = world.calls(WALLET)
    balances = await asyncio.gather(*(world.client.balance(fresh=True) for _ in range(3)))
    assert world.calls(WALLET) == before + 1
    assert {b.equity for b in balances} == {Decimal("2500")}
    assert await world.client.balance() == balances[0]


async def test_refresh_reloads_the_warmed_entries_and_refuses_other_kinds(world: World) -> None:
    world.client.push_balance(PUSHED)
    await world.client.refresh("balance")
    assert (await world.client.balance()).equity == Decimal("2500")
    with pytest.raises(ValueError, match="no account cache"):
        await world.client.refresh("tickers")


async def test_new_keys_forget_what_was_cached_about_the_account(world: World) -> None:
    world.client.push_balance(PUSHED)
    other = world.gateway.account(8, "bybit", "demo")
    other.push_balance(PUSHED)
    await world.gateway.forget(USER, "bybit", "demo")
    assert world.client.cached_balance() is None
    assert other.cached_balance() == PUSHED


async def test_a_failed_read_is_not_cached(world: World) -> None:
    world.server.faults.add(path=WALLET, kind=FaultKind.HTTP_5XX, times=None)
    with pytest.raises(TemporaryError):
        await world.client.balance()
    assert world.cached(world.client)[0] is False


async def test_a_check_reaches_the_exchange_and_keeps_nothing(world: World) -> None:
    world.client.push_balance(PUSHED)
    before = world.calls(WALLET)
    assert (await world.client.check()).equity == Decimal("2500")
    assert world.calls(WALLET) == before + 1
    assert world.client.cached_balance() == PUSHED


async def test_an_order_left_unresolved_is_looked_up_through_its_account(world: World) -> None:
    """The order-resolution job lends each intent's account from the gateway."""
    intents = IntentRepository(world.store)
    cid = "twacctresolve01"
    new = NewIntent(
        cid, USER, "bybit", "demo", BTC, "buy", "market", Decimal("0.01"), "manual",
        status=IntentStatus.SENT,
    )  # fmt: skip
    await intents.create(new, datetime(2026, 6, 1, tzinfo=UTC))
    async with world.gateway.lease(USER, "bybit", "demo") as raw:  # it reached the exchange
        await raw.create_order(OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), cid))
    executor = OrderExecutor(intents, SystemClock())
    assert await executor.resolve_pending(world.gateway.lease_for, older_than_s=0) == 1
    settled = await intents.get(cid)
    assert settled is not None and settled.status in (IntentStatus.OPEN, IntentStatus.FILLED)
    assert settled.exchange_order_id
