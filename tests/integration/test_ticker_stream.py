"""The market source's public ticker stream against the local Bybit server with the real
ccxt.pro client: pushed prices keep the gateway's tape fresh without a tickers request,
paper settlement on live prices trades at them, and a dropped, stalled or unreadable
stream falls back to the bulk REST read and comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.cache import CacheLayer
from core.exchange.feed import TickerFeed, open_ticker_feed
from core.exchange.models import OrderRequest, OrderType, Side
from db.store import Store
from services.caching import TICKERS, define_trader_caches
from services.exchanges import ExchangeGateway
from services.ticker_stream import TickerStream
from tests.exchange_server import ExchangeServer
from tests.exchange_server.ws import StreamFaultKind
from tests.fakes.clock import FakeClock
from tests.fakes.gateways import local_gateway

BTC = "BTC/USDT:USDT"
TICKERS_PATH = "/v5/market/tickers"


@dataclass
class World:
    gateway: ExchangeGateway
    server: ExchangeServer
    clock: FakeClock
    stream: TickerStream

    def rest_reads(self) -> int:
        return self.server.stats.requests[TICKERS_PATH]


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
    cache = CacheLayer(clock)
    define_trader_caches(cache)
    async with ExchangeServer(symbols=25, seed=3, moving=True) as server:
        gateway = local_gateway(store, clock, base_url=server.base_url, source="bybit", cache=cache)
        venue = gateway.venue("bybit")

        async def feed() -> TickerFeed:
            return open_ticker_feed(venue, stream.gap)

        stream = TickerStream(
            "bybit",
            gateway,
            feed,
            lambda: venue.markets().keys(),
            publish_s=0.02,
            backoff_s=(0.02, 0.1),
        )
        try:
            yield World(gateway, server, clock, stream)
        finally:
            await stream.aclose()
            await gateway.aclose()


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def _price(world: World, symbol: str = BTC) -> Decimal:
    return (await world.gateway.tickers("bybit"))[symbol].last


async def _streaming(world: World) -> None:
    world.stream.start()
    await eventually(lambda: world.stream.stats.connected)


async def _published(world: World) -> None:
    """Wait until the stream has published twice more: the latest push is on the tape."""
    publishes = world.stream.stats.publishes
    await eventually(lambda: world.stream.stats.publishes > publishes + 1)


async def test_pushed_prices_keep_the_tape_fresh_without_a_request(world: World) -> None:
    await _streaming(world)
    assert len(await world.gateway.tickers("bybit")) == 25  # every symbol subscribed
    world.server.stats.reset()
    for step, price in enumerate(("61000", "61500", "60250")):
        world.server.set_price("BTCUSDT", price)
        world.clock.advance(TICKERS.ttl * 2)  # a REST tape would be stale by now
        await _published(world)
        assert await _price(world) == Decimal(price), step
    assert world.rest_reads() == 0  # the stream answered every read


async def test_every_symbol_the_market_moves_reaches_the_tape(world: World) -> None:
    await _streaming(world)
    world.server.stats.reset()
    assert world.server.mover is not None
    report = world.server.mover.tick(breakouts=2, walk=0.01)
    assert report.moved >= 20
    world.clock.advance(TICKERS.ttl * 2)
    await _published(world)
    tape = await world.gateway.tickers("bybit")
    market = world.server.market
    wanted = {s: market.last(s) for s in market.instruments}
    assert {s.split("/")[0] + "USDT": t.last for s, t in tape.items()} == wanted
    assert world.rest_reads() == 0


async def test_paper_trades_on_live_prices_pushed_by_the_stream(world: World) -> None:
    await _streaming(world)
    world.server.set_price("BTCUSDT", "64000")
    await _published(world)
    await world.gateway.settle_paper()
    async with world.gateway.lease(7, "paper", "paper") as client:
        request = OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "twtape01")
        await client.create_order(request)
        (position,) = await client.fetch_positions()
        assert position.entry_price == 64000
        world.server.stats.reset()
        world.server.set_price("BTCUSDT", "65000")
        world.clock.advance(TICKERS.ttl * 2)
        await _published(world)
        await world.gateway.settle_paper()
        (marked,) = await client.fetch_positions()
        assert marked.unrealised_pnl == Decimal("10")
    assert world.rest_reads() == 0


async def test_a_dropped_stream_falls_back_to_rest_and_reconnects(world: World) -> None:
    await _streaming(world)
    world.server.streams.faults.add(StreamFaultKind.DROP, topic="tickers.BTCUSDT")
    world.server.set_price("BTCUSDT", "58000")  # the push of this move drops the connection
    await eventually(lambda: world.stream.stats.drops >= 1)
    world.clock.advance(TICKERS.ttl * 2)
    world.server.stats.reset()
    assert await _price(world) == Decimal("58000")  # meanwhile: one bulk read
    assert world.rest_reads() <= 1
    await eventually(lambda: world.stream.stats.connects >= 2)  # back, with a new snapshot
    world.server.set_price("BTCUSDT", "57000")
    world.clock.advance(TICKERS.ttl * 2)
    reads = world.rest_reads()
    await _published(world)
    assert await _price(world) == Decimal("57000")
    assert world.rest_reads() == reads


async def test_an_unreadable_frame_is_counted_and_the_stream_goes_on(world: World) -> None:
    await _streaming(world)
    world.server.streams.faults.add(StreamFaultKind.MALFORMED, topic="tickers.BTCUSDT")
    world.server.set_price("BTCUSDT", "59000")  # this push arrives unreadable
    await eventually(lambda: world.stream.stats.gaps == 1)
    world.server.set_price("BTCUSDT", "59100")  # the next one carries the whole ticker
    world.clock.advance(TICKERS.ttl * 2)
    world.server.stats.reset()
    await _published(world)
    assert await _price(world) == Decimal("59100")
    assert world.stream.stats.connects == 1 and world.rest_reads() == 0


async def test_a_silent_stream_is_replaced(world: World) -> None:
    world.stream.silent_s = 1.0  # a live venue pushes tickers many times a second
    await _streaming(world)
    world.server.streams.faults.add(StreamFaultKind.STALL, topic="tickers.BTCUSDT")
    world.server.set_price("BTCUSDT", "62000")  # the connection goes quiet from here
    await eventually(lambda: world.stream.stats.connects >= 2)  # silent 1 s: reconnected
    world.server.set_price("BTCUSDT", "62500")
    world.clock.advance(TICKERS.ttl * 2)
    await _published(world)
    assert await _price(world) == Decimal("62500")
