"""The unit of work on a real store: rows and notices commit together, and only a committed
write wakes the dispatcher and runs the after-commit hooks, in that order."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime

import pytest

from db.repositories.notifications import NotificationRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.outbox import MAX_TEXT, Notice, NoticeKind, Outbox
from services.unit_of_work import UnitOfWork
from tests.fakes.clock import FakeClock

NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)


class Journal:
    """What happened, in order, each with the rows another connection could see just then."""

    def __init__(self, store: Store) -> None:
        self._path = store.path
        self.events: list[tuple[str, int, int]] = []

    def note(self, what: str) -> None:
        # A second, plain connection sees only what was committed.
        with closing(sqlite3.connect(self._path)) as db:
            users = db.execute("SELECT count(*) FROM users").fetchone()[0]
            notices = db.execute("SELECT count(*) FROM notifications").fetchone()[0]
        self.events.append((what, users, notices))


class JournalledOutbox(Outbox):
    def __init__(self, store: Store, journal: Journal) -> None:
        super().__init__(NotificationRepository(store), FakeClock(NOW))
        self._journal = journal

    def wake(self) -> None:
        self._journal.note("wake")
        super().wake()


@pytest.fixture
def journal(store: Store) -> Journal:
    return Journal(store)


@pytest.fixture
def work(store: Store, journal: Journal) -> UnitOfWork:
    outbox = JournalledOutbox(store, journal)
    return UnitOfWork(
        store, outbox, on_change=[lambda: journal.note("hook"), lambda: journal.note("hook 2")]
    )


def notice(user_id: int, key: str = "k", text: str = "Hello") -> Notice:
    return Notice(user_id, user_id, NoticeKind.SYSTEM, text, f"{key}:{user_id}")


async def counts(store: Store) -> tuple[int, int]:
    users = await store.fetchone("t.users", "SELECT count(*) FROM users")
    notices = await store.fetchone("t.notices", "SELECT count(*) FROM notifications")
    assert users is not None and notices is not None
    return users[0], notices[0]


@pytest.mark.parametrize("durable", [False, True])
async def test_commit_then_wake_then_hooks_in_order(
    store: Store, work: UnitOfWork, journal: Journal, durable: bool
) -> None:
    async with work.begin(durable=durable) as unit:
        await UserRepository(store).upsert(UserProfile(1, 1, "Ann"), NOW, unit.tx)
        assert await unit.notify([notice(1)]) == 1
        unit.changed()
        journal.note("written")

    assert journal.events == [
        ("written", 0, 0),  # nothing visible before the commit
        ("wake", 1, 1),  # woken with the row and its notice already committed
        ("hook", 1, 1),
        ("hook 2", 1, 1),
    ]


async def test_a_write_that_raises_commits_nothing_and_tells_nobody(
    store: Store, work: UnitOfWork, journal: Journal
) -> None:
    with pytest.raises(RuntimeError, match="disk full"):
        async with work.begin(durable=True) as unit:
            await UserRepository(store).upsert(UserProfile(1, 1, "Ann"), NOW, unit.tx)
            await unit.notify([notice(1)])
            unit.changed()
            raise RuntimeError("disk full")

    assert await counts(store) == (0, 0)
    assert journal.events == []  # no wake, no hook


async def test_notices_and_rows_commit_together(
    store: Store, work: UnitOfWork, journal: Journal
) -> None:
    with pytest.raises(ValueError, match="longer than"):
        async with work.begin() as unit:
            await UserRepository(store).upsert(UserProfile(1, 1, "Ann"), NOW, unit.tx)
            await unit.notify([notice(1, "ok"), notice(1, "long", "x" * (MAX_TEXT + 1))])
    assert await counts(store) == (0, 0)  # the refused notice took the user row with it
    assert journal.events == []

    async with work.begin() as unit:
        await UserRepository(store).upsert(UserProfile(1, 1, "Ann"), NOW, unit.tx)
        await UserRepository(store).upsert(UserProfile(2, 2, "Bob"), NOW, unit.tx)
        await unit.notify([notice(1), notice(2)])
    assert await counts(store) == (2, 2)
    keys = await store.fetchall("t.keys", "SELECT dedup_key FROM notifications ORDER BY id")
    assert [row[0] for row in keys] == ["k:1", "k:2"]
    assert journal.events == [("wake", 2, 2)]  # nothing said changed(): no hook


async def test_nothing_new_to_deliver_wakes_nobody(
    store: Store, work: UnitOfWork, journal: Journal
) -> None:
    await UserRepository(store).upsert(UserProfile(1, 1, "Ann"), NOW)
    async with work.begin() as unit:
        await unit.notify([notice(1)])
    async with work.begin() as unit:
        assert await unit.notify([notice(1)]) == 0  # the same dedup key: already queued
        assert await unit.notify([]) == 0
        unit.changed()

    assert journal.events == [("wake", 1, 1), ("hook", 1, 1), ("hook 2", 1, 1)]
