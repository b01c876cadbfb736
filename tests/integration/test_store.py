"""The store against a real SQLite file: migrations, the write lock, durability."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from core.errors import StoreError
from core.metrics import Metrics
from db.migrations import apply_migrations, load_migrations
from db.store import Store


async def test_migrations_reach_latest_version_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with Store(path) as store:
        assert await store.user_version() == len(load_migrations())
    async with Store(path) as store:  # reopening applies nothing and loses nothing
        assert await store.user_version() == len(load_migrations())
        assert await apply_migrations(store._writer) == len(load_migrations())  # type: ignore[arg-type]


async def test_every_data_model_table_exists(store: Store) -> None:
    rows = await store.fetchall("t.tables", "SELECT name FROM sqlite_master WHERE type='table'")
    names = {row[0] for row in rows}
    expected = {
        "users", "api_credentials", "strategy_settings", "user_licenses", "promo_codes",
        "promo_redemptions", "payments", "markets", "market_history", "signals",
        "order_intents", "executions", "pending_limit_orders", "active_positions",
        "trade_logs", "notifications", "broadcasts", "audit_log", "paper_accounts",
        "paper_orders", "paper_positions", "paper_fills", "paper_leverage",
    }  # fmt: skip
    assert expected <= names


async def test_pragmas_are_set(store: Store) -> None:
    assert await store.fetchval("t", "PRAGMA journal_mode") == "wal"
    assert await store.fetchval("t", "PRAGMA foreign_keys") == 1
    assert await store.fetchval("t", "PRAGMA busy_timeout") == 5000


async def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction() as tx:
            await tx.execute("t.insert", "INSERT INTO audit_log (at, action) VALUES (1, 'x')")
            raise RuntimeError("boom")
    assert await store.fetchval("t.count", "SELECT COUNT(*) FROM audit_log") == 0


async def test_write_lock_serialises_concurrent_transactions(store: Store) -> None:
    """Read-modify-write under the lock never loses an update."""
    await store.execute("t.seed", "INSERT INTO audit_log (id, at, action) VALUES (1, 0, 'n')")

    async def bump() -> None:
        async with store.transaction() as tx:
            row = await tx.fetchone("t.read", "SELECT at FROM audit_log WHERE id = 1")
            assert row is not None
            await asyncio.sleep(0)  # give every other writer a chance to interleave
            await tx.execute("t.write", "UPDATE audit_log SET at = ? WHERE id = 1", (row[0] + 1,))

    await asyncio.gather(*(bump() for _ in range(100)))
    assert await store.fetchval("t.read", "SELECT at FROM audit_log WHERE id = 1") == 100


async def test_no_busy_error_under_50_concurrent_writers(store: Store) -> None:
    async def writer(n: int) -> None:
        for i in range(20):
            await store.execute(
                "t.insert", "INSERT INTO audit_log (at, action) VALUES (?, ?)", (i, f"w{n}")
            )

    await asyncio.gather(*(writer(n) for n in range(50)))
    assert await store.fetchval("t.count", "SELECT COUNT(*) FROM audit_log") == 1000


async def test_readers_see_committed_writes_while_writer_is_busy(store: Store) -> None:
    await store.execute("t.seed", "INSERT INTO audit_log (at, action) VALUES (1, 'a')")
    async with store.transaction() as tx:
        await tx.execute("t.insert", "INSERT INTO audit_log (at, action) VALUES (2, 'b')")
        # WAL: the reader is not blocked and does not see the uncommitted row
        assert await store.fetchval("t.count", "SELECT COUNT(*) FROM audit_log") == 1
    assert await store.fetchval("t.count", "SELECT COUNT(*) FROM audit_log") == 2


async def test_readers_refuse_writes(store: Store) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await store.fetchall("t.bad", "INSERT INTO audit_log (at, action) VALUES (1, 'x')")


async def test_statement_timings_reach_metrics(tmp_path: Path) -> None:
    metrics = Metrics()
    async with Store(tmp_path / "m.db", observer=metrics) as store:
        await store.fetchval("users.count", "SELECT COUNT(*) FROM users")
    count = metrics.registry.get_sample_value(
        "tradewind_db_statement_seconds_count", {"statement": "users.count"}
    )
    assert count == 1


async def test_closed_store_refuses_use(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    await store.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await store.fetchval("t", "SELECT 1")
    with pytest.raises(StoreError, match="closed"):
        async with store.transaction():
            pass
    with pytest.raises(StoreError, match="closed"):
        await store.open()


async def test_corrupt_file_fails_the_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises((StoreError, sqlite3.DatabaseError)):
        async with Store(path):
            pass
