"""The candle store on real SQLite: batched idempotent inserts, gaps filled on the next run,
retention, and a range fetched once per (symbol, timeframe, range)."""

from __future__ import annotations

from datetime import UTC, datetime

from db.repositories.candles import CandleRepository, read_block
from db.store import Store
from services.candles import PAGE, CandleStore
from tests.fakes.candles import FakeCandleFeed
from tests.fakes.clock import FakeClock

SYMBOLS = ["AAA/USDT:USDT", "BBB/USDT:USDT", "CCC/USDT:USDT"]
NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY_MS = 86_400_000


def build(store: Store, clock: FakeClock, **options: int) -> tuple[CandleStore, FakeCandleFeed]:
    feed = FakeCandleFeed(clock, SYMBOLS)
    candles = CandleStore(
        CandleRepository(store), lambda: SYMBOLS, feed, clock, backfill_days=2, **options
    )
    return candles, feed


async def count(store: Store, timeframe: str) -> int:
    return int(
        await store.fetchval(
            "t.count",
            "SELECT COUNT(*) FROM candles JOIN candle_series s ON s.id = series "
            "WHERE s.timeframe = ?",
            (timeframe,),
        )
    )


async def test_the_first_run_backfills_and_a_second_run_adds_only_the_new_bars(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    candles, feed = build(store, clock)
    first = await candles.collect()
    assert await count(store, "5m") == 3 * 2 * 288 and await count(store, "1h") == 3 * 48
    assert first.added == 3 * 2 * 288 + 3 * 48
    assert first.requests == 3 * 1 + 3 * 1 and "candles: fetch" in first.line()  # 576 ≤ PAGE
    feed.requests.clear()
    again = await candles.collect()
    assert again.added == 0 and again.requests == 0 and feed.requests == []
    clock.advance(3_600)  # an hour later: twelve 5-minute bars and one hourly bar each
    later = await candles.collect()
    assert later.added == 3 * 12 + 3 * 1 and later.requests == 6


async def test_downtime_leaves_a_gap_that_the_next_run_fills_page_by_page(store: Store) -> None:
    clock = FakeClock(NOW)
    candles, feed = build(store, clock)
    await candles.collect()
    clock.advance(5 * 86_400)  # five days down: 1,440 bars per symbol, two pages each
    feed.requests.clear()
    report = await candles.collect()
    assert report.added == 3 * 1_440 + 3 * 120
    assert sum(1 for r in feed.requests if r[1] == "5m") == 3 * 2
    assert max(r[3] for r in feed.requests) == PAGE
    start = int(NOW.timestamp() * 1000) - 2 * DAY_MS
    series = await candles.ensure(SYMBOLS, "5m", start, start + 7 * DAY_MS)
    _, values = read_block(store.path, list(series[0].values()), start, start + 7 * DAY_MS, 300_000)
    assert not (values != values).any()  # no NaN: every bar of the 7 days is stored


async def test_inserting_the_same_candles_twice_keeps_one_copy(store: Store) -> None:
    repo = CandleRepository(store)
    ids = await repo.series("fake", "5m", SYMBOLS[:1])
    rows = [(t * 300_000, 1.0, 2.0, 0.5, 1.5, 3.0) for t in range(10)]
    assert await repo.insert([(ids[SYMBOLS[0]], rows)]) == 10
    assert await repo.insert([(ids[SYMBOLS[0]], rows[5:] + rows)]) == 0
    assert await count(store, "5m") == 10
    assert await repo.series("fake", "5m", SYMBOLS[:1]) == ids  # the series is not duplicated


async def test_candles_older_than_the_retention_are_deleted(store: Store) -> None:
    clock = FakeClock(NOW)
    candles, _ = build(store, clock, retention_days=7)
    await candles.collect()
    clock.advance(4 * 86_400)
    await candles.collect()
    assert await count(store, "5m") == 3 * 6 * 288
    clock.advance(2 * 86_400)  # 8 days stored, one more than kept
    report = await candles.collect()
    assert report.pruned == 3 * 288 + 3 * 24  # the oldest day of both timeframes
    assert await count(store, "5m") == 3 * 7 * 288


async def test_a_range_is_fetched_once_for_any_number_of_backtests(store: Store) -> None:
    clock = FakeClock(NOW)
    candles, feed = build(store, clock)
    start, end = candles.span(30)
    ids, report = await candles.ensure(SYMBOLS, "5m", start, end)
    assert report.added == 3 * 30 * 288 and len(ids) == 3
    assert len(feed.requests) == 3 * 9  # 8,640 bars each: nine pages of up to 1,000
    feed.requests.clear()
    again, report = await candles.ensure(SYMBOLS, "5m", start, end)
    assert again == ids and report.requests == 0 and feed.requests == []


async def test_the_collector_stops_at_its_request_budget_and_goes_on_next_run(
    store: Store,
) -> None:
    clock = FakeClock(NOW)
    many = [f"S{i:02d}/USDT:USDT" for i in range(40)]
    feed = FakeCandleFeed(clock, many)
    candles = CandleStore(
        CandleRepository(store), lambda: many, feed, clock, backfill_days=2, max_requests=1
    )
    first = await candles.collect()
    assert first.behind == 40 - 32  # one batch of 32 symbols, then the budget is spent
    assert await count(store, "5m") == 32 * 2 * 288
    assert (await candles.collect()).behind == 0
    assert await count(store, "5m") == 40 * 2 * 288
