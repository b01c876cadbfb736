"""A deterministic synthetic market of linear USDT perpetuals, computed from (seed, time).

Every log price is a sum of parts that can be evaluated directly at any whole second, for
all symbols at once with numpy, so catching up after an idle gap costs nothing and two
markets with the same seed agree at every instant:

- a Brownian bridge inside each regime window (the Lévy–Ciesielski construction: one hashed
  normal per dyadic level from 2 s to 2048 s), so one-second steps walk like a random walk;
- value noise with knots 34 min, 4.5 h, 36 h and 12 days apart, so prices wander for days
  and still revert to their listing level instead of drifting to zero;
- a regime per symbol per 2048-s window — quiet, trending or spiking — that scales the
  bridge's volatility and the volume, adds a fading trend, or a pump-and-fade spike.

Random numbers come from a counter-based hash (splitmix64) of (symbol key, stream, index):
nothing is simulated step by step, and only the symbol universe is kept in memory.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from core.clock import Clock
from core.exchange.errors import InvalidOrder
from core.exchange.models import Candle, Market, Ticker
from core.paper.market_source import EXCHANGE, F64, I64, TIMEFRAMES, U64, Universe, mix_int

DAY = 86_400
KNOT = 1_024  # 24h high/low/volume are sampled on this grid of seconds
W_BITS = 11
WINDOW = 1 << W_BITS  # regime window: 2048 s, the bridge's top level
TREND_MEMORY = 6  # windows a trend keeps echoing, fading by TREND_DECAY each
TREND_DECAY = 0.6
P_QUIET, P_TREND = 0.62, 0.28  # the remaining 10 % of windows spike
SAMPLES = 120  # most path samples per candle for its high and low (1-s apart at most)
MAX_CANDLES = 1_000
_CHUNK = 1 << 13  # points per vectorised evaluation: temporaries stay in cache

_VOLATILITY = np.array([0.5, 1.3, 3.0])  # by regime: quiet, trending, spiking
_VOLUME = np.array([0.6, 1.6, 4.0])
_SQRT3 = float(np.sqrt(3.0))
_G = np.uint64(0x9E3779B97F4A7C15)
_M16 = np.uint64(0xFFFF)


class Regime(enum.StrEnum):
    QUIET = "quiet"
    TRENDING = "trending"
    SPIKING = "spiking"


_REGIMES = (Regime.QUIET, Regime.TRENDING, Regime.SPIKING)


def _streams(first: int, count: int) -> U64:
    return np.array([mix_int(first + i) for i in range(count)], dtype=np.uint64)[:, None]


_S_REGIME = _streams(1, 1)[0, 0]
_S_CANDLE = _streams(2, 1)[0, 0]
_S_BRIDGE = _streams(100, W_BITS)
_S_OCTAVE = _streams(200, 4)
_SHIFT = np.arange(1, W_BITS + 1, dtype=np.int64)[:, None]  # level blocks of 2**shift s
_HALF = (2.0 ** (_SHIFT - 1)).astype(np.float64)
_BRIDGE_STD = np.sqrt(_HALF / 2.0)  # a bridge over L seconds has midpoint variance L/4
_OCTAVE = np.array([2_048, 16_384, 131_072, 1_048_576], dtype=np.int64)[:, None]
_OCTAVE_AMP = 0.8 * np.sqrt(_OCTAVE / 2.0)
_LAGS = np.arange(TREND_MEMORY, -1, -1, dtype=np.int64)[:, None]  # rows: w-M .. w


def _mix(x: U64) -> U64:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _draw(keys: U64, stream: U64 | np.uint64, index: I64) -> U64:
    """Hash (symbol key, stream, index) into 64 random bits."""
    return _mix(keys ^ (index.astype(np.uint64) * _G + stream))


def _unit(bits: U64) -> F64:
    unit: F64 = (bits & _M16).astype(np.float64) / 65_536.0
    return unit


def _gauss(h: U64) -> F64:
    """Return roughly standard normals: Irwin–Hall of four 16-bit uniforms."""
    total = (h & _M16) + ((h >> np.uint64(16)) & _M16) + ((h >> np.uint64(32)) & _M16)
    total = total + (h >> np.uint64(48))
    normal: F64 = (total.astype(np.float64) / 65_536.0 - 2.0) * _SQRT3
    return normal


def _rows_sum(rows: F64) -> F64:
    """Sum rows one by one, so a point's value never depends on the array's shape."""
    acc: F64 = rows[0].copy()
    for row in rows[1:]:
        acc += row
    return acc


class _Day:
    """Log prices and volume rates of every symbol on the knot grid of the last 24 hours,
    with the per-symbol high, low, quote volume and VWAP over all of it."""

    __slots__ = ("hi", "high", "lo", "logp", "low", "quote", "rate", "vwap")

    def __init__(self, lo: int, logp: F64, rate: F64) -> None:
        self.lo, self.hi, self.logp, self.rate = lo, lo + logp.shape[0] - 1, logp, rate
        empty = logp.shape[0] == 0
        self.high = np.full(logp.shape[1], -np.inf) if empty else logp.max(axis=0)
        self.low = np.full(logp.shape[1], np.inf) if empty else logp.min(axis=0)
        self.quote = rate.sum(axis=0) * KNOT
        self.vwap = (rate * np.exp(logp)).sum(axis=0) * KNOT / np.maximum(self.quote, 1e-300)

    def times(self) -> I64:
        return np.arange(self.lo, self.hi + 1, dtype=np.int64) * KNOT

    def since(self, cols: I64, start: I64) -> tuple[F64, F64, F64, F64]:
        """Return high, low, quote volume and VWAP of `cols`, each from its own `start`."""
        seen = self.times()[:, None] >= start[None, :]
        logp, rate = self.logp[:, cols], np.where(seen, self.rate[:, cols], 0.0)
        quote = rate.sum(axis=0) * KNOT
        vwap = (rate * np.exp(logp)).sum(axis=0) * KNOT / np.maximum(quote, 1e-300)
        high = np.where(seen, logp, -np.inf).max(axis=0, initial=-np.inf)
        low = np.where(seen, logp, np.inf).min(axis=0, initial=np.inf)
        return high, low, quote, vwap


class _DecimalMemo:
    """Reuse the Decimals of slow-moving ticker fields while their value stays the same."""

    __slots__ = ("ints", "values")

    def __init__(self) -> None:
        self.ints = np.empty(0, dtype=np.int64)
        self.values: list[Decimal] = []

    def get(self, rows: list[int], ints: I64, scale: list[Decimal] | None) -> list[Decimal]:
        """Return `ints[j] * scale[rows[j]]` as Decimals, building only the changed ones."""
        size = max(rows, default=-1) + 1
        if self.ints.size < size:
            grow = size - self.ints.size
            self.ints = np.concatenate([self.ints, np.full(grow, -1, dtype=np.int64)])
            self.values.extend([Decimal(0)] * grow)
        index = np.array(rows, dtype=np.int64)
        changed = np.flatnonzero(self.ints[index] != ints)
        for j, value in zip(changed.tolist(), ints[changed].tolist(), strict=True):
            row = rows[j]
            self.values[row] = Decimal(value) * scale[row] if scale else Decimal(value)
        self.ints[index] = ints
        values = self.values
        return [values[row] for row in rows]


@dataclass(slots=True, frozen=True)
class _Snapshot:
    at: int
    tickers: dict[str, Ticker]


class SyntheticMarket:
    """A `MarketSource`: 530 perpetuals by default, random walks, listings and delistings.

    `genesis` (default: the clock's time at construction) is when the initial universe
    exists; listings and delistings follow from seed and time after it.
    """

    def __init__(
        self,
        seed: int = 7,
        symbols: int = 530,
        *,
        clock: Clock,
        genesis: datetime | None = None,
    ) -> None:
        self.seed = seed
        self._clock = clock
        start = int((genesis or clock.now()).timestamp())
        self._u = Universe(seed, symbols, start)
        self._snap: _Snapshot | None = None
        self._knots: _Day | None = None
        self._memo = {name: _DecimalMemo() for name in ("high", "low")}

    def markets(self) -> dict[str, Market]:
        return dict(self._u.markets(self._now()))

    def tickers(self) -> dict[str, Ticker]:
        return dict(self._snapshot().tickers)

    def ticker(self, symbol: str) -> Ticker:
        found = self._snapshot().tickers.get(symbol)
        if found is None:
            raise self._unknown(symbol)
        return found

    def price(self, symbol: str) -> Decimal:
        return self.ticker(symbol).last

    def regime(self, symbol: str, at: datetime | None = None) -> Regime:
        """Return the symbol's regime now or `at` (for scanners' tests and demos)."""
        i = self._live_index(symbol)
        when = int(at.timestamp()) if at is not None else self._now()
        key = self._u.key[i : i + 1]
        bits = _draw(key, _S_REGIME, (when + _phase(key)) >> W_BITS)
        return _REGIMES[int(_regime_of(bits)[0])]

    def ohlcv(self, symbol: str, timeframe: str = "1m", limit: int = 100) -> list[Candle]:
        seconds = TIMEFRAMES.get(timeframe)
        if seconds is None:
            raise InvalidOrder(EXCHANGE, f"unsupported timeframe {timeframe!r}")
        snap, i = self._snapshot(), self._live_index(symbol)
        now, listed = snap.at, int(self._u.listed[i])
        last_start = now - now % seconds
        first = max(last_start - (max(1, min(limit, MAX_CANDLES)) - 1) * seconds, listed)
        starts = np.arange(first - first % seconds, last_start + 1, seconds, dtype=np.int64)
        ticks = self._bars(i, starts, seconds, now, SAMPLES)
        ticks[-1, 3] = int(snap.tickers[symbol].last / self._u.tick_dec[i])
        ticks[-1, 1] = max(ticks[-1, 1], ticks[-1, 3])
        ticks[-1, 2] = min(ticks[-1, 2], ticks[-1, 3])
        return self._candles(i, starts, ticks)

    def history(
        self, symbol: str, timeframe: str, since_ms: int, limit: int, samples: int = 12
    ) -> list[tuple[int, float, float, float, float, float]]:
        """Complete candles from `since_ms` on (at most `limit`) as plain rows (open time ms,
        open, high, low, close, volume), for a candle store. The high and low come from
        `samples` points per candle instead of the live candles' SAMPLES: history is asked
        for by the month, where the path's cost is what counts."""
        seconds = TIMEFRAMES.get(timeframe)
        if seconds is None:
            raise InvalidOrder(EXCHANGE, f"unsupported timeframe {timeframe!r}")
        i = self._u.index.get(symbol)
        if i is None:
            raise self._unknown(symbol)
        now, listed = self._now(), int(self._u.listed[i])
        end = min(now, int(self._u.delisted[i])) // seconds * seconds  # complete bars only
        first = max(since_ms // 1000, listed)
        first = -(-first // seconds) * seconds
        starts = np.arange(first, end, seconds, dtype=np.int64)[: max(0, limit)]
        if not starts.size:
            return []
        bars = self._bars(i, starts, seconds, now, samples).astype(np.float64)
        bars[:, :4] *= float(self._u.tick[i])
        bars[:, 4] *= float(self._u.lot[i])
        return [(s * 1000, *row) for s, row in zip(starts.tolist(), bars.tolist(), strict=True)]

    def _bars(self, i: int, starts: I64, seconds: int, now: int, samples: int) -> I64:
        """(open, high, low, close, volume) of candles starting at `starts`, in ticks and lots."""
        listed = int(self._u.listed[i])
        step = max(1, seconds // samples)
        grid = starts[:, None] + np.arange(seconds // step + 1, dtype=np.int64) * step
        grid[:, -1] = starts + seconds
        times = np.clip(grid, listed, now)
        logp, rate = self._path(np.full(times.size, i, dtype=np.int64), times.ravel())
        prices, rates = np.exp(logp).reshape(times.shape), rate.reshape(times.shape)
        spans = np.clip(np.minimum(grid[:, 1:], now) - np.maximum(grid[:, :-1], listed), 0, None)
        quote = (rates[:, :-1] * spans).sum(axis=1) * (0.6 + 0.8 * self._candle_noise(i, starts))
        tick, lot = float(self._u.tick[i]), float(self._u.lot[i])
        ticks = np.maximum(np.rint(prices / tick), 1).astype(np.int64)
        volume = np.rint(quote / ((prices[:, 0] + prices[:, -1]) / 2) / lot).astype(np.int64)
        return np.stack(
            [ticks[:, 0], ticks.max(axis=1), ticks.min(axis=1), ticks[:, -1], volume], axis=1
        )

    def _candles(self, i: int, starts: I64, bars: I64) -> list[Candle]:
        tick_d, lot_d = self._u.tick_dec[i], self._u.lot_dec[i]
        return [
            Candle(s * 1000, o * tick_d, h * tick_d, lo * tick_d, c * tick_d, v * lot_d)
            for s, (o, h, lo, c, v) in zip(starts.tolist(), bars.tolist(), strict=True)
        ]

    def _now(self) -> int:
        now = int(self._clock.now().timestamp())
        self._u.advance(now)
        return now

    def _live_index(self, symbol: str) -> int:
        i = self._u.index.get(symbol)
        if i is None or not self._u.is_live(i, self._now()):
            raise self._unknown(symbol)
        return i

    def _unknown(self, symbol: str) -> InvalidOrder:
        i = self._u.index.get(symbol)
        if i is not None and self._u.delisted[i] <= self._now():
            return InvalidOrder(EXCHANGE, f"{symbol} is delisted")
        return InvalidOrder(EXCHANGE, f"unknown symbol {symbol}")

    def _snapshot(self) -> _Snapshot:
        now = self._now()
        if self._snap is not None and self._snap.at == now:
            return self._snap
        u = self._u
        live = np.flatnonzero((u.listed <= now) & (u.delisted > now))
        opened = np.maximum(u.listed[live], now - DAY)
        both, rates = self._path(
            np.tile(live, 2), np.concatenate([np.full_like(opened, now), opened])
        )
        logp, logp_open, rate = both[: live.size], both[live.size :], rates[: live.size]
        day = self._day(now)
        high, low, quote, vwap = day.high[live], day.low[live], day.quote[live], day.vwap[live]
        fresh = np.flatnonzero(opened > now - DAY)
        if fresh.size:  # listed within 24 hours: only the knots since the listing count
            high[fresh], low[fresh], quote[fresh], vwap[fresh] = day.since(
                live[fresh], opened[fresh]
            )
        high = np.maximum(np.maximum(high, logp), logp_open)
        low = np.minimum(np.minimum(low, logp), logp_open)
        last = np.exp(logp)
        # Each knot stands for the KNOT seconds before it; the rest trades at today's rate.
        recent = rate * (now - np.maximum(day.hi * KNOT, opened))
        vwap = (quote * vwap + recent * last) / np.maximum(quote + recent, 1e-300)
        quote = quote + recent
        vwap = np.where(quote > 0, vwap, last)
        self._snap = _Snapshot(
            now, self._tickers(now, live, last, np.exp(logp_open), high, low, quote, vwap)
        )
        return self._snap

    def _tickers(
        self, now: int, live: I64, last: F64, first: F64, high: F64, low: F64, quote: F64, vwap: F64
    ) -> dict[str, Ticker]:
        u, rows = self._u, live.tolist()
        tick = u.tick[live]
        last_n = np.maximum(np.rint(last / tick), 1).astype(np.int64)
        half = np.maximum(np.rint(last * u.spread[live] / 2 / tick), 1).astype(np.int64)
        high_n = np.maximum(np.rint(np.exp(high) / tick).astype(np.int64), last_n)
        low_n = np.minimum(np.maximum(np.rint(np.exp(low) / tick), 1).astype(np.int64), last_n)
        change = np.rint((last / first - 1.0) * 10_000).astype(np.int64)
        base_n = np.rint(quote / vwap / u.lot[live]).astype(np.int64)
        highs = self._memo["high"].get(rows, high_n, u.tick_dec)
        lows = self._memo["low"].get(rows, low_n, u.tick_dec)
        stamp = datetime.fromtimestamp(now, UTC)
        cent = Decimal("0.01")
        ticks, lots = [u.tick_dec[i] for i in rows], [u.lot_dec[i] for i in rows]
        symbols = [u.symbols[i] for i in rows]
        out: dict[str, Ticker] = {}
        for symbol, td, lot, n, bid, ask, hi, lo, b, q, ch in zip(
            symbols,
            ticks,
            lots,
            last_n.tolist(),
            np.maximum(last_n - half, 1).tolist(),
            (last_n + half).tolist(),
            highs,
            lows,
            base_n.tolist(),
            np.rint(quote).astype(np.int64).tolist(),
            change.tolist(),
            strict=True,
        ):
            price = Decimal(n) * td
            out[symbol] = Ticker(
                symbol,
                price,
                Decimal(bid) * td,
                Decimal(ask) * td,
                price,
                hi,
                lo,
                Decimal(b) * lot,
                Decimal(q),
                Decimal(ch) * cent,
                stamp,
            )
        return out

    def _day(self, now: int) -> _Day:
        """Return the knot grid of the last 24 hours, extended by what is new since last time."""
        lo, hi, n = (now - DAY) // KNOT + 1, now // KNOT, self._u.size
        day = self._knots
        if day is None or day.lo > lo or day.hi > hi or day.hi < lo:
            day = _Day(lo, np.empty((0, n)), np.empty((0, n)))
        if day.lo < lo:
            day = _Day(lo, day.logp[lo - day.lo :], day.rate[lo - day.lo :])
        have = day.logp.shape[1]
        if have < n:
            extra_p, extra_r = self._grid(np.arange(have, n, dtype=np.int64), day.times())
            day = _Day(day.lo, np.hstack([day.logp, extra_p]), np.hstack([day.rate, extra_r]))
        if day.hi < hi:
            rows = np.arange(day.hi + 1, hi + 1, dtype=np.int64) * KNOT
            new_p, new_r = self._grid(np.arange(n, dtype=np.int64), rows)
            day = _Day(day.lo, np.vstack([day.logp, new_p]), np.vstack([day.rate, new_r]))
        self._knots = day
        return day

    def _grid(self, idx: I64, times: I64) -> tuple[F64, F64]:
        """Evaluate every (time, symbol) pair; return (times × symbols) matrices."""
        shape = (times.size, idx.size)
        logp, rate = self._path(np.tile(idx, times.size), np.repeat(times, idx.size))
        return logp.reshape(shape), rate.reshape(shape)

    def _candle_noise(self, i: int, starts: I64) -> F64:
        keys = np.full(starts.size, self._u.key[i], dtype=np.uint64)
        return _unit(_draw(keys, _S_CANDLE, starts))

    def _path(self, idx: I64, t: I64) -> tuple[F64, F64]:
        """Return log prices and quote-volume rates (USDT/s) of symbols `idx` at seconds `t`."""
        if idx.size <= _CHUNK:
            return self._path_chunk(idx, t)
        parts = [
            self._path_chunk(idx[s : s + _CHUNK], t[s : s + _CHUNK])
            for s in range(0, idx.size, _CHUNK)
        ]
        return np.concatenate([p for p, _ in parts]), np.concatenate([r for _, r in parts])

    def _path_chunk(self, idx: I64, t: I64) -> tuple[F64, F64]:
        u = self._u
        key, sigma = u.key[idx], u.sigma[idx]
        tp = t + _phase(key)
        frac = (tp & (WINDOW - 1)).astype(np.float64) / WINDOW
        bits = _draw(key, _S_REGIME, (tp >> W_BITS)[None, :] - _LAGS)
        regime = _regime_of(bits)
        size, coin = _unit(bits), _unit(bits >> np.uint64(16))
        jumps = np.where(regime == 1, np.where(coin < 0.5, -1.0, 1.0) * (1.0 + 2.0 * size), 0.0)
        before = _rows_sum(jumps[:-1] * _TREND_W[:-1])
        after = _rows_sum(jumps[1:] * _TREND_W[1:] * TREND_DECAY)
        now_regime, now_size, now_coin = regime[-1], size[-1], coin[-1]
        shape = np.where(frac < 0.25, frac / 0.25, (1.0 - frac) / 0.75)
        spike = np.where(now_regime == 2, np.where(now_coin < 0.65, 1.0, -1.0), 0.0)
        spike = spike * (3.0 + 6.0 * now_size) * shape
        step = sigma * np.sqrt(WINDOW)
        drift = (before + (after - before) * frac + spike) * step
        level = _bridge(key, tp) * _VOLATILITY[now_regime] + _octaves(key, tp)
        logp = u.logp0[idx] + drift + level * sigma
        boost = np.where(now_regime == 2, 1.0 + 4.0 * shape, 1.0)
        rate = u.rate[idx] * _VOLUME[now_regime] * (0.7 + 0.6 * now_size) * boost
        return logp, rate


# v_w weighs the jumps of windows w-M .. w-1 by decay^(M-1) .. decay^0; v_(w+1) shifts by one.
_TREND_W = (TREND_DECAY ** np.arange(TREND_MEMORY, -1, -1, dtype=np.float64) / TREND_DECAY)[:, None]


def _phase(key: U64) -> I64:
    """Offset each symbol's windows so that not every symbol switches regime at once."""
    return (key & np.uint64(WINDOW - 1)).astype(np.int64)


def _regime_of(bits: U64) -> I64:
    pick = (bits >> np.uint64(32)).astype(np.float64) / 4_294_967_296.0
    return (pick >= P_QUIET).astype(np.int64) + (pick >= P_QUIET + P_TREND).astype(np.int64)


def _bridge(key: U64, tp: I64) -> F64:
    """Brownian bridge pinned to zero at every regime-window boundary, in units of sigma."""
    pos = (tp[None, :] & ((1 << _SHIFT) - 1)).astype(np.float64)
    tent = 1.0 - np.abs(pos - _HALF) / _HALF
    return _rows_sum(_gauss(_draw(key, _S_BRIDGE, tp[None, :] >> _SHIFT)) * tent * _BRIDGE_STD)


def _octaves(key: U64, tp: I64) -> F64:
    """Stationary value noise over 34 min .. 12 days, in units of sigma."""
    knot = tp[None, :] // _OCTAVE
    frac = (tp[None, :] % _OCTAVE).astype(np.float64) / _OCTAVE
    left = _gauss(_draw(key, _S_OCTAVE, knot))
    right = _gauss(_draw(key, _S_OCTAVE, knot + 1))
    return _rows_sum((left + (right - left) * frac) * _OCTAVE_AMP)
