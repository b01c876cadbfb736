"""The recorded balance of a trader per chart period, for the /equity overlay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from db.repositories.equity import EquityRepository, hour_of
from services.periods import Period


@dataclass(slots=True, frozen=True)
class BalancePoint:
    """The trader's equity at the close of one period: the sum over their accounts of each
    account's last recorded balance inside that period."""

    first: date  # the period's first local date (the chart's x)
    equity: Decimal
    accounts: int


async def balance_points(
    snapshots: EquityRepository, user_id: int, spans: Sequence[Period]
) -> list[BalancePoint]:
    """One point per period that has a recorded balance, oldest first; all periods are read
    in one statement. An account without a balance in a period adds nothing to its point."""
    windows = [(user_id, hour_of(p.start), hour_of(p.end)) for p in spans]
    closes = await snapshots.closes(windows)
    sums: dict[int, tuple[Decimal, int]] = {}
    for close in closes:
        total, accounts = sums.get(close.end_hour, (Decimal(0), 0))
        sums[close.end_hour] = (total + close.equity, accounts + 1)
    points = []
    for period, (_, _, end_hour) in zip(spans, windows, strict=True):
        found = sums.pop(end_hour, None)  # pop: two periods never share an end hour
        if found is not None:
            points.append(BalancePoint(period.first, found[0], found[1]))
    return points
