"""Balance snapshots: each account's latest equity per UTC hour, and the closes read from them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms, to_text

HOUR_MS = 3_600_000


@dataclass(slots=True, frozen=True)
class EquitySnapshot:
    """An account's equity as one balance read saw it."""

    user_id: int
    exchange: str
    account_type: str
    equity: Decimal
    observed_at: datetime


@dataclass(slots=True, frozen=True)
class EquityClose:
    """The last snapshot of one account inside one window [first_hour, end_hour)."""

    user_id: int
    end_hour: int  # the window asked for, to match the answer to the question
    exchange: str
    account_type: str
    equity: Decimal
    hour: int
    observed_at: datetime


def hour_of(moment: datetime) -> int:
    """The UTC hour bucket of a moment (unix ms // 3,600,000), the table's `hour`."""
    return to_ms(moment) // HOUR_MS


_UPSERT = """
INSERT INTO equity_snapshots (user_id, hour, exchange, account_type, equity, observed_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, hour, exchange, account_type) DO UPDATE SET
    equity = excluded.equity, observed_at = excluded.observed_at
WHERE excluded.observed_at >= equity_snapshots.observed_at
"""
# Each window is one range of the primary key (trader, hours); the bare columns come from
# the row holding MAX(hour) (SQLite's documented min/max bare-column rule).
_CLOSES = """
WITH windows AS (
    SELECT json_extract(value, '$[0]') AS user_id, json_extract(value, '$[1]') AS first_hour,
           json_extract(value, '$[2]') AS end_hour
    FROM json_each(:windows)
)
SELECT w.user_id, w.end_hour, e.exchange, e.account_type, e.equity, e.observed_at,
       MAX(e.hour) AS hour
FROM windows w
JOIN equity_snapshots e
    ON e.user_id = w.user_id AND e.hour >= w.first_hour AND e.hour < w.end_hour
GROUP BY w.user_id, w.end_hour, e.exchange, e.account_type
"""
_LATEST = "SELECT MAX(hour) FROM equity_snapshots WHERE user_id = ?"
_PRUNE = "DELETE FROM equity_snapshots WHERE hour < ?"

HOT_QUERIES = (
    HotQuery(
        "equity.closes",
        _CLOSES,
        {"windows": "[[1, 490000, 490024], [2, 490000, 490024]]"},
        sorts="one row per window and account",
    ),
    HotQuery("equity.latest", _LATEST, (1,)),
)


class EquityRepository(Repository):
    """SQL of the balance snapshots."""

    async def upsert_many(self, snapshots: Sequence[EquitySnapshot]) -> int:
        """Write many snapshots with one statement in one transaction; a newer value of the
        same account and hour replaces the stored one, an older one is ignored."""
        rows = [
            (
                s.user_id,
                hour_of(s.observed_at),
                s.exchange,
                s.account_type,
                to_text(s.equity),
                to_ms(s.observed_at),
            )
            for s in snapshots
        ]
        return await self.store.executemany("equity.upsert_many", _UPSERT, rows)

    async def closes(self, windows: Sequence[tuple[int, int, int]]) -> list[EquityClose]:
        """The last snapshot per account in each (user_id, first_hour, end_hour) window, all
        windows in one statement; accounts without a snapshot in a window are absent."""
        if not windows:
            return []
        rows = await self.store.fetchall(
            "equity.closes", _CLOSES, {"windows": json.dumps([list(w) for w in windows])}
        )
        return [
            EquityClose(
                user_id=r["user_id"],
                end_hour=r["end_hour"],
                exchange=r["exchange"],
                account_type=r["account_type"],
                equity=Decimal(r["equity"]),
                hour=r["hour"],
                observed_at=from_ms_req(r["observed_at"]),
            )
            for r in rows
        ]

    async def latest_hour(self, user_id: int) -> int | None:
        """The hour of a trader's newest snapshot (what a cached chart depends on)."""
        value = await self.store.fetchval("equity.latest", _LATEST, (user_id,))
        return None if value is None else int(value)

    async def prune(self, before: datetime) -> int:
        """Forget the snapshots of every hour before `before`; return how many."""
        return await self.store.execute("equity.prune", _PRUNE, (hour_of(before),))
