"""Binance USDⓈ-M's traps, on its local server through the real ccxt client.

Each test shows the venue's behaviour with raw ccxt first where that is the trap, then that
Tradewind's Binance client handles it. Raw ccxt pointed at a local URL reads errors with its
generic table (it picks the USDⓈ-M one by host), hence `ExchangeError` with the code there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ccxt.base.errors import BadRequest, BaseError, DDoSProtection, ExchangeError

from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import AccountSetupRequired, AuthFailed, RateLimited, UnknownOutcome
from core.exchange.errors import InvalidOrder as DomainInvalidOrder
from core.exchange.models import OrderRequest, OrderType, Side
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from tests.exchange_server import FaultKind
from tests.exchange_server.binance import BinanceServer

BTC = "BTC/USDT:USDT"
KEY, SECRET = "key", "secret"


@pytest.fixture
async def server() -> AsyncIterator[BinanceServer]:
    async with BinanceServer(symbols=10, seed=3) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
async def venue(server: BinanceServer) -> AsyncIterator[CcxtVenue]:
    retry = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001)
    adapter = CcxtVenue(VENUES["binance"], base_url=server.base_url, retry=retry)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def client(venue: CcxtVenue) -> AsyncIterator[CcxtClient]:
    opened = await venue.client("live", ApiCredentials(KEY, SECRET))
    yield opened
    await opened.close()


@pytest.fixture
async def raw(server: BinanceServer) -> AsyncIterator[Any]:
    exchange = server.ccxt(KEY, SECRET, options={"defaultType": "future"})
    await exchange.load_markets()
    yield exchange
    await exchange.close()


def buy(cid: str, qty: str = "0.01", **kw: Any) -> OrderRequest:
    return OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal(qty), cid, **kw)


async def test_binance_reuses_a_filled_orders_id_and_tradewind_does_not(
    raw: Any, client: CcxtClient, server: BinanceServer
) -> None:
    params = {"clientOrderId": "twreuse1"}
    await raw.create_order(BTC, "market", "buy", 0.01, None, params)
    await raw.create_order(BTC, "market", "buy", 0.01, None, params)  # accepted: a 2nd order
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.02")
    await client.create_order(buy("twreuse2"))
    with pytest.raises(UnknownOutcome):
        await client.create_order(buy("twreuse2"))
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.03")


async def test_an_open_orders_id_is_refused_as_a_duplicate(raw: Any) -> None:
    params = {"clientOrderId": "twopen1"}
    await raw.create_order(BTC, "limit", "buy", 0.01, 50000, params)
    with pytest.raises(ExchangeError, match="-4116"):
        await raw.create_order(BTC, "limit", "buy", 0.01, 50000, params)


def protection(server: BinanceServer) -> dict[str, Decimal]:
    """The account's live conditional orders: order type → trigger price."""
    algos = server.algos(server.account(KEY))
    return {a["orderType"]: Decimal(a["triggerPrice"]) for a in algos if a["algoStatus"] == "NEW"}


async def test_take_profit_and_stop_loss_ride_as_conditional_orders(
    raw: Any, client: CcxtClient, server: BinanceServer
) -> None:
    with pytest.raises(BadRequest, match="-1104"):  # ccxt passes them through unread
        await raw.create_order(BTC, "market", "buy", 0.01, None, {"takeProfit": {"x": 1}})
    tp, sl = Decimal("61800"), Decimal("59100")
    placed = await client.create_order(buy("twtpsl1", take_profit=tp, stop_loss=sl))
    assert (placed.take_profit, placed.stop_loss) == (tp, sl)
    assert protection(server) == {"TAKE_PROFIT_MARKET": tp, "STOP_MARKET": sl}
    server.set_price("BTCUSDT", "61800")
    assert server.account(KEY).position("BTCUSDT").size == 0  # the take-profit closed it
    assert protection(server) == {"STOP_MARKET": sl}  # no OCO: the stop outlives it
    await client.create_order(buy("twtpsl3"))  # a new position, no TP/SL of its own
    assert protection(server) == {}  # the stale stop went first
    server.set_price("BTCUSDT", "59000")
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.01")


async def test_old_stops_never_close_the_next_position(
    client: CcxtClient, server: BinanceServer
) -> None:
    await client.create_order(
        buy("twold1", take_profit=Decimal("63000"), stop_loss=Decimal("59000"))
    )
    await client.create_order(
        buy("twold2", take_profit=Decimal("62000"), stop_loss=Decimal("59500"))
    )
    assert protection(server) == {
        "TAKE_PROFIT_MARKET": Decimal("62000"),
        "STOP_MARKET": Decimal("59500"),
    }
    close = OrderRequest(
        BTC, Side.SELL, OrderType.MARKET, Decimal("0.02"), "twold3", reduce_only=True
    )
    await client.create_order(close)
    assert protection(server) == {}  # flat: its TP/SL are gone with it
    await client.create_order(buy("twold4"))
    server.set_price("BTCUSDT", "59400")  # below both old stops
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.01")


async def test_a_refused_stop_leaves_the_order_unprotected_there(client: CcxtClient) -> None:
    wrong = Decimal("60500")  # a stop above the price of a long would trigger at once
    placed = await client.create_order(buy("twtpsl2", stop_loss=wrong))
    assert placed.filled_qty == Decimal("0.01") and placed.stop_loss is None


async def test_fees_come_from_trades_and_leverage_from_margin(client: CcxtClient) -> None:
    await client.set_leverage(BTC, 5)
    placed = await client.create_order(buy("twfee1"))
    assert placed.fee == Decimal("0.33")  # 600 × 0.055 %, not in Binance's order answer
    found = await client.fetch_order(BTC, client_order_id="twfee1")
    assert found.fee == Decimal("0.33")
    client._leverage.clear()
    (position,) = await client.fetch_positions()
    assert position.leverage == 5


async def test_hedge_mode_refuses_one_way_orders_and_is_caught_at_connect(
    venue: CcxtVenue, client: CcxtClient, server: BinanceServer
) -> None:
    await venue.check_account("live", ApiCredentials(KEY, SECRET))  # one-way: nothing to say
    server.hedge_mode.add(KEY)
    with pytest.raises(DomainInvalidOrder, match="position side"):
        await client.create_order(buy("twhedge1"))
    with pytest.raises(AccountSetupRequired, match="Hedge Mode"):
        await venue.check_account("live", ApiCredentials(KEY, SECRET))


async def test_invalid_symbol_and_insufficient_margin_codes(raw: Any) -> None:
    with pytest.raises(BadRequest, match="-1121"):
        await raw.fapiPrivateGetOrder({"symbol": "NOPEUSDT", "orderId": 1})
    with pytest.raises(ExchangeError, match="-2019"):
        await raw.create_order(BTC, "market", "buy", 2, None)


async def test_signatures_are_checked(venue: CcxtVenue, raw: Any) -> None:
    bad = await venue.client("live", ApiCredentials(KEY, "wrong-secret"))
    with pytest.raises(AuthFailed):
        await bad.fetch_balance()
    await bad.close()
    with pytest.raises(BaseError, match="-1021"):
        await raw.fetch_balance({"timestamp": 1, "recvWindow": 5000})


@pytest.mark.parametrize("kind", [FaultKind.HTTP_429, FaultKind.HTTP_403])
async def test_429_and_418_are_rate_limits(
    client: CcxtClient, raw: Any, server: BinanceServer, kind: FaultKind
) -> None:
    server.faults.add(path="/fapi/v3/account", kind=kind, times=None)
    with pytest.raises(DDoSProtection):
        await raw.fetch_balance()
    with pytest.raises(RateLimited) as caught:
        await client.fetch_balance()
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1


async def test_post_only_is_gtx_and_one_that_would_take_is_refused(
    client: CcxtClient, server: BinanceServer
) -> None:
    def limit(cid: str, price: str) -> OrderRequest:
        return OrderRequest(
            BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"), cid, price=Decimal(price),
            post_only=True,
        )  # fmt: skip

    resting = await client.create_order(limit("twgtx1", "59000"))
    assert (resting.filled_qty, server.account(KEY).by_link["twgtx1"].time_in_force) == (
        0,
        "PostOnly",
    )
    with pytest.raises(DomainInvalidOrder) as refused:
        await client.create_order(limit("twgtx2", "60500"))  # above the last price: it would take
    assert "Post Only order will be rejected" in refused.value.message
    assert "twgtx2" not in server.account(KEY).by_link  # not recorded, as on Binance
