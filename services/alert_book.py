"""The in-memory index of active price alerts, evaluated against a whole ticker snapshot.

Per symbol, two lists of thresholds kept sorted (with their alert ids alongside): "above"
alerts fire when the price reaches or passes their threshold, so the due ones are a prefix
of the ascending list; "below" alerts are a suffix. A pass looks at each symbol's two ends
once and slices out only what is due, so it costs O(symbols + fired), however many alerts
wait. Creating, removing and firing keep the lists sorted with a binary search.

    book = AlertBook.of(levels)            # from the store, once, at start
    crossings = book.due({"BTC/USDT:USDT": 70_100.0})
    book.discard(i for c in crossings for i in c.alert_ids)   # once the firing committed
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from db.repositories.price_alerts import ABOVE, ActiveLevel


@dataclass(slots=True, frozen=True)
class Crossing:
    """The alerts of one symbol (and one direction) whose thresholds its price reached."""

    symbol: str
    price: float
    alert_ids: list[int]


@dataclass(slots=True)
class _Side:
    """Thresholds in ascending order; `ids[i]` is the alert of `levels[i]`."""

    levels: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    def add(self, threshold: float, alert_id: int) -> None:
        at = bisect_right(self.levels, threshold)
        self.levels.insert(at, threshold)
        self.ids.insert(at, alert_id)

    def drop(self, threshold: float, alert_id: int) -> bool:
        at = bisect_left(self.levels, threshold)
        while at < len(self.levels) and self.levels[at] == threshold:
            if self.ids[at] == alert_id:
                del self.levels[at], self.ids[at]
                return True
            at += 1
        return False


class AlertBook:
    """Active alerts of one market, indexed by symbol and sorted by threshold."""

    def __init__(self) -> None:
        self._above: dict[str, _Side] = {}
        self._below: dict[str, _Side] = {}
        self._where: dict[int, tuple[str, str, float]] = {}  # id → symbol, direction, level

    @classmethod
    def of(cls, levels: Iterable[ActiveLevel]) -> AlertBook:
        """Build from alerts in any order (the store hands them sorted: appends then)."""
        book = cls()
        for level in levels:
            book.add(level)
        return book

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._where

    def add(self, level: ActiveLevel) -> None:
        sides = self._above if level.direction == ABOVE else self._below
        side = sides.get(level.symbol)
        if side is None:
            side = sides[level.symbol] = _Side()
        if not side.levels or level.threshold >= side.levels[-1]:
            side.levels.append(level.threshold)  # loading in index order lands here
            side.ids.append(level.id)
        else:
            side.add(level.threshold, level.id)
        self._where[level.id] = (level.symbol, level.direction, level.threshold)

    def discard(self, alert_ids: Iterable[int]) -> int:
        """Forget these alerts (removed or fired); return how many were here."""
        gone = 0
        for alert_id in alert_ids:
            where = self._where.pop(alert_id, None)
            if where is None:
                continue
            symbol, direction, threshold = where
            sides = self._above if direction == ABOVE else self._below
            side = sides[symbol]
            gone += side.drop(threshold, alert_id)
            if not side.levels:
                del sides[symbol]
        return gone

    def due(self, prices: Mapping[str, float]) -> list[Crossing]:
        """Alerts the prices reached: above at price ≥ threshold, below at price ≤ threshold.

        One look at each end of each symbol's lists, then one slice per crossed list, so
        what is due costs a copy, not a Python step per alert. Leaves the book as it is:
        the caller discards what it fired once that is stored.
        """
        found: list[Crossing] = []
        for symbol, side in self._above.items():
            price = prices.get(symbol)
            if price is not None and side.levels[0] <= price:
                end = bisect_right(side.levels, price)
                found.append(Crossing(symbol, price, side.ids[:end]))
        for symbol, side in self._below.items():
            price = prices.get(symbol)
            if price is not None and side.levels[-1] >= price:
                start = bisect_left(side.levels, price)
                found.append(Crossing(symbol, price, side.ids[start:]))
        return found

    def symbols(self) -> set[str]:
        return self._above.keys() | self._below.keys()
