"""The local Bybit's websocket side, spoken to as Bybit is: the auth message and its
signature, subscriptions, pings, public tickers and private pushes on engine changes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.exchange_server import ExchangeServer
from tests.exchange_server.ws import PRIVATE_PATH, PUBLIC_PATH


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=5, seed=2) as running:
        running.add_account("key", "secret", Decimal("1000"))
        yield running


def _auth(key: str, secret: str, expires: int | None = None) -> dict[str, Any]:
    expires = expires or int(time.time() * 1000) + 10_000
    sign = hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256)
    return {"op": "auth", "args": [key, str(expires), sign.hexdigest()]}


async def _ask(ws: aiohttp.ClientWebSocketResponse, body: dict[str, Any]) -> dict[str, Any]:
    await ws.send_str(json.dumps(body))
    reply: dict[str, Any] = json.loads(await ws.receive_str(timeout=2))
    return reply


async def _open(server: ExchangeServer, path: str) -> tuple[aiohttp.ClientSession, Any]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(server.base_url.replace("http", "ws") + path)
    return session, ws


async def test_the_auth_message_is_checked_like_bybit(server: ExchangeServer) -> None:
    session, ws = await _open(server, PRIVATE_PATH)
    async with session, ws:
        refused = await _ask(ws, {"op": "subscribe", "req_id": "1", "args": ["order"]})
        assert (refused["success"], refused["ret_msg"]) == (False, "Request not authorized")
        assert not (await _ask(ws, _auth("key", "wrong")))["success"]
        assert not (await _ask(ws, _auth("key", "secret", expires=1)))["success"]
        assert not (await _ask(ws, _auth("nobody", "secret")))["success"]
        assert (await _ask(ws, _auth("key", "secret")))["success"]
        assert (await _ask(ws, {"op": "subscribe", "req_id": "2", "args": ["order"]}))["success"]
        pong = await _ask(ws, {"op": "ping", "req_id": "3"})
        assert pong["op"] == "pong"
    assert server.streams.stats["auth_failures"] == 3


async def test_private_topics_push_what_an_order_changed(server: ExchangeServer) -> None:
    session, ws = await _open(server, PRIVATE_PATH)
    async with session, ws:
        await _ask(ws, _auth("key", "secret"))
        topics = ["execution", "order", "position", "wallet"]
        await _ask(ws, {"op": "subscribe", "req_id": "1", "args": topics})
        rest = server.ccxt("key", "secret")
        try:
            await rest.load_markets()
            await rest.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
        finally:
            await rest.close()
        frames = [json.loads(await ws.receive_str(timeout=2)) for _ in topics]
    assert [f["topic"] for f in frames] == topics  # the execution first, the wallet last
    (execution,) = frames[0]["data"]
    assert (execution["side"], Decimal(execution["execQty"]), execution["category"]) == (
        "Buy", Decimal("0.01"), "linear",
    )  # fmt: skip
    assert frames[1]["data"][0]["orderStatus"] == "Filled"
    assert Decimal(frames[2]["data"][0]["size"]) == Decimal("0.01")
    assert Decimal(frames[3]["data"][0]["totalWalletBalance"]) < Decimal("1000")


async def test_a_ticker_subscription_sends_a_snapshot_then_every_move(
    server: ExchangeServer,
) -> None:
    session, ws = await _open(server, PUBLIC_PATH)
    async with session, ws:
        bad = await _ask(ws, {"op": "subscribe", "req_id": "1", "args": ["tickers.NOPEUSDT"]})
        assert not bad["success"]
        await ws.send_str(json.dumps({"op": "subscribe", "args": ["tickers.BTCUSDT"]}))
        first = [json.loads(await ws.receive_str(timeout=2)) for _ in range(2)]
        snapshot = next(f for f in first if f.get("topic") == "tickers.BTCUSDT")
        server.set_price("BTCUSDT", "70000")
        moved = json.loads(await ws.receive_str(timeout=2))
    assert snapshot["data"]["symbol"] == "BTCUSDT"
    assert Decimal(moved["data"]["lastPrice"]) == Decimal("70000")


async def test_drop_now_closes_an_accounts_connections(server: ExchangeServer) -> None:
    session, ws = await _open(server, PRIVATE_PATH)
    async with session, ws:
        await _ask(ws, _auth("key", "secret"))
        async with session.post(
            server.base_url + "/test/ws-fault", json={"kind": "drop_now", "api_key": "key"}
        ) as answer:
            assert (await answer.json()) == {"dropped": 1}
        closing = await ws.receive(timeout=2)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
