"""The `MarketSource` role, and the synthetic market's universe of instruments.

A source answers from memory, synchronously: the synthetic market computes its answer, and a
live exchange's public client is wrapped in a snapshot that the market-scan job refreshes, so
a paper order never waits on the network. Unknown or delisted symbols and unsupported
timeframes raise `InvalidOrder`, like a venue refusing the request.

The `Universe` below is the synthetic source's instrument list: which symbols exist at a
given second, and their trading rules, derived from the seed like the prices are.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

import numpy as np
import numpy.typing as npt

from core.exchange.models import Candle, Market, Ticker

TIMEFRAMES: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3_600,
    "4h": 14_400,
    "1d": 86_400,
}


class MarketSource(Protocol):
    """Market data for paper trading: every symbol's rules, prices and candles."""

    def markets(self) -> Mapping[str, Market]:
        """Return every market by unified symbol, delisted ones with `active=False`."""
        ...

    def tickers(self) -> Mapping[str, Ticker]:
        """Return the current ticker of every tradable symbol."""
        ...

    def ticker(self, symbol: str) -> Ticker:
        """Return one tradable symbol's current ticker."""
        ...

    def ohlcv(self, symbol: str, timeframe: str = "1m", limit: int = 100) -> list[Candle]:
        """Return up to `limit` candles, oldest first; the last one is still forming."""
        ...


# ---------------------------------------------------------------------------------------------
# The synthetic market's universe of instruments: who is listed when, with which rules.

EXCHANGE = "paper"
MIN_NOTIONAL = Decimal(5)
LISTING_EVERY = 1_200  # one new listing per 20 minutes of clock time
DELISTING_EVERY = 4 * 3_600  # one delisting per 4 hours
DAY = 86_400
NEVER = 1 << 62

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_MASK = (1 << 64) - 1
_LISTING_SALT, _DELISTING_SALT = 0x5EED_0001, 0x5EED_0002
_CONSONANTS, _VOWELS = "BCDFGHJKLMNPRSTVWXZ", "AEIOU"

# base, price, tick, lot, max leverage, daily volatility, daily quote volume (USDT)
_HEAD: tuple[tuple[str, float, str, str, int, float, float], ...] = (
    ("BTC", 65_000.0, "0.1", "0.001", 100, 0.025, 9e9),
    ("ETH", 3_400.0, "0.01", "0.01", 100, 0.035, 5e9),
    ("SOL", 150.0, "0.01", "0.1", 50, 0.05, 1.6e9),
    ("XRP", 0.52, "0.0001", "1", 50, 0.045, 9e8),
    ("DOGE", 0.15, "0.00001", "1", 50, 0.055, 8e8),
    ("BNB", 580.0, "0.01", "0.01", 50, 0.035, 3e8),
    ("ADA", 0.45, "0.0001", "1", 50, 0.05, 2.5e8),
    ("AVAX", 35.0, "0.001", "0.1", 50, 0.055, 2.2e8),
    ("LINK", 15.0, "0.001", "0.1", 50, 0.05, 2e8),
    ("LTC", 80.0, "0.01", "0.1", 50, 0.04, 1.6e8),
    ("DOT", 7.0, "0.001", "0.1", 50, 0.05, 1.3e8),
    ("TRX", 0.12, "0.00001", "1", 50, 0.03, 1e8),
    ("SUI", 1.5, "0.0001", "10", 25, 0.065, 2.4e8),
    ("PEPE", 0.000012, "0.000000001", "100000", 25, 0.07, 3e8),
    ("NEAR", 5.2, "0.001", "0.1", 25, 0.06, 1.2e8),
    ("APT", 9.0, "0.001", "0.1", 25, 0.06, 9e7),
    ("ARB", 0.9, "0.0001", "0.1", 25, 0.06, 1e8),
    ("OP", 2.0, "0.001", "0.1", 25, 0.06, 8e7),
    ("WIF", 2.5, "0.0001", "1", 25, 0.09, 2e8),
    ("SHIB", 0.000018, "0.000000001", "100000", 25, 0.05, 6e7),
    ("ATOM", 8.0, "0.001", "0.1", 25, 0.05, 6e7),
    ("INJ", 25.0, "0.001", "0.1", 25, 0.065, 6e7),
    ("FIL", 5.0, "0.001", "0.1", 25, 0.055, 5e7),
    ("BONK", 0.000025, "0.000000001", "100000", 25, 0.09, 9e7),
    ("TON", 6.0, "0.001", "0.1", 25, 0.045, 5e7),
    ("TIA", 8.0, "0.001", "0.1", 25, 0.07, 5e7),
    ("SEI", 0.45, "0.0001", "1", 25, 0.07, 4e7),
    ("FLOKI", 0.00015, "0.00000001", "10000", 25, 0.08, 3e7),
)


def mix_int(x: int) -> int:
    """splitmix64's finaliser on a Python int: 64 well-mixed bits."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@dataclass(slots=True, frozen=True)
class Spec:
    """One synthetic instrument: its rules and the parameters of its price path."""

    base: str
    key: int
    price: float  # the level its price reverts to
    daily_vol: float
    daily_volume: float  # USDT
    max_leverage: int
    tick: Decimal
    lot: Decimal
    spread: float  # relative bid/ask spread
    listed_at: int  # unix seconds

    def market(self, delisted: bool) -> Market:
        return Market(
            symbol=f"{self.base}/USDT:USDT",
            exchange_id=f"{self.base}USDT",
            base=self.base,
            quote="USDT",
            settle="USDT",
            tick_size=self.tick,
            lot_size=self.lot,
            min_qty=self.lot,
            min_notional=MIN_NOTIONAL,
            max_leverage=self.max_leverage,
            active=not delisted,
            listed_at=datetime.fromtimestamp(self.listed_at, UTC),
        )


def _pow10(exponent: int) -> Decimal:
    return Decimal(10) ** exponent


def _tail_spec(rng: random.Random, base: str, listed_at: int, *, fresh: bool) -> Spec:
    """A small-cap: rules follow from its price (5 significant ticks, lots of 2-20 USDT)."""
    low, high = (1e-3, 5.0) if fresh else (1e-4, 800.0)
    price = math.exp(rng.uniform(math.log(low), math.log(high)))
    volume = math.exp(rng.uniform(math.log(2e5), math.log(6e7)))
    return Spec(
        base=base,
        key=rng.getrandbits(64),
        price=price,
        daily_vol=rng.uniform(0.10, 0.20) if fresh else rng.uniform(0.05, 0.14),
        daily_volume=volume,
        max_leverage=25 if volume > 2e7 else rng.choice((10, 10, 12, 20, 25)),
        tick=_pow10(max(math.floor(math.log10(price)) - 4, -10)),
        lot=_pow10(math.floor(math.log10(20.0 / price))),
        spread=rng.uniform(2e-4, 1.2e-3),
        listed_at=listed_at,
    )


class Universe:
    """The instruments: the initial set at genesis, then one listing per 20-minute slot and
    one delisting per 4-hour slot, each drawn from (seed, slot) so any time replays exactly."""

    def __init__(self, seed: int, count: int, genesis: int) -> None:
        if count < 1:
            raise ValueError("a synthetic market needs at least one symbol")
        self.seed, self.genesis, self.horizon = seed, genesis, genesis
        self.specs: list[Spec] = []
        self.symbols: list[str] = []
        self.index: dict[str, int] = {}
        self._delisted: list[int] = []
        self._head = min(count, len(_HEAD))
        self._markets: dict[str, Market] | None = None
        rng = random.Random(seed)
        for base, price, tick, lot, leverage, vol, volume in _HEAD[:count]:
            listed = genesis - rng.randrange(400 * DAY, 3_000 * DAY)
            spread = rng.uniform(2e-6, 3e-5)  # the majors trade a tick or two wide
            key = rng.getrandbits(64)
            self._add(
                Spec(
                    base,
                    key,
                    price,
                    vol,
                    volume,
                    leverage,
                    Decimal(tick),
                    Decimal(lot),
                    spread,
                    listed,
                )
            )
        for _ in range(count - self._head):
            listed = genesis - rng.randrange(30 * DAY, 1_500 * DAY)
            self._add(_tail_spec(rng, self._name(rng), listed, fresh=False))
        self._listing_slot, self._delisting_slot = (
            genesis // LISTING_EVERY,
            genesis // DELISTING_EVERY,
        )
        self._listing = self._event(_LISTING_SALT, self._listing_slot, LISTING_EVERY)
        self._delisting = self._event(_DELISTING_SALT, self._delisting_slot, DELISTING_EVERY)
        self._rebuild()

    def advance(self, now: int) -> None:
        """Apply every listing and delisting due by `now` (unix seconds)."""
        if now <= self.horizon:
            return
        changed = False
        while min(self._listing[0], self._delisting[0]) <= now:
            if self._listing[0] <= self._delisting[0]:
                at, rng = self._listing
                if at > self.genesis:
                    self._add(_tail_spec(rng, self._name(rng), at, fresh=True))
                    changed = True
                self._listing_slot += 1
                self._listing = self._event(_LISTING_SALT, self._listing_slot, LISTING_EVERY)
            else:
                at, rng = self._delisting
                if at > self.genesis:
                    changed = self._delist(rng, at) or changed
                self._delisting_slot += 1
                self._delisting = self._event(
                    _DELISTING_SALT, self._delisting_slot, DELISTING_EVERY
                )
        self.horizon = now
        if changed:
            self._rebuild()

    def markets(self, now: int) -> dict[str, Market]:
        """Every market listed by `now`, delisted ones inactive."""
        if self._markets is None or now < self.horizon:
            markets = {
                sym: spec.market(self._delisted[i] <= now)
                for i, (sym, spec) in enumerate(zip(self.symbols, self.specs, strict=True))
                if spec.listed_at <= now
            }
            if now < self.horizon:
                return markets
            self._markets = markets
        return self._markets

    def is_live(self, i: int, now: int) -> bool:
        return bool(self.listed[i] <= now < self.delisted[i])

    def _event(self, salt: int, slot: int, every: int) -> tuple[int, random.Random]:
        rng = random.Random(mix_int(mix_int(self.seed ^ salt) ^ slot))
        return slot * every + rng.randrange(every), rng

    def _name(self, rng: random.Random) -> str:
        while True:
            letters = [
                rng.choice(_CONSONANTS if i % 2 == 0 else _VOWELS)
                for i in range(rng.choice((3, 4, 4, 5)))
            ]
            name = "".join(letters)
            if f"{name}/USDT:USDT" not in self.index:
                return name

    def _add(self, spec: Spec) -> None:
        symbol = f"{spec.base}/USDT:USDT"
        self.index[symbol] = len(self.specs)
        self.specs.append(spec)
        self.symbols.append(symbol)
        self._delisted.append(NEVER)

    def _delist(self, rng: random.Random, at: int) -> bool:
        """Delist one listed small-cap (never the head of the list); False if none is left."""
        candidates = [
            i
            for i in range(self._head, len(self.specs))
            if self.specs[i].listed_at <= at and self._delisted[i] == NEVER
        ]
        if not candidates:
            return False
        self._delisted[candidates[rng.randrange(len(candidates))]] = at
        return True

    def _rebuild(self) -> None:
        specs = self.specs
        self.size = len(specs)
        self.key = np.array([s.key for s in specs], dtype=np.uint64)
        self.logp0 = np.log(np.array([s.price for s in specs], dtype=np.float64))
        self.sigma = np.array([s.daily_vol for s in specs], dtype=np.float64) / math.sqrt(DAY)
        self.rate = np.array([s.daily_volume for s in specs], dtype=np.float64) / DAY
        self.tick = np.array([float(s.tick) for s in specs], dtype=np.float64)
        self.lot = np.array([float(s.lot) for s in specs], dtype=np.float64)
        self.spread = np.array([s.spread for s in specs], dtype=np.float64)
        self.listed = np.array([s.listed_at for s in specs], dtype=np.int64)
        self.delisted = np.array(self._delisted, dtype=np.int64)
        self.tick_dec = [s.tick for s in specs]
        self.lot_dec = [s.lot for s in specs]
        self._markets = None
