"""Reading executions and closed PnL from each venue's local server through the real ccxt
client: every page, sizes in base units, fees as paid, the venue's realised PnL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.models import OrderRequest, OrderType, PositionSide, Side
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from tests.exchange_server import ExchangeServer
from tests.exchange_server.binance import BinanceServer
from tests.exchange_server.okx import OkxServer

BTC = "BTC/USDT:USDT"
KEY, SECRET, PHRASE = "key", "secret", "phrase"
SERVERS: dict[str, Any] = {"bybit": ExchangeServer, "okx": OkxServer, "binance": BinanceServer}


@pytest.fixture(params=["bybit", "okx", "binance"])
async def venue_client(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, CcxtClient]]:
    name = request.param
    async with SERVERS[name](symbols=10, seed=5) as server:
        if name == "okx":
            server.add_account(KEY, SECRET, Decimal("100000"), passphrase=PHRASE)
        else:
            server.add_account(KEY, SECRET, Decimal("100000"))
        server.set_price("BTCUSDT", "60000")
        retry = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001)
        venue = CcxtVenue(VENUES[name], base_url=server.base_url, retry=retry)
        account_type = "demo" if name == "bybit" else "live"
        client = await venue.client(account_type, ApiCredentials(KEY, SECRET, PHRASE))
        try:
            yield server, client
        finally:
            await client.close()
            await venue.aclose()


def _order(cid: str, side: Side, qty: str, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(BTC, side, OrderType.MARKET, Decimal(qty), cid, reduce_only=reduce_only)


async def test_an_open_and_a_close_read_back_as_the_venue_recorded_them(
    venue_client: tuple[Any, CcxtClient],
) -> None:
    server, client = venue_client
    before = datetime.now(UTC) - timedelta(seconds=1)
    await client.create_order(_order("twreadopen", Side.BUY, "0.02"))
    server.set_price("BTCUSDT", "61000")
    await client.create_order(_order("twreadclose", Side.SELL, "0.02", reduce_only=True))

    fills = await client.fetch_fills(before)
    closed = await client.fetch_closed_pnl(before)

    assert fills.complete and [f.side for f in fills] == [Side.BUY, Side.SELL]
    opening, closing = fills
    assert (opening.qty, opening.price, closing.qty, closing.price) == (
        Decimal("0.02"), Decimal(60000), Decimal("0.02"), Decimal(61000),
    )  # fmt: skip
    assert opening.fee == Decimal("0.66") and closing.fee == Decimal("0.671")
    assert (opening.client_order_id or "twreadopen") == "twreadopen"
    assert closing.realised_pnl == Decimal(20)  # the price move, before fees
    assert len({f.fill_id for f in fills}) == 2 and opening.order_id != closing.order_id
    if client.exchange == "bybit":
        [record] = closed
        assert (record.side, record.qty, record.order_id) == (
            PositionSide.LONG, Decimal("0.02"), closing.order_id,
        )  # fmt: skip
        assert record.closed_pnl == Decimal(20) - Decimal("0.66") - Decimal("0.671")
    else:
        assert list(closed) == []  # the fills' realised PnL is the venue's figure
    assert await client.fetch_fills(datetime.now(UTC) + timedelta(minutes=1)) == []


async def test_every_page_of_executions_is_read(venue_client: tuple[Any, CcxtClient]) -> None:
    _, client = venue_client
    before = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(120):  # more than a Bybit or OKX page
        side = Side.BUY if n % 2 == 0 else Side.SELL
        await client.create_order(_order(f"twpage{n}", side, "0.001"))

    fills = await client.fetch_fills(before)

    assert fills.complete and len(fills) == len({f.fill_id for f in fills}) == 120
    assert fills == sorted(fills, key=lambda f: f.ts)


async def test_a_read_that_stops_at_its_page_bound_says_so(
    venue_client: tuple[Any, CcxtClient],
) -> None:
    _, client = venue_client
    if client.exchange == "binance":
        pytest.skip("Binance answers 1,000 trades a page: one page holds these")
    before = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(102):
        await client.create_order(_order(f"twbound{n}", Side.BUY if n % 2 else Side.SELL, "0.001"))
    client.list_pages = 1

    fills = await client.fetch_fills(before)

    assert not fills.complete and len(fills) == 100
