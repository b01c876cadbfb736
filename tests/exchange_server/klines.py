"""Deterministic kline model: a pure function of (seed, symbol, time).

The model price is a sum of seeded sine waves (periods ~1.6 h to ~23 days) plus a
per-minute jitter, scaled so that it equals the instrument's initial price at the anchor
(the start of the UTC hour the server was created in). Candle ``i`` closes exactly where
candle ``i + 1`` opens; the live candle closes at the ticker's current last price.
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .market import Instrument, Ticker

DAY_MS = 86_400_000
KLINE_MINUTES = {"1": 1, "3": 3, "5": 5, "15": 15, "30": 30, "60": 60, "120": 120}
KLINE_MINUTES |= {"240": 240, "360": 360, "720": 720, "D": 1440, "W": 10080, "M": 43_200}
_WAVES = ((97.0, 0.004), (1009.0, 0.02), (7561.0, 0.05), (33_013.0, 0.12))
_CLOSED_KEPT = 5_000  # closed candles remembered per symbol


def _month(ms: int, delta: int) -> int:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    index = d.year * 12 + d.month - 1 + delta
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def candle_starts(interval: str, start: int | None, end: int, limit: int) -> list[int]:
    """Start times (ms, newest first) of up to ``limit`` candles overlapping [start, end].

    Like Bybit: with ``start`` the page runs forward from the candle containing ``start``;
    without it, backward from the candle containing ``end``. Weekly candles open on
    Monday 00:00 UTC, monthly ones on the 1st.
    """
    if interval == "M":
        if start is None:
            return [_month(end, -i) for i in range(limit)]
        months: list[int] = []
        while len(months) < limit and _month(start, len(months)) <= end:
            months.append(_month(start, len(months)))
        return months[::-1]
    step = KLINE_MINUTES[interval] * 60_000
    offset = 4 * DAY_MS if interval == "W" else 0  # 1970-01-01 was a Thursday
    if start is not None:
        t = (start - offset) // step * step + offset
        forward: list[int] = []
        while t <= end and len(forward) < limit:
            forward.append(t)
            t += step
        return forward[::-1]
    t = (end - offset) // step * step + offset
    return [t - i * step for i in range(limit)]


class KlineModel:
    def __init__(self, seed: int, anchor_ms: int) -> None:
        self.seed = seed
        self.anchor_ms = anchor_ms
        self._anchors: dict[str, tuple[float, float]] = {}  # symbol -> (p0, wave(anchor))
        # Pure functions of (seed, symbol, time), remembered as an exchange's candle store
        # would: each symbol's wave phases, and each closed candle's prices and volume factor.
        self._phases: dict[str, tuple[float, ...]] = {}
        self._closed: dict[str, dict[tuple[str, int], tuple[float, float, float, float, float]]]
        self._closed = {}

    def _hash01(self, *parts: object) -> float:
        digest = hashlib.blake2b(repr((self.seed, *parts)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _wave(self, symbol: str, minute: float) -> float:
        phases = self._phases.get(symbol)
        if phases is None:
            phases = tuple(
                self._hash01(symbol, "phase", k) * 2 * math.pi for k in range(len(_WAVES))
            )
            self._phases[symbol] = phases
        total = 0.0
        for (period, amp), phase in zip(_WAVES, phases, strict=True):
            total += amp * math.sin(2 * math.pi * minute / period + phase)
        return total

    def anchor(self, symbol: str, price: float) -> None:
        self._anchors[symbol] = (price, self._wave(symbol, self.anchor_ms / 60_000))
        self._closed.pop(symbol, None)  # its candles are priced from the anchor

    def _model(self, symbol: str, ms: float) -> float:
        p0, f0 = self._anchors[symbol]
        minute = ms / 60_000
        jitter = (self._hash01(symbol, "j", int(minute)) - 0.5) * 0.002
        return p0 * math.exp(self._wave(symbol, minute) - f0 + jitter)

    @staticmethod
    def _to_price(inst: Instrument, value: float) -> Decimal:
        price = Decimal(repr(value)).quantize(inst.tick_size, rounding=ROUND_DOWN)
        return max(price, inst.tick_size)

    def price(self, inst: Instrument, ms: int) -> Decimal:
        return self._to_price(inst, self._model(inst.symbol, ms))

    def candles(
        self,
        inst: Instrument,
        ticker: Ticker,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        with_volume: bool = True,
    ) -> list[list[str]]:
        """Bybit ``result.list`` rows, newest first: [start, o, h, l, c(, volume, turnover)]."""
        if interval not in KLINE_MINUTES:
            raise ValueError(interval)
        minutes = KLINE_MINUTES[interval]
        now = int(time.time() * 1000)
        end = min(end if end is not None else now, now)
        if start is not None:
            start = max(start, inst.launch_time)
        rows: list[list[str]] = []
        for t0 in candle_starts(interval, start, end, limit):
            t1 = _month(t0, 1) if interval == "M" else t0 + minutes * 60_000
            if t1 <= inst.launch_time:
                break
            kept = self._closed.get(inst.symbol, {}).get((interval, t0)) if t1 <= now else None
            o, hi, lo, c, spread = kept or self._candle(inst, ticker, interval, t0, t1, now)
            units = float(ticker.volume_24h) * minutes / 1440 * spread
            vol = Decimal(repr(units)).quantize(inst.qty_step, rounding=ROUND_DOWN)
            row = [str(t0)] + [inst.price_str(self._to_price(inst, x)) for x in (o, hi, lo, c)]
            if with_volume:
                turnover = (vol * Decimal(repr(c))).quantize(Decimal("0.0001"))
                row += [inst.qty_str(vol), format(turnover, "f")]
            rows.append(row)
        return rows

    def _candle(
        self, inst: Instrument, ticker: Ticker, interval: str, t0: int, t1: int, now: int
    ) -> tuple[float, float, float, float, float]:
        """(open, high, low, close, volume factor) of one candle; a closed one is kept."""
        minutes = KLINE_MINUTES[interval]
        points = [t0 + (t1 - t0) * k // 4 for k in range(5)]
        samples = [self._model(inst.symbol, ms) for ms in points if ms <= now]
        if t1 > now:  # the live candle closes at the current (possibly moved) price
            for ts, p in reversed(ticker.history):
                if ts < t0:
                    break
                samples.append(float(p))
            samples.append(float(ticker.last))
        wick = 1 + self._hash01(inst.symbol, interval, t0) * 0.001 * math.sqrt(minutes)
        spread = 0.5 + self._hash01(inst.symbol, "v", interval, t0)
        candle = (samples[0], max(samples) * wick, min(samples) / wick, samples[-1], spread)
        if t1 <= now:
            kept = self._closed.setdefault(inst.symbol, {})
            if len(kept) >= _CLOSED_KEPT:
                kept.clear()
            kept[(interval, t0)] = candle
        return candle
