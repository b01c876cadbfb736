"""Reports: realised results by period and symbol, the scheduled reports, the charts."""

from __future__ import annotations

from dataclasses import dataclass

from bot.wiring.core import Shared
from db.repositories.equity import EquityRepository
from services.charts import ChartService
from services.equity import EquityRecorder
from services.exchanges import ExchangeGateway
from services.market import MarketService
from services.reports import ReportService
from services.scheduled_reports import ScheduledReports


@dataclass(slots=True, frozen=True)
class Reports:
    reports: ReportService
    scheduled_reports: ScheduledReports
    charts: ChartService
    equity: EquityRecorder


def build_reports(s: Shared, market: MarketService, exchanges: ExchangeGateway) -> Reports:
    trades = s.repos.trades
    snapshots = EquityRepository(s.store)
    equity = EquityRecorder(snapshots, s.clock, s.settings.equity_retention_days)
    exchanges.account_caches.on_balance = equity.observe  # every balance read is noted
    return Reports(
        reports=ReportService(trades),
        scheduled_reports=ScheduledReports(
            s.repos.reports, trades, s.work, s.clock, equity=equity, snapshots=snapshots
        ),
        charts=ChartService(
            trades,
            market=market,
            gateway=exchanges,
            signals=s.repos.signals,
            snapshots=snapshots,
            recorder=equity,
        ),
        equity=equity,
    )
