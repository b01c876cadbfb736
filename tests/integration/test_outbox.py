"""The outbox on real SQLite: dedup, per-user settings, lanes, broadcast progress, recovery."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from db.repositories.notifications import NotificationRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.outbox import Notice, NoticeKind, Outbox
from tests.fakes.clock import FakeClock

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def outbox(store: Store, clock: FakeClock) -> Outbox:
    return Outbox(NotificationRepository(store), clock)


async def add_users(store: Store, *user_ids: int) -> UserRepository:
    users = UserRepository(store)
    for user_id in user_ids:
        await users.upsert(UserProfile(user_id, 1000 + user_id, f"u{user_id}"), NOW)
    return users


def notice(
    user_id: int, kind: NoticeKind = NoticeKind.SIGNAL, key: str = "", **kw: object
) -> Notice:
    return Notice(
        user_id=user_id,
        chat_id=1000 + user_id,
        kind=kind,
        text=f"<b>{kind}</b> for {user_id}",
        dedup_key=key or f"{kind}:{user_id}",
        **kw,  # type: ignore[arg-type]
    )


async def statuses(store: Store) -> dict[str, str]:
    rows = await store.fetchall("t.statuses", "SELECT dedup_key, status FROM notifications")
    return {row[0]: row[1] for row in rows}


async def test_enqueue_ignores_duplicate_dedup_keys(store: Store, outbox: Outbox) -> None:
    await add_users(store, 1, 2)
    batch = [notice(1, key="signal:7:1"), notice(2, key="signal:7:2")]

    assert await outbox.enqueue(batch) == 2
    assert await outbox.enqueue([*batch, notice(1, key="signal:8:1")]) == 1
    assert sorted(await statuses(store)) == ["signal:7:1", "signal:7:2", "signal:8:1"]


async def test_settings_off_and_inactive_users_are_skipped(store: Store, outbox: Outbox) -> None:
    users = await add_users(store, 1, 2, 3, 4)
    await users.set_notify(1, "notify_signals", "off")
    await users.set_notify(2, "notify_fills", "off")
    await users.mark_unreachable_many([3])

    inserted = await outbox.enqueue(
        [
            notice(1, NoticeKind.SIGNAL),  # signals off
            notice(1, NoticeKind.FILL),  # fills still on
            notice(2, NoticeKind.STOP),  # stop-outs follow the fills setting: off
            notice(2, NoticeKind.SIGNAL),
            notice(3, NoticeKind.SYSTEM),  # inactive: blocked the bot
            notice(4, NoticeKind.REPORT),
            notice(1, NoticeKind.BROADCAST),  # broadcasts ignore per-kind settings
        ]
    )

    assert inserted == 4
    assert sorted(await statuses(store)) == ["broadcast:1", "fill:1", "report:4", "signal:2"]


async def test_silent_setting_or_notice_sends_without_sound(store: Store, outbox: Outbox) -> None:
    users = await add_users(store, 1, 2)
    await users.set_notify(1, "notify_reports", "silent")
    await outbox.enqueue(
        [
            notice(1, NoticeKind.REPORT),
            notice(2, NoticeKind.REPORT),
            notice(2, NoticeKind.SIGNAL, silent=True),
        ]
    )

    claimed = await outbox.repository.claim(NOW, 10)

    assert {(d.user_id, d.kind): d.silent for d in claimed} == {
        (1, "report"): True,
        (2, "report"): False,
        (2, "signal"): True,
    }


async def test_claim_takes_fills_before_signals_before_reports_before_broadcasts(
    store: Store, outbox: Outbox, clock: FakeClock
) -> None:
    await add_users(store, 1, 2)
    buttons = ((("Trade", "sig:1:long"),),)
    for kind in (NoticeKind.BROADCAST, NoticeKind.REPORT, NoticeKind.SIGNAL, NoticeKind.FILL):
        await outbox.enqueue([notice(1, kind, buttons=buttons), notice(2, kind)])
        clock.advance(1)
    repo = outbox.repository

    first = await repo.claim(clock.now(), 3)
    rest = await repo.claim(clock.now(), 100)

    assert [(d.kind, d.user_id) for d in first] == [("fill", 1), ("fill", 2), ("signal", 1)]
    assert [d.kind for d in rest] == ["signal", "report", "report", "broadcast", "broadcast"]
    assert first[0].buttons == buttons and first[1].buttons == ()
    assert await repo.claim(clock.now(), 100) == []
    assert set((await statuses(store)).values()) == {"sending"}


async def test_rows_not_yet_due_are_not_claimed(store: Store, outbox: Outbox) -> None:
    await add_users(store, 1)
    await outbox.enqueue([notice(1)])
    (row,) = await outbox.repository.claim(NOW, 10)
    later = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    await outbox.repository.release([row.id], later)

    assert await outbox.repository.claim(NOW, 10) == []
    assert await outbox.repository.next_due() == later
    assert [d.id for d in await outbox.repository.claim(later, 10)] == [row.id]


async def test_enqueue_in_the_callers_transaction_rolls_back_with_it(
    store: Store, outbox: Outbox
) -> None:
    await add_users(store, 1)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            assert await outbox.enqueue([notice(1)], tx) == 1
            raise RuntimeError("the signal insert failed")

    assert await statuses(store) == {}


async def test_broadcast_progress_counts_by_outcome(store: Store, outbox: Outbox) -> None:
    await add_users(store, 1, 2, 3, 4)
    async with store.transaction() as tx:
        broadcast_id = await tx.insert(
            "t.broadcast",
            "INSERT INTO broadcasts (admin_id, text, created_at) VALUES (99, 'hi', 0)",
        )
    await outbox.enqueue(
        [notice(u, NoticeKind.BROADCAST, broadcast_id=broadcast_id) for u in (1, 2, 3, 4)]
    )
    repo = outbox.repository
    claimed = {d.user_id: d.id for d in await repo.claim(NOW, 2)}
    await repo.mark_sent([claimed[1]], NOW)
    await repo.drop_users([2], "blocked")

    progress = await outbox.broadcast_progress(broadcast_id)

    assert (progress.sent, progress.dropped, progress.dead, progress.pending) == (1, 1, 0, 2)
    assert not progress.done


async def test_recover_requeues_rows_left_sending(store: Store, outbox: Outbox) -> None:
    await add_users(store, 1, 2)
    await outbox.enqueue([notice(1), notice(2)])
    await outbox.repository.claim(NOW, 1)

    assert await outbox.repository.recover() == 1
    assert set((await statuses(store)).values()) == {"pending"}
    assert await outbox.depth() == {0: 0, 1: 2, 2: 0, 3: 0}
