"""Instruments, tickers, klines and order books of the fake Bybit linear market.

Everything is derived deterministically from ``seed``: the same seed gives the same
instrument list, the same starting prices and the same historical klines.
"""

from __future__ import annotations

import math
import operator
import random
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from .klines import DAY_MS, KlineModel

FULL_SYMBOL_COUNT = 530
LARGE_SYMBOL_COUNT = 5000
MIN_NOTIONAL = Decimal("5")

# (base, price, tickSize, qtyStep, maxLeverage) for the head of the list.
_MAJORS: tuple[tuple[str, str, str, str, str], ...] = (
    ("BTC", "65000.00", "0.10", "0.001", "100.00"),
    ("ETH", "3400.00", "0.01", "0.01", "100.00"),
    ("SOL", "150.000", "0.010", "0.1", "100.00"),
    ("XRP", "0.5200", "0.0001", "1", "75.00"),
    ("DOGE", "0.15000", "0.00001", "1", "75.00"),
    ("BNB", "580.00", "0.05", "0.01", "75.00"),
    ("ADA", "0.4500", "0.0001", "1", "75.00"),
    ("AVAX", "35.000", "0.001", "0.1", "50.00"),
    ("LINK", "15.000", "0.001", "0.1", "75.00"),
    ("LTC", "80.00", "0.01", "0.1", "75.00"),
    ("DOT", "7.000", "0.001", "0.1", "75.00"),
    ("TRX", "0.12000", "0.00001", "1", "75.00"),
    ("1000PEPE", "0.0120000", "0.0000001", "100", "50.00"),
    ("SUI", "1.5000", "0.0001", "10", "50.00"),
    ("ARB", "0.9000", "0.0001", "0.1", "50.00"),
    ("OP", "2.000", "0.001", "0.1", "50.00"),
)
_CONSONANTS = "BCDFGHJKLMNPRSTVWXZ"
_VOWELS = "AEIOUY"


def fmt(value: Decimal, exp: Decimal | None = None) -> str:
    """Plain decimal string (no exponent); quantized to ``exp`` when given."""
    if exp is not None:
        value = value.quantize(exp, rounding=ROUND_DOWN)
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def _same(key: tuple[Any, ...], cached: tuple[Any, ...]) -> bool:
    """Every part of a cache key is the very object it was (values here are immutable, so
    a changed field is a new object; `==` would call Decimal('0.10') and '0.1' equal)."""
    return len(key) == len(cached) and all(map(operator.is_, key, cached))


def _scale(step: Decimal) -> int:
    return max(0, -int(step.normalize().as_tuple().exponent))


def _pow10(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent)


@dataclass
class Instrument:
    symbol: str
    base: str
    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_mkt_qty: Decimal
    max_leverage: Decimal
    launch_time: int
    status: str = "Trading"
    delivery_time: int = 0
    min_notional: Decimal = MIN_NOTIONAL
    funding_interval: int = 480
    # The last JSON built and the fields it was built from: serving 5,000 instruments should
    # cost what a real exchange's cache costs, not a Decimal formatting pass per request.
    _json: tuple[tuple[Any, ...], dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def price_scale(self) -> int:
        return _scale(self.tick_size)

    def price_str(self, price: Decimal) -> str:
        return fmt(price, self.tick_size)

    def qty_str(self, qty: Decimal) -> str:
        return fmt(qty, self.qty_step)

    def to_json(self) -> dict[str, Any]:
        """The instrument as Bybit lists it (cached until a field changes; do not mutate)."""
        key = (
            self.symbol, self.base, self.tick_size, self.qty_step, self.min_qty, self.max_qty,
            self.max_mkt_qty, self.max_leverage, self.launch_time, self.status,
            self.delivery_time, self.min_notional, self.funding_interval,
        )  # fmt: skip
        if self._json is not None and _same(key, self._json[0]):
            return self._json[1]
        body = self._build_json()
        self._json = (key, body)
        return body

    def _build_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "contractType": "LinearPerpetual",
            "status": self.status,
            "baseCoin": self.base,
            "quoteCoin": "USDT",
            "symbolType": "",
            "launchTime": str(self.launch_time),
            "deliveryTime": str(self.delivery_time),
            "deliveryFeeRate": "",
            "priceScale": str(self.price_scale),
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": fmt(self.max_leverage, Decimal("0.01")),
                "leverageStep": "0.01",
            },
            "priceFilter": {
                "minPrice": self.price_str(self.tick_size),
                "maxPrice": self.price_str(self.tick_size * 199_999_980),
                "tickSize": fmt(self.tick_size),
            },
            "lotSizeFilter": {
                "maxOrderQty": self.qty_str(self.max_qty),
                "minOrderQty": self.qty_str(self.min_qty),
                "qtyStep": fmt(self.qty_step),
                "postOnlyMaxOrderQty": self.qty_str(self.max_qty),
                "maxMktOrderQty": self.qty_str(self.max_mkt_qty),
                "minNotionalValue": fmt(self.min_notional),
            },
            "unifiedMarginTrade": True,
            "fundingInterval": self.funding_interval,
            "settleCoin": "USDT",
            "copyTrading": "both",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
            "displayName": "",
            "forbidUplWithdrawal": False,
            "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
            "isPreListing": False,
            "preListingInfo": None,
        }


@dataclass
class Ticker:
    last: Decimal
    mark: Decimal
    index: Decimal
    prev_24h: Decimal
    high_24h: Decimal
    low_24h: Decimal
    volume_24h: Decimal
    funding_rate: Decimal
    open_interest: Decimal
    history: deque[tuple[int, Decimal]] = field(default_factory=lambda: deque(maxlen=50_000))


def _make_instrument(
    base: str,
    price: Decimal,
    launch_time: int,
    tick: Decimal | None = None,
    step: Decimal | None = None,
    max_leverage: Decimal = Decimal("25"),
) -> Instrument:
    if tick is None:
        tick = _pow10(math.floor(math.log10(float(price))) - 4)
    if step is None:
        step = _pow10(round(math.log10(5 / float(price))))
        step = min(max(step, Decimal("0.001")), Decimal("100000"))
    max_mkt = (Decimal(2_000_000) / price / step).to_integral_value(ROUND_DOWN) * step
    max_mkt = max(max_mkt, step * 1000)
    return Instrument(
        symbol=f"{base}USDT",
        base=base,
        tick_size=tick,
        qty_step=step,
        min_qty=step,
        max_qty=max_mkt * 10,
        max_mkt_qty=max_mkt,
        max_leverage=max_leverage,
        launch_time=launch_time,
    )


class MarketData:
    """Instruments and their prices. Mutate through ``set_price`` / ``add_symbol`` / ``delist``."""

    def __init__(self, symbols: int | list[str] = FULL_SYMBOL_COUNT, seed: int = 0) -> None:
        self.seed = seed
        self.started_ms = int(time.time() * 1000)
        # Klines are a pure function of (seed, symbol, time): the model price equals the
        # initial price at the start of the current UTC hour (servers started in the same
        # hour with the same seed serve identical history).
        self.anchor_ms = self.started_ms // 3_600_000 * 3_600_000
        self._rng = random.Random(seed)
        self.instruments: dict[str, Instrument] = {}
        self.tickers: dict[str, Ticker] = {}
        self._ticker_json: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self.kline_model = KlineModel(seed, self.anchor_ms)
        if isinstance(symbols, int):
            self._generate(symbols)
        else:
            for symbol in symbols:
                self.add_symbol(symbol)

    # ---- universe -------------------------------------------------------
    def _generate(self, count: int) -> None:
        for name, major_price, tick, step, major_lev in _MAJORS[:count]:
            launch = self.started_ms - self._rng.randint(400, 2000) * DAY_MS
            inst = _make_instrument(
                name,
                Decimal(major_price),
                launch,
                Decimal(tick),
                Decimal(step),
                Decimal(major_lev),
            )
            self._register(inst, Decimal(major_price))
        while len(self.instruments) < count:
            base = "".join(
                self._rng.choice(_CONSONANTS) + self._rng.choice(_VOWELS)
                for _ in range(self._rng.choice((2, 2, 3)))
            )
            if f"{base}USDT" in self.instruments:
                continue
            price = Decimal(str(10 ** self._rng.uniform(-4, 3))).quantize(Decimal("1e-12"))
            lev = Decimal(self._rng.choice(("10", "12.5", "20", "25", "25", "50")))
            launch = self.started_ms - self._rng.randint(1, 1500) * DAY_MS
            inst = _make_instrument(base, price, launch, max_leverage=lev)
            self._register(inst, price)

    def _register(self, inst: Instrument, price: Decimal) -> None:
        price = max(price.quantize(inst.tick_size, rounding=ROUND_DOWN), inst.tick_size)
        self.instruments[inst.symbol] = inst
        self.kline_model.anchor(inst.symbol, float(price))
        prev = self.kline_model.price(inst, self.started_ms - DAY_MS)
        turnover = Decimal(str(10 ** self._rng.uniform(5, 9)))
        volume = (turnover / price).quantize(inst.qty_step, rounding=ROUND_DOWN)
        self.tickers[inst.symbol] = Ticker(
            last=price,
            mark=price,
            index=price,
            prev_24h=prev,
            high_24h=max(price, prev) * Decimal("1.02"),
            low_24h=min(price, prev) * Decimal("0.98"),
            volume_24h=volume,
            funding_rate=Decimal(self._rng.randint(-30, 60)) / Decimal(100_000),
            open_interest=(volume * Decimal("0.3")).quantize(inst.qty_step, rounding=ROUND_DOWN),
        )

    def add_symbol(
        self, symbol: str, price: Decimal | str | float | None = None, *, max_leverage: str = "25"
    ) -> Instrument:
        """List a new ``XXXUSDT`` perpetual (status Trading, launched now)."""
        if not symbol.endswith("USDT") or len(symbol) <= 4:
            raise ValueError(f"linear USDT symbol expected, got {symbol!r}")
        if symbol in self.instruments:
            inst = self.instruments[symbol]
            inst.status, inst.delivery_time = "Trading", 0
            return inst
        for name, major_price, tick, step, major_lev in _MAJORS:
            if f"{name}USDT" == symbol:
                p = Decimal(str(price)) if price is not None else Decimal(major_price)
                now = int(time.time() * 1000)
                args = (Decimal(tick), Decimal(step), Decimal(major_lev))
                inst = _make_instrument(name, p, now - 1000 * DAY_MS, *args)
                self._register(inst, p)
                return inst
        p = (
            Decimal(str(price))
            if price is not None
            else Decimal(str(10 ** self._rng.uniform(-2, 2)))
        )
        inst = _make_instrument(
            symbol[:-4], p, int(time.time() * 1000), max_leverage=Decimal(max_leverage)
        )
        self._register(inst, p)
        return inst

    def delist(
        self, symbol: str, *, status: str = "Closed", delivery_time: int | None = None
    ) -> None:
        """Mark a symbol Closed (hidden from default instrument/ticker queries) or Delivering."""
        inst = self.instrument(symbol)
        inst.status = status
        inst.delivery_time = delivery_time if delivery_time is not None else int(time.time() * 1000)

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self.instruments[symbol]
        except KeyError:
            raise KeyError(f"unknown symbol {symbol}") from None

    def tradable(self, symbol: str) -> Instrument | None:
        inst = self.instruments.get(symbol)
        return inst if inst is not None and inst.status == "Trading" else None

    def listed(self, status: str | None = None) -> list[Instrument]:
        wanted = status or "Trading"
        return [i for i in self.instruments.values() if i.status == wanted]

    # ---- prices ---------------------------------------------------------
    def set_price(
        self, symbol: str, price: Decimal | str | float, mark: Decimal | None = None
    ) -> None:
        inst = self.instrument(symbol)
        p = Decimal(str(price)).quantize(inst.tick_size, rounding=ROUND_DOWN)
        if p <= 0:
            raise ValueError("price must be positive")
        t = self.tickers[symbol]
        t.last, t.mark, t.index = p, mark if mark is not None else p, p
        t.high_24h, t.low_24h = max(t.high_24h, p), min(t.low_24h, p)
        t.history.append((int(time.time() * 1000), p))

    def last(self, symbol: str) -> Decimal:
        return self.tickers[symbol].last

    def ticker_json(self, symbol: str) -> dict[str, Any]:
        """The ticker as Bybit sends it; only the funding time is computed per call, the
        rest is rebuilt when a price or a field it depends on changes."""
        inst, t = self.instruments[symbol], self.tickers[symbol]
        key = (
            inst, inst.tick_size, inst.qty_step, inst.min_qty, inst.delivery_time,
            inst.funding_interval, t.last, t.mark, t.index, t.prev_24h, t.high_24h, t.low_24h,
            t.volume_24h, t.funding_rate, t.open_interest,
        )  # fmt: skip
        cached = self._ticker_json.get(symbol)
        if cached is None or not _same(key, cached[0]):
            cached = self._ticker_json[symbol] = (key, self._build_ticker_json(inst, t))
        body = dict(cached[1])
        funding_ms = inst.funding_interval * 60_000
        body["nextFundingTime"] = str((int(time.time() * 1000) // funding_ms + 1) * funding_ms)
        return body

    @staticmethod
    def _build_ticker_json(inst: Instrument, t: Ticker) -> dict[str, Any]:
        pcnt = (t.last / t.prev_24h - 1).quantize(Decimal("0.000001")) if t.prev_24h else Decimal(0)
        return {
            "symbol": inst.symbol,
            "lastPrice": inst.price_str(t.last),
            "indexPrice": inst.price_str(t.index),
            "markPrice": inst.price_str(t.mark),
            "prevPrice24h": inst.price_str(t.prev_24h),
            "price24hPcnt": fmt(pcnt),
            "highPrice24h": inst.price_str(t.high_24h),
            "lowPrice24h": inst.price_str(t.low_24h),
            "prevPrice1h": inst.price_str(t.prev_24h),
            "openInterest": inst.qty_str(t.open_interest),
            "openInterestValue": fmt(t.open_interest * t.mark, Decimal("0.01")),
            "turnover24h": fmt(t.volume_24h * t.last, Decimal("0.0001")),
            "volume24h": inst.qty_str(t.volume_24h),
            "fundingRate": fmt(t.funding_rate),
            "nextFundingTime": "",  # per call
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": str(inst.delivery_time),
            "ask1Size": inst.qty_str(inst.min_qty * 37),
            "bid1Price": inst.price_str(t.last - inst.tick_size),
            "ask1Price": inst.price_str(t.last + inst.tick_size),
            "bid1Size": inst.qty_str(inst.min_qty * 41),
            "basis": "",
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
        }

    def orderbook_json(self, symbol: str, limit: int) -> dict[str, Any]:
        inst, last = self.instruments[symbol], self.tickers[symbol].last
        levels = range(1, max(1, min(limit, 500)) + 1)
        size = inst.min_qty * 10
        bids = [[inst.price_str(last - inst.tick_size * i), inst.qty_str(size * i)] for i in levels]
        asks = [[inst.price_str(last + inst.tick_size * i), inst.qty_str(size * i)] for i in levels]
        now = int(time.time() * 1000)
        return {
            "s": symbol,
            "b": bids,
            "a": asks,
            "ts": now,
            "u": now % 10_000_000,
            "seq": now,
            "cts": now,
        }

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        with_volume: bool = True,
    ) -> list[list[str]]:
        inst, ticker = self.instruments[symbol], self.tickers[symbol]
        return self.kline_model.candles(inst, ticker, interval, start, end, limit, with_volume)
