"""A backtest's trades as the figures a trader reads: win rate, PnL, drawdown, profit factor,
Sharpe, best and worst symbols, and the realised equity per day for the chart."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from services.backtest_engine import Replay, Strategy

DAY_S = 86_400


@dataclass(slots=True, frozen=True)
class BacktestResult:
    """Everything the reply and the chart show (plain values: it crosses a process)."""

    symbols: int
    bars: int
    start: datetime
    end: datetime
    signals: int
    trades: int
    wins: int
    pnl: float
    fees: float
    max_drawdown: float  # USDT, from a peak of realised equity
    max_drawdown_pct: float  # of that peak
    profit_factor: float | None  # None: no losing trade
    sharpe: float | None  # of daily realised returns on the capital, annualised (√365)
    best: tuple[tuple[str, float], ...]
    worst: tuple[tuple[str, float], ...]
    exits: tuple[tuple[str, int], ...]  # by kind: take-profit 12, stop-loss 9, ...
    days: tuple[date, ...]  # realised PnL, cumulative, at the end of each day
    curve: tuple[float, ...]
    capital: float
    unfunded: int = 0  # signals not taken: the free margin could not pay for them

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0


def summarise(
    replay: Replay,
    symbols: tuple[str, ...],
    bar_times: list[int],
    first_bar: int,
    bar_s: int,
    strategy: Strategy,
    exit_names: tuple[str, ...],
) -> BacktestResult:
    """The figures of `replay` over bars `first_bar`.. of `bar_times` (open times, seconds)."""
    t = replay.trades
    pnl = np.asarray(t.pnl, dtype=np.float64)
    exit_at = np.asarray([bar_times[b] + bar_s for b in t.exit_bar], dtype=np.int64)
    order = np.argsort(exit_at, kind="stable")
    equity = strategy.capital + np.cumsum(pnl[order])
    peaks = np.maximum.accumulate(np.concatenate([[strategy.capital], equity]))[1:]
    drops = peaks - equity
    worst = int(np.argmax(drops)) if drops.size else 0
    start = bar_times[first_bar] if first_bar < len(bar_times) else bar_times[-1]
    end = bar_times[-1] + bar_s
    days, curve = _daily(exit_at[order], pnl[order], start, end)
    by_symbol: dict[str, float] = defaultdict(float)
    for row, value in zip(t.row, t.pnl, strict=True):
        by_symbol[symbols[row]] += value
    ranked = sorted(by_symbol.items(), key=lambda kv: kv[1], reverse=True)
    gains, losses = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    kinds: dict[str, int] = defaultdict(int)
    for kind in t.kind:
        kinds[exit_names[kind]] += 1
    return BacktestResult(
        symbols=len(symbols),
        bars=len(bar_times) - first_bar,
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(end, UTC),
        signals=len(replay.signals),
        trades=int(pnl.size),
        wins=int((pnl > 0).sum()),
        pnl=float(pnl.sum()),
        fees=float(sum(t.fees)),
        max_drawdown=float(drops[worst]) if drops.size else 0.0,
        max_drawdown_pct=float(drops[worst] / peaks[worst] * 100) if drops.size else 0.0,
        profit_factor=gains / losses if losses > 0 else None,
        sharpe=_sharpe(np.diff(np.concatenate([[0.0], curve])) / strategy.capital),
        best=tuple((s, round(v, 2)) for s, v in ranked[:3] if v > 0),
        worst=tuple((s, round(v, 2)) for s, v in ranked[::-1][:3] if v < 0),
        exits=tuple(sorted(kinds.items(), key=lambda kv: -kv[1])),
        days=tuple(datetime.fromtimestamp(d, UTC).date() for d in days),
        curve=tuple(float(v) for v in curve),
        capital=strategy.capital,
        unfunded=t.unfunded,
    )


def _daily(
    exit_at: np.ndarray, pnl: np.ndarray, start: int, end: int
) -> tuple[list[int], np.ndarray]:
    """Day starts from `start` to `end` and the cumulative realised PnL at each day's end."""
    first, last = start - start % DAY_S, (end - 1) - (end - 1) % DAY_S
    days = list(range(first, last + 1, DAY_S))
    slot = np.clip((exit_at - first) // DAY_S, 0, len(days) - 1)
    per_day = (
        np.bincount(slot, weights=pnl, minlength=len(days)) if pnl.size else np.zeros(len(days))
    )
    return days, np.cumsum(per_day)


def _sharpe(returns: np.ndarray) -> float | None:
    if returns.size < 2:
        return None
    spread = float(returns.std(ddof=1))
    if not math.isfinite(spread) or spread == 0:
        return None
    return float(returns.mean() / spread * math.sqrt(365))
