"""Account streams against the local Bybit server with the real ccxt.pro client: pushed
fills reach the sink, pushed state replaces the cache, and every drop, stall, unreadable
or missed frame ends in a catch-up with nothing lost or doubled.

Real SQLite, real ccxt, the real gateway and stream manager; the fill ledger is a fake
sink and its catch-up reads the server's executions (the ledger's REST side is its own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.cache import CacheLayer
from core.crypto import SecretBox, generate_key
from core.exchange.credentials import ApiCredentials
from core.exchange.models import Fill, OrderRequest, OrderType, PositionSide, Side
from core.metrics import Metrics
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.account_client import AccountClient
from services.accounts import AccountService
from services.caching import define_trader_caches
from services.exchanges import ExchangeGateway
from services.stream_feeds import GatewayFeeds
from services.streams import StreamLimits, StreamManager
from tests.exchange_server import ExchangeServer
from tests.exchange_server.ws import StreamFaultKind
from tests.fakes.clock import FakeClock
from tests.fakes.fills import FakeCatchUp, FakeFillSink
from tests.fakes.gateways import QUICK, local_gateway

BTC = "BTC/USDT:USDT"
USERS = (7, 8, 9)
READS = ("/v5/account/wallet-balance", "/v5/position/list", "/v5/order/realtime")


@dataclass
class World:
    gateway: ExchangeGateway
    server: ExchangeServer
    sink: FakeFillSink
    catch_up: FakeCatchUp
    clock: FakeClock
    metrics: Metrics
    build: Callable[..., StreamManager]

    def client(self, user_id: int = 7) -> AccountClient:
        return self.gateway.account(user_id, "bybit", "demo")

    def reads(self) -> list[int]:
        return [self.server.stats.requests[path] for path in READS]

    def executions(self, user_id: int = 7) -> set[str]:
        return {row["execId"] for row in self.server.account(f"key-{user_id}").executions}


def _fills_of(server: ExchangeServer) -> Callable[[int, str, str], Sequence[Fill]]:
    def read(user_id: int, exchange: str, account_type: str) -> list[Fill]:
        rows = server.account(f"key-{user_id}").executions
        return [
            Fill(
                fill_id=row["execId"],
                order_id=row["orderId"],
                client_order_id=row["orderLinkId"] or None,
                symbol=BTC,
                side=Side(row["side"].lower()),
                price=Decimal(row["execPrice"]),
                qty=Decimal(row["execQty"]),
                fee=Decimal(row["execFee"]),
                fee_currency="USDT",
                ts=datetime.fromtimestamp(int(row["execTime"]) / 1000, UTC),
            )
            for row in rows
        ]

    return read


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    cache = CacheLayer(clock)
    define_trader_caches(cache)
    box = SecretBox([generate_key()])
    metrics = Metrics()
    managers: list[StreamManager] = []
    async with ExchangeServer(symbols=10, seed=4) as server:
        gateway = local_gateway(
            store, clock, base_url=server.base_url, secrets=box, cache=cache, retry=QUICK
        )
        accounts = AccountService(store, gateway, box, cache, clock, ("paper", "bybit"))
        for user_id in USERS:
            server.add_account(f"key-{user_id}", f"secret-{user_id}", Decimal("2500"))
            await UserRepository(store).upsert(UserProfile(user_id, user_id, "T"), clock.now())
            creds = ApiCredentials(f"key-{user_id}", f"secret-{user_id}")
            await accounts.connect(user_id, "bybit", "demo", creds)
        sink = FakeFillSink()
        catch_up = FakeCatchUp(sink, _fills_of(server))
        feeds = GatewayFeeds(gateway, keepalive_ms=300)

        def build(total: int, per_venue: dict[str, int] | None = None) -> StreamManager:
            limits = StreamLimits(total=total)
            if per_venue is not None:
                limits = StreamLimits(total=total, per_venue=per_venue)
            manager = StreamManager(
                limits=limits,
                opener=feeds,
                accounts=gateway.account,
                sink=sink,
                catch_up=catch_up,
                clock=clock,
                metrics=metrics,
                backoff_s=(0.05, 0.2),
            )
            managers.append(manager)
            return manager

        try:
            yield World(gateway, server, sink, catch_up, clock, metrics, build)
        finally:
            for manager in managers:
                await manager.aclose()
            await feeds.aclose()
            await gateway.aclose()


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def _streamed(world: World, user_id: int = 7, total: int = 10) -> StreamManager:
    manager = world.build(total)
    manager.touch(user_id, "bybit", "demo")
    stream = manager.stream(user_id, "bybit", "demo")
    assert stream is not None
    await eventually(lambda: stream.connected)
    return manager


def _buy(cid: str, qty: str = "0.01") -> OrderRequest:
    return OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal(qty), cid)


def _events(world: World, kind: str) -> float:
    return float(world.metrics.stream_events.labels("bybit", kind)._value.get())


async def test_a_pushed_fill_reaches_the_sink_and_replaces_the_cached_state(world: World) -> None:
    await _streamed(world)
    assert world.catch_up.calls == [(7, "bybit", "demo")]  # connecting is a gap too
    order = await world.client().create_order(_buy("twstream01"))
    await eventually(lambda: world.executions() <= world.sink.ids() and bool(world.executions()))
    (fill,) = world.sink.fills.values()
    assert (fill.order_id, fill.side, fill.qty) == (order.order_id, Side.BUY, Decimal("0.01"))
    assert fill.fee > 0 and fill.client_order_id == "twstream01"
    await eventually(lambda: _events(world, "position") >= 1 and _events(world, "balance") >= 1)
    before = world.reads()
    client = world.client()
    (position,) = await client.positions()
    balance, orders = await client.balance(), await client.open_orders()
    assert (position.side, position.qty) == (PositionSide.LONG, Decimal("0.01"))
    assert balance.equity < Decimal("2500") and list(orders) == []
    assert world.reads() == before  # every read was served by what the stream pushed
    assert world.sink.deliveries[fill.fill_id] == 1


async def test_a_resting_order_is_pushed_and_its_cancel_drops_it(world: World) -> None:
    await _streamed(world)
    client = world.client()
    request = OrderRequest(
        BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "twstream02", price=Decimal("1000")
    )
    placed = await client.create_order(request)
    await eventually(lambda: bool(world.client().cached_balance()) and _events(world, "order") >= 1)
    before = world.reads()
    assert [o.order_id for o in await client.open_orders()] == [placed.order_id]
    await client.cancel_order(BTC, placed.order_id)
    await eventually(lambda: _events(world, "order") >= 2)
    await eventually(lambda: world.gateway.account_caches.orders.get(client.key) is not None)
    assert list(await client.open_orders()) == []
    assert world.reads() == before


async def test_a_stream_dropped_mid_fill_reconnects_and_catches_up_once(world: World) -> None:
    manager = await _streamed(world)
    world.server.streams.faults.add(StreamFaultKind.DROP, topic="execution")
    await world.client().create_order(_buy("twstream03"))
    stream = manager.stream(7, "bybit", "demo")
    assert stream is not None
    await eventually(lambda: stream.connects == 2 and stream.connected)
    assert len(world.catch_up.calls) == 2
    assert world.executions() and world.sink.ids() == world.executions()
    await world.client().create_order(_buy("twstream04"))  # streamed again after the drop
    await eventually(lambda: len(world.sink.ids()) == 2)
    assert world.sink.ids() == world.executions()
    assert max(world.sink.deliveries.values()) <= 2  # the stream never repeats one
    assert _events(world, "drop") >= 1


async def test_a_malformed_frame_is_logged_and_the_stream_recovers(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    manager = await _streamed(world)
    world.server.streams.faults.add(StreamFaultKind.MALFORMED, topic="execution")
    with caplog.at_level(logging.WARNING):
        await world.client().create_order(_buy("twstream05"))
        await eventually(
            lambda: world.sink.ids() == world.executions() and bool(world.executions())
        )
    assert any("unreadable bybit stream frame" in r.getMessage() for r in caplog.records)
    assert len(world.catch_up.calls) == 2 and _events(world, "malformed") == 1
    await world.client().create_order(_buy("twstream06"))
    await eventually(lambda: len(world.sink.ids()) == 2)
    stream = manager.stream(7, "bybit", "demo")
    assert stream is not None and stream.connects == 1  # the same connection went on


async def test_a_missed_execution_is_noticed_from_the_order_and_caught_up(world: World) -> None:
    await _streamed(world)
    world.server.streams.faults.add(StreamFaultKind.MISS, topic="execution")
    await world.client().create_order(_buy("twstream07"))
    await eventually(lambda: world.sink.ids() == world.executions() and bool(world.executions()))
    assert len(world.catch_up.calls) == 2 and _events(world, "gap") == 1


async def test_a_stalled_stream_times_out_and_reconnects(world: World) -> None:
    manager = await _streamed(world)
    world.server.streams.faults.add(StreamFaultKind.STALL, topic="execution")
    await world.client().create_order(_buy("twstream08"))
    stream = manager.stream(7, "bybit", "demo")
    assert stream is not None
    await eventually(lambda: stream.connects == 2 and stream.connected)
    assert world.sink.ids() == world.executions()


async def test_the_cap_drops_the_least_recently_active_stream(world: World) -> None:
    manager = world.build(2)
    manager.touch(7, "bybit", "demo")
    world.clock.advance(1)
    manager.touch(8, "bybit", "demo")
    world.clock.advance(1)
    manager.touch(7, "bybit", "demo")  # 7 is active again: 8 is now the oldest
    world.clock.advance(1)
    manager.touch(9, "bybit", "demo")
    assert [manager.streaming(u, "bybit", "demo") for u in USERS] == [True, False, True]
    await eventually(lambda: world.server.streams.connections() == 2)
    assert world.server.streams.connections("key-8") == 0
    assert manager.counts()["bybit"] == 2


async def test_idle_streams_without_positions_are_swept(world: World) -> None:
    manager = await _streamed(world)
    world.clock.advance(manager.limits.active_window_s + 1)
    assert await manager.sweep() == 1
    assert not manager.streaming(7, "bybit", "demo")
    await eventually(lambda: world.server.streams.connections() == 0)


async def test_with_streams_off_nothing_streams(world: World) -> None:
    manager = world.build(0)
    manager.touch(7, "bybit", "demo")
    manager.start()
    await world.client().create_order(_buy("twstream09"))
    await asyncio.sleep(0.2)
    assert not manager.streaming(7, "bybit", "demo")
    assert world.server.streams.stats["connections"] == 0 and not world.sink.fills


async def test_exposed_accounts_stream_and_are_dropped_after_active_ones(world: World) -> None:
    manager = world.build(2)
    manager.expose([(8, "bybit", "demo")])  # held a position when the bot started
    manager.touch(7, "bybit", "demo")
    assert manager.streaming(8, "bybit", "demo") and manager.streaming(7, "bybit", "demo")
    manager.touch(9, "bybit", "demo")  # the cap: the exposed, never active account goes first
    assert not manager.streaming(8, "bybit", "demo")
    assert manager.streaming(9, "bybit", "demo")


async def test_the_venue_cap_applies_below_the_process_cap(world: World) -> None:
    manager = world.build(10, per_venue={"bybit": 1})
    manager.touch(7, "bybit", "demo")
    world.clock.advance(1)
    manager.touch(8, "bybit", "demo")
    assert not manager.streaming(7, "bybit", "demo") and manager.streaming(8, "bybit", "demo")
    assert manager.counts() == {"bybit": 1}
