"""One contract, four implementations: the paper exchange, and the real ccxt client of each
venue (Bybit, Binance USDⓈ-M, OKX) against its local server.

Every test here runs against each, with the same assertions; a service written against
`ExchangeClient` cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import (
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    UnknownOutcome,
)
from core.exchange.models import OrderRequest, OrderStatus, OrderType, PositionSide, Side
from core.exchange.protocol import ExchangeClient
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.paper.exchange import PaperExchange
from db.repositories.paper import PaperRepository
from db.store import Store
from tests.exchange_server import ExchangeServer
from tests.exchange_server.binance import BinanceServer
from tests.exchange_server.okx import OkxServer
from tests.fakes.clock import FakeClock
from tests.fakes.market import FakeMarketSource

BTC = "BTC/USDT:USDT"


@dataclass(slots=True)
class Venue:
    """A client under contract and a way to move the market price it trades at."""

    client: ExchangeClient
    set_price: Callable[[str], None]


SERVERS: dict[str, type[ExchangeServer]] = {
    "bybit": ExchangeServer,
    "binance": BinanceServer,
    "okx": OkxServer,
}


@pytest.fixture(params=["paper", *SERVERS])
async def venue(request: pytest.FixtureRequest, store: Store) -> AsyncIterator[Venue]:
    if request.param == "paper":
        source = FakeMarketSource(FakeClock())
        client = PaperExchange(1, source=source, ledger=PaperRepository(store), clock=FakeClock())
        source.set_price(BTC, "60000")
        yield Venue(client, lambda price: source.set_price(BTC, price))
        await client.close()
        return
    async with SERVERS[request.param](symbols=10, seed=11) as server:
        server.add_account("key", "secret", Decimal("10000"))
        server.set_price("BTCUSDT", "60000")
        adapter = CcxtVenue(
            VENUES[request.param],
            base_url=server.base_url,
            retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001),
        )
        real = await adapter.client("live", ApiCredentials("key", "secret", "passphrase"))
        yield Venue(real, lambda price: server.set_price("BTCUSDT", price))
        await real.close()
        await adapter.aclose()


def market(qty: str, cid: str, side: Side = Side.BUY, **kw: object) -> OrderRequest:
    return OrderRequest(BTC, side, OrderType.MARKET, Decimal(qty), cid, **kw)  # type: ignore[arg-type]


def limit(qty: str, price: str, cid: str) -> OrderRequest:
    return OrderRequest(BTC, Side.BUY, OrderType.LIMIT, Decimal(qty), cid, Decimal(price))


async def test_markets_describe_linear_usdt_perpetuals(venue: Venue) -> None:
    markets = await venue.client.load_markets()
    btc = markets[BTC]
    assert (btc.base, btc.quote, btc.settle) == ("BTC", "USDT", "USDT")
    assert btc.tick_size > 0 and btc.lot_size > 0 and btc.min_notional > 0
    assert btc.max_leverage >= 20


async def test_tickers_cover_the_market_in_one_call(venue: Venue) -> None:
    markets = await venue.client.load_markets()
    tickers = await venue.client.fetch_tickers()
    assert BTC in tickers and set(tickers) <= set(markets)
    assert tickers[BTC].last == Decimal("60000")
    assert (await venue.client.fetch_ticker(BTC)).last == Decimal("60000")


async def test_candles_are_well_formed(venue: Venue) -> None:
    candles = await venue.client.fetch_ohlcv(BTC, "1m", 20)
    assert 1 <= len(candles) <= 20
    assert [c.ts for c in candles] == sorted(c.ts for c in candles)
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in candles)


async def test_a_new_account_has_ten_thousand_usdt(venue: Venue) -> None:
    balance = await venue.client.fetch_balance()
    assert balance.equity == Decimal("10000") and balance.available == Decimal("10000")
    assert balance.used_margin == 0 and balance.unrealised_pnl == 0


async def test_market_order_opens_a_long_and_charges_a_fee(venue: Venue) -> None:
    await venue.client.set_leverage(BTC, 10)
    await venue.client.create_order(market("0.01", "twc00001"))
    order = await venue.client.fetch_order(BTC, client_order_id="twc00001")
    assert order.status is OrderStatus.FILLED and order.filled_qty == Decimal("0.01")
    assert order.avg_price == Decimal("60000") and order.fee > 0
    (position,) = await venue.client.fetch_positions()
    assert (position.side, position.qty, position.leverage) == (
        PositionSide.LONG, Decimal("0.01"), 10,
    )  # fmt: skip
    assert position.entry_price == Decimal("60000")
    balance = await venue.client.fetch_balance()
    assert balance.available < Decimal("10000") - Decimal("60")  # 600 notional at 10x
    venue.set_price("61000")
    (marked,) = await venue.client.fetch_positions()
    assert marked.unrealised_pnl == Decimal("10")  # 0.01 × 1,000


async def test_reduce_only_close_flattens_and_realises(venue: Venue) -> None:
    await venue.client.create_order(market("0.01", "twc00002"))
    venue.set_price("62000")
    await venue.client.create_order(market("0.01", "twc00003", Side.SELL, reduce_only=True))
    assert await venue.client.fetch_positions() == []
    balance = await venue.client.fetch_balance()
    assert Decimal("10019") < balance.equity < Decimal("10020")  # +20 less two taker fees


async def test_limit_order_rests_until_cancelled(venue: Venue) -> None:
    placed = await venue.client.create_order(limit("0.01", "50000", "twc00004"))
    (resting,) = await venue.client.fetch_open_orders()
    assert resting.order_id == placed.order_id and resting.status is OrderStatus.OPEN
    assert resting.price == Decimal("50000") and resting.client_order_id == "twc00004"
    cancelled = await venue.client.cancel_order(BTC, placed.order_id)
    assert cancelled.order_id == placed.order_id
    assert await venue.client.fetch_open_orders() == []
    found = await venue.client.fetch_order(BTC, order_id=placed.order_id)
    assert found.status is OrderStatus.CANCELLED


async def test_unknown_order_is_not_found(venue: Venue) -> None:
    with pytest.raises(OrderNotFound):
        await venue.client.fetch_order(BTC, client_order_id="twnosuchorder")


async def test_duplicate_client_id_is_an_unknown_outcome(venue: Venue) -> None:
    await venue.client.create_order(market("0.01", "twc00005"))
    with pytest.raises(UnknownOutcome):
        await venue.client.create_order(market("0.01", "twc00005"))
    assert len(await venue.client.fetch_positions()) == 1


async def test_refusals(venue: Venue) -> None:
    with pytest.raises(InsufficientFunds):
        await venue.client.create_order(market("2", "twc00006"))  # 120,000 notional
    with pytest.raises(InvalidOrder):
        await venue.client.create_order(market("0.0001", "twc00007"))  # below the lot
    with pytest.raises(InvalidOrder):
        await venue.client.set_leverage(BTC, 1000)
    with pytest.raises(InvalidOrder):
        await venue.client.create_order(market("0.01", "twc00008", Side.SELL, reduce_only=True))


async def test_closed_client_refuses_use(venue: Venue) -> None:
    await venue.client.close()
    with pytest.raises(ExchangeUnavailable):
        await venue.client.fetch_balance()


async def test_open_orders_beyond_a_page_are_all_listed(venue: Venue) -> None:
    for n in range(25):  # Bybit pages open orders by 20
        await venue.client.create_order(limit("0.01", str(40000 + n * 10), f"twpage{n:03d}"))
    listed = await venue.client.fetch_open_orders()
    assert sorted(o.client_order_id or "" for o in listed) == [f"twpage{n:03d}" for n in range(25)]
    assert len(await venue.client.fetch_open_orders(BTC)) == 25
