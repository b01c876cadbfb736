"""The price-alert index finds exactly the alerts a check of every alert would find."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from db.repositories.price_alerts import ABOVE, BELOW, ActiveLevel
from services.alert_book import AlertBook

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT")


def brute(levels: dict[int, ActiveLevel], prices: dict[str, float]) -> set[int]:
    """Every alert looked at one by one: the answer the index must give."""
    due = set()
    for alert in levels.values():
        price = prices.get(alert.symbol)
        if price is None:
            continue
        if alert.direction == ABOVE and price >= alert.threshold:
            due.add(alert.id)
        if alert.direction == BELOW and price <= alert.threshold:
            due.add(alert.id)
    return due


# Few distinct thresholds, so equal levels, ties with the price and duplicates are common.
levels_st = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from((ABOVE, BELOW)),
        st.integers(1, 20).map(float),
    ),
    max_size=60,
)
prices_st = st.dictionaries(st.sampled_from(SYMBOLS), st.integers(0, 21).map(float))


@settings(max_examples=300, deadline=None)
@given(levels_st, prices_st, st.data())
def test_due_matches_a_check_of_every_alert(
    raw: list[tuple[str, str, float]], prices: dict[str, float], data: st.DataObject
) -> None:
    levels = {i: ActiveLevel(i, s, d, t) for i, (s, d, t) in enumerate(raw, start=1)}
    book = AlertBook.of(levels.values())  # in any order, not the store's
    removed = data.draw(st.sets(st.sampled_from(sorted(levels))) if levels else st.just(set()))
    assert book.discard(removed) == len(removed)
    assert book.discard(removed) == 0  # already gone
    alive = {i: a for i, a in levels.items() if i not in removed}
    assert len(book) == len(alive)

    hits = [(i, c.symbol, c.price) for c in book.due(prices) for i in c.alert_ids]
    assert sorted(i for i, _, _ in hits) == sorted(brute(alive, prices))
    assert all(alive[i].symbol == s and p == prices[s] for i, s, p in hits)

    book.discard(i for i, _, _ in hits)  # fired: never due again
    assert book.due(prices) == []
    assert len(book) == len(alive) - len(hits)


def test_a_large_random_book_against_the_brute_force_check() -> None:
    rng = random.Random(13)
    symbols = [f"S{n}/USDT:USDT" for n in range(200)]
    start = {s: rng.uniform(0.01, 70_000) for s in symbols}
    levels: dict[int, ActiveLevel] = {}
    for i in range(1, 20_001):
        symbol = rng.choice(symbols)
        direction = rng.choice((ABOVE, BELOW))
        move = rng.uniform(0.001, 0.2)
        level = start[symbol] * (1 + move if direction == ABOVE else 1 - move)
        levels[i] = ActiveLevel(i, symbol, direction, level)
    store_order = sorted(levels.values(), key=lambda a: (a.symbol, a.direction, a.threshold))
    book = AlertBook.of(store_order)
    for _ in range(5):
        prices = {s: p * rng.uniform(0.9, 1.1) for s, p in start.items() if rng.random() < 0.95}
        hits = [i for c in book.due(prices) for i in c.alert_ids]
        expected = brute(levels, prices)
        assert set(hits) == expected
        assert len(hits) == len(expected) > 0
        book.discard(expected)
        for alert_id in expected:
            del levels[alert_id]
        added = ActiveLevel(max(levels) + 1, symbols[0], ABOVE, start[symbols[0]] * 1.5)
        book.add(added)
        levels[added.id] = added
    assert len(book) == len(levels)
