"""Who gets a scheduled report this minute, and what of theirs it shows beyond trades."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from db.repositories import HotQuery
from db.repositories.base import Repository


@dataclass(slots=True, frozen=True)
class ReportTarget:
    """A trader whose report time is now, in their timezone."""

    user_id: int
    chat_id: int
    timezone: str
    report_time: str  # HH:MM local


# The job passes every (timezone, local HH:MM) pair that is now; each pair is one probe of
# ix_strategy_report_time, so the cost is the number of zones, not the number of traders.
_DUE = """
SELECT s.user_id, u.chat_id, s.timezone, s.report_time
FROM json_each(:now) AS n
JOIN strategy_settings s INDEXED BY ix_strategy_report_time
    ON s.timezone = json_extract(n.value, '$[0]')
    AND s.report_time = json_extract(n.value, '$[1]') AND s.report_time IS NOT NULL
JOIN users u ON u.id = s.user_id
WHERE u.is_active = 1
"""
_OPEN_POSITIONS = """
SELECT j.value AS user_id, (
    SELECT COUNT(*) FROM active_positions p WHERE p.user_id = j.value
) AS open
FROM json_each(:users) AS j
"""

HOT_QUERIES = (
    HotQuery("reports.due", _DUE, {"now": '[["UTC", "08:00"]]'}),
    HotQuery("reports.open_positions", _OPEN_POSITIONS, {"users": "[1, 2]"}),
)


class ReportRepository(Repository):
    """SQL of the scheduled reports."""

    async def due(self, now: Sequence[tuple[str, str]]) -> list[ReportTarget]:
        """Traders whose (timezone, report_time) is one of these pairs."""
        rows = await self.store.fetchall("reports.due", _DUE, {"now": json.dumps(now)})
        return [
            ReportTarget(r["user_id"], r["chat_id"], r["timezone"], r["report_time"]) for r in rows
        ]

    async def open_positions(self, user_ids: Collection[int]) -> dict[int, int]:
        """Open positions per trader, for all of them in one statement."""
        rows = await self.store.fetchall(
            "reports.open_positions", _OPEN_POSITIONS, {"users": json.dumps(sorted(user_ids))}
        )
        return {r["user_id"]: r["open"] for r in rows}
