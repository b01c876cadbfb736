"""Repositories: all SQL of one aggregate per module, records as slotted dataclasses.

Write methods take an optional `tx` so a service can compose several of them into one
transaction (redeeming a promo writes the redemption, the counter and the licence at once);
without one they open their own. Each module lists its hot read queries in `HOT_QUERIES`
so a test can prove with `EXPLAIN QUERY PLAN` that none of them scans a growing table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class HotQuery:
    """A query the bot runs on a hot path, with sample parameters for EXPLAIN."""

    name: str
    sql: str
    params: tuple[Any, ...] | dict[str, Any] = ()
    # Why a temporary B-tree is bounded (e.g. "one row per symbol"); empty: it may not sort.
    sorts: str = ""
