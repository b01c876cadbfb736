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
from db.repositories.app_state import AppStateRepository
from db.repositories.audit import AuditRepository
from db.repositories.credentials import CredentialRepository
from db.repositories.intents import IntentRepository
from db.repositories.licenses import LicenseRepository
from db.repositories.paper import PaperRepository
from db.repositories.strategy import StrategyRepository
from db.repositories.trades import TradeRepository
from db.repositories.users import UserRepository
from db.store import Store
from services.access import AccessPolicy
from services.accounts import AccountService
from services.alerts import AlertThrottle
from services.audit import AuditService
from services.caching import define_trader_caches
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.history import HistoryService
from services.licenses import LicenseService
from services.market import MarketService
from services.monitoring import MonitoringService
from services.portfolio import PortfolioService
from services.strategy import StrategyService
from services.trading import TradingService
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

    async def aclose(self) -> None:
        """Release what services hold open (pending reloads, exchange clients and sessions)."""
        await self.warmer.aclose()
        await self.exchanges.aclose()


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
    licenses = LicenseService(LicenseRepository(store), clock)
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
    history = HistoryService(TradeRepository(store))
    users = UserService(UserRepository(store), licenses, cache, clock)
    portfolio = PortfolioService(exchanges, accounts, cache, market)
    return Services(
        clock=clock,
        metrics=metrics,
        cache=cache,
        secrets=secrets,
        access=AccessPolicy(admin_ids),
        users=users,
        licenses=licenses,
        monitoring=MonitoringService(metrics, cache),
        audit=AuditService(AuditRepository(store), clock),
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
        warmer=CacheWarmer(portfolio, users, cache, clock),
    )


async def _synthetic_market(store: Store, clock: Clock) -> SyntheticMarket:
    """The synthetic market, begun at the same moment on every start of this installation,
    so symbols it listed yesterday are still listed after a restart."""
    now = clock.now()
    stored = await AppStateRepository(store).get_or_create(GENESIS_KEY, now.isoformat(), now)
    return SyntheticMarket(clock=clock, genesis=datetime.fromisoformat(stored))
