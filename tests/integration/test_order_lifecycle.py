"""The typed order lifecycle: one mapping from an exchange order to its intent, one query for
the order that opened a position (real SQLite, real ccxt against the local Bybit server)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.clock import SystemClock
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.models import Order, OrderStatus, OrderType, Side
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.lifecycle import FINAL, IntentStatus, Origin
from db.repositories import intents as intents_sql
from db.repositories.intents import IntentRepository, IntentUpdate, NewIntent
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.execution import OrderExecutor
from tests.exchange_server import ExchangeServer

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
USER = 42
T0 = datetime(2026, 6, 1, tzinfo=UTC)
LOOKUP = "/v5/order/realtime"
QUICK = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001)


class StatementCounter:
    """Counts the statements the store runs, by name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def observe_statement(self, name: str, seconds: float) -> None:
        self.counts[name] += 1


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[tuple[Store, StatementCounter]]:
    counter = StatementCounter()
    async with Store(tmp_path / "counted.db", observer=counter) as opened:
        await UserRepository(opened).upsert(UserProfile(USER, USER, "T"), T0)
        yield opened, counter


def test_every_exchange_order_status_settles_an_intent_in_its_final_status() -> None:
    for order_status in OrderStatus:
        settled = IntentStatus.of_order(order_status)
        assert settled.value == order_status.value and settled in FINAL


def test_an_order_becomes_the_intent_update_with_its_fill() -> None:
    order = Order(
        "ex-1", "tw-1", BTC, Side.BUY, OrderType.MARKET, Decimal("0.5"), None,
        OrderStatus.FILLED, filled_qty=Decimal("0.5"), avg_price=Decimal("60000"),
        fee=Decimal("16.5"),
    )  # fmt: skip
    assert IntentUpdate.of_order(order) == IntentUpdate(
        IntentStatus.FILLED,
        exchange_order_id="ex-1",
        filled_qty=Decimal("0.5"),
        avg_price=Decimal("60000"),
        fee=Decimal("16.5"),
    )


async def test_a_market_order_reported_open_is_looked_up_once_and_settled_once(
    counted: tuple[Store, StatementCounter],
) -> None:
    store, counter = counted
    executor = OrderExecutor(IntentRepository(store), SystemClock())
    cid = "twlifecycle0001"
    await executor.record(
        NewIntent(cid, USER, "bybit", "live", BTC, "buy", "market", Decimal("0.01"), "manual")
    )
    async with ExchangeServer(symbols=5, seed=9) as server:
        server.add_account("key", "secret", Decimal("10000"))
        server.set_price("BTCUSDT", "60000")
        venue = CcxtVenue(VENUES["bybit"], base_url=server.base_url, retry=QUICK)
        client = await venue.client("live", ApiCredentials("key", "secret"))
        try:
            result = await executor.place(client, cid, await_fill=True)
            calls = server.stats.requests["/v5/order/create"], server.stats.requests[LOOKUP]
        finally:
            await client.close()
            await venue.aclose()
    intent = result.intent
    assert intent.status == IntentStatus.FILLED and intent.avg_price == Decimal("60000")
    assert intent.filled_qty == Decimal("0.01") and intent.exchange_order_id
    assert counter.counts["intents.update"] == 1  # settled once, with the fill
    assert calls == (1, 1)  # the order, then one lookup of its fill


def _intent(cid: str, **changes: object) -> NewIntent:
    fields: dict[str, object] = {
        "client_order_id": cid,
        "user_id": USER,
        "exchange": "bybit",
        "account_type": "demo",
        "symbol": BTC,
        "side": "buy",
        "order_type": "market",
        "qty": Decimal("0.1"),
        "origin": Origin.MANUAL,
        "status": IntentStatus.FILLED,
    }
    fields.update(changes)
    return NewIntent(**fields)  # type: ignore[arg-type]


async def test_the_latest_opening_intent_is_the_newest_that_may_have_opened_it(
    counted: tuple[Store, StatementCounter],
) -> None:
    store, _ = counted
    intents = IntentRepository(store)
    rows = [
        _intent("old-filled", origin=Origin.AUTO),
        _intent("filled", origin=Origin.AUTO),
        _intent("resting", order_type="limit", price=Decimal("1"), status=IntentStatus.OPEN),
        # None of these opened a long BTC position on bybit demo:
        _intent("rejected", status=IntentStatus.REJECTED),
        _intent("draft", status=IntentStatus.DRAFT),
        _intent("close", side="buy", reduce_only=True, origin=Origin.CLOSE),
        _intent("short", side="sell"),
        _intent("eth", symbol=ETH),
        _intent("live", account_type="live"),
        _intent("okx", exchange="okx"),
    ]
    for minute, row in enumerate(rows):
        assert await intents.create(row, T0 + timedelta(minutes=minute))
    latest = await intents.latest_opening(USER, "bybit", "demo", BTC, "buy")
    assert latest is not None and latest.client_order_id == "resting"
    filled = await intents.latest_opening(USER, "bybit", "demo", BTC, "buy", filled_only=True)
    assert filled is not None and filled.client_order_id == "filled"
    assert (filled.origin, filled.created_at) == (Origin.AUTO, T0 + timedelta(minutes=1))
    assert await intents.latest_opening(USER, "bybit", "demo", BTC, "sell") is not None
    assert await intents.latest_opening(USER, "bybit", "demo", "SOL/USDT:USDT", "buy") is None
    assert await intents.latest_opening(USER + 1, "bybit", "demo", BTC, "buy") is None


@pytest.mark.parametrize("filled_only", [False, True])
async def test_the_latest_opening_query_is_served_by_its_index(
    counted: tuple[Store, StatementCounter], filled_only: bool
) -> None:
    store, _ = counted
    sql = intents_sql._LATEST_FILLED_OPENING if filled_only else intents_sql._LATEST_OPENING
    params = {"user": 1, "exchange": "bybit", "account_type": "demo", "symbol": BTC, "side": "buy"}
    rows = await store.fetchall("t.explain", f"EXPLAIN QUERY PLAN {sql}", params)
    plan = " | ".join(row["detail"] for row in rows)
    assert "USING INDEX ix_order_intents_opening (user_id=? AND symbol=?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
