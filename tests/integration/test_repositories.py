"""Repositories against real SQLite: upserts, batches, licence arithmetic, audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from db.repositories.audit import AuditEntry, AuditRepository
from db.repositories.credentials import CredentialRepository, NewCredential
from db.repositories.licenses import LicenseRepository
from db.repositories.strategy import StrategyRecord, StrategyRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _user(store: Store, user_id: int = 42, name: str = "Alice") -> None:
    await UserRepository(store).upsert(UserProfile(user_id, user_id, name, "alice"), NOW)


async def test_user_upsert_creates_then_updates(store: Store) -> None:
    users = UserRepository(store)
    record, created = await users.upsert(UserProfile(7, 7, "Bob", "bob"), NOW)
    assert created and record.first_name == "Bob" and record.is_active
    later = NOW + timedelta(hours=1)
    record, created = await users.upsert(UserProfile(7, 7, "Robert", "bob"), later)
    assert not created
    assert record.first_name == "Robert"
    assert record.created_at == NOW and record.last_seen_at == later


async def test_users_get_many_and_batch_updates(store: Store) -> None:
    users = UserRepository(store)
    for uid in range(1, 6):
        await users.upsert(UserProfile(uid, uid, f"U{uid}"), NOW)
    found = await users.get_many([1, 3, 5, 99, 3])
    assert sorted(found) == [1, 3, 5]
    assert await users.mark_unreachable_many([2, 4]) == 2
    assert not (await users.get_many([2]))[2].is_active
    later = NOW + timedelta(days=2)
    await users.touch_many([(1, later), (3, later)])
    assert sorted(await users.last_seen_since(NOW + timedelta(days=1))) == [(1, later), (3, later)]
    assert [u.user_id for u in await users.find_by_username("NOBODY")] == []


async def test_credentials_are_unique_per_account_and_owned(store: Store) -> None:
    await _user(store, 1)
    await _user(store, 2)
    creds = CredentialRepository(store)
    new = NewCredential(1, "bybit", "demo", "k-enc", "s-enc", None, "a1b2")
    first = await creds.upsert(new, NOW)
    replaced = await creds.upsert(
        NewCredential(1, "bybit", "demo", "k2", "s2", None, "c3d4"), NOW + timedelta(minutes=1)
    )
    assert replaced.credential_id == first.credential_id
    assert replaced.key_hint == "c3d4" and replaced.api_key_enc == "k2"
    assert await creds.get(2, first.credential_id) is None  # another user's id is invisible
    assert await creds.delete(2, first.credential_id) is False
    assert len(await creds.for_user(1)) == 1
    assert await creds.delete(1, first.credential_id) is True
    assert await creds.for_user(1) == []


async def test_strategy_defaults_roundtrip_and_auto_traders(store: Store) -> None:
    await _user(store, 1)
    await _user(store, 2)
    strategies = StrategyRepository(store)
    assert (await strategies.get(1)).leverage == 5
    mine = StrategyRecord(
        user_id=1, size_usdt=None, risk_pct=Decimal("1.5"), leverage=10,
        auto_trade=True, min_score=0.8, allow_symbols=("BTC/USDT:USDT",),
        auto_trade_since=NOW,
    )  # fmt: skip
    await strategies.save_many([mine, StrategyRecord(user_id=2, auto_trade=True)], NOW)
    assert await strategies.get(1) == mine
    assert [s.user_id for s in await strategies.auto_traders(0.75)] == [2]
    assert sorted(s.user_id for s in await strategies.auto_traders(0.9)) == [1, 2]


async def test_license_extends_from_current_end_or_now(store: Store) -> None:
    await _user(store)
    licenses = LicenseRepository(store)
    lic = await licenses.extend(42, 30, "pro", "grant", NOW)
    assert lic.end_at == NOW + timedelta(days=30) and lic.is_valid(NOW)
    lic = await licenses.extend(42, 10, "pro", "promo", NOW + timedelta(days=5))
    assert lic.end_at == NOW + timedelta(days=40)  # stacked on the running licence
    expired_now = NOW + timedelta(days=100)
    assert await licenses.expire_due(expired_now) == [42]
    lic = await licenses.extend(42, 7, "trial", "grant", expired_now)
    assert lic.end_at == expired_now + timedelta(days=7)  # restarted from now
    assert lic.start_at == expired_now


async def test_concurrent_extensions_are_not_lost(store: Store) -> None:
    await _user(store)
    licenses = LicenseRepository(store)
    await asyncio.gather(*(licenses.extend(42, 1, "pro", "grant", NOW) for _ in range(30)))
    lic = await licenses.get(42)
    assert lic is not None and lic.end_at == NOW + timedelta(days=30)


async def test_license_reminders_revoke_and_count(store: Store) -> None:
    for uid in (1, 2, 3):
        await _user(store, uid)
    licenses = LicenseRepository(store)
    await licenses.extend(1, 2, "pro", "grant", NOW)
    await licenses.extend(2, 10, "pro", "grant", NOW)
    await licenses.extend(3, 1, "pro", "grant", NOW)
    due = await licenses.due_reminder(NOW, NOW + timedelta(days=3))
    assert sorted(r.user_id for r in due) == [1, 3]
    assert await licenses.mark_reminded_many([1, 3], "3d") == 2
    assert (await licenses.get(1)).reminded_3d  # type: ignore[union-attr]
    assert await licenses.revoke(2, "chargeback", NOW) is True
    assert await licenses.revoke(2, "again", NOW) is False
    assert await licenses.count_active(NOW) == 2
    with pytest.raises(KeyError):
        await licenses.mark_reminded_many([1], "2d")


async def test_audit_records_single_and_batch(store: Store) -> None:
    audit = AuditRepository(store)
    await audit.record(AuditEntry("grant", 1, "user:42", {"days": 30}), NOW)
    await audit.record_many(
        [AuditEntry("refused", 5, "/grant", ok=False), AuditEntry("expire", None, "user:7")],
        NOW + timedelta(seconds=1),
    )
    recent = await audit.recent()
    assert recent[0].action in {"refused", "expire"}
    assert recent[-1].action == "grant"
    assert len(recent) == 3
    (grant,) = await audit.by_action("grant")
    assert grant.details == {"days": 30} and grant.target == "user:42" and grant.ok
    (refused,) = await audit.by_actor(5)
    assert refused.ok is False


async def test_deleting_a_user_cascades(store: Store) -> None:
    await _user(store, 1)
    await CredentialRepository(store).upsert(
        NewCredential(1, "bybit", "live", "k", "s", None, "x"), NOW
    )
    await store.execute("t.delete", "DELETE FROM users WHERE id = 1")
    assert await CredentialRepository(store).for_user(1) == []
