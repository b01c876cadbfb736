"""Calendar periods in a trader's timezone, across DST changes and odd offsets."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services import periods

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")
KOLKATA = ZoneInfo("Asia/Kolkata")


def test_a_day_in_berlin_begins_at_local_midnight() -> None:
    (today,) = periods.recent("day", 1, datetime(2026, 1, 14, 23, 30, tzinfo=UTC), BERLIN)
    # 23:30 UTC is already 00:30 on the 15th in Berlin (UTC+1 in winter)
    assert today.first == date(2026, 1, 15)
    assert (today.start, today.end) == (
        datetime(2026, 1, 14, 23, tzinfo=UTC),
        datetime(2026, 1, 15, 23, tzinfo=UTC),
    )


def test_the_spring_change_makes_a_23_hour_day_and_the_autumn_one_25() -> None:
    spring = periods.recent("day", 2, datetime(2026, 3, 30, 12, tzinfo=UTC), BERLIN)[1]
    assert spring.first == date(2026, 3, 29)
    assert spring.end - spring.start == timedelta(hours=23)
    autumn = periods.recent("day", 1, datetime(2026, 10, 25, 12, tzinfo=UTC), BERLIN)[0]
    assert autumn.end - autumn.start == timedelta(hours=25)
    assert autumn.start == datetime(2026, 10, 24, 22, tzinfo=UTC)  # CEST midnight
    assert autumn.end == datetime(2026, 10, 25, 23, tzinfo=UTC)  # CET midnight


def test_a_change_at_midnight_starts_the_day_at_its_first_minute() -> None:
    # Santiago skips 00:00–01:00 on 2026-09-06: the day begins at 01:00 local (-03).
    assert periods.midnight(date(2026, 9, 6), SANTIAGO) == datetime(2026, 9, 6, 4, tzinfo=UTC)
    day = periods.recent("day", 1, datetime(2026, 9, 6, 12, tzinfo=UTC), SANTIAGO)[0]
    assert day.end - day.start == timedelta(hours=23)


def test_periods_tile_time_without_gaps_or_overlaps() -> None:
    now = datetime(2026, 11, 3, 5, tzinfo=UTC)
    for unit in periods.UNITS:
        for tz in (UTC, BERLIN, NEW_YORK, SANTIAGO, KOLKATA):
            found = periods.recent(unit, 40, now, tz)
            assert found[0].start <= now < found[0].end
            for newer, older in itertools.pairwise(found):
                assert older.end == newer.start, (unit, tz, older)
                assert older.first == periods.step(unit, newer.first, -1)


def test_weeks_start_on_monday_and_months_on_the_first_in_local_time() -> None:
    now = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # Sunday 1 March in UTC, Monday 2nd in Berlin
    assert periods.start_of("week", now, UTC) == datetime(2026, 2, 23, tzinfo=UTC)
    assert periods.start_of("week", now, BERLIN) == datetime(2026, 3, 1, 23, tzinfo=UTC)
    early = datetime(2026, 3, 1, 3, tzinfo=UTC)  # still 28 February in New York
    assert periods.start_of("month", early, NEW_YORK) == datetime(2026, 2, 1, 5, tzinfo=UTC)
    assert periods.start_of("month", now, NEW_YORK) == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert periods.start_of("day", now, KOLKATA) == datetime(2026, 3, 1, 18, 30, tzinfo=UTC)
    assert periods.start_of("all", now, BERLIN) == periods.EPOCH


@pytest.mark.parametrize(("first", "count", "want"), [
    (date(2026, 1, 1), -1, date(2025, 12, 1)),
    (date(2026, 12, 1), 1, date(2027, 1, 1)),
    (date(2026, 3, 1), -14, date(2025, 1, 1)),
])  # fmt: skip
def test_month_steps_cross_years(first: date, count: int, want: date) -> None:
    assert periods.step("month", first, count) == want
