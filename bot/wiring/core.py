"""What every area is built over: the store's repositories, each opened once, and the
services every area shares (outbox, audit, the unit of work, analytics)."""

from __future__ import annotations

from dataclasses import dataclass

from core.cache import CacheLayer
from core.clock import Clock
from core.config import Settings
from core.crypto import SecretBox
from core.metrics import Metrics
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
from db.repositories.price_alerts import PriceAlertRepository
from db.repositories.promos import PromoRepository
from db.repositories.reports import ReportRepository
from db.repositories.signals import SignalRepository
from db.repositories.strategy import StrategyRepository
from db.repositories.trades import TradeRepository
from db.repositories.users import UserRepository
from db.store import Store
from services.analytics import AnalyticsService
from services.audit import AuditService
from services.caching import define_trader_caches
from services.outbox import Outbox
from services.unit_of_work import UnitOfWork


@dataclass(slots=True, frozen=True)
class Repositories:
    """One of each repository over the bot's store."""

    analytics: AnalyticsRepository
    app_state: AppStateRepository
    audit: AuditRepository
    broadcasts: BroadcastRepository
    credentials: CredentialRepository
    executions: ExecutionRepository
    intents: IntentRepository
    licenses: LicenseRepository
    markets: MarketRepository
    notifications: NotificationRepository
    paper: PaperRepository
    payments: PaymentRepository
    pending: PendingOrderRepository
    positions: PositionRepository
    price_alerts: PriceAlertRepository
    promos: PromoRepository
    reports: ReportRepository
    signals: SignalRepository
    strategy: StrategyRepository
    trades: TradeRepository
    users: UserRepository

    @classmethod
    def over(cls, store: Store) -> Repositories:
        return cls(
            analytics=AnalyticsRepository(store),
            app_state=AppStateRepository(store),
            audit=AuditRepository(store),
            broadcasts=BroadcastRepository(store),
            credentials=CredentialRepository(store),
            executions=ExecutionRepository(store),
            intents=IntentRepository(store),
            licenses=LicenseRepository(store),
            markets=MarketRepository(store),
            notifications=NotificationRepository(store),
            paper=PaperRepository(store),
            payments=PaymentRepository(store),
            pending=PendingOrderRepository(store),
            positions=PositionRepository(store),
            price_alerts=PriceAlertRepository(store),
            promos=PromoRepository(store),
            reports=ReportRepository(store),
            signals=SignalRepository(store),
            strategy=StrategyRepository(store),
            trades=TradeRepository(store),
            users=UserRepository(store),
        )


@dataclass(slots=True, frozen=True)
class Shared:
    """The infrastructure and the cross-cutting services every area is built with."""

    settings: Settings
    store: Store
    clock: Clock
    metrics: Metrics
    cache: CacheLayer
    secrets: SecretBox
    repos: Repositories
    outbox: Outbox
    audit: AuditService
    analytics: AnalyticsService
    work: UnitOfWork


def build_core(
    settings: Settings,
    store: Store,
    clock: Clock,
    metrics: Metrics,
    cache: CacheLayer,
    secrets: SecretBox,
) -> Shared:
    define_trader_caches(cache)
    repos = Repositories.over(store)
    outbox = Outbox(repos.notifications, clock)
    analytics = AnalyticsService(repos.analytics, cache, clock)
    return Shared(
        settings=settings,
        store=store,
        clock=clock,
        metrics=metrics,
        cache=cache,
        secrets=secrets,
        repos=repos,
        outbox=outbox,
        audit=AuditService(repos.audit, clock),
        analytics=analytics,
        work=UnitOfWork(store, outbox, on_change=[analytics.invalidate]),
    )
