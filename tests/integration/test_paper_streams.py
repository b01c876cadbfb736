"""Paper accounts stream through the same manager: the paper exchange's own events push
orders, positions and balance into the cache, and its fills call the catch-up (they are
named only once stored). Real SQLite and the real paper exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.cache import CacheLayer
from core.crypto import SecretBox, generate_key
from core.exchange.models import ZERO, Balance, Fill, OrderRequest, OrderType, PositionSide, Side
from core.exchange.venues import PAPER
from core.paper.events import EmittingLedger, PaperEvents
from db.repositories.paper import PaperRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.accounts import AccountService
from services.caching import define_trader_caches
from services.exchanges import ExchangeGateway
from services.stream_feeds import GatewayFeeds
from services.streams import StreamLimits, StreamManager
from tests.fakes.clock import FakeClock
from tests.fakes.fills import FakeCatchUp, FakeFillSink
from tests.fakes.gateways import local_gateway
from tests.integration.test_account_streams import eventually

USER = 7
BTC = "BTC/USDT:USDT"
EMPTY = Balance(ZERO, ZERO, ZERO, ZERO)


@dataclass
class World:
    gateway: ExchangeGateway
    manager: StreamManager
    catch_up: FakeCatchUp
    events: PaperEvents
    clock: FakeClock


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    cache = CacheLayer(clock)
    define_trader_caches(cache)
    box = SecretBox([generate_key()])
    events = PaperEvents()
    ledger = EmittingLedger(PaperRepository(store), events)
    gateway = local_gateway(store, clock, secrets=box, cache=cache, ledger=ledger)

    async def balance_of(user_id: int) -> Balance:
        async with gateway.lease(user_id, PAPER, PAPER) as client:
            return await client.fetch_balance()

    events.bind(balance_of, lambda symbol: None)
    await UserRepository(store).upsert(UserProfile(USER, USER, "T"), clock.now())
    accounts = AccountService(store, gateway, box, cache, clock, ("paper",))
    await accounts.connect(USER, PAPER, PAPER)
    sink = FakeFillSink()
    stored: list[Fill] = []
    catch_up = FakeCatchUp(sink, lambda *account: stored)
    manager = StreamManager(
        limits=StreamLimits(total=5),
        opener=GatewayFeeds(gateway, paper=events),
        accounts=gateway.account,
        sink=sink,
        catch_up=catch_up,
        clock=clock,
        backoff_s=(0.05, 0.1),
        marks=gateway.last_price,
    )
    try:
        yield World(gateway, manager, catch_up, events, clock)
    finally:
        await manager.aclose()
        await gateway.aclose()


async def test_a_paper_fill_pushes_the_account_and_calls_the_catch_up(world: World) -> None:
    world.manager.touch(USER, PAPER, PAPER)
    stream = world.manager.stream(USER, PAPER, PAPER)
    assert stream is not None
    await eventually(lambda: stream.connected)
    assert world.events.listening(USER)
    client = world.gateway.account(USER, PAPER, PAPER)
    request = OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "twpaperst1")
    await client.create_order(request)
    caches = world.gateway.account_caches
    await eventually(
        lambda: bool(caches.positions.get(client.key)) and len(world.catch_up.calls) == 2
    )
    await eventually(lambda: (caches.balance.get(client.key) or EMPTY).used_margin > 0)
    pushed = caches.positions.get(client.key)
    assert pushed is not None
    (position,) = pushed
    assert (position.side, position.qty) == (PositionSide.LONG, Decimal("0.01"))
    assert world.catch_up.calls[-1] == (USER, PAPER, PAPER)


async def test_a_paper_cancel_drops_the_pushed_order(world: World) -> None:
    world.manager.touch(USER, PAPER, PAPER)
    stream = world.manager.stream(USER, PAPER, PAPER)
    assert stream is not None
    await eventually(lambda: stream.connected)
    client = world.gateway.account(USER, PAPER, PAPER)
    request = OrderRequest(
        BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "twpaperst2", price=Decimal("1000")
    )
    placed = await client.create_order(request)
    caches = world.gateway.account_caches
    await eventually(lambda: bool(caches.orders.get(client.key)))
    await client.cancel_order(BTC, placed.order_id)
    await eventually(lambda: caches.orders.get(client.key) == ())
    await asyncio.sleep(0)
    assert not stream.orders and len(world.catch_up.calls) == 1  # no fill: no catch-up


async def test_a_pushed_paper_position_is_repriced_as_the_market_moves(world: World) -> None:
    # The engine pushes a position when it changes, not when its price does: its mark and
    # uPnL come from the prices paper trades at, at every re-push.
    world.manager.touch(USER, PAPER, PAPER)
    stream = world.manager.stream(USER, PAPER, PAPER)
    assert stream is not None
    await eventually(lambda: stream.connected)
    client = world.gateway.account(USER, PAPER, PAPER)
    request = OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "twpaperst3")
    await client.create_order(request)
    caches = world.gateway.account_caches
    await eventually(lambda: bool(caches.positions.get(client.key)))
    world.clock.advance(seconds=3_600)
    later = world.gateway.last_price(PAPER, BTC)
    assert later is not None

    def repriced() -> bool:
        pushed = caches.positions.get(client.key)
        return pushed is not None and [p.mark_price for p in pushed] == [later]

    await eventually(repriced)
    pushed = caches.positions.get(client.key)
    assert pushed is not None
    (position,) = pushed
    assert later != position.entry_price
    assert position.unrealised_pnl == (later - position.entry_price) * position.qty
    assert world.gateway.last_price(PAPER, "NOPE/USDT:USDT") is None
