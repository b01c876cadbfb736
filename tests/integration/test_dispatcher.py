"""The dispatcher on real SQLite: digests, flood control, blocked users, retries, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import build_application
from core.clock import SystemClock
from core.config import Settings
from core.metrics import Metrics
from db.repositories.notifications import NotificationRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.container import Services
from services.dispatcher import Dispatcher, DispatchPolicy
from services.outbox import Notice, NoticeKind, Outbox
from services.sender import RetryLater, SendError
from services.users import UserProfile as Profile
from tests.botapi_server import BotApiServer
from tests.fakes.sender import FakeSender

FAST = DispatchPolicy(window_s=0.05, backoff_s=0.01, max_attempts=3)
CLOCK = SystemClock()


@pytest.fixture
def outbox(store: Store) -> Outbox:
    return Outbox(NotificationRepository(store), CLOCK)


@pytest.fixture
async def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
async def users(store: Store) -> UserRepository:
    repo = UserRepository(store)
    now = datetime.now(UTC)
    for user_id in range(1, 11):
        await repo.upsert(UserProfile(user_id, chat_of(user_id), f"u{user_id}"), now)
    return repo


@pytest.fixture
async def dispatcher(
    outbox: Outbox, sender: FakeSender, metrics: Metrics, users: UserRepository
) -> AsyncIterator[Dispatcher]:
    running = Dispatcher(outbox, sender, CLOCK, metrics, FAST)
    await running.start()
    yield running
    await running.stop()


def chat_of(user_id: int) -> int:
    return 1000 + user_id


def notice(user_id: int, n: int = 0, kind: NoticeKind = NoticeKind.SIGNAL, **kw: object) -> Notice:
    return Notice(
        user_id=user_id,
        chat_id=chat_of(user_id),
        kind=kind,
        text=f"{kind} #{n} for {user_id}",
        dedup_key=f"{kind}:{n}:{user_id}",
        **kw,  # type: ignore[arg-type]
    )


async def statuses(store: Store) -> dict[str, int]:
    sql = "SELECT status, COUNT(*) FROM notifications GROUP BY status"
    return {row[0]: row[1] for row in await store.fetchall("t.statuses", sql)}


async def settled(store: Store, done: Callable[[dict[str, int]], bool]) -> dict[str, int]:
    """Wait (bounded) until the outbox's statuses satisfy `done`."""
    async with asyncio.timeout(10):
        while not done(found := await statuses(store)):  # noqa: ASYNC110 - rows have no event
            await asyncio.sleep(0.01)
    return found


def nothing_open(found: dict[str, int]) -> bool:
    return not found.get("pending") and not found.get("sending")


async def test_several_pending_for_one_chat_go_out_as_one_digest(
    store: Store, outbox: Outbox, sender: FakeSender, users: UserRepository
) -> None:
    trade = ((("Trade", "sig:1"),),)
    await outbox.enqueue(
        [
            notice(1, 1, silent=True, buttons=trade),
            notice(1, 2, NoticeKind.FILL, silent=True),
            notice(1, 3, NoticeKind.REPORT),
            notice(2, 1, silent=True),
        ]
    )
    dispatcher = Dispatcher(outbox, sender, CLOCK, Metrics(), FAST)
    await dispatcher.start()
    try:
        found = await settled(store, nothing_open)
    finally:
        await dispatcher.stop()

    (digest,) = sender.to(chat_of(1))
    assert digest.text == "fill #2 for 1\n\nsignal #1 for 1\n\nreport #3 for 1"  # lane order
    assert digest.buttons == trade
    assert not digest.silent  # one loud notice makes the digest loud
    assert [m.silent for m in sender.to(chat_of(2))] == [True]
    assert found == {"sent": 4}
    assert (dispatcher.stats.sent, dispatcher.stats.merged_rows) == (2, 2)


async def test_a_chat_gets_its_next_message_only_a_window_after_the_last(
    store: Store, outbox: Outbox, sender: FakeSender, dispatcher: Dispatcher
) -> None:
    await outbox.enqueue([notice(1, 1)])
    await sender.wait_for(lambda: len(sender.sent) == 1)
    await outbox.enqueue([notice(1, 2)])
    await settled(store, lambda s: s == {"sent": 2})

    first, second = sender.to(chat_of(1))
    assert second.at - first.at >= FAST.window_s


async def test_retry_after_pauses_all_sending_and_loses_nothing(
    store: Store, outbox: Outbox, sender: FakeSender, dispatcher: Dispatcher
) -> None:
    sender.failures[chat_of(1)] = [RetryLater(0.3)]
    await outbox.enqueue([notice(1, 1, NoticeKind.FILL)])
    await sender.wait_for(lambda: len(sender.attempts) == 1)
    refused_at = sender.attempts[0].at
    await outbox.enqueue([notice(u, 1) for u in range(2, 8)])

    await settled(store, lambda s: s == {"sent": 7})

    assert len(sender.sent) == 7
    assert all(m.at >= refused_at + 0.3 for m in sender.attempts[1:])
    assert dispatcher.stats.retry_after == 1


async def test_blocked_user_is_marked_inactive_and_their_deliveries_dropped(
    store: Store,
    outbox: Outbox,
    sender: FakeSender,
    users: UserRepository,
    dispatcher: Dispatcher,
) -> None:
    sender.blocked.add(chat_of(3))
    await outbox.enqueue([notice(3, 1), notice(3, 2, NoticeKind.REPORT), notice(4, 1)])

    found = await settled(store, nothing_open)

    assert found == {"dropped": 2, "sent": 1}
    user = await users.get(3)
    assert user is not None and not user.is_active
    assert await outbox.enqueue([notice(3, 3)]) == 0  # nothing queued for them any more


async def test_failures_back_off_then_go_dead_with_the_last_error(
    store: Store, outbox: Outbox, sender: FakeSender, dispatcher: Dispatcher
) -> None:
    sender.failures[chat_of(5)] = [SendError(f"network: try {n}") for n in range(1, 10)]
    sender.failures[chat_of(6)] = [SendError("network: once")]
    await outbox.enqueue([notice(5, 1), notice(6, 1)])

    found = await settled(store, nothing_open)

    assert found == {"dead": 1, "sent": 1}
    row = await store.fetchone(
        "t.dead", "SELECT attempts, last_error FROM notifications WHERE status = 'dead'"
    )
    assert row is not None and tuple(row) == (FAST.max_attempts, "network: try 3")
    assert len([m for m in sender.attempts if m.chat_id == chat_of(5)]) == FAST.max_attempts
    assert len(sender.to(chat_of(6))) == 1


async def test_restart_mid_dispatch_loses_nothing_and_repeats_at_most_one(
    store: Store, outbox: Outbox, users: UserRepository, metrics: Metrics
) -> None:
    crashing = FakeSender()
    crashing.hang.add(chat_of(4))  # this send never returns: the process dies during it
    first = Dispatcher(outbox, crashing, CLOCK, metrics, FAST)
    await first.start()
    await outbox.enqueue([notice(u, 1) for u in range(1, 9)])
    await crashing.hung.wait()
    await settled(store, lambda s: s.get("sent") == 7)
    await first.stop(grace_s=0)  # the crash: the hung send never recorded its outcome

    assert await statuses(store) == {"sent": 7, "sending": 1}

    healthy = FakeSender()
    second = Dispatcher(outbox, healthy, CLOCK, metrics, FAST)
    await second.start()
    try:
        assert await settled(store, nothing_open) == {"sent": 8}
    finally:
        await second.stop()

    attempts = [m.chat_id for m in crashing.attempts + healthy.attempts]
    assert sorted(set(attempts)) == [chat_of(u) for u in range(1, 9)]
    assert len(attempts) - len(set(attempts)) <= 1
    assert second.stats.recovered == 1


async def still_active(services: Services, user_id: int) -> bool:
    user = await services.users.get(user_id)
    return user is not None and user.is_active


async def test_through_ptb_and_the_flood_limited_bot_api(tmp_path: Path) -> None:
    async with BotApiServer(flood_limit=True) as server:
        settings = Settings(
            telegram_bot_token="123456:TEST-token-for-the-local-bot-api",
            telegram_api_base_url=server.base_url,
            db_path=tmp_path / "tradewind.db",
            master_key_file=tmp_path / "master.key",
            metrics_addr=None,
        )
        app = build_application(settings, metrics=Metrics())
        await app.initialize()
        assert app.post_init is not None and app.post_shutdown is not None
        await app.post_init(app)
        services = app.bot_data.services
        assert services is not None
        try:
            chats = range(1, 41)
            for user_id in chats:
                await services.users.ensure(Profile(user_id, chat_of(user_id), f"u{user_id}"))
            await services.users.flush_presence()
            server.state.blocked.add(chat_of(40))
            await services.outbox.enqueue(
                [notice(u, 1) for u in chats] + [notice(1, 2, NoticeKind.FILL)]
            )
            async with asyncio.timeout(15):
                while server.sent < 39 or await still_active(services, 40):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            await app.post_shutdown(app)
            await app.shutdown()

    messages = [c for c in server.calls if c.method == "sendMessage"]
    assert server.rejected_429 == 0
    assert sorted(c.params["chat_id"] for c in messages) == [chat_of(u) for u in range(1, 40)]
    digest = next(c for c in messages if c.params["chat_id"] == chat_of(1))
    assert digest.params["text"] == "fill #2 for 1\n\nsignal #1 for 1"
