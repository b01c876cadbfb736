"""The recorded balance of a trader per chart period, for the /equity overlay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from db.repositories.equity import EquityClose, EquityRepository, hour_of
from services.periods import Period


@dataclass(slots=True, frozen=True)
class BalancePoint:
    """The trader's equity at the close of one period: the sum over their accounts of each
    account's last recorded balance up to then (within the chart's span)."""

    first: date  # the period's first local date (the chart's x)
    equity: Decimal
    accounts: int


async def balance_points(
    snapshots: EquityRepository, user_id: int, spans: Sequence[Period]
) -> list[BalancePoint]:
    """One point per period that has a recorded balance, oldest first; all periods are read
    in one statement. An account without a balance in a period counts with its last one
    before, so a point is never low only because one account was not looked at that day."""
    windows = [(user_id, hour_of(p.start), hour_of(p.end)) for p in spans]
    by_end: dict[int, list[EquityClose]] = {}
    for close in await snapshots.closes(windows):
        by_end.setdefault(close.end_hour, []).append(close)
    latest: dict[tuple[str, str], Decimal] = {}
    points = []
    for period, (_, _, end_hour) in zip(spans, windows, strict=True):
        found = by_end.get(end_hour)
        if not found:
            continue
        latest.update({(c.exchange, c.account_type): c.equity for c in found})
        points.append(BalancePoint(period.first, sum(latest.values(), Decimal(0)), len(latest)))
    return points
