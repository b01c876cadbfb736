"""The /backtest reply in words: why a run has no trade, and when margin ran out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from db.repositories.strategy import StrategyRecord
from handlers.backtest import summary
from services.backtest_stats import BacktestResult

EMPTY = BacktestResult(
    symbols=60, bars=8640, start=datetime(2026, 11, 5, tzinfo=UTC),
    end=datetime(2026, 12, 5, tzinfo=UTC), signals=0, trades=0, wins=0, pnl=0.0, fees=0.0,
    max_drawdown=0.0, max_drawdown_pct=0.0, profit_factor=None, sharpe=None, best=(), worst=(),
    exits=(), days=(), curve=(), capital=10_000.0,
)  # fmt: skip
SETTINGS = StrategyRecord(42)


def test_no_signal_at_all_is_not_blamed_on_the_settings() -> None:
    text = summary("Backtest", EMPTY, SETTINGS)
    assert "No signal: the scanner's rules find no breakout in these candles." in text
    assert "your settings" not in text


def test_signals_the_settings_refused_are_counted() -> None:
    text = summary("Backtest", replace(EMPTY, signals=1234), SETTINGS)
    assert "No trade: none of the 1,234 signals passed your settings" in text


def test_signals_the_margin_could_not_pay_for_are_told() -> None:
    spent = replace(
        EMPTY, signals=900, trades=500, wins=20, pnl=-9990.5, fees=80.0, max_drawdown=9990.5,
        max_drawdown_pct=99.9, profit_factor=0.05, exits=(("stop-loss", 480),), unfunded=400,
    )  # fmt: skip
    text = summary("Backtest", spent, SETTINGS)
    assert "Max drawdown: 9,990.50 USDT (99.9 % from its peak; start 10,000 USDT)" in text
    assert "Not taken for want of margin: 400 signals" in text
    assert "Not taken" not in summary("Backtest", replace(spent, unfunded=0), SETTINGS)
