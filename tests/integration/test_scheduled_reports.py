"""Scheduled reports: who is due in which minute, what the report says, set-based and once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

from db.repositories.notifications import NotificationRepository
from db.repositories.reports import ReportRepository
from db.repositories.strategy import StrategyRecord, StrategyRepository
from db.repositories.trades import TradeLog, TradeRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.outbox import Outbox
from services.scheduled_reports import ScheduledReports
from services.unit_of_work import UnitOfWork
from tests.fakes.clock import FakeClock

MONDAY_0800_BERLIN = datetime(2026, 3, 30, 6, 0, 20, tzinfo=UTC)  # CEST, after the change


class StatementLog:
    def __init__(self) -> None:
        self.names: list[str] = []

    def observe_statement(self, name: str, seconds: float) -> None:
        self.names.append(name)


def trade(user_id: int, exit_ts: datetime, pnl: str) -> TradeLog:
    return TradeLog(
        user_id=user_id, exchange="paper", account_type="paper", symbol="BTC/USDT:USDT",
        side="long", qty=D(1), entry_price=D(1), exit_price=D(1), pnl=D(pnl), fee=D("0.5"),
        entry_ts=exit_ts - timedelta(hours=1), exit_ts=exit_ts,
    )  # fmt: skip


async def _world(store: Store, clock: FakeClock) -> ScheduledReports:
    users, strategies = UserRepository(store), StrategyRepository(store)
    settings = {
        1: ("Europe/Berlin", "08:00"),  # due now
        2: ("Europe/Berlin", "09:00"),  # not yet
        3: ("UTC", "06:00"),  # due now too
        4: ("Asia/Kolkata", "11:30"),  # 06:00 UTC is 11:30 in India: due
        5: ("Europe/Berlin", None),  # no reports
    }
    for uid, (tz, at) in settings.items():
        await users.upsert(UserProfile(uid, 1000 + uid, f"U{uid}"), clock.now())
        await strategies.save(StrategyRecord(uid, timezone=tz, report_time=at), clock.now())
    await TradeRepository(store).record_many(
        [
            trade(1, datetime(2026, 3, 29, 21, 30, tzinfo=UTC), "10"),  # Sunday 23:30 CEST
            trade(1, datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "-3"),  # Monday 00:30: today
            trade(1, datetime(2026, 3, 24, 12, tzinfo=UTC), "0"),  # last Tuesday
            trade(3, datetime(2026, 3, 29, 23, 59, tzinfo=UTC), "4"),
            trade(2, datetime(2026, 3, 29, 12, tzinfo=UTC), "99"),
        ]
    )
    outbox = Outbox(NotificationRepository(store), clock)
    return ScheduledReports(
        ReportRepository(store), TradeRepository(store), UnitOfWork(store, outbox), clock
    )


async def _queued(store: Store) -> dict[str, str]:
    rows = await store.fetchall("t.q", "SELECT dedup_key, payload FROM notifications ORDER BY id")
    return {r["dedup_key"]: json.loads(r["payload"])["text"] for r in rows}


async def test_one_run_queues_every_due_report_once(tmp_path: Path) -> None:
    clock = FakeClock(MONDAY_0800_BERLIN)
    log = StatementLog()
    async with Store(tmp_path / "r.db", observer=log) as store:
        reports = await _world(store, clock)
        log.names.clear()
        assert await reports.send_due() == 6  # three traders, daily and (Monday) weekly
        reads = [n for n in log.names if not n.startswith("notifications.")]
        assert reads == ["reports.due", "trades.periods", "reports.open_positions"]
        queued = await _queued(store)
        assert sorted(queued) == [
            "report:daily:1:2026-03-29", "report:daily:3:2026-03-29", "report:daily:4:2026-03-29",
            "report:weekly:1:2026-03-23", "report:weekly:3:2026-03-23",
            "report:weekly:4:2026-03-23",
        ]  # fmt: skip
        daily = queued["report:daily:1:2026-03-29"]
        assert daily.startswith("🗓 <b>Daily report</b> · Sun 2026-03-29 (Europe/Berlin)")
        assert "PnL: <b>+10.00 USDT</b> after 0.50 USDT fees" in daily
        assert "Trades: 1 · win rate 100% (1 won, 0 lost, 0 breakeven)" in daily
        assert "Open positions: 0" in daily
        weekly = queued["report:weekly:1:2026-03-23"]
        assert "Mon 2026-03-23 – Sun 2026-03-29" in weekly
        assert "Trades: 2 · win rate 50% (1 won, 0 lost, 1 breakeven)" in weekly
        assert "No trades closed." in queued["report:daily:4:2026-03-29"]

        clock.advance(40)  # the next run, a minute later: the previous minute again, no repeat
        assert await reports.send_due() == 0
        clock.advance(3600)  # 09:00 in Berlin: trader 2
        assert await reports.send_due() == 2
        assert "+99.00 USDT" in (await _queued(store))["report:daily:2:2026-03-29"]


async def test_a_tuesday_has_no_weekly_report_and_a_quiet_minute_reads_once(tmp_path: Path) -> None:
    clock = FakeClock(MONDAY_0800_BERLIN + timedelta(days=1))
    log = StatementLog()
    async with Store(tmp_path / "r.db", observer=log) as store:
        reports = await _world(store, clock)
        assert await reports.send_due() == 3
        assert all(k.startswith("report:daily:") for k in await _queued(store))
        clock.advance(7 * 60)
        log.names.clear()
        assert await reports.send_due() == 0
        assert log.names == ["reports.due"]
