"""OKX's TP/SL algo orders on the local v5 server through the real ccxt client: the traps of
`order-algo` shown with raw ccxt, then Tradewind's position-level TP/SL on top of them, the
pending list read to its last page, and the closes an algo sent named by its history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from ccxt.base.errors import AuthenticationError, ExchangeError, InvalidOrder

from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import InvalidOrder as DomainInvalidOrder
from core.exchange.models import ZERO, OrderRequest, OrderType, PositionSide, Side, TradingStop
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from tests.exchange_server.okx import OkxServer

BTC = "BTC/USDT:USDT"
KEY, SECRET, PHRASE = "key", "secret", "phrase"
PENDING, HISTORY = "/api/v5/trade/orders-algo-pending", "/api/v5/trade/orders-algo-history"


@pytest.fixture
async def server() -> AsyncIterator[OkxServer]:
    async with OkxServer(symbols=10, seed=7) as running:
        running.add_account(KEY, SECRET, Decimal("100000"), passphrase=PHRASE)
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
async def client(server: OkxServer) -> AsyncIterator[CcxtClient]:
    retry = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001)
    venue = CcxtVenue(VENUES["okx"], base_url=server.base_url, retry=retry)
    opened = await venue.client("live", ApiCredentials(KEY, SECRET, PHRASE))
    yield opened
    await opened.close()
    await venue.aclose()


@pytest.fixture
async def raw(server: OkxServer) -> AsyncIterator[Any]:
    exchange = server.ccxt(KEY, SECRET, PHRASE, options={"fetchMarkets": {"types": ["swap"]}})
    await exchange.load_markets()
    yield exchange
    await exchange.close()


def _order(cid: str, side: Side = Side.BUY, qty: str = "0.01", **kw: Any) -> OrderRequest:
    return OrderRequest(BTC, side, OrderType.MARKET, Decimal(qty), cid, **kw)


def _live(server: OkxServer) -> list[tuple[bool, Decimal, Decimal]]:
    return [(a.close_fraction, a.tp, a.sl) for a in server.algos.live(server.account(KEY))]


def _whole(**legs: str) -> dict[str, str]:
    request = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "sell",
               "ordType": "conditional", "closeFraction": "1", "reduceOnly": "true"}  # fmt: skip
    for leg, price in legs.items():
        request |= {f"{leg}TriggerPx": price, f"{leg}OrdPx": "-1"}
    return request


async def test_order_algo_refuses_what_okx_refuses(raw: Any, client: CcxtClient) -> None:
    with pytest.raises(ExchangeError, match="51169"):  # no position to close yet
        await raw.privatePostTradeOrderAlgo(_whole(sl="59000"))
    await client.create_order(_order("twalgo1"))
    with pytest.raises(InvalidOrder, match="51280"):  # an SL above the last price
        await raw.privatePostTradeOrderAlgo(_whole(sl="60100"))
    with pytest.raises(InvalidOrder, match="51279"):  # a TP below it
        await raw.privatePostTradeOrderAlgo(_whole(tp="59900"))
    placed = await raw.privatePostTradeOrderAlgo(_whole(sl="59000"))
    assert placed["data"][0]["sCode"] == "0" and placed["data"][0]["algoId"]
    with pytest.raises(ExchangeError, match="51088"):  # one whole-position algo per position
        await raw.privatePostTradeOrderAlgo(_whole(tp="61000"))


async def test_algo_requests_are_signed_like_every_other(server: OkxServer) -> None:
    forged = server.ccxt(KEY, "not-the-secret", PHRASE)
    with pytest.raises(AuthenticationError, match="50113"):
        await forged.privatePostTradeOrderAlgo(_whole(sl="59000"))
    with pytest.raises(AuthenticationError, match="50113"):
        await forged.privateGetTradeOrdersAlgoPending({"ordType": "conditional,oco"})
    await forged.close()


async def test_tp_sl_changes_replace_the_algos_with_one_for_the_whole_position(
    client: CcxtClient, server: OkxServer
) -> None:
    tp, sl = Decimal("61800"), Decimal("59100")
    await client.create_order(_order("twalgo2", take_profit=tp, stop_loss=sl))
    await client.create_order(_order("twalgo3", stop_loss=Decimal("58000")))  # adds to it
    assert _live(server) == [(False, tp, sl), (False, ZERO, Decimal(58000))]
    (held,) = await client.fetch_positions()
    assert (held.take_profit, held.stop_loss) == (tp, Decimal(58000))  # the newest leg

    await client.set_trading_stop(TradingStop(BTC, PositionSide.LONG, stop_loss=Decimal(59500)))
    assert _live(server) == [(True, tp, Decimal(59500))]  # both replaced, the TP kept
    (whole,) = server.algos.live(server.account(KEY))
    assert whole.cid.startswith("tpsl") and len(whole.cid) == 32  # not an order id of ours
    with pytest.raises(DomainInvalidOrder, match="TP trigger price cannot be lower"):
        await client.set_trading_stop(TradingStop(BTC, PositionSide.LONG, Decimal(59900)))
    assert _live(server) == [(True, tp, Decimal(59500))]  # and the levels put back
    await client.set_trading_stop(TradingStop(BTC, PositionSide.LONG, take_profit=ZERO))
    assert _live(server) == [(True, ZERO, Decimal(59500))]
    (held,) = await client.fetch_positions()
    assert (held.take_profit, held.stop_loss) == (None, Decimal(59500))
    await client.set_trading_stop(TradingStop(BTC, PositionSide.LONG, ZERO, ZERO))
    assert _live(server) == []
    with pytest.raises(DomainInvalidOrder, match="kept by the bot"):
        await client.set_trading_stop(
            TradingStop(BTC, PositionSide.LONG, trailing_distance=Decimal(5))
        )
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.02")


async def test_the_pending_list_is_read_to_its_last_page(
    client: CcxtClient, server: OkxServer
) -> None:
    await client.create_order(_order("twalgo4", qty="0.2"))
    account = server.account(KEY)
    whole = server.algos.add(account, "BTCUSDT", "sell", ZERO, Decimal(63000), Decimal(57000))
    for n in range(130):  # newer ones, one contract each: the whole-position algo is on page 2
        server.algos.add(account, "BTCUSDT", "sell", Decimal(1), ZERO, Decimal(58000 + n))
    server.stats.reset()
    (held,) = await client.fetch_positions()
    assert (held.take_profit, held.stop_loss) == (whole.tp, whole.sl)
    assert server.stats.requests[PENDING] == 2

    await client.set_trading_stop(TradingStop(BTC, PositionSide.LONG, take_profit=Decimal(62000)))
    assert _live(server) == [(True, Decimal(62000), Decimal(57000))]  # all 131 cancelled
    assert server.stats.requests["/api/v5/trade/cancel-algos"] == 14  # ten a request


async def test_closes_an_algo_sent_are_named_by_one_history_read(
    client: CcxtClient, server: OkxServer
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    account = server.account(KEY)
    await client.create_order(_order("twalgo5", take_profit=Decimal(61000)))
    server.set_price("BTCUSDT", "61100")  # the attached TP fires
    await client.create_order(_order("twalgo6"))
    await client.set_trading_stop(TradingStop(BTC, PositionSide.LONG, stop_loss=Decimal(60000)))
    server.set_price("BTCUSDT", "59900")  # the whole-position SL fires
    assert account.position("BTCUSDT").size == 0

    server.stats.reset()
    fills = await client.fetch_fills(before)
    assert [(f.side, f.trigger, f.reduce_only) for f in fills] == [
        (Side.BUY, None, False), (Side.SELL, "take_profit", True),
        (Side.BUY, None, False), (Side.SELL, "stop_loss", True),
    ]  # fmt: skip
    assert server.stats.requests[HISTORY] == 1  # both found on its first page
    assert fills[1].realised_pnl == Decimal(11) and fills[3].realised_pnl == Decimal(-12)


async def test_a_read_with_no_close_of_unknown_cause_costs_no_history_request(
    client: CcxtClient, server: OkxServer
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await client.create_order(_order("twalgo7"))
    await client.create_order(_order("twalgo8", Side.SELL, reduce_only=True))  # ours
    server.stats.reset()
    fills = await client.fetch_fills(before)
    assert [f.trigger for f in fills] == [None, None] and server.stats.requests[HISTORY] == 0


def _fired_elsewhere(server: OkxServer, count: int) -> None:
    """History of algos on another symbol that fired and sent orders of their own."""
    account = server.account(KEY)
    for n in range(count):
        algo = server.algos.add(account, "ETHUSDT", "sell", Decimal(1), ZERO, Decimal(1000 + n))
        algo.state, algo.actual_side, algo.ord_id = "effective", "sl", str(9_000_000 + n)


async def test_history_pages_are_followed_until_the_orders_are_found(
    client: CcxtClient, server: OkxServer, raw: Any
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    _fired_elsewhere(server, 150)  # older than ours: pages 2 to 4
    await client.create_order(_order("twalgo9", stop_loss=Decimal(59000)))
    _fired_elsewhere(server, 150)  # newer: page 1 and half of page 2
    server.set_price("BTCUSDT", "58900")
    server.stats.reset()
    fills = await client.fetch_fills(before)
    assert [f.trigger for f in fills] == [None, "stop_loss"]
    assert server.stats.requests[HISTORY] == 2  # found on page 2: no further page read

    await raw.create_order(BTC, "market", "buy", 0.5, None)
    await raw.create_order(BTC, "market", "sell", 0.5, None, {"reduceOnly": True})  # on the site
    server.stats.reset()
    fills = await client.fetch_fills(before)
    assert [f.trigger for f in fills] == [None, "stop_loss", None, None]  # a close by hand
    assert server.stats.requests[HISTORY] == 4  # looked for to the end, once
