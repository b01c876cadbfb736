"""Builds the services of one running bot: the shared core first, then each area over it.

`core.py` opens every repository once and the pieces every area shares (outbox, audit,
unit of work, analytics); `trading.py`, `market.py` and `business.py` build their areas;
this module puts them together into the `Services` that handlers reach.
"""

from __future__ import annotations

from bot.wiring.backtests import build_backtests
from bot.wiring.business import build_business
from bot.wiring.core import build_core
from bot.wiring.manage import build_management
from bot.wiring.market import build_market, build_price_alerts
from bot.wiring.reports import build_reports
from bot.wiring.streams import build_streams, build_ticker_stream
from bot.wiring.trading import build_trading
from core.cache import CacheLayer
from core.clock import Clock
from core.config import Settings
from core.crypto import SecretBox
from core.metrics import Metrics
from db.store import Store
from services.alerts import AlertThrottle
from services.container import Services
from services.keys import KeyHealthService
from services.monitoring import MonitoringService
from services.warming import CacheWarmer

__all__ = ["build_services"]


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
    shared = build_core(settings, store, clock, metrics, cache, secrets)
    business = build_business(shared, admin_ids)
    trading = await build_trading(shared, business.licenses)
    market = build_market(shared, trading.exchanges)
    reports = build_reports(shared, trading.market, trading.exchanges)
    manage = build_management(shared, trading)
    backtests = build_backtests(shared, trading.exchanges, market.registry, market.scanner)
    t, b = trading, business
    return Services(
        clock=clock,
        metrics=metrics,
        cache=cache,
        secrets=secrets,
        access=b.access,
        users=b.users,
        licenses=b.licenses,
        monitoring=MonitoringService(metrics, cache, markets=market.registry.size),
        audit=shared.audit,
        alerts=AlertThrottle(clock),
        exchanges=t.exchanges,
        paper=t.paper,
        executor=t.executor,
        accounts=t.accounts,
        market=t.market,
        strategy=t.strategy,
        history=t.history,
        trading=t.trading,
        portfolio=t.portfolio,
        warmer=CacheWarmer(t.portfolio, b.users, cache, clock, budget=t.exchanges.request_budget),
        outbox=shared.outbox,
        notify=b.notify,
        promos=b.promos,
        payments=b.payments,
        registry=market.registry,
        signals=market.signals,
        scanner=market.scanner,
        analytics=shared.analytics,
        user_admin=b.user_admin,
        broadcasts=b.broadcasts,
        autotrader=t.autotrader,
        position_sync=t.position_sync,
        fill_ledger=t.fill_ledger,
        fill_catchup=t.fill_catchup,
        order_expiry=t.order_expiry,
        settlement=t.settlement,
        price_alerts=build_price_alerts(shared, t.market, b.licenses),
        reports=reports.reports,
        scheduled_reports=reports.scheduled_reports,
        charts=reports.charts,
        equity=reports.equity,
        key_health=KeyHealthService(t.exchanges, t.accounts, cache),
        position_management=manage.positions,
        trailing=manage.trailing,
        ladders=manage.ladders,
        candles=backtests.candles,
        backtests=backtests.backtests,
        streams=await build_streams(shared, t),
        ticker_stream=build_ticker_stream(shared, t),
    )
