"""The scanner's vectorised maths against arrays worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.features import (
    Bars,
    RingBook,
    atr,
    confirm,
    interval_volume,
    listing_age_h,
    log_return,
    prescore,
    range_position,
    realised_vol,
    suggest,
    top_k,
    volume_zscore,
)

NAN = math.nan


def test_ring_book_keeps_the_newest_columns_in_order_and_new_symbols_start_empty() -> None:
    book = RingBook(capacity=3)
    book.append(10.0, ["A", "B"], np.array([1.0, 2.0]), np.array([100.0, 200.0]))
    book.append(20.0, ["A", "B"], np.array([1.1, 2.2]), np.array([110.0, 220.0]))
    book.append(30.0, ["A", "C"], np.array([1.2, 9.0]), np.array([120.0, 900.0]))
    rows = book.append(40.0, ["A", "B", "C"], np.array([1.3, 2.4, 9.9]), np.array([1, 2, 3.0]))

    times, prices, volumes = book.window(rows)

    assert times.tolist() == [20.0, 30.0, 40.0]  # the oldest scan fell out
    np.testing.assert_array_equal(prices[0], [1.1, 1.2, 1.3])
    np.testing.assert_array_equal(prices[1], [2.2, NAN, 2.4])  # B missed one scan
    np.testing.assert_array_equal(prices[2], [NAN, 9.0, 9.9])  # C is new
    np.testing.assert_array_equal(volumes[2], [NAN, 900.0, 3.0])


def test_log_return_over_a_lag() -> None:
    prices = np.array([[100.0, 110.0, 121.0], [50.0, NAN, 25.0]])
    np.testing.assert_allclose(log_return(prices, 1), [math.log(1.1), NAN])
    np.testing.assert_allclose(log_return(prices, 2), [math.log(1.21), math.log(0.5)])
    assert np.isnan(log_return(prices, 3)).all()  # not enough history


def test_realised_vol_is_root_sum_of_squared_log_returns() -> None:
    prices = np.array([[100.0, 110.0, 99.0], [10.0, 10.0, 10.0], [NAN, NAN, 5.0]])
    r1, r2 = math.log(1.1), math.log(0.9)
    result = realised_vol(prices)
    assert result[0] == pytest.approx(math.sqrt(r1 * r1 + r2 * r2))
    assert result[1] == 0.0
    assert np.isnan(result[2])


def test_interval_volume_from_the_rolling_24h_total() -> None:
    totals = np.array([[1000.0, 1010.0, 1005.0, 1030.0]])
    # A fall means old volume left the 24 h window: unknown, not negative trading.
    np.testing.assert_array_equal(interval_volume(totals), [[10.0, NAN, 25.0]])


def test_volume_zscore_against_the_baseline_before_the_last_interval() -> None:
    per_interval = np.array(
        [
            [10.0, 12.0, 8.0, 10.0, 40.0],  # baseline mean 10, std √2
            [10.0, 10.0, 10.0, 10.0, 10.0],  # no variation: std floored at 5 % of mean
            [NAN, NAN, 10.0, 10.0, 50.0],  # only two baseline intervals: unknown
        ]
    )
    z, ratio = volume_zscore(per_interval)
    assert z[0] == pytest.approx(30.0 / math.sqrt(2.0))
    assert ratio[0] == pytest.approx(4.0)
    assert z[1] == pytest.approx(0.0)
    assert ratio[1] == pytest.approx(1.0)
    assert np.isnan(z[2]) and np.isnan(ratio[2])


def test_range_position_and_listing_age() -> None:
    pos = range_position(np.array([105.0, 100.0, 7.0, 120.0]), np.array([100.0] * 3 + [100.0]),
                         np.array([110.0, 110.0, 7.0, 110.0]))  # fmt: skip
    np.testing.assert_allclose(pos, [0.5, 0.0, 0.5, 1.0])  # flat range → middle; clipped
    np.testing.assert_allclose(listing_age_h(7_200.0, np.array([0.0, 3_600.0])), [2.0, 1.0])


def test_prescore_weights_move_volume_extreme_and_newness() -> None:
    score = prescore(
        ret_short=np.array([0.0, 0.02, 0.011, NAN]),
        ret_long=np.array([0.0, 0.0, 0.0, NAN]),
        vol_z=np.array([0.0, 6.0, 3.5, NAN]),
        range_pos=np.array([0.5, 1.0, 0.95, 0.5]),
        age_h=np.array([1000.0, 10.0, 48.0, NAN]),
    )
    # 2: move (0.011-0.002)/0.018 = 0.5, volume (3.5-1)/5 = 0.5, extreme (0.9-0.8)/0.2 = 0.5,
    #    new (72-48)/48 = 0.5 → 0.35·0.5 + 0.35·0.5 + 0.2·0.5 + 0.1·0.5 = 0.5
    np.testing.assert_allclose(score, [0.0, 1.0, 0.5, 0.0])


def test_top_k_picks_the_best_above_the_floor_best_first() -> None:
    scores = np.array([0.1, 0.9, 0.0, 0.5, 0.7, 0.9])
    assert top_k(scores, 3).tolist() == [1, 5, 4]
    assert top_k(scores, 10, floor=0.4).tolist() == [1, 5, 4, 3]
    assert top_k(scores, 0).tolist() == []


def test_atr_averages_the_true_range_of_complete_bars() -> None:
    high = np.array([[11.0, 12.0, 14.0, 13.0, 99.0]])
    low = np.array([[9.0, 10.0, 11.0, 8.0, 1.0]])
    close = np.array([[10.0, 11.0, 13.0, 9.0, 50.0]])
    # true ranges of bars 1..3: max(2, 2, 0)=2, max(3, 3, 0)=3, max(5, 0, 5)=5; bar 4 is forming
    assert atr(high, low, close, period=3)[0] == pytest.approx(10.0 / 3.0)


def _bars(closes: list[float], volumes: list[float]) -> Bars:
    c = np.array([closes])
    return Bars(high=c * 1.001, low=c * 0.999, close=c, volume=np.array([volumes]))


def test_confirm_scores_a_volume_spike_breaking_out_of_the_range() -> None:
    closes = [100.0] * 16 + [100.5, 101.0, 103.0, 104.0]
    volumes = [10.0] * 18 + [50.0, 5.0]  # the last complete bar traded ×5 the hour before
    (verdict,) = confirm(_bars(closes, volumes), np.array([1000.0]))
    assert verdict is not None
    assert verdict.side == "long"
    assert verdict.score == 1.0  # volume 0.40 + move 0.35 + breakout 0.25
    assert verdict.reasons[0] == "volume ×5.0 vs 1h"
    assert "breakout above 2h high" in verdict.reasons  # 20 bars of 5 minutes
    assert verdict.move_pct == pytest.approx(3.5 / 100.5 * 100)  # against 3 bars ago


def test_confirm_a_quiet_market_scores_low_and_short_histories_are_skipped() -> None:
    quiet = _bars([100.0] * 20, [10.0] * 20)
    (verdict,) = confirm(quiet, np.array([NAN]))
    assert verdict is not None and verdict.score == 0.0
    assert verdict.reasons == ("volatility 0.2 %",)
    assert confirm(_bars([100.0] * 5, [1.0] * 5), np.array([1.0])) == [None]


def test_confirm_a_dump_is_a_short_and_a_new_listing_gets_a_bonus() -> None:
    closes = [100.0] * 16 + [99.0, 98.0, 96.0, 95.0]
    volumes = [10.0] * 20
    (verdict,) = confirm(_bars(closes, volumes), np.array([12.0]))
    assert verdict is not None and verdict.side == "short"
    assert "breakdown below 2h low" in verdict.reasons and "new listing" in verdict.reasons


def test_suggest_stops_at_one_and_a_half_atr_and_sizes_leverage_from_it() -> None:
    assert suggest(1.0, 50) == (6, 3.0, 1.5)  # 10 % / 1.5 % → 6×
    assert suggest(0.1, 50) == (20, 0.6, 0.3)  # floor of 0.3 %, cap of 20×
    assert suggest(0.1, 8) == (8, 0.6, 0.3)  # the market's own cap
    assert suggest(20.0, 50) == (1, 50.0, 25.0)
