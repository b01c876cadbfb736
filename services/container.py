"""The services of one running bot, built once at start-up and reached by every handler."""

from __future__ import annotations

from dataclasses import dataclass

from core.cache import CacheLayer
from core.clock import Clock
from core.crypto import SecretBox
from core.metrics import Metrics
from services.access import AccessPolicy
from services.accounts import AccountService
from services.alerts import AlertThrottle
from services.analytics import AnalyticsService
from services.audit import AuditService
from services.autotrade import AutoTrader
from services.backtest import BacktestService
from services.broadcasts import BroadcastService
from services.candles import CandleStore
from services.charts import ChartService
from services.equity import EquityRecorder
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.fill_ledger import FillLedger
from services.fill_ledger_catchup import FillCatchUp
from services.history import HistoryService
from services.keys import KeyHealthService
from services.ladder import LadderService
from services.licenses import LicenseService
from services.market import MarketService
from services.market_registry import MarketRegistry
from services.monitoring import MonitoringService
from services.notify_settings import NotificationSettings
from services.order_expiry import OrderExpiry
from services.outbox import Outbox
from services.paper_settlement import PaperSettlement
from services.payments import PaymentService
from services.portfolio import PortfolioService
from services.position_management import PositionManagementService
from services.position_sync import PositionSync
from services.price_alerts import PriceAlertService
from services.promos import PromoService
from services.reports import ReportService
from services.scanner import Scanner
from services.scheduled_reports import ScheduledReports
from services.settlement import OrderSettlement
from services.signals import SignalService
from services.strategy import StrategyService
from services.streams import StreamManager
from services.ticker_stream import TickerStream
from services.trading import TradingService
from services.trailing import TrailingService
from services.user_admin import UserAdminService
from services.users import UserService
from services.warming import CacheWarmer

GENESIS_KEY = "synthetic_market_genesis"


@dataclass(slots=True)
class Services:
    """Handlers reach these through `context.services`."""

    clock: Clock
    metrics: Metrics
    cache: CacheLayer
    secrets: SecretBox
    access: AccessPolicy
    users: UserService
    licenses: LicenseService
    monitoring: MonitoringService
    audit: AuditService
    alerts: AlertThrottle
    exchanges: ExchangeGateway
    paper: PaperSettlement
    executor: OrderExecutor
    accounts: AccountService
    market: MarketService
    strategy: StrategyService
    history: HistoryService
    trading: TradingService
    portfolio: PortfolioService
    warmer: CacheWarmer
    outbox: Outbox
    notify: NotificationSettings
    promos: PromoService
    payments: PaymentService
    registry: MarketRegistry
    signals: SignalService
    scanner: Scanner
    analytics: AnalyticsService
    user_admin: UserAdminService
    broadcasts: BroadcastService
    autotrader: AutoTrader
    position_sync: PositionSync
    fill_ledger: FillLedger
    fill_catchup: FillCatchUp
    order_expiry: OrderExpiry
    settlement: OrderSettlement
    price_alerts: PriceAlertService
    reports: ReportService
    scheduled_reports: ScheduledReports
    charts: ChartService
    equity: EquityRecorder
    key_health: KeyHealthService
    position_management: PositionManagementService
    trailing: TrailingService
    ladders: LadderService
    candles: CandleStore
    backtests: BacktestService
    streams: StreamManager | None = None  # None: TRADEWIND_STREAMS=0, every account polled
    ticker_stream: TickerStream | None = None  # None: streams off or a synthetic market

    async def aclose(self) -> None:
        """Release what services hold open (pending reloads, exchange clients and sessions)."""
        if self.streams is not None:
            await self.streams.aclose()
        if self.ticker_stream is not None:
            await self.ticker_stream.aclose()
        await self.warmer.aclose()
        await self.autotrader.aclose()
        await self.exchanges.aclose()
        await self.charts.aclose()
        await self.backtests.aclose()
