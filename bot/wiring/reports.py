"""Reports: realised results by period and symbol, the scheduled reports, the charts."""

from __future__ import annotations

from dataclasses import dataclass

from bot.wiring.core import Shared
from services.charts import ChartService
from services.exchanges import ExchangeGateway
from services.market import MarketService
from services.reports import ReportService
from services.scheduled_reports import ScheduledReports


@dataclass(slots=True, frozen=True)
class Reports:
    reports: ReportService
    scheduled_reports: ScheduledReports
    charts: ChartService


def build_reports(s: Shared, market: MarketService, exchanges: ExchangeGateway) -> Reports:
    trades = s.repos.trades
    return Reports(
        reports=ReportService(trades),
        scheduled_reports=ScheduledReports(s.repos.reports, trades, s.work, s.clock),
        charts=ChartService(trades, market=market, gateway=exchanges, signals=s.repos.signals),
    )
