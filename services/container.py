"""The services of one running bot, built once at start-up and reached by every handler."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.cache import CacheLayer
from core.clock import Clock
from core.config import Settings
from core.crypto import SecretBox
from core.metrics import Metrics
from core.paper.synthetic import SyntheticMarket
from db.repositories.analytics import AnalyticsRepository
from db.repositories.app_state import AppStateRepository
from db.repositories.audit import AuditRepository
from db.repositories.broadcasts import BroadcastRepository
from db.repositories.credentials import CredentialRepository
from db.repositories.executions import ExecutionRepository
from db.repositories.intents import IntentRepository
from db.repositories.licenses import LicenseRepository
from db.repositories.markets import MarketRepository
from db.repositories.notifications import NotificationRepository
from db.repositories.paper import PaperRepository
from db.repositories.payments import PaymentRepository
from db.repositories.pending_orders import PendingOrderRepository
from db.repositories.positions import PositionRepository
from db.repositories.promos import PromoRepository
from db.repositories.reports import ReportRepository
from db.repositories.signals import SignalRepository
from db.repositories.strategy import StrategyRepository
from db.repositories.trades import TradeRepository
from db.repositories.users import UserRepository
from db.store import Store
from services.access import AccessPolicy
from services.accounts import AccountService
from services.alerts import AlertThrottle
from services.analytics import AnalyticsService
from services.audit import AuditService
from services.autotrade import AutoTrader
from services.broadcasts import BroadcastService
from services.caching import define_trader_caches
from services.charts import ChartService
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.history import HistoryService
from services.licenses import LicenseService
from services.market import MarketService
from services.market_registry import MarketRegistry
from services.monitoring import MonitoringService
from services.notify_settings import NotificationSettings
from services.order_expiry import OrderExpiry
from services.outbox import Outbox
from services.payments import PaymentService
from services.plans import PlanCatalog
from services.portfolio import PortfolioService
from services.position_sync import PositionSync
from services.promos import PromoService
from services.reports import ReportService
from services.scanner import Scanner
from services.scheduled_reports import ScheduledReports
from services.settlement import OrderSettlement
from services.signals import SignalService
from services.strategy import StrategyService
from services.trading import TradingService
from services.unit_of_work import UnitOfWork
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
    order_expiry: OrderExpiry
    settlement: OrderSettlement
    reports: ReportService
    scheduled_reports: ScheduledReports
    charts: ChartService

    async def aclose(self) -> None:
        """Release what services hold open (pending reloads, exchange clients and sessions)."""
        await self.warmer.aclose()
        await self.autotrader.aclose()
        await self.exchanges.aclose()
        await self.charts.aclose()


async def build_services(
    settings: Settings,
    store: Store,
    clock: Clock,
    metrics: Metrics,
    cache: CacheLayer,
    secrets: SecretBox,
    admin_ids: frozenset[int],
) -> Services:
    """Wire every service over one store, cache layer and clock."""
    define_trader_caches(cache)
    outbox = Outbox(NotificationRepository(store), clock)
    audit = AuditService(AuditRepository(store), clock)
    plans = PlanCatalog(settings.plans)
    analytics = AnalyticsService(AnalyticsRepository(store), cache, clock)
    work = UnitOfWork(store, outbox, on_change=[analytics.invalidate])
    licenses = LicenseService(
        LicenseRepository(store),
        clock,
        users=UserRepository(store),
        audit=audit,
        work=work,
        plans=plans,
    )
    exchanges = ExchangeGateway(
        market_source=settings.market_source,
        paper_market=await _synthetic_market(store, clock),
        paper_ledger=PaperRepository(store),
        credentials=CredentialRepository(store),
        secrets=secrets,
        clock=clock,
        metrics=metrics,
        exchange_urls=settings.exchange_urls,
    )
    executor = OrderExecutor(IntentRepository(store), clock)
    accounts = AccountService(store, exchanges, secrets, cache, clock, settings.exchanges)
    market = MarketService(exchanges, cache)
    strategy = StrategyService(StrategyRepository(store), cache, clock)
    history = HistoryService(TradeRepository(store), on_recorded=analytics.invalidate)
    users = UserService(UserRepository(store), licenses, cache, clock)
    portfolio = PortfolioService(exchanges, accounts, cache, market)
    registry = MarketRegistry(
        exchanges, MarketRepository(store), clock, metrics, interval_s=settings.sync_interval
    )
    signals = SignalService(SignalRepository(store), work, clock)
    access = AccessPolicy(admin_ids)
    return Services(
        clock=clock,
        metrics=metrics,
        cache=cache,
        secrets=secrets,
        access=access,
        users=users,
        licenses=licenses,
        monitoring=MonitoringService(metrics, cache, markets=registry.size),
        audit=audit,
        alerts=AlertThrottle(clock),
        exchanges=exchanges,
        executor=executor,
        accounts=accounts,
        market=market,
        strategy=strategy,
        history=history,
        trading=TradingService(
            intents=IntentRepository(store),
            executor=executor,
            accounts=accounts,
            market=market,
            strategy=strategy,
            licenses=licenses,
            gateway=exchanges,
            history=history,
            cache=cache,
            clock=clock,
        ),
        portfolio=portfolio,
        warmer=CacheWarmer(portfolio, users, cache, clock, budget=exchanges.request_budget),
        outbox=outbox,
        notify=NotificationSettings(UserRepository(store)),
        promos=PromoService(
            PromoRepository(store), LicenseRepository(store), audit, work, plans, clock
        ),
        payments=PaymentService(
            PaymentRepository(store), LicenseRepository(store), audit, work, plans, clock
        ),
        registry=registry,
        signals=signals,
        scanner=Scanner(exchanges, registry, signals, clock, interval_s=settings.scan_interval),
        analytics=analytics,
        user_admin=UserAdminService(
            UserRepository(store), AnalyticsRepository(store), licenses, audit, cache, access
        ),
        broadcasts=BroadcastService(BroadcastRepository(store), work, audit, clock),
        autotrader=AutoTrader(
            work=work,
            executions=ExecutionRepository(store),
            intents=IntentRepository(store),
            positions=PositionRepository(store),
            executor=executor,
            market=market,
            gateway=exchanges,
            cache=cache,
            clock=clock,
            signals=SignalRepository(store),
            audit=audit,
        ),
        position_sync=PositionSync(
            work=work,
            positions=PositionRepository(store),
            pending=PendingOrderRepository(store),
            trades=TradeRepository(store),
            executions=ExecutionRepository(store),
            intents=IntentRepository(store),
            users=UserRepository(store),
            strategy=strategy,
            market=market,
            gateway=exchanges,
            cache=cache,
            clock=clock,
        ),
        order_expiry=OrderExpiry(
            work=work,
            pending=PendingOrderRepository(store),
            intents=IntentRepository(store),
            users=UserRepository(store),
            gateway=exchanges,
            cache=cache,
            clock=clock,
        ),
        settlement=OrderSettlement(
            executor=executor,
            gateway=exchanges,
            users=UserRepository(store),
            work=work,
            cache=cache,
        ),
        reports=ReportService(TradeRepository(store)),
        charts=ChartService(TradeRepository(store)),
        scheduled_reports=ScheduledReports(
            ReportRepository(store), TradeRepository(store), work, clock
        ),
    )


async def _synthetic_market(store: Store, clock: Clock) -> SyntheticMarket:
    """The synthetic market, begun at the same moment on every start of this installation,
    so symbols it listed yesterday are still listed after a restart."""
    now = clock.now()
    stored = await AppStateRepository(store).get_or_create(GENESIS_KEY, now.isoformat(), now)
    return SyntheticMarket(clock=clock, genesis=datetime.fromisoformat(stored))
