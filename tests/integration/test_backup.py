"""`tradewind db backup` while the bot writes: the copy is sound and one point in time."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import pytest

from bot.cli import main
from core.errors import StoreError
from db.store import Store

PAIRS_SQL = "CREATE TABLE load_pairs (batch INTEGER NOT NULL, half INTEGER NOT NULL, pad BLOB)"
BATCH_SQL = "CREATE TABLE load_batches (batch INTEGER PRIMARY KEY)"


class WriteLoad:
    """Commits batches of two rows in one table and one in another until stopped."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.written = 0
        self._stop = False
        self._goal, self._reached = 0, asyncio.Event()

    async def reach(self, batches: int) -> None:
        """Wait until `batches` batches in all are committed."""
        self._goal = batches
        self._reached.clear()
        if self.written < batches:
            await self._reached.wait()

    def stop(self) -> None:
        self._stop = True

    async def run(self) -> None:
        while not self._stop:
            batch = self.written + 1
            async with self.store.transaction() as tx:
                for half in (0, 1):
                    await tx.execute(
                        "t.pair",
                        "INSERT INTO load_pairs VALUES (?, ?, randomblob(2000))",
                        (batch, half),
                    )
                await tx.execute("t.batch", "INSERT INTO load_batches VALUES (?)", (batch,))
            self.written = batch
            if batch >= self._goal:
                self._reached.set()
            await asyncio.sleep(0)


def _inspect(path: Path) -> tuple[str, int, int, int, int]:
    conn = sqlite3.connect(path)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        pairs = conn.execute("SELECT COUNT(*) FROM load_pairs").fetchone()[0]
        batches = conn.execute("SELECT COUNT(*) FROM load_batches").fetchone()[0]
        last = conn.execute("SELECT COALESCE(MAX(batch), 0) FROM load_batches").fetchone()[0]
    finally:
        conn.close()
    return check, version, pairs, batches, last


async def test_backup_under_write_load_is_one_consistent_point_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, copy = tmp_path / "tradewind.db", tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()
    monkeypatch.setenv("TRADEWIND_DB", str(path))
    monkeypatch.setenv("TRADEWIND_METRICS_ADDR", "")
    async with Store(path) as store:
        await store.execute("t.pairs", PAIRS_SQL)
        await store.execute("t.batches", BATCH_SQL)
        version = await store.user_version()
        load = WriteLoad(store)
        task = asyncio.create_task(load.run())
        await load.reach(300)  # a database of a few MB, so the copy takes a while
        # The command opens its own connections, as it does beside a running bot.
        code = await asyncio.to_thread(main, ["db", "backup", str(copy)])
        at_backup_end = load.written
        await load.reach(at_backup_end + 50)  # the writer goes on after the backup
        load.stop()
        await task
    assert code == 0
    assert "integrity check passed" in capsys.readouterr().out
    check, copied_version, pairs, batches, last = _inspect(copy)
    assert (check, copied_version) == ("ok", version)
    # One point in time: whole batches only, none missing before the last one copied.
    assert pairs == 2 * batches and batches == last
    assert 300 <= batches <= at_backup_end < load.written
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not copy.with_name("copy.db.partial").exists()


async def test_backup_restores_into_a_working_store(tmp_path: Path) -> None:
    path, copy = tmp_path / "tradewind.db", tmp_path / "copy.db"
    async with Store(path) as store:
        await store.execute("t.batches", BATCH_SQL)
        await store.executemany("t.batch", "INSERT INTO load_batches VALUES (?)", [(1,), (2,)])
        pages = await store.backup(copy)
    assert pages > 0
    restored = tmp_path / "restored.db"
    copy.replace(restored)  # the README's restore: the copy takes the database's place
    async with Store(restored) as store:
        assert await store.check_integrity() == []
        assert await store.fetchval("t.n", "SELECT COUNT(*) FROM load_batches") == 2


async def test_backup_refuses_to_overwrite_the_database_itself(tmp_path: Path) -> None:
    path = tmp_path / "tradewind.db"
    async with Store(path) as store:
        with pytest.raises(StoreError, match="database itself"):
            await store.backup(path)
        assert await store.check_integrity() == []


def test_backup_command_says_why_it_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tradewind.db"
    monkeypatch.setenv("TRADEWIND_DB", str(path))
    monkeypatch.setenv("TRADEWIND_METRICS_ADDR", "")
    assert main(["db", "backup", str(path)]) == 1
    err = capsys.readouterr().err
    assert "backup failed" in err and "database itself" in err


def test_backup_into_a_directory_names_the_copy_after_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEWIND_DB", str(tmp_path / "tradewind.db"))
    monkeypatch.setenv("TRADEWIND_METRICS_ADDR", "")
    (tmp_path / "out").mkdir()
    assert main(["db", "backup", str(tmp_path / "out")]) == 0
    assert _inspect_version(tmp_path / "out" / "tradewind.db") > 0


def _inspect_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()
