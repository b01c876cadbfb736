"""Trailing stops and take-profit ladders in the backtest, on paths drawn by hand (each
expected exit worked out in its comment), then against a bar-by-bar replay of the same rules
on random walks long enough to span several steps of the vectorised search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.backtest_engine import Strategy, exits
from services.backtest_exits import (
    BREAK_EVEN,
    END,
    LIQUIDATED,
    STOP,
    TAKE,
    TRAIL,
    ExitRules,
    managed_exits,
)
from services.features import Bars

Path = list[tuple[float, float, float]]  # (high, low, close) per bar after the entry bar


def bars_of(path: Path, entry: float = 100.0) -> Bars:
    rows = [(entry, entry, entry), *path]
    high, low, close = (np.array([[r[i] for r in rows]]) for i in range(3))
    return Bars(high, low, close, np.ones_like(close))


def exit_of(path: Path, up: bool = True, **settings: object) -> tuple[int, int, float]:
    options: dict[str, object] = {"tp_pct": 50.0, "sl_pct": 1.5, "leverage": 5}
    options.update(settings)
    rules = ExitRules(**options)  # type: ignore[arg-type]
    one = np.array([0])
    bar, kind, price = managed_exits(bars_of(path), one, one, np.array([up]), rules)
    return int(bar[0]), int(kind[0]), float(price[0])


def test_a_trailing_stop_follows_the_high_and_fires_on_a_later_bar() -> None:
    # Trail 2 (2 % of 100). Bar 1 reaches 110, but its low 107.5 meets the stop as it stood at
    # the entry (98), not 108: nothing is known of the path inside a bar. Bar 2's stop is 108.
    path = [(110, 107.5, 109), (109, 107.9, 108)]
    assert exit_of(path, trail_pct=2.0) == (2, TRAIL, 108.0)


def test_a_trailing_stop_waits_for_its_activation_profit() -> None:
    # Trail 1 from +3 % (103). Bars 1-2 stay under 103: a stop at 101.5 would have fired on
    # bar 2's low 101, but it is not active. Bar 3 reaches 104; bar 4's stop is 103.
    path = [(102.5, 100.5, 102), (102, 101, 101.5), (104, 102.5, 103.8), (103.5, 102.9, 103)]
    assert exit_of(path, trail_pct=1.0, activation_pct=3.0) == (4, TRAIL, 103.0)
    assert exit_of(path, trail_pct=1.0) == (2, TRAIL, 101.5)


def test_a_shorts_trailing_stop_follows_the_low() -> None:
    path = [(99, 97, 98), (96, 94, 95), (96.5, 95, 96)]  # lowest 94: the stop 96 on bar 3
    assert exit_of(path, up=False, trail_pct=2.0) == (3, TRAIL, 96.0)


def test_the_higher_of_the_fixed_and_the_trailing_stop_fires() -> None:
    # Trail 5: its stop (95) is under the fixed one (98.5), which fires.
    assert exit_of([(100.5, 98, 99)], trail_pct=5.0) == (1, STOP, 98.5)
    # Leverage 50: liquidation at 2 % under the entry, but the trail (99) is above it.
    assert exit_of([(100.5, 98, 99)], trail_pct=1.0, sl_pct=5.0, leverage=50) == (1, TRAIL, 99)
    assert exit_of([(100.5, 97, 99)], sl_pct=5.0, leverage=50, trail_pct=5.0) == (
        1, LIQUIDATED, 98.0,
    )  # fmt: skip


def test_a_bar_reaching_the_target_and_the_trailing_stop_counts_as_the_stop() -> None:
    path = [(103, 101, 102.5), (105.5, 101.5, 105)]  # target 105, stop 102 on bar 2: both
    assert exit_of(path, tp_pct=5.0, trail_pct=1.0) == (2, TRAIL, 102.0)


def test_a_ladder_closes_its_parts_and_the_rest_rides_the_stop() -> None:
    # 50 % at 102 (bar 1), 30 % at 104 (bar 2), the last 20 % at the stop 98.5 (bar 3).
    path = [(102.5, 100.5, 102), (104.2, 101, 103), (101, 98, 99)]
    bar, kind, price = exit_of(path, ladder=((2.0, 50.0), (4.0, 30.0)))
    assert (bar, kind) == (3, STOP)
    assert price == pytest.approx(0.5 * 102 + 0.3 * 104 + 0.2 * 98.5)


def test_break_even_moves_the_stop_to_the_entry_after_the_first_part() -> None:
    path = [(102.5, 100.5, 102), (101, 99.9, 100.2), (101, 100.5, 101)]
    bar, kind, price = exit_of(path, ladder=((2.0, 50.0),), breakeven=True)
    assert (bar, kind, price) == (2, BREAK_EVEN, pytest.approx(0.5 * 102 + 0.5 * 100))
    bar, kind, price = exit_of(path, ladder=((2.0, 50.0),))  # without it: open to the end
    assert (bar, kind, price) == (3, END, pytest.approx(0.5 * 102 + 0.5 * 101))


def test_a_bar_reaching_a_part_and_the_stop_counts_as_the_stop() -> None:
    bar, kind, price = exit_of([(102.5, 98, 100)], ladder=((2.0, 50.0),), breakeven=True)
    assert (bar, kind, price) == (1, STOP, 98.5)


def test_a_ladder_of_all_the_position_closes_with_its_last_part() -> None:
    path = [(102.5, 100.5, 102), (103, 101, 102), (104.5, 103, 104), (101, 90, 91)]
    bar, kind, price = exit_of(path, ladder=((2.0, 50.0), (4.0, 50.0)), tp_pct=2.5)
    assert (bar, kind, price) == (3, TAKE, pytest.approx(103.0))  # the ladder replaces the TP


def test_a_ladder_with_break_even_and_a_trailing_stop() -> None:
    # Bar 1 fills the first part at 102; bar 2's stop: max(98.5, 102.5 − 1, entry 100) = 101.5.
    path = [(102.5, 100.8, 102), (103, 101.4, 102)]
    bar, kind, price = exit_of(path, trail_pct=1.0, ladder=((2.0, 50.0),), breakeven=True)
    assert (bar, kind, price) == (2, TRAIL, pytest.approx(0.5 * 102 + 0.5 * 101.5))


def reference(bars: Bars, row: int, at: int, up: bool, s: Strategy) -> tuple[int, int, float]:
    """The same rules, one bar at a time (mirrored prices: a short's are negated)."""
    sign = 1.0 if up else -1.0
    ref = float(bars.close[row, at])
    stop_pct = min(s.sl_pct, 100.0 / s.leverage)
    stop_kind = LIQUIDATED if s.sl_pct > stop_pct else STOP
    entry, stop = sign * ref, sign * (ref * (1 - sign * stop_pct / 100))
    take = sign * (ref * (1 + sign * s.tp_pct / 100)) if not s.ladder else math.inf
    gap = ref * s.trail_pct / 100 if s.trail_pct is not None else math.inf
    act = s.trail_activation_pct
    start = sign * (ref * (1 + sign * act / 100)) if act is not None else -math.inf
    parts = [(sign * (ref * (1 + sign * pct / 100)), share / 100) for pct, share in s.ladder]
    filled = [False] * len(parts)
    peak, even, got, rest = entry, False, 0.0, 1.0
    last = at
    for j in range(at + 1, bars.close.shape[1]):
        hi = bars.high[row, j] if up else -bars.low[row, j]
        lo = bars.low[row, j] if up else -bars.high[row, j]
        if math.isnan(hi):
            continue
        last = j
        trail = peak - gap if peak >= start else -math.inf
        level = max(stop, trail, entry if even else -math.inf)
        if lo <= level:
            kind = TRAIL if trail >= level else BREAK_EVEN if even else stop_kind
            return j, kind, sign * (got + rest * level)
        if hi >= take:
            return j, TAKE, sign * take
        for i, (price, share) in enumerate(parts):
            if not filled[i] and hi >= price:
                filled[i], got, rest = True, got + share * price, rest - share
                even = even or (i == 0 and s.ladder_breakeven)
        if parts and all(filled) and rest < 1e-9:
            return j, TAKE, sign * got
        peak = max(peak, hi)
    return last, END, sign * (got + max(rest, 0.0) * sign * float(bars.close[row, last]))


def walks(symbols: int, width: int, seed: int) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, (symbols, width)), axis=1))
    high = close * (1 + rng.uniform(0, 0.004, close.shape))
    low = close * (1 - rng.uniform(0, 0.004, close.shape))
    close[-1, width - 50 :] = high[-1, width - 50 :] = low[-1, width - 50 :] = np.nan  # delisted
    return Bars(high, low, close, np.ones_like(close))


SETTINGS = [
    Strategy(trail_pct=1.0),
    Strategy(trail_pct=0.8, trail_activation_pct=1.5, tp_pct=6.0),
    Strategy(ladder=((1.0, 40.0), (2.0, 30.0), (3.0, 30.0)), sl_pct=2.0),
    Strategy(ladder=((1.0, 50.0), (2.5, 25.0)), ladder_breakeven=True, trail_pct=2.0),
    Strategy(trail_pct=3.0, sl_pct=30.0, leverage=10, ladder=((5.0, 20.0),)),
    # Wide: a third of the exits come after the first step of the search (a day of bars).
    Strategy(
        trail_pct=6.0,
        trail_activation_pct=4.0,
        sl_pct=9.0,
        ladder=((3.0, 30.0), (7.0, 30.0)),
        ladder_breakeven=True,
    ),
    Strategy(trail_pct=7.0, sl_pct=12.0, tp_pct=15.0),
]


@pytest.mark.parametrize("strategy", SETTINGS)
def test_the_vectorised_search_matches_a_bar_by_bar_replay(strategy: Strategy) -> None:
    bars = walks(6, 900, seed=7)
    rows = np.repeat(np.arange(6), 8)
    at = np.tile(np.arange(0, 800, 100), 6)
    up = (rows + at // 100) % 2 == 0
    found = managed_exits(bars, rows, at, up, strategy.exit_rules)
    for n in range(rows.size):
        expected = reference(bars, int(rows[n]), int(at[n]), bool(up[n]), strategy)
        got = (int(found[0][n]), int(found[1][n]), float(found[2][n]))
        assert got[:2] == expected[:2] and got[2] == pytest.approx(expected[2]), n


def test_with_neither_set_the_exits_are_the_plain_ones_to_the_last_bit() -> None:
    bars = walks(5, 1_000, seed=3)
    rows = np.repeat(np.arange(5), 9)
    at = np.tile(np.arange(0, 900, 100), 5)
    up = at % 200 == 0
    for strategy in (Strategy(), Strategy(sl_pct=30.0, leverage=10, tp_pct=1.0)):
        plain = exits(bars, rows, at, up, strategy)
        rules = ExitRules(strategy.tp_pct, strategy.sl_pct, strategy.leverage)
        bar, kind, level = managed_exits(bars, rows, at, up, rules)
        sign = np.where(up, 1.0, -1.0)
        out = level * (1 - sign * strategy.slippage_pct / 100)
        assert np.array_equal(plain[0], bar) and np.array_equal(plain[1], kind)
        assert np.array_equal(plain[3], out)


def test_candidates_beyond_one_slice_are_found_alike() -> None:
    bars = walks(7, 400, seed=11)
    rows = np.repeat(np.arange(7), 300)  # 2,100 candidates: two slices
    at = np.tile(np.arange(300), 7)
    up = at % 3 != 0
    strategy = SETTINGS[3]
    found = managed_exits(bars, rows, at, up, strategy.exit_rules)
    assert found[0].size == rows.size
    for n in range(2_000, rows.size):  # the second slice, against the bar-by-bar replay
        expected = reference(bars, int(rows[n]), int(at[n]), bool(up[n]), strategy)
        assert (int(found[0][n]), int(found[1][n])) == expected[:2]
        assert float(found[2][n]) == pytest.approx(expected[2])
