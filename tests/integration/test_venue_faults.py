"""The fault suite on every venue: the real ccxt client of Bybit, Binance USDⓈ-M and OKX
against its local server, the same faults injected at the same points of its wire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import (
    AuthFailed,
    ExchangeUnavailable,
    RateLimited,
    UnknownOutcome,
)
from core.exchange.models import OrderRequest, OrderStatus, OrderType, Side
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from tests.exchange_server import ExchangeServer, FaultKind
from tests.exchange_server.binance import BinanceServer
from tests.exchange_server.okx import OkxServer

BTC = "BTC/USDT:USDT"
RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.001)


@dataclass(frozen=True, slots=True)
class Wire:
    """Where each venue's server answers the calls under test."""

    server: type[ExchangeServer]
    balance: str
    positions: str
    create: str


WIRES = {
    "bybit": Wire(
        ExchangeServer, "/v5/account/wallet-balance", "/v5/position/list", "/v5/order/create"
    ),
    "binance": Wire(BinanceServer, "/fapi/v3/account", "/fapi/v3/positionRisk", "/fapi/v1/order"),
    "okx": Wire(
        OkxServer,
        "/api/v5/account/balance",
        "/api/v5/account/positions",
        "/api/v5/trade/batch-orders",
    ),
}


@dataclass(slots=True)
class World:
    server: ExchangeServer
    venue: CcxtVenue
    client: CcxtClient
    wire: Wire


@pytest.fixture(params=list(WIRES))
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    wire = WIRES[request.param]
    async with wire.server(symbols=10, seed=12) as server:
        server.add_account("key", "secret", Decimal("10000"))
        server.set_price("BTCUSDT", "60000")
        venue = CcxtVenue(VENUES[request.param], base_url=server.base_url, retry=RETRY)
        client = await venue.client("live", ApiCredentials("key", "secret", "passphrase"))
        yield World(server, venue, client, wire)
        await client.close()
        await venue.aclose()


def market(cid: str) -> OrderRequest:
    return OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), cid)


async def test_rate_limit_is_retried_then_surfaced(world: World) -> None:
    world.server.faults.add(path=world.wire.balance, kind=FaultKind.HTTP_429, times=None)
    before = world.server.stats.requests[world.wire.balance]
    with pytest.raises(RateLimited) as caught:
        await world.client.fetch_balance()
    assert world.server.stats.requests[world.wire.balance] - before == RETRY.attempts
    assert "rate limiting us" in caught.value.message


async def test_5xx_on_reads_is_retried_then_succeeds(world: World) -> None:
    world.server.faults.add(path=world.wire.balance, kind=FaultKind.HTTP_5XX, times=2)
    assert (await world.client.fetch_balance()).equity == Decimal("10000")


async def test_5xx_on_reads_surfaces_after_the_budget(world: World) -> None:
    world.server.faults.add(path=world.wire.positions, kind=FaultKind.HTTP_5XX, times=None)
    with pytest.raises(ExchangeUnavailable):
        await world.client.fetch_positions()


async def test_malformed_body_is_temporary(world: World) -> None:
    world.server.faults.add(path=world.wire.balance, kind=FaultKind.MALFORMED, times=None)
    with pytest.raises(ExchangeUnavailable):
        await world.client.fetch_balance()


@pytest.mark.parametrize(
    "kind", [FaultKind.ACCEPT_THEN_DROP, FaultKind.TRUNCATED, FaultKind.MALFORMED]
)
async def test_a_lost_answer_to_create_is_an_unknown_outcome_and_the_order_is_found(
    world: World, kind: FaultKind
) -> None:
    world.server.faults.add(path=world.wire.create, method="POST", kind=kind)
    with pytest.raises(UnknownOutcome) as caught:
        await world.client.create_order(market("twlost01"))
    assert caught.value.client_order_id == "twlost01"
    found = await world.client.fetch_order(BTC, client_order_id="twlost01")
    assert found.status is OrderStatus.FILLED and found.filled_qty == Decimal("0.01")


async def test_a_refused_create_is_never_retried(world: World) -> None:
    world.server.faults.add(path=world.wire.create, method="POST", kind=FaultKind.HTTP_5XX)
    before = world.server.stats.by_method[("POST", world.wire.create)]
    with pytest.raises(UnknownOutcome):  # a 5xx may have been executed: look it up
        await world.client.create_order(market("twfive01"))
    assert world.server.stats.by_method[("POST", world.wire.create)] - before == 1


async def test_bad_secret_is_auth_failed(world: World) -> None:
    bad = await world.venue.client("live", ApiCredentials("key", "wrong", "passphrase"))
    with pytest.raises(AuthFailed) as caught:
        await bad.fetch_balance()
    assert "wrong" not in caught.value.message
    await bad.close()
