"""Paper settlement: a settle run that moved accounts logs their trades and says what it did."""

from __future__ import annotations

from decimal import Decimal

from core.paper.book import EventKind
from core.paper.engine import EngineEvent, EngineReport
from services.paper_settlement import PaperSettlement


class FakePaperVenue:
    def __init__(self, *reports: EngineReport) -> None:
        self.reports = list(reports)

    async def settle_paper(self) -> EngineReport:
        return self.reports.pop(0)


class FakePaperLog:
    def __init__(self) -> None:
        self.recorded: list[EngineReport] = []

    async def record_paper_events(self, report: EngineReport) -> int:
        self.recorded.append(report)
        return sum(1 for e in report.events if e.kind is not EventKind.ORDER_FILLED)


def _event(kind: EventKind, user_id: int = 1) -> EngineEvent:
    return EngineEvent(user_id, "BTC/USDT:USDT", kind, f"o-{kind}", Decimal("1"), None, Decimal(0))


async def test_a_quiet_run_logs_nothing() -> None:
    history = FakePaperLog()
    assert await PaperSettlement(FakePaperVenue(EngineReport()), history).settle() is None
    assert history.recorded == []


async def test_a_run_with_events_logs_them_and_reports_counts() -> None:
    report = EngineReport(
        (
            _event(EventKind.ORDER_FILLED),
            _event(EventKind.TAKE_PROFIT, 2),
            _event(EventKind.STOP_LOSS),
        )
    )
    history = FakePaperLog()
    settled = await PaperSettlement(FakePaperVenue(report), history).settle()
    assert settled is not None and history.recorded == [report]
    assert str(settled) == (
        "paper: 1 orders filled, 1 take-profits, 1 stop-losses, 0 liquidations; 2 trades logged"
    )
