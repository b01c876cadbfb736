"""Exits of positions the trader manages: a trailing stop and a take-profit ladder, replayed
over the candles for every candidate at once (candidates × a day of bars per step; a loop over
at most three rungs, never over candles or symbols).

Prices are mirrored so one rule serves both sides: a short's prices are negated, so its best
price is the highest and its stops sit below (as in `services.trailing_book`). Per bar, in
that order:
- the stop as it stood at the previous bar's close applies to this bar's range: the fixed
  stop (or liquidation), the trailing stop (`peak − distance`, the peak being the best price
  since the entry, once it reached the activation profit if one is set) and, once the
  ladder's first part filled with `ladder_breakeven`, the entry. The highest of them fires.
- a ladder part fills when the bar reaches its level; a bar that reaches both a part and the
  stop counts as the stop (the path inside a bar is unknown: the worse outcome), as a bar
  reaching both the target and the stop does.
The ladder replaces the single take profit, as live; what its parts leave rides on the stops
until the end. A trade's exit fill is the average of its parts' fills weighted by their
shares, so its PnL and fees are the sum over its parts; its exit is where its last part closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.features import F64, I64, Bars

_HORIZON = 288  # bars per step: a day of 5-minute bars
_SLICE = 2_048  # candidates per pass: a dozen (candidates × step) arrays stay near 5 MB each
TAKE, STOP, LIQUIDATED, END, TRAIL, BREAK_EVEN = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True, slots=True)
class ExitRules:
    """How a position leaves: fixed target and stop, leverage (liquidation caps the stop),
    an optional trailing stop and a take-profit ladder of (percent from the entry, percent
    of the position) pairs, nearest first."""

    tp_pct: float
    sl_pct: float
    leverage: int
    trail_pct: float | None = None
    activation_pct: float | None = None
    ladder: tuple[tuple[float, float], ...] = ()
    breakeven: bool = False


def managed_exits(
    bars: Bars, rows: I64, bar: I64, up: np.ndarray, rules: ExitRules
) -> tuple[I64, I64, F64]:
    """(exit bar, exit kind, exit price before slippage) of positions opened at the close of
    `bar` under `rules`. Candidates go `_SLICE` at a time, so a block with very many of them
    (a low min_score) keeps its working arrays bounded."""
    found = [
        _exits(bars, rows[at : at + _SLICE], bar[at : at + _SLICE], up[at : at + _SLICE], rules)
        for at in range(0, rows.size, _SLICE)
    ]
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    exit_bar, kind, price = (np.concatenate([f[i] for f in found]) for i in range(3))
    return exit_bar, kind, price


def _exits(
    bars: Bars, rows: I64, bar: I64, up: np.ndarray, rules: ExitRules
) -> tuple[I64, I64, F64]:
    tp_pct, sl_pct, trail_pct = rules.tp_pct, rules.sl_pct, rules.trail_pct
    activation_pct, ladder, breakeven = rules.activation_pct, rules.ladder, rules.breakeven
    leverage = rules.leverage
    high, low, close = bars.high, bars.low, bars.close
    width = close.shape[1]
    n = rows.size
    sign = np.where(up, 1.0, -1.0)
    ref = close[rows, bar]
    stop_pct = min(sl_pct, 100.0 / max(leverage, 1))
    stop_kind = LIQUIDATED if sl_pct > stop_pct else STOP
    # Levels are computed as live (price × (1 ± pct)) and then mirrored: negation is exact.
    entry = sign * ref
    stop = sign * (ref * (1 - sign * stop_pct / 100))
    take = sign * (ref * (1 + sign * tp_pct / 100)) if not ladder else np.full(n, np.inf)
    gap = ref * trail_pct / 100 if trail_pct is not None else np.full(n, np.inf)
    start = (
        sign * (ref * (1 + sign * activation_pct / 100))
        if activation_pct is not None
        else np.full(n, -np.inf)
    )
    shares = np.array([share / 100 for _, share in ladder])
    parts = np.stack(
        [sign * (ref * (1 + sign * pct / 100)) for pct, _ in ladder] or [np.empty(n)], axis=1
    )[:, : len(ladder)]
    peak = entry.copy()
    even = np.zeros(n, dtype=bool)  # the stop sits at the entry (the first part filled)
    filled = np.zeros((n, len(ladder)), dtype=bool)
    exit_bar = np.full(n, -1, dtype=np.int64)
    kind = np.full(n, END, dtype=np.int64)
    level = np.zeros(n)
    pending = np.arange(n)
    offset = 1
    while pending.size and offset < width:
        p = pending
        idx = bar[p, None] + offset + np.arange(_HORIZON)
        inside = idx < width
        idx = np.minimum(idx, width - 1)
        r, u = rows[p, None], up[p, None]
        hi = np.where(inside, np.where(u, high[r, idx], -low[r, idx]), np.nan)
        lo = np.where(inside, np.where(u, low[r, idx], -high[r, idx]), np.nan)
        # The best price at each bar's close (column 0: before this step); NaN bars are skipped.
        peaks = np.fmax.accumulate(np.concatenate([peak[p, None], hi], axis=1), axis=1)
        before = peaks[:, :-1]
        trail = np.where(before >= start[p, None], before - gap[p, None], -np.inf)
        base = np.maximum(stop[p, None], trail)
        base = np.where(even[p, None], np.maximum(base, entry[p, None]), base)
        target = hi >= take[p, None]
        cols = np.arange(_HORIZON)
        if breakeven and ladder:
            first = _first((lo <= base) | target)
            reach = _first(hi >= parts[p, 0, None])
            # The first part fills before the stop: from the next bar on, the stop is the entry.
            moved = ~filled[p, 0] & (reach < first)
            later = moved[:, None] & (cols[None, :] > reach[:, None])
            base = np.where(later, np.maximum(base, entry[p, None]), base)
            even_at = later | even[p, None]
        else:
            even_at = np.broadcast_to(even[p, None], base.shape)
        hit = lo <= base
        out = _first(hit | target)
        for i in range(len(ladder)):
            reach = _first(hi >= parts[p, i, None])
            fills = ~filled[p, i] & (reach < out)
            filled[p[fills], i] = True
            if i == 0 and breakeven:
                even[p[fills]] = True
        found = out < _HORIZON
        at = np.minimum(out, _HORIZON - 1)
        k = np.arange(p.size)
        level_at = np.where(hit[k, at], base[k, at], take[p])
        binding = np.where(
            trail[k, at] >= base[k, at],
            TRAIL,
            np.where(even_at[k, at], BREAK_EVEN, stop_kind),
        )
        kind_at = np.where(hit[k, at], binding, TAKE)
        done = p[found]
        exit_bar[done] = idx[found, at[found]]
        kind[done] = kind_at[found]
        level[done] = level_at[found]
        if ladder and shares.sum() >= 1.0 - 1e-9:
            # Every part filled (each before any stop): the position closed with the last.
            whole = filled[p].all(axis=1)
            last = _first(hi[whole] >= parts[p[whole], -1, None])
            exit_bar[p[whole]] = idx[whole, last]
            kind[p[whole]] = TAKE
            found = found | whole
        peak[p] = peaks[:, -1]
        pending = p[~found]
        offset += _HORIZON
    ended = exit_bar < 0
    last_bar, last_close = _last_close(close)
    exit_bar[ended] = last_bar[rows[ended]]
    level[ended] = sign[ended] * last_close[rows[ended]]
    rest = 1.0 - (filled * shares[None, :]).sum(axis=1) if ladder else np.ones(n)
    rest = np.where(rest > 1e-9, rest, 0.0)
    mirrored = rest * level + (
        (np.where(filled, parts, 0.0) * shares[None, :]).sum(axis=1) if ladder else 0.0
    )
    return exit_bar, kind, sign * mirrored


def _first(mask: np.ndarray) -> I64:
    """Each row's first True column; the row's width when it has none."""
    first: I64 = np.where(mask.any(axis=1), mask.argmax(axis=1), mask.shape[1])
    return first


def _last_close(close: F64) -> tuple[I64, F64]:
    """Each row's last known bar and close (a delisted symbol ends early)."""
    seen = np.isfinite(close)
    index = close.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1)
    return index, close[np.arange(close.shape[0]), index]
