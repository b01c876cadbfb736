"""Paper settlement: the paper accounts follow the market, and what closed gets logged.

Run by a job at the price interval. The paper engine fills resting orders and fires TP/SL
and liquidations at the latest prices (the gateway drops the moved accounts' cached state);
the closes are then logged as trades, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.paper.engine import EngineReport


class PaperVenue(Protocol):
    async def settle_paper(self) -> EngineReport: ...


class PaperLog(Protocol):
    async def record_paper_events(self, report: EngineReport) -> int: ...


@dataclass(slots=True, frozen=True)
class PaperSettled:
    """One run: what the engine did and how many trades were logged."""

    report: EngineReport
    logged: int

    def __str__(self) -> str:
        r = self.report
        return (
            f"paper: {r.orders_filled} orders filled, {r.tp_hits} take-profits, "
            f"{r.sl_hits} stop-losses, {r.liquidations} liquidations; {self.logged} trades logged"
        )


class PaperSettlement:
    """Moves paper accounts to the latest prices and logs the trades that closed."""

    def __init__(self, venue: PaperVenue, history: PaperLog) -> None:
        self._venue = venue
        self._history = history

    async def settle(self) -> PaperSettled | None:
        """One settle run; None when nothing happened."""
        report = await self._venue.settle_paper()
        if not report.events:
            return None
        return PaperSettled(report, await self._history.record_paper_events(report))
