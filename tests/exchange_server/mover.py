"""A market that moves on demand: the benchmarks' "tick" between two scans or syncs.

The default server's prices only change when a test sets them, so a scanner sees a flat
market and never has a candidate to confirm. A tick moves it the way a live market moves
between two scans: every price takes a small random step, a few symbols break out (a step
of several percent with a burst of volume, so their candles show it too), and, when asked,
a few symbols are listed, delisted or have an instrument field changed (what a registry
sync must pick up). Deterministic for a given seed; nothing happens unless a tick is asked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from .engine import Engine
from .market import MarketData

WARM_INTERVALS = ("5", "15", "60")
_LEVERAGES = (Decimal("10"), Decimal("12.5"), Decimal("20"), Decimal("25"), Decimal("50"))


@dataclass(slots=True)
class TickReport:
    """What one tick did, so a benchmark can prove the market moved."""

    moved: int = 0
    breakouts: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    delisted: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "moved": self.moved,
            "breakouts": self.breakouts,
            "listed": self.listed,
            "delisted": self.delisted,
            "changed": self.changed,
        }


class MarketMover:
    """Moves `market` one tick at a time; see the module docstring."""

    def __init__(self, market: MarketData, engine: Engine, seed: int = 0) -> None:
        self.market = market
        self.engine = engine
        self._rng = random.Random(seed * 7919 + 17)
        self._listings = 0

    def tick(
        self,
        *,
        breakouts: int = 10,
        walk: float = 0.0005,
        listings: int = 0,
        delistings: int = 0,
        changes: int = 0,
    ) -> TickReport:
        """One step of the market; `walk` is the random step's size as a fraction."""
        rng, market = self._rng, self.market
        report = TickReport()
        trading = [s for s, i in market.instruments.items() if i.status == "Trading"]
        movers = set(rng.sample(trading, min(breakouts, len(trading))))
        for symbol in trading:
            ticker = market.tickers[symbol]
            if symbol in movers:
                step = rng.uniform(0.03, 0.06) * rng.choice((1, -1))
                # A burst of volume: what gives the candles of the breakout their weight.
                ticker.volume_24h = (ticker.volume_24h * Decimal("1.08")).quantize(
                    market.instruments[symbol].qty_step, rounding=ROUND_DOWN
                )
                report.breakouts.append(symbol)
            elif walk > 0:
                step = rng.gauss(0.0, walk)
            else:
                continue
            price = ticker.last * Decimal(repr(1.0 + step))
            if price > market.instruments[symbol].tick_size:
                market.set_price(symbol, price)
                report.moved += 1
                if symbol not in movers:
                    self.engine.announce_price(symbol)  # the ticker stream hears every move
        for symbol in report.breakouts:  # resting orders on the breakout symbols react
            self.engine.on_price(symbol)
        for _ in range(listings):
            self._listings += 1
            symbol = f"NEW{self._listings}X{rng.randrange(1000)}USDT"
            market.add_symbol(symbol, 10 ** rng.uniform(-2, 2))
            report.listed.append(symbol)
        gone = rng.sample([s for s in trading if s not in movers], min(delistings, len(trading)))
        for symbol in gone:
            market.delist(symbol)
            report.delisted.append(symbol)
        left = [s for s in trading if s not in movers and s not in gone]
        for symbol in rng.sample(left, min(changes, len(left))):
            inst = market.instruments[symbol]
            inst.max_leverage = rng.choice([lev for lev in _LEVERAGES if lev != inst.max_leverage])
            report.changed.append(symbol)
        # An exchange serves candles from its store: the breakouts' closed candles (the ones
        # a scanner is about to ask for) are computed now, between scans, not in the request.
        for symbol in report.breakouts:
            for interval in WARM_INTERVALS:
                market.klines(symbol, interval, None, None, 200)
        # Rebuild the moved tickers' JSON now, between scans, as an exchange's own cache
        # would: the next tickers request then costs what it costs on a quiet market.
        for symbol in market.instruments:
            if market.instruments[symbol].status != "Closed":
                market.ticker_json(symbol)
        return report
