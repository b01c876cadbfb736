"""Signals on a real store: cooldown per symbol and side, and deliveries written with them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.errors import InvalidInput, NotFound
from db.repositories.notifications import NotificationRepository
from db.repositories.signals import SignalDraft, SignalRepository
from db.repositories.strategy import StrategyRecord, StrategyRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.outbox import Outbox
from services.signals import SignalService, parse_score
from services.unit_of_work import UnitOfWork
from tests.fakes.clock import FakeClock

NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def draft(symbol: str = BTC, side: str = "long", score: float = 0.8) -> SignalDraft:
    return SignalDraft(
        source="paper",
        symbol=symbol,
        side=side,
        score=score,
        price=Decimal("65000.5"),
        leverage=5,
        tp_pct=Decimal("3"),
        sl_pct=Decimal("1.5"),
        reasons=("volume ×4.2 vs 1h", "breakout above 4h high"),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def service(store: Store, clock: FakeClock) -> SignalService:
    outbox = Outbox(NotificationRepository(store), clock)
    return SignalService(SignalRepository(store), UnitOfWork(store, outbox), clock)


async def deliveries(store: Store) -> list[tuple[int, str]]:
    rows = await store.fetchall(
        "t.deliveries", "SELECT user_id, dedup_key FROM notifications ORDER BY user_id, id"
    )
    return [(row[0], row[1]) for row in rows]


async def test_cooldown_per_symbol_and_side(
    service: SignalService, clock: FakeClock, store: Store
) -> None:
    first = await service.publish([draft(), draft(side="short"), draft(ETH)])
    assert [(s.symbol, s.side) for s in first] == [(BTC, "long"), (BTC, "short"), (ETH, "long")]
    assert first[0].price == Decimal("65000.5") and first[0].reasons == draft().reasons

    clock.advance(30 * 60)
    later = await service.publish([draft(), draft(ETH, "short")])
    assert [(s.symbol, s.side) for s in later] == [(ETH, "short")]  # BTC long still cools
    assert service.cooling(BTC, "long") and service.cooling(ETH, "short")

    clock.advance(31 * 60)  # an hour after the first signal of BTC long
    again = await service.publish([draft()])
    assert [(s.symbol, s.side) for s in again] == [(BTC, "long")]
    assert len(await SignalRepository(store).recent(20)) == 5


async def test_the_store_enforces_the_cooldown_across_restarts(
    store: Store, service: SignalService, clock: FakeClock
) -> None:
    await service.publish([draft()])
    outbox = Outbox(NotificationRepository(store), clock)
    restarted = SignalService(SignalRepository(store), UnitOfWork(store, outbox), clock)
    assert not restarted.cooling(BTC, "long")  # a new process remembers nothing...
    assert await restarted.publish([draft()]) == []  # ...but the signals table does
    assert restarted.cooling(BTC, "long")


async def test_deliveries_follow_subscription_score_and_symbol_lists(
    store: Store, service: SignalService
) -> None:
    users, strategies = UserRepository(store), StrategyRepository(store)
    for user_id in (1, 2, 3, 4, 5, 6):
        await users.upsert(UserProfile(user_id, 100 + user_id, f"U{user_id}"), NOW)
    await service.subscribe(1)  # default threshold 0.6
    await service.subscribe(2, "0.9")  # above the score
    await service.subscribe(3, "0.5")
    await strategies.save(StrategyRecord(3, deny_symbols=(BTC,)), NOW)
    await service.subscribe(4, "0.5")
    await strategies.save(StrategyRecord(4, allow_symbols=(ETH,)), NOW)
    await service.subscribe(5)
    await users.mark_unreachable_many([5])  # blocked the bot
    # 6 never subscribed

    (signal,) = await service.publish([draft(score=0.8)])

    key = f"signal:{signal.id}"
    assert await deliveries(store) == [(1, f"{key}:1")]
    (eth,) = await service.publish([draft(ETH, score=0.95)])
    assert await deliveries(store) == [
        (1, f"{key}:1"),
        (1, f"signal:{eth.id}:1"),
        (2, f"signal:{eth.id}:2"),
        (3, f"signal:{eth.id}:3"),
        (4, f"signal:{eth.id}:4"),
    ]


async def test_a_failed_transaction_leaves_neither_signal_nor_delivery(
    store: Store, clock: FakeClock
) -> None:
    class BrokenOutbox(Outbox):
        async def enqueue(self, notices, tx=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk full")

    await UserRepository(store).upsert(UserProfile(1, 1, "U"), NOW)
    broken = BrokenOutbox(NotificationRepository(store), clock)
    service = SignalService(SignalRepository(store), UnitOfWork(store, broken), clock)
    await service.subscribe(1)
    with pytest.raises(RuntimeError):
        await service.publish([draft()])
    assert await SignalRepository(store).recent(5) == []
    assert await deliveries(store) == []


async def test_subscribe_validates_the_score_and_unsubscribe_reports_the_change(
    store: Store, service: SignalService
) -> None:
    await UserRepository(store).upsert(UserProfile(1, 1, "U"), NOW)
    assert await service.subscribe(1) == 0.6
    assert await service.subscribe(1, "75%") == 0.75
    assert await service.subscribe(1) == 0.75  # keeps the last threshold
    for bad in ("1.5", "-0.1", "abc", "nan", "inf"):
        with pytest.raises(InvalidInput, match="from 0 to 1"):
            await service.subscribe(1, bad)
    assert await service.unsubscribe(1) is True
    assert await service.unsubscribe(1) is False
    with pytest.raises(NotFound):
        await service.subscribe(404)
    assert parse_score(".7") == 0.7


async def test_pages_of_signals_newest_first(service: SignalService, clock: FakeClock) -> None:
    for i in range(7):
        await service.publish([draft(f"C{i}/USDT:USDT")])
        clock.advance(1)
    first = await service.page(0)
    assert [s.symbol[:2] for s in first.signals] == ["C6", "C5", "C4", "C3", "C2"]
    assert first.has_older
    second = await service.page(1)
    assert [s.symbol[:2] for s in second.signals] == ["C1", "C0"] and not second.has_older
    with pytest.raises(NotFound):
        await service.page(99)
