"""The migration that leaves one switch for signals: the subscription."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from db.migrations import load_migrations
from db.store import Store


async def test_a_signals_setting_of_off_becomes_an_unsubscription(tmp_path: Path) -> None:
    path = tmp_path / "tradewind.db"
    migrations = load_migrations()
    switch = next(m.version for m in migrations if m.name.endswith("_signal_switch.sql"))
    with sqlite3.connect(path) as conn:
        for migration in migrations[: switch - 1]:
            conn.executescript(migration.sql)
        conn.execute(f"PRAGMA user_version = {switch - 1}")
        conn.executemany(
            "INSERT INTO users (id, chat_id, signals_subscribed, notify_signals, created_at, "
            "last_seen_at) VALUES (?, ?, 1, ?, 0, 0)",
            [(1, 1, "off"), (2, 2, "silent"), (3, 3, "on")],
        )
    conn.close()
    async with Store(path) as store:
        rows = await store.fetchall(
            "t.users", "SELECT id, signals_subscribed, notify_signals FROM users ORDER BY id", ()
        )
    assert [tuple(r) for r in rows] == [(1, 0, "on"), (2, 1, "silent"), (3, 1, "on")]
