"""Pushed executions reach the fill ledger: with streams on, a take profit the exchange
fills is recorded, logged as a trade with the exchange's PnL and told to the trader from
the websocket push alone, before any poll; the REST catch-up afterwards adds nothing.

The whole bot's services over SQLite, the local Bybit server's REST and websocket sides,
the real ccxt and ccxt.pro clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.exchange.ids import client_order_id
from db.repositories.intents import NewIntent
from db.store import Store
from tests.integration.autotrade_world import BTC, World, world

USER = 3
KEY = f"key{USER}"


@pytest.fixture
async def w(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    async with world(store, tmp_path, streams=10) as running:
        await running.trader(USER, "bybit")
        yield running


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _connected(w: World) -> None:
    """Wait until the trader's account stream is up (pushes from then on are heard)."""
    assert w.services.streams is not None
    stream = w.services.streams.stream(USER, "bybit", "demo")
    assert stream is not None
    await _eventually(lambda: asyncio.sleep(0, result=stream.connected))


async def _count(w: World, sql: str) -> int:
    [(n,)] = await w.rows(sql)
    return int(str(n))


async def test_a_take_profit_is_recorded_and_told_from_the_push_alone(w: World) -> None:
    manager = w.services.streams
    assert manager is not None
    cid = client_order_id("manual", USER, "tp-stream")
    await w.services.executor.record(
        NewIntent(cid, USER, "bybit", "demo", BTC, "buy", "market", Decimal("0.01"), "manual",
                  take_profit=Decimal(61800))
    )  # fmt: skip
    async with w.services.exchanges.lease(USER, "bybit", "demo") as client:
        await w.services.executor.place(client, cid)
    w.services.exchanges.account_caches.on_order[0](USER, "bybit", "demo")
    await _connected(w)
    await _eventually(lambda: _has(w, "SELECT COUNT(*) FROM fills", 1))
    reads_before = w.server.stats.requests["/v5/execution/list"]

    w.server.set_price("BTCUSDT", "61900")  # the exchange fills the take profit

    await _eventually(lambda: _has(w, "SELECT COUNT(*) FROM trade_logs", 1))
    assert w.server.stats.requests["/v5/execution/list"] == reads_before  # pushed, not read
    [closed] = [Decimal(r["closedPnl"]) for r in w.server.account(KEY).closed_pnl]
    [(exit_price, pnl, reason)] = await w.rows(
        "SELECT exit_price, CAST(pnl AS TEXT), close_reason FROM trade_logs"
    )
    assert (Decimal(str(exit_price)), reason) == (Decimal(61900), "take_profit")
    fees = sum((Decimal(e["execFee"]) for e in w.server.account(KEY).executions), Decimal(0))
    assert Decimal(str(pnl)) == Decimal(19) - fees == closed
    told = await w.rows("SELECT payload FROM notifications WHERE dedup_key LIKE 'fill-close:%'")
    assert len(told) == 1 and "at 61900" in str(told[0][0])

    again = await w.services.fill_catchup.catch_up_active()  # the REST copy of the same fills

    assert again.trades == 0
    assert await _count(w, "SELECT COUNT(*) FROM fills") == 2
    assert await _count(w, "SELECT COUNT(*) FROM trade_logs") == 1
    assert await _count(w, "SELECT COUNT(*) FROM notifications WHERE dedup_key LIKE 'fill-%'") == 1


async def _ledger(w: World) -> tuple[object, ...]:
    """The account's ledger as a trader sees it: fills, trades and notices (no ids)."""
    fills = await w.rows(
        "SELECT side, CAST(price AS TEXT), CAST(qty AS TEXT), CAST(fee AS TEXT) FROM fills "
        "ORDER BY ts, side"
    )
    trades = await w.rows(
        "SELECT CAST(entry_price AS TEXT), CAST(exit_price AS TEXT), CAST(pnl AS TEXT), "
        "CAST(fee AS TEXT), close_reason FROM trade_logs"
    )
    told = await w.rows("SELECT COUNT(*) FROM notifications WHERE dedup_key LIKE 'fill-close:%'")

    def figures(rows: list[Any]) -> tuple[tuple[object, ...], ...]:
        # The same amounts, whichever way the venue wrote them ("0.010" by REST, "0.01" pushed).
        return tuple(tuple(_number(v) for v in row) for row in rows)

    return figures(fills), figures(trades), figures(told)


def _number(value: object) -> object:
    try:
        return Decimal(str(value)).normalize()
    except ArithmeticError:
        return value


async def _take_profit(w: World, name: str) -> None:
    cid = client_order_id("manual", USER, name)
    await w.services.executor.record(
        NewIntent(cid, USER, "bybit", "demo", BTC, "buy", "market", Decimal("0.01"), "manual",
                  take_profit=Decimal(61800))
    )  # fmt: skip
    async with w.services.exchanges.lease(USER, "bybit", "demo") as client:
        await w.services.executor.place(client, cid)
    w.server.set_price("BTCUSDT", "61900")  # the exchange fills the take profit


async def test_streams_off_the_polls_give_the_same_ledger(w: World, tmp_path: Path) -> None:
    manager = w.services.streams
    assert manager is not None
    manager.touch(USER, "bybit", "demo")
    await _connected(w)
    reads = w.server.stats.requests["/v5/execution/list"]
    await _take_profit(w, "tp-same")
    await _eventually(lambda: _has(w, "SELECT COUNT(*) FROM trade_logs", 1))
    assert w.server.stats.requests["/v5/execution/list"] == reads  # pushed, not read
    await _eventually(lambda: _has(w, "SELECT COUNT(*) FROM notifications", 1))
    streamed = await _ledger(w)

    (tmp_path / "off").mkdir()
    async with (
        Store(tmp_path / "off" / "tradewind.db") as store,
        world(store, tmp_path / "off", streams=0) as polled,
    ):
        assert polled.services.streams is None
        await polled.trader(USER, "bybit")
        await _take_profit(polled, "tp-same")
        report = await polled.services.fill_catchup.catch_up_active()  # the next poll
        assert report.trades == 1
        assert await _ledger(polled) == streamed
    assert streamed[1][0][4] == "take_profit" and streamed[2] == ((1,),)


async def _has(w: World, sql: str, n: int) -> bool:
    return await _count(w, sql) >= n
