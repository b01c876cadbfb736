"""Numbered SQL migrations, applied in order and tracked by `PRAGMA user_version`.

`0001_initial.sql` sets `user_version` to 1, `0002_x.sql` to 2, and so on. Each file runs in
its own `BEGIN IMMEDIATE` transaction together with the version bump, so a failed
migration leaves the database exactly as it was and running again is always safe.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import aiosqlite

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(slots=True, frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Return the packaged migrations sorted by version; gaps and duplicates are bugs."""
    found: list[Migration] = []
    for entry in resources.files(__package__).iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {found}")
    return found


async def apply_migrations(conn: aiosqlite.Connection) -> int:
    """Apply every migration newer than the database; return the resulting version."""
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    migrations = load_migrations()
    if current > len(migrations):
        raise RuntimeError(
            f"database schema version {current} is newer than this Tradewind "
            f"({len(migrations)}); upgrade Tradewind"
        )
    for migration in migrations[current:]:
        script = (
            f"BEGIN IMMEDIATE;\n{migration.sql}\n"
            f"PRAGMA user_version = {migration.version};\nCOMMIT;"
        )
        try:
            await conn.executescript(script)
        except Exception:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        log.info("applied migration %s", migration.name)
    return max(current, len(migrations))
