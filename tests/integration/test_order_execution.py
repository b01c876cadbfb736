"""Orders are placed exactly once, whatever the network does (real ccxt, local Bybit)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.clock import SystemClock
from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import InsufficientFunds, UnknownOutcome
from core.exchange.ids import client_order_id, is_valid_client_order_id
from core.exchange.protocol import ExchangeClient
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.lifecycle import IntentStatus as status
from db.repositories.intents import IntentRecord, IntentRepository, NewIntent
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.execution import OrderExecutor
from tests.exchange_server import ExchangeServer, FaultKind

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
    venue = CcxtVenue(
        VENUES["bybit"],
        base_url=server.base_url,
        retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001),
        timeout_ms=1500,
    )
    user = await venue.client("live", ApiCredentials("key", "secret"))
    yield user
    await user.close()
    await venue.aclose()


@pytest.fixture
async def executor(store: Store) -> OrderExecutor:
    await UserRepository(store).upsert(UserProfile(USER, USER, "T"), datetime.now(UTC))
    return OrderExecutor(IntentRepository(store), SystemClock())


async def _intent(executor: OrderExecutor, key: str, qty: str = "0.01") -> str:
    cid = client_order_id("manual", USER, key)
    await executor.record(
        NewIntent(cid, USER, "bybit", "live", BTC, "buy", "market", Decimal(qty), "manual")
    )
    return cid


def _orders_with(server: ExchangeServer, cid: str) -> int:
    return sum(1 for o in server.account("key").orders.values() if o.link_id == cid)


def test_client_order_ids_are_deterministic_and_valid_everywhere() -> None:
    first = client_order_id("auto", 17, 42)
    assert first == client_order_id("auto", 17, 42)
    assert first != client_order_id("auto", 17, 43)
    assert len(first) == 32 and is_valid_client_order_id(first)


async def test_plain_order_is_placed_and_settled(
    executor: OrderExecutor, client: CcxtClient, server: ExchangeServer
) -> None:
    cid = await _intent(executor, "plain")
    result = await executor.place(client, cid)
    assert result.intent.status in (status.OPEN, status.FILLED)
    assert result.intent.exchange_order_id and result.intent.attempts == 1
    assert _orders_with(server, cid) == 1


async def test_accept_then_drop_ends_filled_with_exactly_one_order(
    executor: OrderExecutor, client: CcxtClient, server: ExchangeServer
) -> None:
    server.faults.add(path="/v5/order/create", kind=FaultKind.ACCEPT_THEN_DROP)
    cid = await _intent(executor, "dropped")
    result = await executor.place(client, cid)
    assert result.intent.status == status.FILLED
    assert result.intent.avg_price == Decimal("60000")
    assert _orders_with(server, cid) == 1


async def test_dropped_before_processing_is_sent_again_once(
    executor: OrderExecutor, client: CcxtClient, server: ExchangeServer
) -> None:
    server.faults.add(path="/v5/order/create", kind=FaultKind.DROP)
    cid = await _intent(executor, "lost")
    result = await executor.place(client, cid)
    assert result.intent.attempts == 2  # confirmed absent after the first, so sent again
    assert _orders_with(server, cid) == 1


async def test_duplicate_id_is_resolved_by_lookup(
    executor: OrderExecutor, client: CcxtClient, server: ExchangeServer, store: Store
) -> None:
    cid = await _intent(executor, "dup")
    await executor.place(client, cid)
    # Simulate a crash that lost the settled status: the intent says 'sent' again.
    repo = IntentRepository(store)
    await repo.mark_sent(cid, datetime.now(UTC))
    result = await executor.place(client, cid)
    assert result.intent.status == status.FILLED
    assert _orders_with(server, cid) == 1


async def test_double_press_places_one_order(
    executor: OrderExecutor, client: CcxtClient, server: ExchangeServer
) -> None:
    cid = await _intent(executor, "twice")
    first, second = await asyncio.gather(executor.place(client, cid), executor.place(client, cid))
    assert sorted([first.already_done, second.already_done]) == [False, True]
    assert _orders_with(server, cid) == 1
    assert (
        await executor.record(
            NewIntent(cid, USER, "bybit", "live", BTC, "buy", "market", Decimal("1"), "manual")
        )
        is False
    )  # the id is taken; nothing overwritten


async def test_refusal_is_recorded_and_raised(
    executor: OrderExecutor, client: CcxtClient, server: ExchangeServer, store: Store
) -> None:
    cid = await _intent(executor, "huge", qty="2")
    with pytest.raises(InsufficientFunds):
        await executor.place(client, cid)
    intent = await IntentRepository(store).get(cid)
    assert intent is not None and intent.status == status.REJECTED and intent.error
    assert _orders_with(server, cid) == 0


async def test_unreachable_lookup_leaves_unknown_then_resolves_later(
    executor: OrderExecutor, client: CcxtClient, server: ExchangeServer, store: Store
) -> None:
    server.faults.add(path="/v5/order/create", kind=FaultKind.ACCEPT_THEN_DROP)
    server.faults.add(path="/v5/order/realtime", kind=FaultKind.HTTP_5XX, times=2)
    cid = await _intent(executor, "dark")
    with pytest.raises(UnknownOutcome, match="checked again"):
        await executor.place(client, cid)
    intent = await IntentRepository(store).get(cid)
    assert intent is not None and intent.status == status.UNKNOWN

    @asynccontextmanager
    async def lease(record: IntentRecord) -> AsyncIterator[ExchangeClient]:
        yield client

    leaser: Callable[[IntentRecord], AbstractAsyncContextManager[ExchangeClient]] = lease
    assert await executor.resolve_pending(leaser, older_than_s=0) == 1
    intent = await IntentRepository(store).get(cid)
    assert intent is not None and intent.status == status.FILLED
    assert _orders_with(server, cid) == 1
