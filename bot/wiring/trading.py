"""The trading side: exchanges and accounts, orders and their outcomes, positions,
auto-trading and the jobs that keep the bot's view of every account true."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.wiring.core import Shared
from core.paper.synthetic import SyntheticMarket
from services.accounts import AccountService
from services.autotrade import AutoTrader
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.history import HistoryService
from services.licenses import LicenseService
from services.market import MarketService
from services.order_expiry import OrderExpiry
from services.paper_settlement import PaperSettlement
from services.portfolio import PortfolioService
from services.position_sync import PositionSync
from services.settlement import OrderSettlement
from services.strategy import StrategyService
from services.trading import TradingService

GENESIS_KEY = "synthetic_market_genesis"


@dataclass(slots=True, frozen=True)
class Trading:
    exchanges: ExchangeGateway
    paper: PaperSettlement
    executor: OrderExecutor
    accounts: AccountService
    market: MarketService
    strategy: StrategyService
    history: HistoryService
    trading: TradingService
    portfolio: PortfolioService
    autotrader: AutoTrader
    position_sync: PositionSync
    order_expiry: OrderExpiry
    settlement: OrderSettlement


async def build_trading(s: Shared, licenses: LicenseService) -> Trading:
    repos, clock, work, settings = s.repos, s.clock, s.work, s.settings
    exchanges = ExchangeGateway(
        market_source=settings.market_source,
        paper_market=await synthetic_market(s),
        paper_ledger=repos.paper,
        credentials=repos.credentials,
        secrets=s.secrets,
        clock=clock,
        metrics=s.metrics,
        cache=s.cache,
        exchange_urls=settings.exchange_urls,
    )
    executor = OrderExecutor(repos.intents, clock)
    accounts = AccountService(s.store, exchanges, s.secrets, s.cache, clock, settings.exchanges)
    market = MarketService(exchanges, s.cache)
    strategy = StrategyService(repos.strategy, s.cache, clock)
    history = HistoryService(repos.trades, on_recorded=s.analytics.invalidate)
    trading = TradingService(
        intents=repos.intents,
        executor=executor,
        accounts=accounts,
        market=market,
        strategy=strategy,
        licenses=licenses,
        gateway=exchanges,
        history=history,
        clock=clock,
    )
    return Trading(
        exchanges=exchanges,
        paper=PaperSettlement(exchanges, history),
        executor=executor,
        accounts=accounts,
        market=market,
        strategy=strategy,
        history=history,
        trading=trading,
        portfolio=PortfolioService(exchanges, accounts, market),
        autotrader=AutoTrader(
            work=work,
            executions=repos.executions,
            intents=repos.intents,
            positions=repos.positions,
            executor=executor,
            market=market,
            gateway=exchanges,
            clock=clock,
            signals=repos.signals,
            audit=s.audit,
        ),
        position_sync=PositionSync(
            work=work,
            positions=repos.positions,
            pending=repos.pending,
            trades=repos.trades,
            executions=repos.executions,
            intents=repos.intents,
            users=repos.users,
            strategy=strategy,
            market=market,
            gateway=exchanges,
            clock=clock,
        ),
        order_expiry=OrderExpiry(
            work=work,
            pending=repos.pending,
            intents=repos.intents,
            users=repos.users,
            gateway=exchanges,
            clock=clock,
        ),
        settlement=OrderSettlement(
            executor=executor, gateway=exchanges, users=repos.users, work=work, trading=trading
        ),
    )


async def synthetic_market(s: Shared) -> SyntheticMarket:
    """The synthetic market, begun at the same moment on every start of this installation,
    so symbols it listed yesterday are still listed after a restart."""
    now = s.clock.now()
    stored = await s.repos.app_state.get_or_create(GENESIS_KEY, now.isoformat(), now)
    return SyntheticMarket(clock=s.clock, genesis=datetime.fromisoformat(stored))
