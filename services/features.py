"""The scanner's maths, for every symbol at once: ring buffers of what each scan saw, and
features and scores computed on whole numpy arrays (no Python loop over symbols).

Two stages. Every scan appends one column (last price, 24 h quote volume) to the ring
buffers and pre-scores all symbols from them and from the ticker alone: short-horizon
return, realised volatility, volume z-score against the rolling baseline, position in the
24 h range, listing age. The best few are then confirmed on their candles (`confirm`): the
volume of the last complete bar against the hour before it, the move against the average
true range, a breakout of the 4 h range; the ATR also sets the stop distance.

Missing values are NaN and score as nothing, so a symbol with a short history (just listed,
or the bot just started) is judged on what it has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

HOUR = 3_600.0


class RingBook:
    """The last `capacity` scans of every symbol seen: rows are symbols, columns scans.

    All symbols of one scan share its time (one bulk tickers request). A symbol missing
    from a scan gets NaN in that column; a new symbol gets a fresh row of NaN.
    """

    def __init__(self, capacity: int = 360) -> None:
        if capacity < 3:
            raise ValueError("a ring buffer needs at least 3 columns")
        self.capacity = capacity
        self.index: dict[str, int] = {}
        self.price: F64 = np.full((0, capacity), np.nan)
        self.volume: F64 = np.full((0, capacity), np.nan)
        self.times: F64 = np.full(capacity, np.nan)
        self.head = 0  # the column the next scan writes
        self.count = 0

    def rows(self, symbols: Sequence[str]) -> I64:
        """Row of each symbol, adding rows (and growing the arrays) for new ones."""
        index = self.index
        for symbol in symbols:
            if symbol not in index:
                index[symbol] = len(index)
        if len(index) > self.price.shape[0]:
            grow = max(len(index), 2 * self.price.shape[0], 64) - self.price.shape[0]
            pad = np.full((grow, self.capacity), np.nan)
            self.price, self.volume = np.vstack([self.price, pad]), np.vstack([self.volume, pad])
        return np.fromiter((index[s] for s in symbols), dtype=np.int64, count=len(symbols))

    def append(self, at: float, symbols: Sequence[str], price: F64, volume: F64) -> I64:
        """Write one scan as the newest column; return the symbols' rows."""
        rows = self.rows(symbols)
        col = self.head
        self.price[:, col] = np.nan
        self.volume[:, col] = np.nan
        self.price[rows, col] = price
        self.volume[rows, col] = volume
        self.times[col] = at
        self.head = (col + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)
        return rows

    def window(self, rows: I64) -> tuple[F64, F64, F64]:
        """(times, prices, volumes) of `rows`, oldest column first."""
        order = (self.head - self.count + np.arange(self.count)) % self.capacity
        return self.times[order], self.price[rows][:, order], self.volume[rows][:, order]


# ---------------------------------------------------------------------------------------------
# Features on (symbols × scans) arrays, oldest column first.


def log_return(prices: F64, lag: int) -> F64:
    """Log return of the last column over `lag` columns before it (NaN if too short)."""
    if prices.shape[1] <= lag or lag < 1:
        return np.full(prices.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        result: F64 = np.log(prices[:, -1] / prices[:, -1 - lag])
    return result


def realised_vol(prices: F64) -> F64:
    """Realised volatility over the window: √Σ r² of the log returns, as a fraction."""
    if prices.shape[1] < 2:
        return np.full(prices.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.diff(np.log(prices), axis=1)
    seen = np.isfinite(steps)
    total = np.where(seen, steps * steps, 0.0).sum(axis=1)
    result: F64 = np.where(seen.any(axis=1), np.sqrt(total), np.nan)
    return result


def interval_volume(volume_24h: F64) -> F64:
    """Volume traded between scans from the rolling 24 h total: its increase (a drop, when
    old volume leaves the 24 h window, says nothing about now and is NaN)."""
    if volume_24h.shape[1] < 2:
        return np.full((volume_24h.shape[0], 0), np.nan)
    steps = np.diff(volume_24h, axis=1)
    result: F64 = np.where(steps >= 0, steps, np.nan)
    return result


def volume_zscore(per_interval: F64, min_baseline: int = 3) -> tuple[F64, F64]:
    """(z-score, ratio) of the last interval's volume against the intervals before it."""
    rows = per_interval.shape[0]
    if per_interval.shape[1] < min_baseline + 1:
        return np.full(rows, np.nan), np.full(rows, np.nan)
    last, base = per_interval[:, -1], per_interval[:, :-1]
    seen = np.isfinite(base)
    n = seen.sum(axis=1)
    enough = n >= min_baseline
    safe_n = np.maximum(n, 1)
    mean = np.where(seen, base, 0.0).sum(axis=1) / safe_n
    var = np.where(seen, (base - mean[:, None]) ** 2, 0.0).sum(axis=1) / safe_n
    std = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(enough, (last - mean) / np.maximum(std, mean * 0.05 + 1e-12), np.nan)
        ratio = np.where(enough & (mean > 0), last / mean, np.nan)
    return z, ratio


def range_position(last: F64, low: F64, high: F64) -> F64:
    """Where the last price sits in the 24 h range: 0 at the low, 1 at the high."""
    span = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(span > 0, (last - low) / span, 0.5)
    result: F64 = np.clip(pos, 0.0, 1.0)
    return result


def listing_age_h(now: float, listed_at: F64) -> F64:
    """Hours since listing (NaN when unknown)."""
    result: F64 = (now - listed_at) / HOUR
    return result


@dataclass(slots=True, frozen=True)
class Snapshot:
    """Features of every symbol of one scan, aligned with `symbols`."""

    symbols: tuple[str, ...]
    last: F64
    ret_short: F64  # log return over ~1 minute
    ret_long: F64  # log return over ~5 minutes
    vol: F64  # realised volatility over the buffer
    vol_z: F64
    vol_ratio: F64
    range_pos: F64
    age_h: F64
    score: F64  # pre-score 0..1


def _ramp(x: F64, lo: float, hi: float) -> F64:
    """0 below `lo`, 1 above `hi`, linear between; NaN → 0."""
    result: F64 = np.nan_to_num(np.clip((x - lo) / (hi - lo), 0.0, 1.0), nan=0.0)
    return result


def prescore(ret_short: F64, ret_long: F64, vol_z: F64, range_pos: F64, age_h: F64) -> F64:
    """A cheap 0..1 ranking of every symbol: a move, unusual volume, a range extreme, new."""
    move = np.maximum(_ramp(np.abs(ret_short), 0.002, 0.02), _ramp(np.abs(ret_long), 0.005, 0.05))
    volume = _ramp(vol_z, 1.0, 6.0)
    extreme = _ramp(np.abs(range_pos - 0.5) * 2.0, 0.8, 1.0)
    new = _ramp(-age_h, -72.0, -24.0)
    result: F64 = np.clip(0.35 * move + 0.35 * volume + 0.2 * extreme + 0.1 * new, 0.0, 1.0)
    return result


def scan_features(
    book: RingBook,
    rows: I64,
    symbols: tuple[str, ...],
    now: float,
    last: F64,
    low: F64,
    high: F64,
    listed_at: F64,
) -> Snapshot:
    """Every feature and the pre-score of this scan's symbols, from the ring buffers."""
    times, prices, volumes = book.window(rows)
    steps = np.diff(times)
    step = float(np.median(steps)) if steps.size and np.isfinite(steps).all() else math.nan
    per_min = max(1, round(60.0 / step)) if math.isfinite(step) and step > 0 else 1
    short = log_return(prices, min(per_min, prices.shape[1] - 1))
    long_ = log_return(prices, min(5 * per_min, prices.shape[1] - 1))
    z, ratio = volume_zscore(interval_volume(volumes))
    pos = range_position(last, low, high)
    age = listing_age_h(now, listed_at)
    return Snapshot(
        symbols=symbols,
        last=last,
        ret_short=short,
        ret_long=long_,
        vol=realised_vol(prices),
        vol_z=z,
        vol_ratio=ratio,
        range_pos=pos,
        age_h=age,
        score=prescore(short, long_, z, pos, age),
    )


def top_k(scores: F64, k: int, floor: float = 0.0) -> I64:
    """Indices of the `k` best scores above `floor`, best first."""
    if k <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    eligible = np.flatnonzero(scores > floor)
    if eligible.size > k:
        eligible = eligible[np.argpartition(-scores[eligible], k - 1)[:k]]
    order: I64 = eligible[np.argsort(-scores[eligible], kind="stable")]
    return order


# ---------------------------------------------------------------------------------------------
# Confirmation on candles: candidates × bars arrays, oldest bar first, the last one forming.


def atr(high: F64, low: F64, close: F64, period: int = 14) -> F64:
    """Average true range over the last `period` complete bars of every row."""
    prev = close[:, :-1]
    true_range = np.maximum(
        high[:, 1:] - low[:, 1:],
        np.maximum(np.abs(high[:, 1:] - prev), np.abs(low[:, 1:] - prev)),
    )
    window = true_range[:, -period - 1 : -1] if true_range.shape[1] > period else true_range
    return nan_mean(window)


def nan_mean(values: F64) -> F64:
    """Means over the last axis ignoring NaN; NaN where no value (and no warning)."""
    seen = np.isfinite(values)
    n = seen.sum(axis=-1)
    total = np.where(seen, values, 0.0).sum(axis=-1)
    result: F64 = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return result


def nan_max(values: F64) -> F64:
    """Row maxima ignoring NaN; NaN for an empty row."""
    seen = np.isfinite(values)
    top = np.where(seen, values, -np.inf).max(axis=1, initial=-np.inf)
    result: F64 = np.where(seen.any(axis=1), top, np.nan)
    return result


def nan_min(values: F64) -> F64:
    """Row minima ignoring NaN; NaN for an empty row."""
    result: F64 = -nan_max(-values)
    return result


@dataclass(slots=True, frozen=True)
class Verdict:
    """What the candles say about one candidate."""

    score: float
    side: str  # long | short
    reasons: tuple[str, ...]
    atr_pct: float  # ATR as % of price
    move_pct: float


@dataclass(slots=True, frozen=True)
class Bars:
    """Aligned candle arrays of the candidates (rows) — equal lengths, NaN-padded on the left."""

    high: F64
    low: F64
    close: F64
    volume: F64

    @classmethod
    def stack(cls, series: Sequence[Mapping[str, Sequence[float]]]) -> Bars:
        width = max((len(s["close"]) for s in series), default=0)

        def pad(key: str) -> F64:
            out = np.full((len(series), width), np.nan)
            for i, s in enumerate(series):
                values = s[key]
                if values:
                    out[i, width - len(values) :] = values
            return out

        return cls(pad("high"), pad("low"), pad("close"), pad("volume"))


@dataclass(slots=True, frozen=True)
class Judged:
    """The confirmation rule at every judged bar of every row: (rows × positions) arrays.

    Position p is the bar `window - 1 + p` of the input, judged on the `window` bars ending
    there (that bar taken as the last, still-forming one, as the scanner sees it).
    """

    score: F64  # 0..1, not rounded
    up: npt.NDArray[np.bool_]
    move: F64  # the close against `move_bars` bars before, as a fraction
    atr_frac: F64  # ATR over the close
    ratio: F64  # volume of the last complete bar over the baseline's mean
    breakout: npt.NDArray[np.bool_]
    valid: npt.NDArray[np.bool_]  # every input of the verdict is known


def judge(
    bars: Bars,
    age_h: F64,
    window: int,
    baseline_bars: int = 12,
    move_bars: int = 3,
    period: int = 14,
) -> Judged:
    """Apply the confirmation rule at every bar from `window - 1` on, for all rows at once.

    The live scanner calls it with `window` = the width of its candidates' candles and reads
    the one position; the backtest calls it over weeks of stored candles. Every quantity of
    a position is reduced over that position's own bars only (sliding windows, no running
    sums), so both get bit-identical scores for the same candles. `age_h` is one value per
    row or one per (row, position).
    """
    high, low, close, volume = bars.high, bars.low, bars.close, bars.volume
    width = close.shape[1]
    positions = width - window + 1
    if positions < 1 or window < baseline_bars + move_bars + 2 or window <= period + 1:
        empty = np.zeros((close.shape[0], max(positions, 0)))
        no = empty.astype(bool)
        return Judged(empty, no, empty, empty, empty, no, no)
    end = window - 1  # index of the first judged bar
    last = close[:, end:]
    recent = volume[:, end - 1 : width - 1]
    base = nan_mean(_windows(volume, baseline_bars, end - 1 - baseline_bars, positions))
    prev = close[:, :-1]
    true_range = np.full(close.shape, np.nan)
    true_range[:, 1:] = np.maximum(
        high[:, 1:] - low[:, 1:], np.maximum(np.abs(high[:, 1:] - prev), np.abs(low[:, 1:] - prev))
    )
    # The ATR of the `period` complete bars before the forming one.
    range_atr = nan_mean(_windows(true_range, period, end - period, positions))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(base > 0, recent / base, np.nan)
        move = last / close[:, end - move_bars : width - move_bars] - 1.0
        atr_frac = range_atr / last
        in_atr = np.abs(move) / atr_frac
    before = window - 1 - move_bars  # bars before the move: the range it must break
    prior_high = _fmax(_windows(high, before, 0, positions))
    prior_low = -_fmax(_windows(-low, before, 0, positions))
    up = move >= 0
    breakout = np.where(up, last > prior_high, last < prior_low)
    ages = age_h if age_h.ndim == 2 else age_h[:, None]
    score = (
        0.40 * _ramp(ratio, 1.5, 5.0)
        + 0.35 * _ramp(in_atr, 1.0, 4.0)
        + 0.25 * breakout
        + 0.15 * _ramp(-ages, -72.0, -24.0)
    )
    valid = np.isfinite(last) & np.isfinite(move) & np.isfinite(atr_frac)
    return Judged(np.clip(score, 0.0, 1.0), up, move, atr_frac, ratio, breakout, valid)


def _windows(values: F64, length: int, first: int, count: int) -> F64:
    """`count` sliding windows of `length` columns, the first starting at column `first`:
    a (rows × count × length) view, nothing copied."""
    view: F64 = np.lib.stride_tricks.sliding_window_view(values, length, axis=1)
    return view[:, first : first + count]


def _fmax(values: F64) -> F64:
    """Maxima over the last axis ignoring NaN (NaN when all are), without a copy."""
    result: F64 = np.fmax.reduce(values, axis=-1)
    return result


def confirm(
    bars: Bars, age_h: F64, bar_minutes: int = 5, baseline_bars: int = 12, move_bars: int = 3
) -> list[Verdict | None]:
    """Score each candidate 0..1 from its candles; None when it has too few bars.

    volume: the last complete bar against the mean of the `baseline_bars` before it;
    move: the close against `move_bars` bars ago, measured in ATRs; breakout: the close
    beyond the high (low) of every bar before the move; plus a bonus for a new listing.
    The rule itself is `judge`, shared with the backtest.
    """
    width = bars.close.shape[1]
    if width < baseline_bars + move_bars + 2:
        return [None] * bars.close.shape[0]
    judged = judge(bars, age_h, width, baseline_bars, move_bars)
    hours = width * bar_minutes / 60  # the span the breakout is judged on
    verdicts: list[Verdict | None] = []
    for i in range(bars.close.shape[0]):
        if not judged.valid[i, 0]:
            verdicts.append(None)
            continue
        ratio, move, atr_frac = (
            float(a[i, 0]) for a in (judged.ratio, judged.move, judged.atr_frac)
        )
        up = bool(judged.up[i, 0])
        reasons = _reasons(
            ratio, move, atr_frac, bool(judged.breakout[i, 0]), up, float(age_h[i]), hours
        )
        verdicts.append(
            Verdict(
                score=round(float(judged.score[i, 0]), 3),
                side="long" if up else "short",
                reasons=reasons,
                atr_pct=atr_frac * 100,
                move_pct=move * 100,
            )
        )
    return verdicts


def _reasons(
    ratio: float, move: float, atr_frac: float, breakout: bool, up: bool, age_h: float, hours: float
) -> tuple[str, ...]:
    found: list[str] = []
    if math.isfinite(ratio) and ratio >= 1.5:
        found.append(f"volume ×{ratio:.1f} vs 1h")
    if abs(move) >= 0.002:
        found.append(f"{'up' if up else 'down'} {abs(move) * 100:.1f} %")
    found.append(f"volatility {atr_frac * 100:.1f} %")
    if breakout:
        span = f"{hours:.0f}h"
        found.append(f"breakout above {span} high" if up else f"breakdown below {span} low")
    if math.isfinite(age_h) and age_h < 72:
        found.append("new listing")
    return tuple(found)


def suggest(atr_pct: float, max_leverage: int) -> tuple[int, float, float]:
    """(leverage, take-profit %, stop-loss %): the stop 1.5 ATR away, the target twice as
    far, leverage so a stop-out costs about 10 % of the margin (1..20, the market's cap)."""
    sl = round(min(max(1.5 * atr_pct, 0.3), 25.0), 2)
    leverage = int(max(1, min(20, max_leverage, math.floor(10.0 / sl))))
    return leverage, round(2.0 * sl, 2), sl
