"""Calendar periods in a trader's timezone: where a day, week (from Monday) or month begins.

Every boundary is a local midnight turned into a UTC instant, so a day that a daylight-saving
change makes 23 or 25 hours long is one period of that length, and the store compares plain
UTC milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

UNITS = ("day", "week", "month")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True, frozen=True)
class Period:
    """One local day, week or month: `first` is its first local date."""

    first: date
    start: datetime  # UTC
    end: datetime  # UTC, exclusive


def midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which `day` begins in `tz`.

    Where a change skips midnight itself (Santiago: 00:00 → 01:00), zoneinfo reads the
    missing 00:00 with the offset before the change, which is the instant the day's first
    existing minute (01:00) begins: the day is 23 hours long, as the trader's clock shows it.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def first_of(unit: str, day: date) -> date:
    """The first date of the day, week (Monday) or month holding `day`."""
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def step(unit: str, first: date, count: int) -> date:
    """The first date `count` periods after (negative: before) the period starting `first`."""
    if unit == "day":
        return first + timedelta(days=count)
    if unit == "week":
        return first + timedelta(weeks=count)
    months = first.year * 12 + first.month - 1 + count
    return date(months // 12, months % 12 + 1, 1)


def recent(unit: str, count: int, now: datetime, tz: tzinfo) -> list[Period]:
    """The last `count` periods up to the current one, newest first."""
    current = first_of(unit, now.astimezone(tz).date())
    firsts = [step(unit, current, -i) for i in range(count + 1)]  # one more: the ends
    return [
        Period(
            first, midnight(first, tz), midnight(firsts[i - 1], tz) if i else _next(unit, first, tz)
        )
        for i, first in enumerate(firsts[:count])
    ]


def start_of(period: str, now: datetime, tz: tzinfo) -> datetime:
    """UTC start of today, this week, this month, or the epoch for "all"."""
    if period not in UNITS:
        return EPOCH
    return midnight(first_of(period, now.astimezone(tz).date()), tz)


def _next(unit: str, first: date, tz: tzinfo) -> datetime:
    return midnight(step(unit, first, 1), tz)
