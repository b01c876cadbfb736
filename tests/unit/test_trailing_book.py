"""The trailing-stop index moves and fires exactly the stops a step-by-step model of every
stop would, over any sequence of snapshots."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from services.trailing_book import LONG, SHORT, TrailBook, TrailStop

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")


@dataclass
class Model:
    """One stop followed by hand: the answer the index must give."""

    stop: TrailStop
    peak: float | None

    def step(self, price: float) -> bool:
        """Apply one price; True when the stop fires."""
        long = self.stop.side == LONG
        if self.peak is None:
            start = self.stop.activation
            if start is not None and (price < start if long else price > start):
                return False
            self.peak = price
        self.peak = max(self.peak, price) if long else min(self.peak, price)
        level = self.peak - self.stop.distance if long else self.peak + self.stop.distance
        return price <= level if long else price >= level


stops_st = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from((LONG, SHORT)),
        st.integers(1, 6).map(float),  # distance
        st.one_of(st.none(), st.integers(5, 25).map(float)),  # activation
        st.one_of(st.none(), st.integers(5, 25).map(float)),  # peak (None: waiting)
    ),
    max_size=40,
)
ticks_st = st.lists(
    st.dictionaries(st.sampled_from(SYMBOLS), st.integers(1, 30).map(float)), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(stops_st, ticks_st, st.data())
def test_the_index_fires_what_every_stop_checked_by_hand_fires(
    stops: list[tuple[str, str, float, float | None, float | None]],
    ticks: list[dict[str, float]],
    data: st.DataObject,
) -> None:
    made = [TrailStop(i, *row) for i, row in enumerate(stops)]
    book = TrailBook.of(made)
    models = {s.id: Model(s, s.peak) for s in made}
    removed = data.draw(st.sets(st.sampled_from(sorted(models)))) if models else set()
    assert book.discard(removed) == len(removed)
    for stop_id in removed:
        del models[stop_id]
    for prices in ticks:
        found = book.due(prices)
        fired = {f.id for f in found.fired}
        expected = {
            i
            for i, m in models.items()
            if m.stop.symbol in prices and m.step(prices[m.stop.symbol])
        }
        assert fired == expected
        assert len(found.fired) == len(fired)  # each once
        for stop_id in fired:
            del models[stop_id]
        assert len(book) == len(models)


def test_a_rising_market_moves_one_peak_per_symbol_not_one_per_stop() -> None:
    stops = [TrailStop(i, "BTC/USDT:USDT", LONG, float(1 + i % 7), peak=100.0) for i in range(500)]
    book = TrailBook.of(stops)
    for price in (101.0, 102.5, 104.0):
        found = book.due({"BTC/USDT:USDT": price})
        assert found.moved == [("BTC/USDT:USDT", LONG, price)] and found.fired == []
    found = book.due({"BTC/USDT:USDT": 101.5})  # 2.5 under the best: distances 1 and 2 fire
    assert {f.id for f in found.fired} == {i for i in range(500) if 1 + i % 7 <= 2.5}
    assert len(book) == 500 - len(found.fired)


def test_a_waiting_stop_activates_at_its_price_and_a_short_mirrors_a_long() -> None:
    book = TrailBook.of(
        [
            TrailStop(1, "ETH/USDT:USDT", SHORT, 5.0, activation=90.0),
            TrailStop(2, "ETH/USDT:USDT", LONG, 5.0, activation=110.0),
        ]
    )
    assert book.due({"ETH/USDT:USDT": 95.0}).moved == []  # neither reached
    found = book.due({"ETH/USDT:USDT": 88.0})  # the short activates at 88: stop at 93
    assert found.moved == [("ETH/USDT:USDT", SHORT, 88.0)] and found.fired == []
    assert book.due({"ETH/USDT:USDT": 92.0}).fired == []
    (fired,) = book.due({"ETH/USDT:USDT": 93.0}).fired
    assert (fired.id, fired.side, fired.price) == (1, SHORT, 93.0)
    assert 2 in book and 1 not in book
