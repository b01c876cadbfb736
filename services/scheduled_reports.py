"""The scheduled reports: yesterday's results at the trader's chosen time, and on Mondays
last week's, queued through the outbox.

One run serves every trader due in that minute with a fixed number of statements: one for
who is due (all timezones at once), one for all their period totals, one for their open
positions, one for their accounts' equity at yesterday's close and the close before, and one
transaction queuing every notice. The balances seen since the snapshot job's last run are
written first, so the report's closes include them.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime, timedelta, tzinfo

from core.clock import Clock
from db.repositories.equity import EquityClose, EquityRepository, hour_of
from db.repositories.reports import ReportRepository
from db.repositories.trades import PeriodTotals, TradeRepository
from services import periods, report_notices
from services.equity import EquityChange, EquityRecorder
from services.outbox import Notice
from services.strategy import zone
from services.unit_of_work import UnitOfWork

# A day's close is the last balance read before its end, looked for this far back: a trader
# who loaded no balance for a week is told there is none rather than shown an old figure.
CLOSE_LOOKBACK_HOURS = 7 * 24


class ScheduledReports:
    """Builds every daily and weekly report due this minute: a handful of statements in all."""

    def __init__(
        self,
        reports: ReportRepository,
        trades: TradeRepository,
        work: UnitOfWork,
        clock: Clock,
        *,
        equity: EquityRecorder | None = None,
        snapshots: EquityRepository | None = None,
    ) -> None:
        self._reports = reports
        self._trades = trades
        self._work = work
        self._clock = clock
        self._equity = equity
        self._snapshots = snapshots

    async def send_due(self) -> int:
        """Queue the reports of every trader whose report time is now; return how many.

        The minute before is asked too, so a run a few seconds late loses nobody; a report
        already queued (same trader and day) is not queued twice.
        """
        now = self._clock.now()
        earlier = now - timedelta(minutes=1)
        pairs = [pair for moment in (earlier, now) for pair in _local_times(moment)]
        targets = await self._reports.due(pairs)
        if not targets:
            return 0
        wanted: list[tuple[int, datetime, datetime]] = []
        days: dict[int, tuple[datetime, datetime]] = {}
        weekly: set[int] = set()
        for target in targets:
            tz = zone(target.timezone)
            at = now if f"{now.astimezone(tz):%H:%M}" == target.report_time else earlier
            (yesterday,) = periods.recent("day", 2, at, tz)[1:]
            wanted.append((target.user_id, yesterday.start, yesterday.end))
            days[target.user_id] = (yesterday.start, yesterday.end)
            if at.astimezone(tz).weekday() == 0:  # Monday: last week too
                (last_week,) = periods.recent("week", 2, at, tz)[1:]
                wanted.append((target.user_id, last_week.start, last_week.end))
                weekly.add(target.user_id)
        totals = await self._trades.period_totals(wanted)
        open_positions = await self._reports.open_positions({t.user_id for t in targets})
        equity = await self._equity_changes(days)
        by_user: dict[int, list[PeriodTotals]] = {}
        for row in totals:
            by_user.setdefault(row.user_id, []).append(row)
        queued: list[Notice] = []
        for target in targets:
            day, *rest = by_user[target.user_id]
            positions = open_positions.get(target.user_id, 0)
            changes = equity.get(target.user_id, []) if self._snapshots is not None else None
            queued.append(report_notices.daily_report(target, day, positions, changes))
            if rest and target.user_id in weekly:
                queued.append(report_notices.weekly_report(target, rest[0]))
        async with self._work.begin() as work:
            return await work.notify(queued)

    async def _equity_changes(
        self, days: dict[int, tuple[datetime, datetime]]
    ) -> dict[int, list[EquityChange]]:
        """Each due trader's accounts at yesterday's close and the close before, in one read
        after writing the balances seen since the snapshot job last ran."""
        if self._snapshots is None:
            return {}
        if self._equity is not None:
            await self._equity.flush()
        windows: list[tuple[int, int, int]] = []
        for user_id, (start, end) in days.items():
            for cut in (hour_of(start), hour_of(end)):
                windows.append((user_id, cut - CLOSE_LOOKBACK_HOURS, cut))
        closes = await self._snapshots.closes(windows)
        found: dict[tuple[int, int, str, str], EquityClose] = {
            (c.user_id, c.end_hour, c.exchange, c.account_type): c for c in closes
        }
        changes: dict[int, list[EquityChange]] = {}
        for c in sorted(closes, key=lambda c: (c.exchange, c.account_type)):
            start, end = days[c.user_id]
            if c.end_hour != hour_of(end):
                continue
            before = found.get((c.user_id, hour_of(start), c.exchange, c.account_type))
            changes.setdefault(c.user_id, []).append(
                EquityChange(
                    exchange=c.exchange,
                    account_type=c.account_type,
                    close=c.equity,
                    close_at=c.observed_at,
                    before=None if before is None else before.equity,
                    recorded_that_day=c.hour >= hour_of(start),
                )
            )
        return changes


def _local_times(moment: datetime) -> list[tuple[str, str]]:
    """(zone, HH:MM) of `moment` in every zone of the tz database."""
    return [(name, f"{moment.astimezone(tz):%H:%M}") for name, tz in _zones()]


@functools.cache
def _zones() -> list[tuple[str, tzinfo]]:
    return [(name, zone(name)) for name in sorted(zoneinfo.available_timezones())]
