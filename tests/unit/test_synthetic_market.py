"""The synthetic market: deterministic, realistic enough to scan, and fast."""

from __future__ import annotations

import itertools
import re
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exchange.errors import InvalidOrder
from core.exchange.models import Candle
from core.paper.market_source import TIMEFRAMES
from core.paper.synthetic import Regime, SyntheticMarket
from tests.fakes.clock import FakeClock

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _market(seed: int = 7, symbols: int = 530) -> tuple[SyntheticMarket, FakeClock]:
    clock = FakeClock(START)
    return SyntheticMarket(seed, symbols, clock=clock), clock


def _assert_candles(candles: list[Candle], seconds: int, last: Decimal) -> None:
    assert candles[-1].close == last
    for candle in candles:
        assert candle.high >= max(candle.open, candle.close)
        assert candle.low <= min(candle.open, candle.close)
        assert candle.low > 0 and candle.volume >= 0
    for before, after in itertools.pairwise(candles):
        assert after.ts - before.ts == seconds * 1000
        assert after.open == before.close  # one continuous path


def test_same_seed_and_time_give_identical_tickers() -> None:
    a, clock_a = _market()
    b, clock_b = _market()
    assert a.tickers() == b.tickers()
    for _ in range(10):  # a calls every second, b only jumps: same answer at the end
        clock_a.advance(1)
        a.tickers()
    clock_b.advance(10)
    assert a.tickers() == b.tickers()
    other, _ = _market(seed=8)
    assert other.price(BTC) != a.price(BTC)


def test_default_universe_is_530_realistic_perpetuals() -> None:
    market, _ = _market()
    markets = market.markets()
    assert len(markets) == 530 and len(market.tickers()) == 530
    assert markets[BTC].max_leverage == markets[ETH].max_leverage == 100
    assert markets["SOL/USDT:USDT"].max_leverage == 50
    prices = market.tickers()
    for symbol, m in markets.items():
        assert re.fullmatch(r"[A-Z]+", m.base) and symbol == f"{m.base}/USDT:USDT"
        assert m.exchange_id == f"{m.base}USDT" and m.settle == "USDT"
        assert m.min_notional == 5 and m.min_qty == m.lot_size
        assert 10 <= m.max_leverage <= 100
        last = prices[symbol].last
        assert last / m.tick_size >= 1000  # at least 4 significant digits of price
        assert m.lot_size * last <= 100  # one lot is a small order
        assert m.listed_at is not None and m.listed_at < START
    lasts = [t.last for t in prices.values()]
    assert min(lasts) < Decimal("0.001") and max(lasts) > 10_000
    tail = [m.max_leverage for s, m in markets.items() if s not in (BTC, ETH)]
    assert min(tail) == 10 and max(tail) <= 50


def test_tickers_are_self_consistent() -> None:
    market, clock = _market(symbols=60)
    clock.advance(3 * 3600)
    for t in market.tickers().values():
        assert t.bid is not None and t.ask is not None and t.high_24h and t.low_24h
        assert t.bid < t.last < t.ask and t.mark == t.last
        assert t.low_24h <= t.last <= t.high_24h
        assert t.quote_volume_24h > 0 and t.base_volume_24h > 0
        assert t.timestamp == clock.now()


@pytest.mark.parametrize("timeframe", list(TIMEFRAMES))
def test_candles_follow_the_price_path(timeframe: str) -> None:
    market, clock = _market(symbols=30)
    clock.advance(5 * 3600 + 17)
    candles = market.ohlcv(ETH, timeframe, 50)
    assert len(candles) == 50
    _assert_candles(candles, TIMEFRAMES[timeframe], market.price(ETH))
    clock.advance(TIMEFRAMES[timeframe])
    assert market.ohlcv(ETH, timeframe, 50)[:-2] == candles[1:-1]  # history never changes


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    offset=st.integers(0, 30 * 86_400),
    index=st.integers(0, 19),
    timeframe=st.sampled_from(list(TIMEFRAMES)),
    limit=st.integers(1, 40),
)
def test_ohlc_invariants_hold_everywhere(
    seed: int, offset: int, index: int, timeframe: str, limit: int
) -> None:
    clock = FakeClock(START)
    market = SyntheticMarket(seed, 20, clock=clock)
    clock.advance(offset)
    symbol = sorted(market.tickers())[index % len(market.tickers())]
    candles = market.ohlcv(symbol, timeframe, limit)
    assert 1 <= len(candles) <= limit
    _assert_candles(candles, TIMEFRAMES[timeframe], market.price(symbol))


def test_prices_move_continuously_second_by_second() -> None:
    market, clock = _market(symbols=5)  # the majors: a 0.5 % move in one second is a gap
    previous, worst = market.tickers(), 0.0
    majors = list(previous)
    for _ in range(2_100):  # every symbol crosses a regime-window boundary
        clock.advance(1)
        current = market.tickers()
        worst = max(worst, *(abs(float(current[s].last / previous[s].last) - 1) for s in majors))
        previous = current
    assert 0 < worst < 0.005


def test_regimes_have_different_volatility() -> None:
    market, clock = _market(symbols=40)
    clock.advance(86_400)
    ranges: dict[Regime, list[float]] = defaultdict(list)
    for symbol in sorted(market.tickers())[12:24]:
        for candle in market.ohlcv(symbol, "1m", 400)[:-1]:
            at = datetime.fromtimestamp(candle.ts / 1000 + 30, UTC)
            ranges[market.regime(symbol, at)].append(
                float((candle.high - candle.low) / candle.open)
            )
    quiet, trending, spiking = (statistics.median(ranges[r]) for r in Regime)
    assert quiet * 1.5 < trending and quiet * 3 < spiking


def test_listings_and_delistings_over_hours() -> None:
    market, clock = _market(symbols=100)
    clock.advance(10 * 3600)
    markets = market.markets()
    listed = [m for m in markets.values() if m.listed_at and m.listed_at > START]
    delisted = [m for m in markets.values() if not m.active]
    assert 20 <= len(listed) <= 40  # one per 20 minutes
    assert 1 <= len(delisted) <= 4  # one per 4 hours
    tickers = market.tickers()
    assert len(tickers) == len(markets) - len(delisted)
    assert all(m.symbol in tickers for m in listed if m.active)
    with pytest.raises(InvalidOrder, match="delisted"):
        market.ticker(delisted[0].symbol)
    newest = max(listed, key=lambda m: m.listed_at or START)
    assert 1 <= len(market.ohlcv(newest.symbol, "1h", 100)) <= 11  # no candles before listing
    replay, replay_clock = _market(symbols=100)
    replay_clock.advance(10 * 3600)  # in one jump: the same listings, names and rules
    assert replay.markets() == markets


def test_unknown_symbols_and_timeframes_are_refused() -> None:
    market, _ = _market(symbols=10)
    with pytest.raises(InvalidOrder, match="unknown symbol"):
        market.ticker("NOPE/USDT:USDT")
    with pytest.raises(InvalidOrder, match="timeframe"):
        market.ohlcv(BTC, "2m")


def test_catching_up_after_days_idle_is_cheap() -> None:
    market, clock = _market()
    market.tickers()
    clock.advance(7 * 86_400 + 5)
    started = time.perf_counter()
    tickers = market.tickers()
    assert time.perf_counter() - started < 2.0  # nothing is simulated step by step
    assert len(tickers) > 530


def test_tickers_stay_fast_once_warm() -> None:
    market, clock = _market()
    market.tickers()
    timings = []
    for _ in range(20):
        clock.advance(10)
        started = time.perf_counter()
        market.tickers()
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.025  # ~3 ms measured; generous for busy CI
    assert market.ticker(BTC) is market.ticker(BTC)  # one snapshot per clock second
    clock.advance(timedelta(seconds=1).total_seconds())
    assert market.tickers()[BTC].timestamp == clock.now()
