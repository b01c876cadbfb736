"""The backtest's arithmetic: the scanner's rule over stored candles, then the trader's
strategy over the signals it would have published, with fees and slippage.

Three steps, none with a Python loop per candle per symbol:
1. `candidates` (per block of symbols): `features.judge` — the scanner's own confirmation
   rule — at every bar of every symbol; the bars scoring at least the scanner's minimum are
   candidates, and those the trader would take get their exit found (`exits`: the first
   later bar touching the stop or the target, found for all of them at once a day of bars at a
   time).
2. `replay` (over the candidates in time order, a few thousand): the scanner's publication
   rules — a cooldown per symbol and side, at most `max_per_scan` per scan, best first —
   then the trader's: minimum score, allow/deny lists, one position per symbol, at most
   `max_positions` open.
3. `services.backtest_stats` turns the trades into figures.

One scan per bar: the live scanner looks every few seconds and may fire inside a bar; the
backtest judges each bar as the scanner sees it while it forms, with its final values.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from services.backtest_exits import (
    BREAK_EVEN,
    END,
    LIQUIDATED,
    STOP,
    TAKE,
    TRAIL,
    ExitRules,
    managed_exits,
)
from services.features import F64, I64, Bars, judge

B = npt.NDArray[np.bool_]
__all__ = ["BREAK_EVEN", "END", "LIQUIDATED", "STOP", "TAKE", "TRAIL"]
EXIT_NAMES = (
    "take-profit", "stop-loss", "liquidated", "still open at the end", "trailing stop",
    "break-even stop",
)  # fmt: skip
_HORIZON = 288  # bars looked ahead per step when searching exits: a day of 5-minute bars


@dataclass(slots=True, frozen=True)
class ScanRules:
    """What the live scanner publishes: its minimum score, per-scan cap and cooldown."""

    min_score: float = 0.6
    max_per_scan: int = 3
    cooldown_s: float = 3_600.0
    window: int = 48  # candles per judgement (the scanner's BARS)
    bar_s: int = 300
    # The scanner skips a symbol cooling in the direction of its ~5-minute return before
    # judging its candles; that return spans this many bars (1 at scans 10 s apart).
    direction_bars: int = 1

    @classmethod
    def direction_for(cls, interval_s: float, bar_s: int = 300) -> int:
        """Bars spanned by the scanner's long return (5 minutes of scans, at least one)."""
        per_min = max(1, round(60.0 / interval_s))
        return max(1, round(5 * per_min * interval_s / bar_s))


@dataclass(slots=True, frozen=True)
class Strategy:
    """The trader's settings as the backtest applies them, plus the cost assumptions."""

    size_usdt: float | None = 50.0
    risk_pct: float | None = None
    leverage: int = 5
    tp_pct: float = 3.0
    sl_pct: float = 1.5
    max_positions: int = 5
    min_score: float = 0.7
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    fee_rate: float = 0.00055  # taker, each leg
    slippage_pct: float = 0.05  # against the trader on every market fill
    capital: float = 10_000.0  # the starting equity: risk sizing and drawdown are against it
    trail_pct: float | None = None  # trailing distance, % of the entry price
    trail_activation_pct: float | None = None  # trailing starts at this profit; None: at once
    ladder: tuple[tuple[float, float], ...] = ()  # (% from the entry, % of the position)
    ladder_breakeven: bool = False  # the stop goes to the entry once the first part fills

    @property
    def managed(self) -> bool:
        """A trailing stop or a ladder: exits are found by `services.backtest_exits`."""
        return self.trail_pct is not None or bool(self.ladder)

    @property
    def exit_rules(self) -> ExitRules:
        return ExitRules(
            self.tp_pct,
            self.sl_pct,
            self.leverage,
            self.trail_pct,
            self.trail_activation_pct,
            self.ladder,
            self.ladder_breakeven,
        )

    def takes(self, symbol: str) -> bool:
        return symbol not in self.deny and (not self.allow or symbol in self.allow)

    def notional(self) -> float:
        if self.size_usdt is not None:
            return self.size_usdt
        return self.capital * (self.risk_pct or 0.0) / self.sl_pct if self.sl_pct > 0 else 0.0


@dataclass(slots=True)
class Candidates:
    """Bars whose score reaches the scanner's minimum (flat arrays, one entry per bar)."""

    row: I64  # symbol, as an index into the run's symbols
    bar: I64  # index into the run's bar times
    score: F64  # rounded like the scanner's verdicts
    up: B
    ring_up: B  # the direction the scanner's pre-score sees (its cooldown is checked first)
    tradable: B  # the trader's score and lists allow it (its exit is known)
    exit_bar: I64
    exit_kind: I64
    entry: F64  # fill prices, slippage included
    exit: F64

    @classmethod
    def empty(cls) -> Candidates:
        i, f, b = np.empty(0, np.int64), np.empty(0), np.empty(0, bool)
        return cls(i, i, f, b, b, b, i, i, f, f)

    @classmethod
    def concat(cls, parts: list[Candidates]) -> Candidates:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, n) for p in parts]) for n in _FIELDS))


_FIELDS = Candidates.__dataclass_fields__.keys()


def candidates(
    bars: Bars,
    symbols: tuple[str, ...],
    first_row: int,
    listed_at: F64,
    bar_times: I64,
    rules: ScanRules,
    strategy: Strategy,
) -> Candidates:
    """The candidate bars of one block of symbols (`bars` rows), rows numbered from
    `first_row`; `bar_times` are the bars' open times in seconds, `window - 1` bars of history
    before the first judged one."""
    ends = bar_times[rules.window - 1 :] + rules.bar_s
    age_h = (ends[None, :] - listed_at[:, None]) / 3_600.0
    judged = judge(bars, age_h, rules.window)
    rough = judged.valid & (np.round(judged.score, 3) >= rules.min_score - 0.0015)
    rows, positions = np.nonzero(rough)
    # The scanner rounds each verdict with Python's round(); so does the threshold here.
    exact = np.fromiter((round(float(s), 3) for s in judged.score[rows, positions]), float)
    keep = exact >= rules.min_score
    rows, positions, score = rows[keep], positions[keep], exact[keep]
    up = judged.up[rows, positions]
    bar = positions + rules.window - 1
    before = bars.close[rows, np.maximum(bar - rules.direction_bars, 0)]
    with np.errstate(invalid="ignore"):
        ring_up = ~(bars.close[rows, bar] < before)  # unknown counts as up, as in the scanner
    takes = np.fromiter((strategy.takes(symbols[r]) for r in rows), bool, rows.size)
    tradable = takes & (score >= strategy.min_score)
    exit_bar, kind = np.full(rows.size, -1), np.full(rows.size, -1)
    entry, out = np.full(rows.size, np.nan), np.full(rows.size, np.nan)
    t = np.flatnonzero(tradable)
    if t.size:
        e_bar, e_kind, e_in, e_out = exits(bars, rows[t], bar[t], up[t], strategy)
        exit_bar[t], kind[t], entry[t], out[t] = e_bar, e_kind, e_in, e_out
    return Candidates(
        rows + first_row, bar, score, up, ring_up, tradable, exit_bar, kind, entry, out
    )  # fmt: skip


def exits(bars: Bars, rows: I64, bar: I64, up: B, strategy: Strategy) -> tuple[I64, I64, F64, F64]:
    """(exit bar, exit kind, entry fill, exit fill) of positions opened at the close of
    `bar`: the first later bar whose range reaches the stop (or liquidation) or the target.
    Both in one bar count as the stop: a bar's path inside it is unknown. A trailing stop or
    a ladder is replayed by `managed_exits`."""
    if strategy.managed:
        return _managed(bars, rows, bar, up, strategy)
    high, low, close = bars.high, bars.low, bars.close
    width = close.shape[1]
    sign = np.where(up, 1.0, -1.0)
    ref = close[rows, bar]
    take = ref * (1 + sign * strategy.tp_pct / 100)
    stop_pct = min(strategy.sl_pct, 100.0 / max(strategy.leverage, 1))
    stop = ref * (1 - sign * stop_pct / 100)
    liquidated = strategy.sl_pct > stop_pct
    exit_bar = np.full(rows.size, -1, dtype=np.int64)
    kind = np.full(rows.size, END, dtype=np.int64)
    pending = np.arange(rows.size)
    offset = 1
    while pending.size and offset < width:
        idx = bar[pending, None] + offset + np.arange(_HORIZON)
        inside = idx < width
        idx = np.minimum(idx, width - 1)
        r, u = rows[pending, None], up[pending, None]
        h, lo = high[r, idx], low[r, idx]
        s, tk = stop[pending, None], take[pending, None]
        hit_stop = np.where(u, lo <= s, h >= s) & inside
        hit_any = (hit_stop | np.where(u, h >= tk, lo <= tk)) & inside
        found = hit_any.any(axis=1)
        first = hit_any.argmax(axis=1)
        done = pending[found]
        exit_bar[done] = idx[found, first[found]]
        stopped = hit_stop[found, first[found]]
        kind[done] = np.where(stopped, LIQUIDATED if liquidated else STOP, TAKE)
        pending = pending[~found]
        offset += _HORIZON
    last = _last_close(close)
    ended = exit_bar < 0
    exit_bar[ended] = last[0][rows[ended]]
    slip = strategy.slippage_pct / 100
    level = np.where(kind == TAKE, take, stop)
    level = np.where(ended, last[1][rows], level)
    entry = ref * (1 + sign * slip)
    out = level * (1 - sign * slip)
    return exit_bar, kind, entry, out


def _managed(
    bars: Bars, rows: I64, bar: I64, up: B, strategy: Strategy
) -> tuple[I64, I64, F64, F64]:
    exit_bar, kind, level = managed_exits(bars, rows, bar, up, strategy.exit_rules)
    sign = np.where(up, 1.0, -1.0)
    slip = strategy.slippage_pct / 100
    return exit_bar, kind, bars.close[rows, bar] * (1 + sign * slip), level * (1 - sign * slip)


def _last_close(close: F64) -> tuple[I64, F64]:
    """Each row's last known bar and close (a delisted symbol ends early)."""
    seen = np.isfinite(close)
    index = close.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1)
    return index, close[np.arange(close.shape[0]), index]


@dataclass(slots=True)
class Trades:
    """The trades taken, in the order they were opened."""

    row: list[int] = field(default_factory=list)
    up: list[bool] = field(default_factory=list)
    entry_bar: list[int] = field(default_factory=list)
    exit_bar: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    pnl: list[float] = field(default_factory=list)
    fees: list[float] = field(default_factory=list)
    unfunded: int = 0  # signals the strategy would take that the free margin could not pay


@dataclass(slots=True)
class Replay:
    """What the scanner would have published, and what the trader's strategy took."""

    signals: list[tuple[int, int, bool, float]]  # (bar, row, up, score)
    trades: Trades


def replay(found: Candidates, rules: ScanRules, strategy: Strategy) -> Replay:
    """Publish candidates as the scanner does and trade them as the strategy says."""
    order = np.lexsort((-found.score, found.bar))
    cooldown_bars = rules.cooldown_s / rules.bar_s
    last_signal: dict[tuple[int, bool], int] = {}
    signals: list[tuple[int, int, bool, float]] = []
    trades = Trades()
    open_rows: set[int] = set()
    closing: list[tuple[int, int, float]] = []  # (exit bar, row, PnL) of open positions
    notional = strategy.notional()
    margin = notional / max(strategy.leverage, 1)
    realised = 0.0  # PnL of the positions closed so far
    bar_now, published = -1, 0
    for i in order.tolist():
        bar, row, up = int(found.bar[i]), int(found.row[i]), bool(found.up[i])
        if bar != bar_now:
            bar_now, published = bar, 0
            while closing and closing[0][0] <= bar:
                _, closed, gained = heapq.heappop(closing)
                open_rows.discard(closed)
                realised += gained
        if published >= rules.max_per_scan:
            continue
        ring = last_signal.get((row, bool(found.ring_up[i])))
        before = last_signal.get((row, up))
        if any(b is not None and bar - b < cooldown_bars for b in (ring, before)):
            continue
        last_signal[(row, up)] = bar
        published += 1
        signals.append((bar, row, up, float(found.score[i])))
        if not found.tradable[i] or row in open_rows or len(open_rows) >= strategy.max_positions:
            continue
        # An account pays each position's margin from what it has: the capital and the
        # realised PnL, less the margin open positions hold. A spent account takes nothing.
        if strategy.capital + realised - margin * (len(open_rows) + 1) < 0:
            trades.unfunded += 1
            continue
        entry, out = float(found.entry[i]), float(found.exit[i])
        qty = notional / entry
        fees = strategy.fee_rate * qty * (entry + out)
        trades.row.append(row)
        trades.up.append(up)
        trades.entry_bar.append(bar)
        trades.exit_bar.append(int(found.exit_bar[i]))
        trades.kind.append(int(found.exit_kind[i]))
        pnl = (out - entry if up else entry - out) * qty - fees
        trades.pnl.append(pnl)
        trades.fees.append(fees)
        open_rows.add(row)
        heapq.heappush(closing, (int(found.exit_bar[i]), row, pnl))
    return Replay(signals, trades)
