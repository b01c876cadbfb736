"""The in-memory index of bot-kept trailing stops, evaluated against a whole ticker snapshot.

Per symbol and side, a short is mirrored into a long (its prices negated: its best price is
the lowest, its stop above), so one rule serves both: a stop fires at or below
`peak − distance`. Stops waiting for activation are a sorted list (the due ones are a
prefix, as in the alert book). Active stops are kept in groups that share one peak: when
the price makes a new best, every group under it becomes one group at that peak, so a
rising market moves one number per symbol, not one per stop. Within a group the distances
are sorted, so the stops that fire are a prefix too. A symbol whose price neither activates,
raises nor reaches its highest stop costs three comparisons, however many stops it holds.

    book = TrailBook.of(stops)                  # from the store, once, at start
    found = book.due({"BTC/USDT:USDT": 70_100.0})
    found.moved  → (symbol, side, peak) to store; found.fired → stops to close
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

LONG, SHORT = "long", "short"


@dataclass(slots=True, frozen=True)
class TrailStop:
    """One trailing stop as the book needs it; `activation`/`peak` None: not yet / at once."""

    id: int
    symbol: str
    side: str
    distance: float
    activation: float | None = None
    peak: float | None = None


@dataclass(slots=True, frozen=True)
class Fired:
    id: int
    symbol: str
    side: str
    price: float


@dataclass(slots=True)
class TrailPass:
    moved: list[tuple[str, str, float]] = field(default_factory=list)  # symbol, side, peak
    fired: list[Fired] = field(default_factory=list)


@dataclass(slots=True)
class _Group:
    peak: float  # mirrored: a short's is the negated lowest price
    dists: list[float]
    ids: list[int]


@dataclass(slots=True)
class _Track:
    """The stops of one symbol and side, in mirrored prices."""

    starts: list[float] = field(default_factory=list)  # activation levels, ascending
    waiting: list[tuple[float, int]] = field(default_factory=list)  # (distance, id) per start
    groups: list[_Group] = field(default_factory=list)  # ascending peaks
    top: float = float("-inf")  # the highest stop level of any group

    def settle_top(self) -> None:
        self.top = max((g.peak - g.dists[0] for g in self.groups), default=float("-inf"))


class TrailBook:
    """Bot-kept trailing stops of one exchange, indexed by symbol and side."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._where: dict[int, tuple[str, str]] = {}

    @classmethod
    def of(cls, stops: Iterable[TrailStop]) -> TrailBook:
        book = cls()
        for stop in stops:
            book.add(stop)
        return book

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, stop_id: object) -> bool:
        return stop_id in self._where

    def add(self, stop: TrailStop) -> None:
        """Index a stop (replacing one with the same id)."""
        self.discard([stop.id])
        key = (stop.symbol, stop.side)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track()
        sign = 1.0 if stop.side == LONG else -1.0
        if stop.peak is None:  # waits for its activation (none: the next price starts it)
            start = sign * stop.activation if stop.activation is not None else float("-inf")
            at = bisect_right(track.starts, start)
            track.starts.insert(at, start)
            track.waiting.insert(at, (stop.distance, stop.id))
        else:
            self._join(track, sign * stop.peak, [(stop.distance, stop.id)])
        self._where[stop.id] = key

    def discard(self, stop_ids: Iterable[int]) -> int:
        gone = 0
        for stop_id in stop_ids:
            key = self._where.pop(stop_id, None)
            if key is None:
                continue
            track = self._tracks[key]
            gone += 1
            for at, (_, waiting_id) in enumerate(track.waiting):
                if waiting_id == stop_id:
                    del track.starts[at], track.waiting[at]
                    break
            else:
                for group in track.groups:
                    if stop_id in group.ids:
                        at = group.ids.index(stop_id)
                        del group.ids[at], group.dists[at]
                        break
                track.groups = [g for g in track.groups if g.ids]
                track.settle_top()
            if not track.starts and not track.groups:
                del self._tracks[key]
        return gone

    def due(self, prices: Mapping[str, float]) -> TrailPass:
        """Activate, raise and fire against one snapshot. Fired stops leave the book."""
        found = TrailPass()
        emptied = []
        for key, track in self._tracks.items():
            price = prices.get(key[0])
            if price is None:
                continue
            x = price if key[1] == LONG else -price
            moved = False
            if track.starts and track.starts[0] <= x:
                end = bisect_right(track.starts, x)
                woken = track.waiting[:end]
                del track.starts[:end], track.waiting[:end]
                self._join(track, x, woken)
                moved = True
            if track.groups and track.groups[0].peak < x:
                self._raise(track, x)
                moved = True
            if moved:
                found.moved.append((key[0], key[1], price))
            if x <= track.top:
                self._fire(key, track, x, price, found.fired)
                if not track.starts and not track.groups:
                    emptied.append(key)
        for key in emptied:
            del self._tracks[key]
        return found

    def _raise(self, track: _Track, x: float) -> None:
        """Every group under the new best joins one group at it (the price now leads them)."""
        under = 0
        while under < len(track.groups) and track.groups[under].peak < x:
            under += 1
        if under == 1:
            track.groups[0].peak = x  # the common case in a rising market: one number
        else:
            pairs = [p for g in track.groups[:under] for p in zip(g.dists, g.ids, strict=True)]
            del track.groups[:under]
            self._join(track, x, pairs)
            return
        track.settle_top()

    def _join(self, track: _Track, peak: float, pairs: list[tuple[float, int]]) -> None:
        """Put stops into the group at `peak` (a new one, kept in peak order)."""
        at = 0
        while at < len(track.groups) and track.groups[at].peak < peak:
            at += 1
        if at < len(track.groups) and track.groups[at].peak == peak:
            group = track.groups[at]
            for dist, stop_id in pairs:
                where = bisect_right(group.dists, dist)
                group.dists.insert(where, dist)
                group.ids.insert(where, stop_id)
        else:
            pairs = sorted(pairs)
            group = _Group(peak, [d for d, _ in pairs], [i for _, i in pairs])
            track.groups.insert(at, group)
        track.settle_top()

    def _fire(
        self, key: tuple[str, str], track: _Track, x: float, price: float, out: list[Fired]
    ) -> None:
        for group in track.groups:
            end = bisect_right(group.dists, group.peak - x)
            for stop_id in group.ids[:end]:
                out.append(Fired(stop_id, key[0], key[1], price))
                self._where.pop(stop_id, None)
            del group.dists[:end], group.ids[:end]
        track.groups = [g for g in track.groups if g.ids]
        track.settle_top()
