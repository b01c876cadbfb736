"""Backtests: the candle store that collects the scanner market's candles, and the service
that replays a trader's strategy over them in worker processes."""

from __future__ import annotations

from dataclasses import dataclass

from bot.wiring.core import Shared
from db.repositories.candles import CandleRepository
from services.backtest import BacktestService
from services.candles import CandleStore, MarketCandles, trading
from services.exchanges import ExchangeGateway
from services.market_registry import MarketRegistry
from services.scanner import Scanner


@dataclass(slots=True, frozen=True)
class Backtests:
    candles: CandleStore
    backtests: BacktestService


def build_backtests(
    s: Shared, exchanges: ExchangeGateway, registry: MarketRegistry, scanner: Scanner
) -> Backtests:
    candles = CandleStore(
        CandleRepository(s.store),
        trading(registry),
        MarketCandles(exchanges, s.clock),
        s.clock,
        retention_days=s.settings.candle_retention_days,
    )
    backtests = BacktestService(
        candles,
        registry,
        scanner,
        s.clock,
        str(s.store.path),
        max_running=s.settings.backtest_workers,
        slippage_pct=s.settings.backtest_slippage_pct,
    )
    return Backtests(candles=candles, backtests=backtests)
