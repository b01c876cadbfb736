"""The backtest's arithmetic on a series built by hand: one breakout, its signal, its trade
and the figures, worked out on paper below."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.backtest_engine import (
    END,
    EXIT_NAMES,
    STOP,
    TAKE,
    Candidates,
    ScanRules,
    Strategy,
    candidates,
    replay,
)
from services.backtest_stats import summarise
from services.features import Bars

T = 120
BREAK = 60  # the breakout bar: close 100 → 101 on volume ×6
RULES = ScanRules()  # min score 0.6, 3 per scan, 1 h cooldown, 48-bar window, 5-minute bars
NO_COST = Strategy(fee_rate=0.0, slippage_pct=0.0, min_score=0.6)
TIMES = np.arange(T, dtype=np.int64) * 300


def series(after: list[float], up: bool = True) -> Bars:
    """Flat at 100 (every bar 100 ± 0.1, volume 100) until a one-bar move of 1 % at BREAK on
    six times the volume (the bar before it as well), then the closes in `after`, each bar
    ± 0.1 around its close."""
    sign = 1 if up else -1
    close = np.full(T, 100.0)
    close[BREAK:] = 100 + sign
    close[BREAK + 1 : BREAK + 1 + len(after)] = after
    close[BREAK + 1 + len(after) :] = after[-1] if after else 100 + sign
    high, low = close + 0.1, close - 0.1
    volume = np.full(T, 100.0)
    volume[BREAK - 1 : BREAK + 1] = 600.0
    return Bars(high[None, :], low[None, :], close[None, :], volume[None, :])


Signal = tuple[int, int, bool, float]
Trade = tuple[int, int, int, float]


def run(
    bars: Bars, strategy: Strategy, symbols: tuple[str, ...] = ("X",)
) -> tuple[list[Signal], list[Trade]]:
    found = candidates(bars, symbols, 0, np.full(len(symbols), np.nan), TIMES, RULES, strategy)
    played = replay(found, RULES, strategy)
    return played.signals, list(
        zip(
            played.trades.entry_bar,
            played.trades.exit_bar,
            played.trades.kind,
            played.trades.pnl,
            strict=True,
        )
    )


def test_a_breakout_is_one_long_signal_and_a_take_profit_worth_three_percent_of_the_size() -> None:
    # Score at BREAK: volume 600 vs 100 → ratio 6 ≥ 5: 0.40; move 1 % over an ATR of 0.2
    # (0.2 % of 100): 5 ATRs ≥ 4: 0.35; 101 above the 4 h high 100.1: 0.25 → 1.0.
    # The target is 101 × 1.03 = 104.03, reached at bar BREAK + 10.
    bars = series([101.0] * 9 + [104.5, 101.0])
    signals, trades = run(bars, NO_COST)
    assert [(bar, up, score) for bar, _, up, score in signals] == [(BREAK, True, 1.0)]
    ((entry, exit_bar, kind, pnl),) = trades
    assert (entry, exit_bar, kind) == (BREAK, BREAK + 10, TAKE)
    assert pnl == pytest.approx(50 * 0.03)  # 50 USDT at 101 → 104.03, no costs


def test_the_next_bars_still_score_but_the_cooldown_keeps_them_quiet() -> None:
    bars = series([101.0] * 40)
    found = candidates(bars, ("X",), 0, np.array([np.nan]), TIMES, RULES, NO_COST)
    assert found.bar.tolist()[:2] == [BREAK, BREAK + 1]  # the bar after scores 0.88 too
    assert len(replay(found, RULES, NO_COST).signals) == 1


def test_a_stop_loss_pays_fees_and_slippage_on_both_legs() -> None:
    # A short from 99 (a 1 % drop), stop 1.5 % above: 100.485, touched by a wick to 100.6.
    costly = Strategy(fee_rate=0.001, slippage_pct=0.1, min_score=0.6)
    bars = series([99.0] * 10, up=False)
    bars.high[0, BREAK + 5] = 100.6
    signals, trades = run(bars, costly)
    assert [(bar, up) for bar, _, up, _ in signals] == [(BREAK, False)]
    ((_, exit_bar, kind, pnl),) = trades
    assert (exit_bar, kind) == (BREAK + 5, STOP)
    entry, stop = 99 * (1 - 0.001), 99 * 1.015 * (1 + 0.001)  # a short sells lower, buys higher
    qty = 50 / entry
    assert pnl == pytest.approx((entry - stop) * qty - 0.001 * qty * (entry + stop))


def test_a_trade_never_closed_ends_at_the_last_close() -> None:
    _, trades = run(series([101.5] * 10), NO_COST)
    ((_, exit_bar, kind, pnl),) = trades
    assert (exit_bar, kind) == (T - 1, END)
    assert pnl == pytest.approx(50 / 101 * 0.5)


def test_max_positions_deny_list_and_min_score_are_the_traders() -> None:
    one = series([101.0] * 9 + [104.5, 101.0])
    two = Bars(*(np.vstack([a, a]) for a in (one.high, one.low, one.close, one.volume)))
    both = ("A", "B")
    signals, trades = run(
        two, Strategy(fee_rate=0, slippage_pct=0, min_score=0.6, max_positions=1), both
    )
    assert len(signals) == 2 and len(trades) == 1  # the scanner publishes both; one slot
    _, trades = run(
        two, Strategy(fee_rate=0, slippage_pct=0, min_score=0.6, deny=frozenset({"A"})), both
    )
    assert len(trades) == 1
    _, trades = run(
        two, Strategy(fee_rate=0, slippage_pct=0, min_score=0.6, allow=frozenset({"C"})), both
    )
    assert trades == []


def test_an_account_takes_only_the_positions_its_margin_pays_for() -> None:
    # 50 USDT × 5 holds 10 USDT of margin: 25 USDT pays for two positions, not a third.
    one = series([101.0] * 9 + [104.5, 101.0])
    three = Bars(*(np.vstack([a, a, a]) for a in (one.high, one.low, one.close, one.volume)))
    small = Strategy(fee_rate=0, slippage_pct=0, min_score=0.6, capital=25.0)
    found = candidates(three, ("A", "B", "C"), 0, np.full(3, np.nan), TIMES, RULES, small)
    played = replay(found, RULES, small)
    assert len(played.signals) == 3 and len(played.trades.pnl) == 2
    assert played.trades.unfunded == 1
    result = summarise(played, ("A", "B", "C"), TIMES.tolist(), 0, 300, small, EXIT_NAMES)
    assert result.unfunded == 1
    roomy = Strategy(fee_rate=0, slippage_pct=0, min_score=0.6, capital=30.0)
    assert replay(found, RULES, roomy).trades.unfunded == 0


def test_the_figures_of_one_winner_and_one_loser() -> None:
    one = series([101.0] * 9 + [104.5, 101.0])
    loser = series([101.0] * 10)
    loser.low[0, BREAK + 5] = 99.3  # a wick through the stop of a long from 101: 99.485
    bars = Bars(*(np.vstack([a, b]) for a, b in zip(
        (one.high, one.low, one.close, one.volume),
        (loser.high, loser.low, loser.close, loser.volume), strict=True)))  # fmt: skip
    found = candidates(bars, ("W", "L"), 0, np.full(2, np.nan), TIMES, RULES, NO_COST)
    played = replay(found, RULES, NO_COST)
    result = summarise(
        played,
        ("W", "L"),
        TIMES.tolist(),
        RULES.window - 1,
        300,
        NO_COST,
        ("take-profit", "stop-loss", "liq", "end"),
    )
    assert (result.trades, result.wins, result.signals) == (2, 1, 2)
    assert result.pnl == pytest.approx(1.5 - 0.75)
    assert result.profit_factor == pytest.approx(2.0)
    # The loser closes first (bar 65): equity 10,000 → 9,999.25, the drawdown's bottom.
    assert result.max_drawdown == pytest.approx(0.75)
    assert result.best == (("W", 1.5),) and result.worst == (("L", -0.75),)
    assert dict(result.exits) == {"take-profit": 1, "stop-loss": 1}
    assert result.curve[-1] == pytest.approx(0.75) and math.isfinite(result.win_rate)


def test_nothing_scores_on_a_flat_market() -> None:
    flat = Bars(*(np.full((3, T), v) for v in (100.1, 99.9, 100.0, 100.0)))
    found = candidates(flat, ("A", "B", "C"), 0, np.full(3, np.nan), TIMES, RULES, NO_COST)
    assert found.bar.size == 0
    assert replay(Candidates.concat([found]), RULES, NO_COST).signals == []
