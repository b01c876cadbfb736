"""The store against a real SQLite file: migrations, the write lock, durability."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
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


@pytest.mark.parametrize("durable", [False, True])
async def test_a_cancel_at_any_point_of_a_transaction_leaves_the_writer_usable(
    store: Store, durable: bool
) -> None:
    """A job cancelled at shutdown (or a timed-out task) may be cancelled while BEGIN,
    a statement, COMMIT or ROLLBACK runs on aiosqlite's thread: whatever the moment, the
    writer ends outside a transaction and the next write succeeds."""

    async def write(n: int) -> None:
        async with store.transaction(durable=durable) as tx:
            await tx.execute("t.insert", "INSERT INTO audit_log (at, action) VALUES (?, 'c')", (n,))
            await asyncio.sleep(0)
            await tx.execute("t.insert", "INSERT INTO audit_log (at, action) VALUES (?, 'c')", (n,))

    for n in range(120):
        task = asyncio.create_task(write(n))
        for _ in range(n % 12):  # cancel after a different number of turns each time
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with store.transaction() as tx:  # "cannot start a transaction within ..." before
            await tx.execute("t.probe", "INSERT INTO audit_log (at, action) VALUES (?, 'p')", (n,))
    assert (
        await store.fetchval("t.count", "SELECT COUNT(*) FROM audit_log WHERE action = 'p'") == 120
    )
    # a cancelled transaction wrote both of its rows or neither
    pairs = await store.fetchall(
        "t.pairs", "SELECT at, COUNT(*) AS n FROM audit_log WHERE action = 'c' GROUP BY at"
    )
    assert all(row["n"] == 2 for row in pairs)


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


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_data_directory_is_0700_and_database_files_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "tradewind.db"
    async with Store(path) as store:
        await store.execute("t.write", "INSERT INTO audit_log (at, action) VALUES (1, 'x')")
        assert _mode(path.parent) == 0o700
        for name in ("tradewind.db", "tradewind.db-wal", "tradewind.db-shm"):
            assert _mode(path.parent / name) == 0o600, name


async def test_files_left_readable_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with Store(path):
        pass
    path.chmod(0o644)
    async with Store(path):
        assert _mode(path) == 0o600
        assert _mode(tmp_path / "t.db-wal") == 0o600


def _crash_image(path: Path, into: Path) -> Path:
    """Copy an open database with its WAL: what a killed process leaves on disk."""
    into.mkdir()
    for suffix in ("", "-wal"):
        (into / (path.name + suffix)).write_bytes(path.with_name(path.name + suffix).read_bytes())
    return into / path.name


async def test_quick_check_runs_only_after_an_unclean_shutdown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.db"
    async with Store(path) as store:
        await store.execute("t.write", "INSERT INTO audit_log (at, action) VALUES (1, 'x')")
        crashed = _crash_image(path, tmp_path / "crashed")
    assert not (tmp_path / "t.db-wal").exists()  # a clean close leaves no WAL behind
    with caplog.at_level("WARNING", logger="db.store"):
        async with Store(path):
            pass
        assert "not closed cleanly" not in caplog.text
        async with Store(crashed) as store:
            assert await store.fetchval("t.count", "SELECT COUNT(*) FROM audit_log") == 1
        assert f"{crashed} has a write-ahead log (not closed cleanly" in caplog.text
        assert "quick_check passed" in caplog.text


async def test_a_crash_image_with_a_corrupt_file_fails_the_check(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    path.with_name("bad.db-wal").write_bytes(b"")
    with pytest.raises((StoreError, sqlite3.DatabaseError)):
        async with Store(path):
            pass


def _corrupt_index(path: Path) -> None:
    """Make an index disagree with its table: every row then reads, but the check fails."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE t (v INTEGER, w INTEGER)")
        conn.execute("CREATE INDEX t_v ON t (v)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, -i) for i in range(50)])
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX t_v ON t (w)' WHERE name = 't_v'"
        )
    conn.close()


def test_db_check_command_runs_the_full_integrity_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.db"
    monkeypatch.setenv("TRADEWIND_DB", str(path))
    monkeypatch.setenv("TRADEWIND_METRICS_ADDR", "")
    assert main(["db", "check"]) == 0
    assert "integrity check passed" in capsys.readouterr().out
    _corrupt_index(path)
    assert main(["db", "check"]) == 1
    out = capsys.readouterr().out
    assert "integrity check found" in out and "t_v" in out
