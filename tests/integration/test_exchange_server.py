"""The local fake Bybit (tests.exchange_server) driven by the real ccxt.async_support.bybit."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import pytest

from tests.exchange_server import (
    LARGE_SYMBOL_COUNT,
    MAKER_FEE,
    TAKER_FEE,
    ExchangeServer,
    FaultKind,
    bybit_url_overrides,
    make_ccxt_bybit,
)

KEY, SECRET = "test-key", "test-secret"
BTC, ETH, DOGE = "BTC/USDT:USDT", "ETH/USDT:USDT", "DOGE/USDT:USDT"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=40, seed=7) as srv:
        srv.add_account(KEY, SECRET, balance_usdt=Decimal("10000"))
        yield srv


@pytest.fixture
async def exchange(server: ExchangeServer) -> AsyncIterator[ccxt_async.bybit]:
    client = server.ccxt(KEY, SECRET, timeout_ms=2000, fetchMarkets={"types": ["linear"]})
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


def _money(value: float | None) -> Decimal:
    assert value is not None
    return Decimal(str(value)).quantize(Decimal("0.00000001"))


# ---- wiring ------------------------------------------------------------------
async def test_url_overrides_cover_every_ccxt_api_key() -> None:
    stock = ccxt_async.bybit()
    try:
        assert set(bybit_url_overrides("http://127.0.0.1:1")) == set(stock.urls["api"])
    finally:
        await stock.close()
    client = make_ccxt_bybit("http://127.0.0.1:9/", KEY, SECRET)
    try:
        for table in ("api", "test", "demotrading"):
            assert set(client.urls[table].values()) == {"http://127.0.0.1:9"}
    finally:
        await client.close()


async def test_binds_loopback_only_and_serves_bybit_envelope(server: ExchangeServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.base_url}/v5/market/time") as resp,
    ):
        body = await resp.json()
    assert set(body) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    assert (body["retCode"], body["retMsg"]) == (0, "OK")
    assert abs(int(body["result"]["timeNano"]) // 1_000_000 - body["time"]) < 5_000


async def test_hand_signed_request_matches_bybit_v5_algorithm(server: ExchangeServer) -> None:
    body = json.dumps(
        {"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "5", "sellLeverage": "5"}
    )
    ts, recv = str(int(time.time() * 1000)), "5000"
    sign = hmac.new(SECRET.encode(), (ts + KEY + recv + body).encode(), hashlib.sha256)
    headers = {
        "X-BAPI-API-KEY": KEY,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": recv,
        "X-BAPI-SIGN": sign.hexdigest(),
        "Content-Type": "application/json",
    }
    url = f"{server.base_url}/v5/position/set-leverage"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=headers) as resp:
            assert (await resp.json())["retCode"] == 0
            assert "X-Bapi-Limit-Reset-Timestamp" in resp.headers
        async with session.post(url, data=body.replace("5", "6"), headers=headers) as resp:
            reply = await resp.json()
    assert reply["retCode"] == 10004
    assert reply["retMsg"].startswith("error sign! origin_string[")


# ---- market data -------------------------------------------------------------
async def test_load_markets_btc_precision_and_limits() -> None:
    async with ExchangeServer(seed=1) as server:
        client = server.ccxt()  # stock options: spot/linear/inverse/option all requested
        try:
            markets = await client.load_markets()
        finally:
            await client.close()
    assert len(markets) == 530
    btc = markets[BTC]
    assert (btc["id"], btc["type"], btc["linear"], btc["settle"]) == (
        "BTCUSDT",
        "swap",
        True,
        "USDT",
    )
    assert btc["active"] is True
    assert btc["precision"] == {"amount": 0.001, "price": 0.1}
    assert btc["limits"]["amount"]["min"] == 0.001
    assert btc["limits"]["cost"]["min"] == 5.0
    assert btc["limits"]["leverage"]["max"] == 100.0
    assert markets[ETH]["precision"] == {"amount": 0.01, "price": 0.01}


async def test_load_markets_paginates_large_universe() -> None:
    async with ExchangeServer(symbols=LARGE_SYMBOL_COUNT, seed=2) as server:
        client = server.ccxt(fetchMarkets={"types": ["linear"]})
        try:
            markets = await client.load_markets()
        finally:
            await client.close()
        assert len(markets) == LARGE_SYMBOL_COUNT
        # limit=1000 → 5 pages, plus ccxt's parallel status=PreLaunch query
        assert server.stats.requests["/v5/market/instruments-info"] == 6


async def test_fetch_tickers_returns_every_symbol_in_one_request() -> None:
    async with ExchangeServer(seed=3) as server:
        client = server.ccxt(fetchMarkets={"types": ["linear"]})
        try:
            await client.load_markets()
            tickers = await client.fetch_tickers()
        finally:
            await client.close()
        assert server.stats.requests["/v5/market/tickers"] == 1
    assert len(tickers) == 530
    btc = tickers[BTC]
    assert btc["last"] == 65000.0
    assert btc["bid"] < btc["last"] < btc["ask"]
    assert btc["markPrice"] == btc["indexPrice"] == 65000.0
    assert btc["baseVolume"] > 0
    assert btc["quoteVolume"] > 0
    for field in ("fundingRate", "openInterest", "price24hPcnt", "highPrice24h", "lowPrice24h"):
        assert btc["info"][field] != ""


async def test_set_price_moves_ticker(server: ExchangeServer, exchange: ccxt_async.bybit) -> None:
    server.set_price("ETHUSDT", "3500.5")
    ticker = await exchange.fetch_ticker(ETH)
    assert ticker["last"] == 3500.5
    assert ticker["high"] >= 3500.5


async def test_listing_and_delisting_show_up_on_reload(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    server.add_symbol("NEWCOINUSDT", "1.2345")
    server.delist("ETHUSDT")
    markets = await exchange.load_markets(reload=True)
    assert "NEWCOIN/USDT:USDT" in markets
    assert ETH not in markets
    closed = await exchange.public_get_v5_market_instruments_info(
        {"category": "linear", "status": "Closed"}
    )
    assert [i["symbol"] for i in closed["result"]["list"]] == ["ETHUSDT"]
    with pytest.raises(ccxt.BadSymbol):
        await exchange.public_get_v5_market_tickers({"category": "linear", "symbol": "ETHUSDT"})


async def test_fetch_ohlcv_is_deterministic_and_consistent() -> None:
    servers = [ExchangeServer(symbols=5, seed=seed) for seed in (5, 5, 6)]
    if len({s.market.anchor_ms for s in servers}) > 1:
        pytest.skip("servers straddled an hour boundary")
    candles = []
    for server in servers:
        async with server:
            client = server.ccxt()
            try:
                candles.append(await client.fetch_ohlcv(BTC, "1h", limit=48))
            finally:
                await client.close()
    same, again, other = candles
    assert len(same) == 48
    assert [c[:5] for c in same[:-1]] == [c[:5] for c in again[:-1]]
    assert [c[1] for c in same] != [c[1] for c in other]
    assert all(b[0] - a[0] == 3_600_000 for a, b in itertools.pairwise(same))
    assert all(a[4] == b[1] for a, b in itertools.pairwise(same))
    assert all(c[2] >= max(c[1], c[4]) and c[3] <= min(c[1], c[4]) and c[5] > 0 for c in same)
    assert same[-1][4] == 65000.0  # the live candle closes at the current price


async def test_fetch_ohlcv_since_and_live_candle_follows_price(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    since = (int(time.time() * 1000) // 900_000 - 10) * 900_000
    rows = await exchange.fetch_ohlcv(BTC, "15m", since=since, limit=5)
    assert [r[0] for r in rows] == [since + i * 900_000 for i in range(5)]
    server.set_price("BTCUSDT", "70000")
    live = (await exchange.fetch_ohlcv(BTC, "1m", limit=1))[-1]
    assert live[4] == 70000.0
    assert live[2] >= 70000.0


# ---- auth ----------------------------------------------------------------------
async def test_signed_fetch_balance(exchange: ccxt_async.bybit) -> None:
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["total"] == 10000.0
    assert balance["USDT"]["free"] == 10000.0
    assert balance["info"]["result"]["list"][0]["accountType"] == "UNIFIED"


@pytest.mark.parametrize(
    ("key", "secret", "options", "expected", "code"),
    [
        (KEY, "wrong-secret", {}, ccxt.AuthenticationError, "10004"),
        ("unknown-key", SECRET, {}, ccxt.AuthenticationError, "10003"),
        (KEY, SECRET, {"timeDifference": 30_000}, ccxt.InvalidNonce, "10002"),
    ],
)
async def test_auth_failures(
    server: ExchangeServer,
    key: str,
    secret: str,
    options: dict[str, int],
    expected: type[Exception],
    code: str,
) -> None:
    client = server.ccxt(key, secret, fetchMarkets={"types": ["linear"]}, **options)
    try:
        with pytest.raises(expected, match=code):
            await client.fetch_balance()
    finally:
        await client.close()
    assert server.stats.auth_failures >= 1


# ---- trading ---------------------------------------------------------------------
async def test_market_order_opens_position_and_charges_taker_fee(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    order = await exchange.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "m1"})
    assert order["id"]
    assert order["clientOrderId"] == "m1"
    [position] = await exchange.fetch_positions()
    assert (position["symbol"], position["side"], position["contracts"]) == (BTC, "long", 0.01)
    assert position["entryPrice"] == 65000.0
    assert position["leverage"] == 10.0
    assert position["liquidationPrice"] is not None
    fee = Decimal("0.01") * Decimal("65000") * TAKER_FEE
    balance = await exchange.fetch_balance()
    assert _money(balance["USDT"]["total"]) == Decimal("10000") - fee
    assert balance["USDT"]["used"] == pytest.approx(65.0)  # 650 notional at 10x
    [trade] = await exchange.fetch_my_trades(BTC)
    assert (trade["order"], trade["takerOrMaker"], trade["price"]) == (
        order["id"],
        "taker",
        65000.0,
    )
    assert _money(trade["fee"]["cost"]) == fee
    closed = await exchange.fetch_closed_orders(BTC)
    assert [(o["id"], o["status"], o["filled"]) for o in closed] == [(order["id"], "closed", 0.01)]


async def test_limit_order_rests_is_listed_and_cancels(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, 60000, {"clientOrderId": "l1"})
    [listed] = await exchange.fetch_open_orders(BTC)
    assert (listed["id"], listed["status"], listed["price"]) == (order["id"], "open", 60000.0)
    assert (listed["clientOrderId"], listed["remaining"], listed["filled"]) == ("l1", 0.01, 0.0)
    assert (await exchange.fetch_balance())["USDT"]["used"] == pytest.approx(60.0)  # order IM
    await exchange.cancel_order(order["id"], BTC)
    assert await exchange.fetch_open_orders(BTC) == []
    [cancelled] = await exchange.fetch_canceled_orders(BTC)
    assert (cancelled["id"], cancelled["status"]) == (order["id"], "canceled")
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.cancel_order(order["id"], BTC)
    assert (
        server.account(KEY).positions.get("BTCUSDT") is None
        or not server.account(KEY).positions["BTCUSDT"].size
    )


async def test_limit_order_fills_as_maker_when_price_crosses(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, 64000)
    server.set_price("BTCUSDT", "64500")
    assert len(await exchange.fetch_open_orders(BTC)) == 1
    server.set_price("BTCUSDT", "63900")
    assert await exchange.fetch_open_orders(BTC) == []
    [trade] = await exchange.fetch_my_trades(BTC)
    assert (trade["order"], trade["takerOrMaker"], trade["price"]) == (
        order["id"],
        "maker",
        64000.0,
    )
    assert _money(trade["fee"]["cost"]) == Decimal("0.01") * 64000 * MAKER_FEE
    [position] = await exchange.fetch_positions([BTC])
    assert position["entryPrice"] == 64000.0
    assert position["unrealizedPnl"] == pytest.approx(-1.0)  # (63900 - 64000) * 0.01


async def test_lookup_by_client_order_id(
    exchange: ccxt_async.bybit, server: ExchangeServer
) -> None:
    order = await exchange.create_order(
        BTC, "limit", "sell", 0.01, 70000, {"clientOrderId": "cid-1"}
    )
    [by_cid] = await exchange.fetch_open_orders(BTC, params={"orderLinkId": "cid-1"})
    assert by_cid["id"] == order["id"]
    by_id = await exchange.fetch_open_order(order["id"], BTC)
    assert by_id["clientOrderId"] == "cid-1"
    # ccxt puts the positional id into the query even when it is None ("orderId=None"), and
    # Bybit gives orderId priority over orderLinkId, so this form does not find the order:
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.fetch_open_order(None, BTC, {"orderLinkId": "cid-1"})
    await exchange.cancel_order(None, BTC, {"orderLinkId": "cid-1"})  # cancel omits a None id
    [done] = await exchange.fetch_canceled_and_closed_orders(BTC, params={"orderLinkId": "cid-1"})
    assert (done["id"], done["status"]) == (order["id"], "canceled")
    assert server.account(KEY).by_link["cid-1"].status == "Cancelled"


async def test_lookup_of_filled_order(exchange: ccxt_async.bybit) -> None:
    order = await exchange.create_order(ETH, "market", "buy", 0.5, params={"clientOrderId": "f-1"})
    closed = await exchange.fetch_closed_order(order["id"], ETH)
    assert (closed["status"], closed["filled"], closed["average"]) == ("closed", 0.5, 3400.0)
    assert closed["fee"] == {"cost": pytest.approx(0.935), "currency": "USDT"}
    realtime = await exchange.fetch_order(order["id"], ETH, {"acknowledged": True})
    assert (realtime["clientOrderId"], realtime["status"]) == ("f-1", "closed")
    [by_cid] = await exchange.fetch_closed_orders(ETH, params={"orderLinkId": "f-1"})
    assert by_cid["id"] == order["id"]
    [trade] = await exchange.fetch_order_trades(None, ETH, params={"clientOrderId": "f-1"})
    assert trade["order"] == order["id"]


async def test_duplicate_client_order_id_is_rejected(exchange: ccxt_async.bybit) -> None:
    await exchange.create_order(BTC, "market", "buy", 0.001, params={"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="110072") as info:
        await exchange.create_order(BTC, "market", "buy", 0.001, params={"clientOrderId": "dup"})
    assert type(info.value) is ccxt.InvalidOrder  # not DuplicateOrderId
    assert len(await exchange.fetch_my_trades(BTC)) == 1


async def test_reduce_only_close_flattens_and_realises_pnl(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    await exchange.create_order(BTC, "market", "buy", 0.01)
    server.set_price("BTCUSDT", "66000")
    [position] = await exchange.fetch_positions()
    assert position["unrealizedPnl"] == pytest.approx(10.0)
    close = await exchange.create_order(BTC, "market", "sell", 0.02, params={"reduceOnly": True})
    assert await exchange.fetch_positions() == []
    assert (await exchange.fetch_closed_orders(BTC, params={"orderId": close["id"]}))[0][
        "filled"
    ] == 0.01  # Bybit trims a reduce-only order to the position size
    fees = Decimal("0.01") * (65000 + 66000) * TAKER_FEE
    total = (await exchange.fetch_balance())["USDT"]["total"]
    assert _money(total) == Decimal("10000") + Decimal("10") - fees
    with pytest.raises(ccxt.InvalidOrder, match="110017"):
        await exchange.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})


async def test_order_rejections_use_bybit_codes(exchange: ccxt_async.bybit) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="110094"):  # below 5 USDT min notional
        await exchange.create_order(DOGE, "market", "buy", 1)
    with pytest.raises(ccxt.InsufficientFunds, match="110007"):
        await exchange.create_order(BTC, "market", "buy", 5)
    with pytest.raises(ccxt.BadRequest, match="10001"):  # qty off the 0.001 step
        await exchange.private_post_v5_order_create(
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Market",
                "qty": "0.0015",
            }
        )
    with pytest.raises(ccxt.BadRequest, match="10001"):  # price off the 0.1 tick
        await exchange.private_post_v5_order_create(
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.001",
                "price": "60000.05",
            }
        )


async def test_set_leverage(exchange: ccxt_async.bybit) -> None:
    response = await exchange.set_leverage(20, BTC)
    assert response["retCode"] == 0
    [position] = await exchange.fetch_positions([BTC])  # zero-size row carries the leverage
    assert (position["leverage"], position["contracts"]) == (20.0, 0.0)
    with pytest.raises(ccxt.BadRequest, match="110043"):  # ccxt does not swallow "not modified"
        await exchange.set_leverage(20, BTC)
    with pytest.raises(ccxt.BadRequest, match="10001"):
        await exchange.set_leverage(101, BTC)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    assert (await exchange.fetch_balance())["USDT"]["used"] == pytest.approx(32.5)


async def test_attached_take_profit_and_stop_loss(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    params = {"takeProfit": {"triggerPrice": 70000}, "stopLoss": {"triggerPrice": 60000}}
    await exchange.create_order(BTC, "market", "buy", 0.01, params=params)
    [position] = await exchange.fetch_positions()
    assert (position["takeProfitPrice"], position["stopLossPrice"]) == (70000.0, 60000.0)
    tpsl = await exchange.fetch_open_orders(BTC, params={"orderFilter": "StopOrder"})
    assert sorted(o["info"]["stopOrderType"] for o in tpsl) == ["StopLoss", "TakeProfit"]
    assert await exchange.fetch_open_orders(BTC, params={"orderFilter": "Order"}) == []
    with pytest.raises(ccxt.BadRequest, match="TakeProfit"):
        await exchange.create_order(BTC, "market", "buy", 0.01, params={"takeProfit": 1000})
    server.set_price("BTCUSDT", "70000")
    assert await exchange.fetch_positions() == []
    assert await exchange.fetch_open_orders(BTC) == []
    total = (await exchange.fetch_balance())["USDT"]["total"]
    fees = Decimal("0.01") * (65000 + 70000) * TAKER_FEE
    assert _money(total) == Decimal("10050") - fees


async def test_trading_stop_and_conditional_stop_loss_order(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    await exchange.create_order(ETH, "market", "sell", 1)
    await exchange.private_post_v5_position_trading_stop(
        {"category": "linear", "symbol": "ETHUSDT", "takeProfit": "3000", "positionIdx": 0}
    )
    [position] = await exchange.fetch_positions()
    assert (position["side"], position["takeProfitPrice"]) == ("short", 3000.0)
    stop = await exchange.create_order(ETH, "market", "buy", 1, params={"stopLossPrice": 3600})
    [open_stop] = await exchange.fetch_open_orders(ETH, params={"orderId": stop["id"]})
    assert (open_stop["status"], open_stop["triggerPrice"], open_stop["reduceOnly"]) == (
        "open",
        3600.0,
        True,
    )
    server.set_price("ETHUSDT", "3650")
    assert await exchange.fetch_positions() == []
    [filled] = await exchange.fetch_closed_orders(ETH, params={"orderId": stop["id"]})
    assert (filled["status"], filled["average"]) == ("closed", 3650.0)


# ---- faults ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        (FaultKind.HTTP_429, 0, ccxt.RateLimitExceeded),
        (FaultKind.HTTP_403, 0, ccxt.RateLimitExceeded),  # bybit maps 403 (IP limit) here
        (FaultKind.RATE_LIMIT, 0, ccxt.RateLimitExceeded),  # retCode 10006
        (FaultKind.HTTP_5XX, 500, ccxt.ExchangeNotAvailable),
        (FaultKind.HTTP_5XX, 502, ccxt.ExchangeNotAvailable),
        (FaultKind.HTTP_5XX, 503, ccxt.ExchangeNotAvailable),
        (FaultKind.HTTP_5XX, 504, ccxt.RequestTimeout),
        (FaultKind.RET_CODE, 0, ccxt.ExchangeError),  # retCode 10016 system error
        (FaultKind.DROP, 0, ccxt.ExchangeNotAvailable),
    ],
)
async def test_refusals_create_no_order(
    server: ExchangeServer,
    exchange: ccxt_async.bybit,
    kind: FaultKind,
    status: int,
    expected: type[Exception],
) -> None:
    server.faults.add(path="/v5/order/create", kind=kind, times=1, status=status or 503)
    with pytest.raises(expected):
        await exchange.create_order(BTC, "market", "buy", 0.001, params={"clientOrderId": "f1"})
    assert server.account(KEY).orders == {}
    assert server.stats.faults[kind.value] == 1
    retry = await exchange.create_order(BTC, "market", "buy", 0.001, params={"clientOrderId": "f1"})
    assert retry["clientOrderId"] == "f1"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (FaultKind.ACCEPT_THEN_DROP, ccxt.ExchangeNotAvailable),  # a NetworkError
        (FaultKind.ACCEPT_THEN_HANG, ccxt.RequestTimeout),
        (FaultKind.TRUNCATED, ccxt.ExchangeError),  # aiohttp ClientPayloadError, not a NetworkError
    ],
)
async def test_order_accepted_but_response_lost(
    server: ExchangeServer, kind: FaultKind, expected: type[Exception]
) -> None:
    client = server.ccxt(KEY, SECRET, timeout_ms=300, fetchMarkets={"types": ["linear"]})
    try:
        await client.load_markets()
        server.faults.add(path="/v5/order/create", kind=kind)
        with pytest.raises(expected):
            await client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "lost"})
        [order] = await client.fetch_closed_orders(BTC, params={"orderLinkId": "lost"})
        assert (order["status"], order["filled"]) == ("closed", 0.01)
        with pytest.raises(ccxt.InvalidOrder, match="110072"):  # a blind retry is refused
            await client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "lost"})
    finally:
        await client.close()


async def test_malformed_body_is_not_an_exception_in_ccxt(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    # A 200 with invalid JSON never raises in ccxt: the caller gets an empty order back...
    server.faults.add(path="/v5/order/create", kind=FaultKind.MALFORMED)
    order = await exchange.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "mf"})
    assert order["id"] is None
    assert order["clientOrderId"] is None
    assert server.account(KEY).by_link["mf"].status == "Filled"  # ...while the order exists
    server.faults.add(path="/v5/account/wallet-balance", kind=FaultKind.MALFORMED)
    balance = await exchange.fetch_balance()
    assert isinstance(balance["info"], str)
    assert balance.get("USDT") is None or balance["USDT"]["total"] is None


async def test_dropped_get_is_retried_once_by_aiohttp(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    server.faults.add(path="/v5/market/tickers", kind=FaultKind.DROP, times=1)
    assert (await exchange.fetch_ticker(BTC))["last"] == 65000.0  # idempotent → silent retry
    assert server.stats.requests["/v5/market/tickers"] == 2
    server.faults.add(path="/v5/market/tickers", kind=FaultKind.DROP, times=2)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await exchange.fetch_ticker(BTC)


async def test_latency_global_and_per_path(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    server.latency_ms = 40
    started = time.perf_counter()
    await exchange.fetch_ticker(BTC)
    assert time.perf_counter() - started >= 0.04
    server.latency_ms = 0
    server.faults.add(path="/v5/market/tickers", kind=FaultKind.LATENCY, delay_ms=80, times=1)
    started = time.perf_counter()
    await exchange.fetch_ticker(BTC)
    assert time.perf_counter() - started >= 0.08
    started = time.perf_counter()
    await exchange.fetch_ticker(BTC)
    assert time.perf_counter() - started < 0.08


async def test_fault_plan_is_changeable_while_running(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    fault = server.faults.add(path="/v5/market/tickers", kind=FaultKind.HTTP_5XX, times=None)
    for _ in range(3):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await exchange.fetch_ticker(BTC)
    assert fault.hits == 3
    server.faults.remove(fault)
    assert (await exchange.fetch_ticker(BTC))["last"] == 65000.0
    server.faults.add(kind=FaultKind.HTTP_429, times=1)  # path=None: any endpoint
    with pytest.raises(ccxt.RateLimitExceeded):
        await exchange.fetch_balance()


async def test_token_bucket_rate_limit(server: ExchangeServer, exchange: ccxt_async.bybit) -> None:
    server.set_rate_limit(50, burst=5)
    results = await asyncio.gather(
        *(exchange.fetch_ticker(BTC) for _ in range(20)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert refused
    assert all(isinstance(r, ccxt.RateLimitExceeded) for r in refused)
    assert "10006" in str(refused[0])
    assert server.stats.rate_limited == len(refused)
    assert len(results) - len(refused) >= 5
    await asyncio.sleep(0.1)
    assert (await exchange.fetch_ticker(BTC))["last"] == 65000.0
    server.set_rate_limit(None)


async def test_rate_limit_refusal_carries_bybit_headers(server: ExchangeServer) -> None:
    server.faults.add(path="/v5/market/time", kind=FaultKind.RATE_LIMIT)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.base_url}/v5/market/time") as resp,
    ):
        body = await resp.json()
        reset = int(resp.headers["X-Bapi-Limit-Reset-Timestamp"])
    assert (resp.status, body["retCode"], body["retMsg"]) == (200, 10006, "Too many visits!")
    assert reset > body["time"] - 1000


async def test_explicit_symbol_list_keeps_reference_specs() -> None:
    async with ExchangeServer(symbols=["BTCUSDT", "FOOUSDT"]) as server:
        assert server.price("BTCUSDT") == Decimal("65000.00")
        assert set(server.market.instruments) == {"BTCUSDT", "FOOUSDT"}
        assert server.market.instruments["BTCUSDT"].qty_step == Decimal("0.001")


async def test_stats_count_requests_per_path(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    server.stats.reset()
    await exchange.fetch_ticker(BTC)
    await exchange.fetch_ticker(ETH)
    await exchange.fetch_balance()
    assert server.stats.requests == {
        "/v5/market/tickers": 2,
        "/v5/account/wallet-balance": 1,
        "/v5/user/query-api": 1,  # ccxt's one-off unified-account probe
        "/v5/account/info": 1,
    }
    assert server.stats.by_method[("GET", "/v5/account/wallet-balance")] == 1
    assert server.stats.total == 5


async def test_module_entry_point_serves_requests() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.exchange_server",
        "--symbols",
        "10",
        "--latency-ms",
        "1",
        "--account",
        "cli-key:cli-secret:500",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        base_url = line.split("listening on ")[1].split()[0]
        assert base_url.startswith("http://127.0.0.1:")
        client = make_ccxt_bybit(base_url, "cli-key", "cli-secret")
        try:
            assert (await client.fetch_balance())["USDT"]["total"] == 500.0
            assert len(client.markets) == 10
        finally:
            await client.close()
    finally:
        proc.terminate()
        await proc.wait()
