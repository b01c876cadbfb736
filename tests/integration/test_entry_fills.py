"""Opening orders settled from their recorded executions (real ccxt, local Bybit): a resting
limit entry is settled by what the fill ledger saw, the opening listeners run once however
often its executions are handed over, and never for an entry `place` already saw fill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.clock import SystemClock
from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.ids import client_order_id
from core.exchange.venues import VENUES
from core.lifecycle import IntentStatus as status
from db.repositories.intents import IntentRecord, IntentRepository, IntentUpdate, NewIntent
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.execution import FilledSoFar, OrderExecutor
from tests.exchange_server import ExchangeServer

BTC = "BTC/USDT:USDT"
USER = 42


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=20, seed=9) as running:
        running.add_account("key", "secret", Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
async def client(server: ExchangeServer) -> AsyncIterator[CcxtClient]:
    venue = CcxtVenue(VENUES["bybit"], base_url=server.base_url, timeout_ms=1500)
    user = await venue.client("live", ApiCredentials("key", "secret"))
    yield user
    await user.close()
    await venue.aclose()


class Opened:
    """An opening listener that remembers what it was told."""

    def __init__(self) -> None:
        self.entries: list[IntentRecord] = []

    async def __call__(self, entry: IntentRecord) -> None:
        self.entries.append(entry)


@pytest.fixture
async def opened() -> Opened:
    return Opened()


@pytest.fixture
async def executor(store: Store, opened: Opened) -> OrderExecutor:
    await UserRepository(store).upsert(UserProfile(USER, USER, "T"), datetime.now(UTC))
    running = OrderExecutor(IntentRepository(store), SystemClock())
    running.when_opening_fills(opened)
    return running


async def _intent(
    executor: OrderExecutor, key: str, order_type: str, *, reduce_only: bool = False
) -> str:
    cid = client_order_id("manual", USER, key)
    price = Decimal(59000) if order_type == "limit" else None
    new = NewIntent(
        cid, USER, "bybit", "live", BTC, "sell" if reduce_only else "buy", order_type,
        Decimal("0.01"), "manual", price=price, reduce_only=reduce_only,
    )  # fmt: skip
    await executor.record(new)
    return cid


def _so_far(server: ExchangeServer, cid: str) -> FilledSoFar:
    """What the ledger would hand over: the order's executions as the exchange has them."""
    order = server.account("key").by_link[cid]
    return FilledSoFar(
        cid, order.order_id, order.cum_qty, order.cum_value / order.cum_qty, order.cum_fee
    )


async def test_a_resting_entry_is_settled_by_its_fills_and_told_once(
    executor: OrderExecutor,
    client: CcxtClient,
    server: ExchangeServer,
    opened: Opened,
    store: Store,
) -> None:
    cid = await _intent(executor, "resting", "limit")
    assert (await executor.place(client, cid)).intent.status == status.OPEN

    server.fill_part("key", cid, "0.004")
    assert await executor.settle_fills([_so_far(server, cid)]) == []
    part = await IntentRepository(store).get(cid)
    assert part is not None and (part.status, part.filled_qty) == (status.OPEN, Decimal("0.004"))
    assert opened.entries == []

    server.set_price("BTCUSDT", "58950")  # the rest fills at the limit
    whole = _so_far(server, cid)
    (filled,) = await executor.settle_fills([whole])
    assert (filled.status, filled.filled_qty, filled.avg_price) == (
        status.FILLED,
        Decimal("0.01"),
        Decimal(59000),
    )
    assert filled.fee == whole.fee and filled.exchange_order_id == whole.order_id
    assert await executor.settle_fills([whole, whole]) == []  # handed over again
    assert [e.client_order_id for e in opened.entries] == [cid]


async def test_an_entry_place_saw_fill_and_a_closing_order_are_not_told_again(
    executor: OrderExecutor, client: CcxtClient, server: ExchangeServer, opened: Opened
) -> None:
    entry = await _intent(executor, "market", "market")
    await executor.place(client, entry, await_fill=True)
    assert [e.client_order_id for e in opened.entries] == [entry]
    assert await executor.settle_fills([_so_far(server, entry)]) == []

    close = await _intent(executor, "close", "market", reduce_only=True)
    await executor.place(client, close)
    assert await executor.settle_fills([_so_far(server, close)]) == []
    placed_elsewhere = FilledSoFar("web-1", "x", Decimal(1), Decimal(1), Decimal(0))
    assert await executor.settle_fills([placed_elsewhere]) == []
    assert len(opened.entries) == 1


async def test_an_entry_expired_with_a_part_filled_is_told_for_that_part(
    executor: OrderExecutor,
    client: CcxtClient,
    server: ExchangeServer,
    opened: Opened,
    store: Store,
) -> None:
    cid = await _intent(executor, "expired", "limit")
    await executor.place(client, cid)
    assert await executor.settle_cancelled([cid]) == []  # still resting: nothing to tell
    server.fill_part("key", cid, "0.004")
    part = IntentUpdate(status.CANCELLED, filled_qty=Decimal("0.004"), avg_price=Decimal(59000))
    await IntentRepository(store).update(cid, part, datetime.now(UTC))  # as the expiry does

    (told,) = await executor.settle_cancelled([cid])
    assert (told.status, told.filled_qty) == (status.CANCELLED, Decimal("0.004"))
    assert await executor.settle_fills([_so_far(server, cid)]) == []  # settled already
    assert opened.entries == [told]
