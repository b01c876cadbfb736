"""The exchange gateway: paper accounts without keys, real accounts from encrypted keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.crypto import SecretBox, SecretContext, generate_key
from core.exchange.errors import AuthFailed, InvalidOrder
from core.exchange.models import OrderRequest, OrderType, Side
from db.repositories.credentials import CredentialRepository, NewCredential
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.caching import TICKERS
from services.exchanges import ExchangeGateway
from services.market import MarketService
from tests.exchange_server import ExchangeServer
from tests.fakes.clock import FakeClock
from tests.fakes.gateways import local_gateway

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=10, seed=2) as running:
        running.add_account("k-old", "s-old", Decimal("1000"))
        running.add_account("k-new", "s-new", Decimal("2000"))
        yield running


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([generate_key()])


def _gateway(
    store: Store, server: ExchangeServer, box: SecretBox, clock: FakeClock, source: str
) -> ExchangeGateway:
    """A gateway over `store` whose exchanges are the local server; `source` is the
    scanner's market (paper, or bybit: the server's prices)."""
    return local_gateway(store, clock, base_url=server.base_url, source=source, secrets=box)


@pytest.fixture
async def gateway(
    store: Store, server: ExchangeServer, box: SecretBox
) -> AsyncIterator[ExchangeGateway]:
    clock = FakeClock(NOW)
    await UserRepository(store).upsert(UserProfile(7, 7, "T"), NOW)

    gw = _gateway(store, server, box, clock, "paper")
    yield gw
    await gw.aclose()


async def _connect(store: Store, box: SecretBox, key: str, secret: str) -> None:
    ctx = SecretContext(7, "bybit", "demo")
    await CredentialRepository(store).upsert(
        NewCredential(
            7, "bybit", "demo", box.encrypt(key, ctx), box.encrypt(secret, ctx), None, key[-4:]
        ),
        NOW,
    )


async def test_paper_account_needs_no_keys_and_trades(gateway: ExchangeGateway) -> None:
    async with gateway.lease(7, "paper", "paper") as client:
        assert (await client.fetch_balance()).equity == Decimal("10000")
        await client.create_order(
            OrderRequest("BTC/USDT:USDT", Side.BUY, OrderType.MARKET, Decimal("0.01"), "twgw0001")
        )
        assert len(await client.fetch_positions()) == 1
    report = await gateway.settle_paper()
    assert report.orders_filled == 0  # nothing resting, nothing triggered


async def test_market_feed_is_the_synthetic_market_by_default(gateway: ExchangeGateway) -> None:
    feed = await gateway.market_feed()
    assert len(await feed.fetch_tickers()) == 530


async def test_real_account_from_encrypted_keys_and_dropped_on_change(
    gateway: ExchangeGateway, store: Store, box: SecretBox
) -> None:
    await _connect(store, box, "k-old", "s-old")
    async with gateway.lease(7, "bybit", "demo") as client:
        assert (await client.fetch_balance()).equity == Decimal("1000")
    await _connect(store, box, "k-new", "s-new")
    assert await gateway.forget(7, "bybit") == 1
    async with gateway.lease(7, "bybit", "demo") as client:
        assert (await client.fetch_balance()).equity == Decimal("2000")


async def test_missing_keys_are_a_readable_refusal(gateway: ExchangeGateway) -> None:
    with pytest.raises(AuthFailed, match="No Bybit live account is connected"):
        async with gateway.lease(7, "bybit", "live"):
            pass
    with pytest.raises(InvalidOrder, match="not supported"):
        gateway.venue("kraken")


async def test_paper_trading_on_a_live_exchange_s_prices(
    store: Store, server: ExchangeServer, box: SecretBox
) -> None:
    clock = FakeClock(NOW)
    server.set_price("BTCUSDT", "64000")

    gw = _gateway(store, server, box, clock, "bybit")
    try:
        feed = await gw.market_feed()
        assert len(await feed.fetch_tickers()) == 10  # the exchange's market, not 530 synthetic
        async with gw.lease(7, "paper", "paper") as client:
            await client.create_order(
                OrderRequest(
                    "BTC/USDT:USDT", Side.BUY, OrderType.MARKET, Decimal("0.01"), "twlive01"
                )
            )
            (position,) = await client.fetch_positions()
            assert position.entry_price == Decimal("64000")
            server.set_price("BTCUSDT", "65000")
            await gw.settle_paper()  # within the tape's TTL: the tickers already read
            (unmoved,) = await client.fetch_positions()
            assert unmoved.unrealised_pnl == 0
            clock.advance(TICKERS.ttl)
            await gw.settle_paper()  # refreshes the live snapshot from a new read
            (marked,) = await client.fetch_positions()
            assert marked.unrealised_pnl == Decimal("10")
    finally:
        await gw.aclose()


async def test_one_tickers_read_serves_every_reader_of_a_live_market(
    store: Store, server: ExchangeServer, box: SecretBox
) -> None:
    clock = FakeClock(NOW)

    gw = _gateway(store, server, box, clock, "bybit")
    market = MarketService(gw)
    try:
        await gw.paper_source()  # the live source's first snapshot
        for interval in range(3):
            server.stats.reset()
            server.set_price("BTCUSDT", str(64000 + 100 * interval))
            clock.advance(TICKERS.ttl)
            # The scanner, paper settlement, alerts and trailing stops, and a /price, at once.
            scanned, _, bybit = await asyncio.gather(
                gw.tickers("bybit"),
                gw.settle_paper(),
                market.ticker("bybit", "BTC/USDT:USDT"),
            )
            paper = await market.ticker("paper", "BTC/USDT:USDT")  # the settled snapshot
            assert server.stats.requests["/v5/market/tickers"] == 1, interval
            assert len(scanned) == 10
            assert bybit.last == paper.last == 64000 + 100 * interval
        pushed = {s: replace(t, last=Decimal("1")) for s, t in scanned.items()}
        server.stats.reset()
        gw.push_tickers("bybit", pushed)  # a streamed snapshot: no request until it is old
        await gw.settle_paper()
        assert (await market.ticker("paper", "BTC/USDT:USDT")).last == 1
        assert server.stats.requests["/v5/market/tickers"] == 0
    finally:
        await gw.aclose()
