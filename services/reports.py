"""Tables of realised results: per day, week or month, and per symbol, in the trader's time.

One query per table, whatever its length: the periods go to the store as a list of UTC
ranges (services/periods.py turns the trader's calendar into them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from core.errors import InvalidInput
from db.repositories.trades import PeriodTotals, SymbolTotals, TradeRepository
from services import periods
from services.periods import UNITS

__all__ = [
    "MAX_PERIODS",
    "UNITS",
    "PeriodTable",
    "PeriodTotals",
    "ReportService",
    "SymbolTotals",
]

# The longest table per unit: two years of days, weeks or months.
MAX_PERIODS = {"day": 730, "week": 104, "month": 24}
DEFAULT_PERIODS = {"day": 7, "week": 8, "month": 6}


@dataclass(slots=True, frozen=True)
class PeriodTable:
    """The last `len(rows)` periods of one unit, newest first, and their sum."""

    unit: str
    rows: tuple[PeriodTotals, ...]
    trades: int
    wins: int
    losses: int
    pnl: Decimal
    fees: Decimal

    @property
    def breakeven(self) -> int:
        return self.trades - self.wins - self.losses


class ReportService:
    """Reads the trade log into period and symbol tables."""

    def __init__(self, trades: TradeRepository) -> None:
        self._trades = trades

    async def period_table(
        self, user_id: int, unit: str, count: int, now: datetime, tz: tzinfo
    ) -> PeriodTable:
        """Trades, PnL, wins and fees of each of the last `count` days, weeks or months."""
        if unit not in UNITS:
            raise InvalidInput(f"Periods are {', '.join(UNITS)}.")
        if not 1 <= count <= MAX_PERIODS[unit]:
            raise InvalidInput(f"Show 1 to {MAX_PERIODS[unit]} {unit}s at a time.")
        spans = periods.recent(unit, count, now, tz)
        rows = await self._trades.periods(user_id, [(p.start, p.end) for p in spans])
        return PeriodTable(
            unit=unit,
            rows=tuple(rows),
            trades=sum(r.trades for r in rows),
            wins=sum(r.wins for r in rows),
            losses=sum(r.losses for r in rows),
            pnl=sum((r.pnl for r in rows), Decimal(0)),
            fees=sum((r.fees for r in rows), Decimal(0)),
        )

    async def performance(self, user_id: int) -> list[SymbolTotals]:
        """Every symbol the trader has closed a trade on, best PnL first."""
        totals = await self._trades.by_symbol(user_id, periods.EPOCH)
        return sorted(totals, key=lambda t: (-t.pnl, t.symbol))
