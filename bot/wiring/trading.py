"""The trading side: exchanges and accounts, orders and their outcomes, positions,
auto-trading and the jobs that keep the bot's view of every account true."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.wiring.core import Shared
from core.exchange.models import Balance
from core.exchange.venues import PAPER
from core.paper.events import EmittingLedger, PaperEvents
from core.paper.synthetic import SyntheticMarket
from db.repositories.fills import FillRepository
from services.accounts import AccountService
from services.autotrade import AutoTrader
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.fill_ledger import FillLedger
from services.fill_ledger_catchup import FillCatchUp
from services.history import HistoryService
from services.licenses import LicenseService
from services.limit_orders import RestingOrders
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
    paper_events: PaperEvents
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
    fill_ledger: FillLedger
    fill_catchup: FillCatchUp
    order_expiry: OrderExpiry
    settlement: OrderSettlement


async def build_trading(s: Shared, licenses: LicenseService) -> Trading:
    repos, clock, work, settings = s.repos, s.clock, s.work, s.settings
    paper_events = PaperEvents()  # what paper mutations change, for the paper streams
    exchanges = ExchangeGateway(
        market_source=settings.market_source,
        paper_market=await synthetic_market(s),
        paper_ledger=EmittingLedger(repos.paper, paper_events),
        credentials=repos.credentials,
        secrets=s.secrets,
        clock=clock,
        metrics=s.metrics,
        cache=s.cache,
        exchange_urls=settings.exchange_urls,
        breaker=settings.breaker,
    )
    # Positions' marks come from the tickers the stream manager reprices them with.
    paper_events.bind(paper_balance(exchanges), lambda symbol: None)
    executor = OrderExecutor(repos.intents, clock)
    accounts = AccountService(s.store, exchanges, s.secrets, s.cache, clock, settings.exchanges)
    market = MarketService(exchanges)
    strategy = StrategyService(repos.strategy, s.cache, clock)
    history = HistoryService(repos.trades, on_recorded=s.analytics.invalidate)
    fills = FillRepository(s.store)
    ledger = FillLedger(
        work=work,
        fills=fills,
        trades=repos.trades,
        intents=repos.intents,
        positions=repos.positions,
        users=repos.users,
        on_fills=lambda account: exchanges.account(*account).forget(),
        # A resting entry that filled later: its intent settles, its ladder and trail follow.
        when_orders_fill=executor.settle_fills,
    )
    catch_up = FillCatchUp(
        ledger=ledger,
        fills=fills,
        positions=repos.positions,
        intents=repos.intents,
        gateway=exchanges,
        clock=clock,
    )
    s.metrics.watch_gauges(
        "tradewind_fill_ledger", "Fill ledger catch-up totals since start", catch_up.gauges
    )
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
        resting=RestingOrders(repos.pending, strategy, clock),
    )
    return Trading(
        exchanges=exchanges,
        paper_events=paper_events,
        # The paper engine's fills go through the fill ledger like any exchange's.
        paper=PaperSettlement(exchanges, catch_up),
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
            catch_up=catch_up,
        ),
        fill_ledger=ledger,
        fill_catchup=catch_up,
        order_expiry=OrderExpiry(
            work=work,
            pending=repos.pending,
            intents=repos.intents,
            users=repos.users,
            gateway=exchanges,
            clock=clock,
            when_part_filled=executor.settle_cancelled,
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


def paper_balance(gateway: ExchangeGateway) -> Callable[[int], Awaitable[Balance]]:
    async def read(user_id: int) -> Balance:
        async with gateway.lease(user_id, PAPER, PAPER) as client:
            return await client.fetch_balance()

    return read
