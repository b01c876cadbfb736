"""The fault kinds and controls the soaks rely on: hangs, resets, random faults, `/test`
endpoints, and the pause points that let a driver kill the bot at a chosen moment."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import pytest

from core import pause_points
from tests.exchange_server import ExchangeServer, FaultKind

KEY, SECRET = "fault-key", "fault-secret"
BTC = "BTC/USDT:USDT"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=10, seed=3, control=True) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        yield running


@pytest.fixture
async def exchange(server: ExchangeServer) -> AsyncIterator[ccxt_async.bybit]:
    client = server.ccxt(KEY, SECRET, timeout_ms=400, fetchMarkets={"types": ["linear"]})
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


async def test_a_hang_times_the_client_out_and_executes_nothing(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    server.faults.add(path="/v5/order/create", kind=FaultKind.HANG)
    with pytest.raises(ccxt.RequestTimeout):
        await exchange.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "h1"})
    assert server.account(KEY).orders == {}


async def test_a_reset_is_a_network_error_and_executes_nothing(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    server.faults.add(path="/v5/order/create", kind=FaultKind.RESET)
    with pytest.raises(ccxt.NetworkError):
        await exchange.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "r1"})
    assert server.account(KEY).orders == {}
    assert server.stats.faults["reset"] == 1


async def test_control_endpoints_fault_a_share_of_requests_and_show_the_books(
    server: ExchangeServer, exchange: ccxt_async.bybit
) -> None:
    await exchange.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "c1"})
    async with aiohttp.ClientSession(base_url=server.base_url) as http:
        async with http.get("/test/orders") as response:
            (order,) = (await response.json())["orders"]
        assert (order["key"], order["link_id"], order["filled"]) == (KEY, "c1", "0.01")
        chaos = {"rate": 1.0, "kinds": ["http_5xx", "accept_then_drop"], "seed": 1,
                 "paths": {"accept_then_drop": "/v5/order/create"}}  # fmt: skip
        async with http.post("/test/chaos", json=chaos) as response:
            assert response.status == 200
        for _ in range(3):  # a read can only get the 5xx: accept-then-drop is for creates
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await exchange.fetch_balance()
        async with http.get("/test/faults", params={"since": "0"}) as response:
            hits = (await response.json())["faults"]
        assert [(h["key"], h["kind"]) for h in hits] == [(KEY, "http_5xx")] * 3
        async with http.delete("/test/chaos") as response:
            assert response.status == 200
        assert (await exchange.fetch_balance())["USDT"]["total"] is not None
        async with http.post("/test/price", json={"symbol": "BTCUSDT", "price": "61000"}) as r:
            assert Decimal((await r.json())["price"]) == 61000


async def test_control_endpoints_are_off_unless_asked_for() -> None:
    async with (
        ExchangeServer(symbols=5, seed=3) as plain,
        aiohttp.ClientSession() as http,
        http.get(f"{plain.base_url}/test/orders") as response,
    ):
        assert response.status == 404


async def test_pause_points_sleep_only_where_the_environment_asks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(pause_points.ENV, "order.placed=0.05, nowhere=3, outbox.sent=x")
    pause_points.pauses.cache_clear()
    try:
        assert pause_points.pauses() == {"order.placed": 0.05}
        loop = asyncio.get_running_loop()
        start = loop.time()
        with caplog.at_level(logging.WARNING, logger="core.pause_points"):
            await pause_points.pause("order.placed")
            await pause_points.pause("outbox.sent")
        assert loop.time() - start >= 0.05
        assert [r.getMessage() for r in caplog.records] == ["pause point order.placed (0.05 s)"]
    finally:
        monkeypatch.delenv(pause_points.ENV)
        pause_points.pauses.cache_clear()
    assert pause_points.pauses() == {}
