"""The SQLite store: one writer, a few readers, every statement named and timed.

Writes go through `Store.transaction()`: an `asyncio.Lock` serialises them on the single
writer connection and each one opens with `BEGIN IMMEDIATE`, so two coroutines never race
for SQLite's write lock and no caller ever sees SQLITE_BUSY from its own process. Readers
use separate connections; under WAL they never wait for the writer. `busy_timeout` covers
other processes (the `tradewind` maintenance commands) touching the same file.

Every statement carries a short name (`users.upsert`) used for its latency metric.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import aiosqlite

from core.errors import StoreError
from core.files import private_file, tighten
from db.migrations import apply_migrations

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
Row = sqlite3.Row

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -32768",  # 32 MiB of page cache per connection
    "PRAGMA mmap_size = 268435456",  # 256 MiB
)


class StatementObserver(Protocol):
    """Receives each statement's latency; `core.metrics.Metrics` satisfies it."""

    def observe_statement(self, name: str, seconds: float) -> None: ...


class _Quiet:
    def observe_statement(self, name: str, seconds: float) -> None:
        return None


class Tx:
    """One write transaction on the writer connection; valid inside `Store.transaction`."""

    def __init__(self, conn: aiosqlite.Connection, observer: StatementObserver) -> None:
        self._conn = conn
        self._observer = observer

    async def execute(self, name: str, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        start = time.perf_counter()
        cursor = await self._conn.execute(sql, params)
        await cursor.close()
        self._observer.observe_statement(name, time.perf_counter() - start)
        return cursor.rowcount

    async def insert(self, name: str, sql: str, params: Params = ()) -> int:
        """Run one INSERT; return the new row id."""
        start = time.perf_counter()
        cursor = await self._conn.execute(sql, params)
        row_id = cursor.lastrowid
        await cursor.close()
        self._observer.observe_statement(name, time.perf_counter() - start)
        if row_id is None:
            raise StoreError(f"{name}: no row id after insert")
        return row_id

    async def executemany(self, name: str, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for many parameter rows; return the rows changed."""
        start = time.perf_counter()
        cursor = await self._conn.executemany(sql, rows)
        await cursor.close()
        self._observer.observe_statement(name, time.perf_counter() - start)
        return cursor.rowcount

    async def fetchone(self, name: str, sql: str, params: Params = ()) -> Row | None:
        """Read inside the transaction (sees its own uncommitted writes)."""
        start = time.perf_counter()
        async with self._conn.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        self._observer.observe_statement(name, time.perf_counter() - start)
        return row

    async def fetchall(self, name: str, sql: str, params: Params = ()) -> list[Row]:
        start = time.perf_counter()
        async with self._conn.execute(sql, params) as cursor:
            rows = list(await cursor.fetchall())
        self._observer.observe_statement(name, time.perf_counter() - start)
        return rows


class Store:
    """SQLite behind one writer and `readers` reader connections; use with `async with`."""

    def __init__(
        self, path: Path | str, *, observer: StatementObserver | None = None, readers: int = 2
    ) -> None:
        self.path = Path(path)
        self._observer = observer or _Quiet()
        self._reader_count = max(1, readers)
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(self._reader_count))
        self._write_lock = asyncio.Lock()
        self._closed = False

    async def open(self) -> None:
        """Open connections, check integrity after an unclean shutdown, apply migrations.

        The last connection to close checkpoints the WAL and deletes it, so a WAL file found
        before opening means a process died with the database open (or another one has it
        open right now, where the check costs time but does no harm).
        """
        if self._closed:
            raise StoreError("store is closed")
        unclean = False
        if str(self.path) != ":memory:":
            # Created 0600 before SQLite opens it: its -wal and -shm files copy that mode.
            private_file(self.path)
            wal = self._sidecar("-wal")
            unclean = wal.exists()
            tighten(wal)
            tighten(self._sidecar("-shm"))
        self._writer = await self._connect()
        try:
            if unclean:
                start = time.perf_counter()
                await self._check(self._writer, "quick_check")
                log.warning(
                    "%s has a write-ahead log (not closed cleanly, or open elsewhere); "
                    "quick_check passed in %.0f ms",
                    self.path,
                    (time.perf_counter() - start) * 1000,
                )
            await apply_migrations(self._writer)
            for _ in range(self._reader_count):
                reader = await self._connect()
                await reader.execute("PRAGMA query_only = ON")
                self._readers.append(reader)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close every connection; idempotent. A closed store refuses further use."""
        self._closed = True
        connections = [c for c in (self._writer, *self._readers) if c is not None]
        self._writer, self._readers = None, []
        for conn in connections:
            await conn.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self, *, durable: bool = False) -> AsyncIterator[Tx]:
        """Serialise one write transaction; commit on success, roll back on any exception.

        `durable=True` syncs the WAL on commit (`synchronous=FULL`), for money and licence
        writes that must survive a power cut, not only a crash.
        """
        writer = self._require(self._writer)
        async with self._write_lock:
            try:
                if durable:
                    await _settled(writer.execute("PRAGMA synchronous = FULL"))
                await _settled(writer.execute("BEGIN IMMEDIATE"))
                yield Tx(writer, self._observer)
            except BaseException:
                # Also when the task was cancelled while BEGIN ran: the statement still ran
                # on the connection's thread, so whether to roll back is the connection's say.
                if writer.in_transaction:
                    await _settled(writer.execute("ROLLBACK"))
                raise
            else:
                await _settled(writer.execute("COMMIT"))
            finally:
                if durable:
                    await _settled(writer.execute("PRAGMA synchronous = NORMAL"))

    async def execute(self, name: str, sql: str, params: Params = ()) -> int:
        """Run one write statement in its own transaction; return rows changed."""
        async with self.transaction() as tx:
            return await tx.execute(name, sql, params)

    async def executemany(self, name: str, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for many rows in a single transaction."""
        async with self.transaction() as tx:
            return await tx.executemany(name, sql, rows)

    async def fetchone(self, name: str, sql: str, params: Params = ()) -> Row | None:
        start = time.perf_counter()
        async with self._reader().execute(sql, params) as cursor:
            row = await cursor.fetchone()
        self._observer.observe_statement(name, time.perf_counter() - start)
        return row

    async def fetchall(self, name: str, sql: str, params: Params = ()) -> list[Row]:
        start = time.perf_counter()
        async with self._reader().execute(sql, params) as cursor:
            rows = list(await cursor.fetchall())
        self._observer.observe_statement(name, time.perf_counter() - start)
        return rows

    async def fetchval(self, name: str, sql: str, params: Params = ()) -> Any:
        """Return the first column of the first row, or None."""
        row = await self.fetchone(name, sql, params)
        return None if row is None else row[0]

    async def ping(self) -> bool:
        """Cheap liveness probe for /health."""
        return bool(await self.fetchval("store.ping", "SELECT 1") == 1)

    async def user_version(self) -> int:
        return int(await self.fetchval("store.user_version", "PRAGMA user_version"))

    def _reader(self) -> aiosqlite.Connection:
        if not self._readers:
            raise StoreError("store is closed" if self._closed else "store is not open")
        return self._readers[next(self._next_reader) % len(self._readers)]

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise StoreError("store is closed" if self._closed else "store is not open")
        return conn

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            for pragma in _PRAGMAS:
                await conn.execute(pragma)
        except BaseException:
            await conn.close()  # its thread would otherwise keep the process alive
            raise
        return conn

    async def check_integrity(self) -> list[str]:
        """Run the full `PRAGMA integrity_check`; the problems found (empty when sound)."""
        rows = await self._pragma_rows(self._reader(), "integrity_check")
        return [] if rows == ["ok"] else rows

    async def backup(self, target: Path) -> int:
        """Copy the database to `target` (created 0600) as one consistent snapshot; its pages.

        SQLite's backup API copies every page in one step on a reader connection: under WAL
        that is one read transaction, so the copy is the database as of one commit while the
        writer carries on. It is written beside `target` and renamed over it at the end, so
        a failed or interrupted backup never leaves a half-written file under that name.
        """
        reader = self._reader()
        partial = target.with_name(target.name + ".partial")
        copy = await asyncio.to_thread(self._open_copy, target, partial)
        try:
            await reader.backup(copy)
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
        except BaseException:
            copy.close()
            partial.unlink(missing_ok=True)
            raise
        copy.close()
        os.replace(partial, target)
        return pages

    def _open_copy(self, target: Path, partial: Path) -> sqlite3.Connection:
        if target.resolve() == self.path.resolve():
            raise StoreError(f"{target} is the database itself; choose another path")
        partial.unlink(missing_ok=True)
        private_file(partial)
        # The backup runs on the reader's thread, so the copy's connection may not be
        # tied to the thread that opened it.
        return sqlite3.connect(partial, check_same_thread=False)

    def _sidecar(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    async def _check(self, conn: aiosqlite.Connection, pragma: str) -> None:
        rows = await self._pragma_rows(conn, pragma)
        if rows != ["ok"]:
            raise StoreError(f"database {self.path} failed its integrity check: {rows[:3]}")

    @staticmethod
    async def _pragma_rows(conn: aiosqlite.Connection, pragma: str) -> list[str]:
        async with conn.execute(f"PRAGMA {pragma}") as cursor:
            return [str(row[0]) for row in await cursor.fetchall()]


async def _settled(statement: Awaitable[object]) -> None:
    """Wait for a transaction-control statement even if this task is cancelled meanwhile.

    aiosqlite runs the statement on its own thread whatever happens to the awaiting task; a
    cancel that returned before it finished would leave the writer inside a transaction
    nobody ends, and every later write would fail. The cancel is raised once it is done.
    """
    task = asyncio.ensure_future(statement)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
