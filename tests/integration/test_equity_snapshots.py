"""Balance snapshots on SQLite: noted in memory, written in one statement and transaction,
read back as closes per account, and the daily report's equity change across timezones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.errors import StoreError
from core.exchange.models import Balance
from db.repositories.equity import EquityRepository, hour_of
from db.repositories.notifications import NotificationRepository
from db.repositories.reports import ReportRepository
from db.repositories.strategy import StrategyRecord, StrategyRepository
from db.repositories.trades import TradeRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.equity import EquityRecorder
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


def move_to(clock: FakeClock, at: datetime) -> None:
    clock.advance((at - clock.now()).total_seconds())


def balance(equity: str) -> Balance:
    return Balance(equity=D(equity), available=D(equity), used_margin=D(0), unrealised_pnl=D(0))


async def _rows(store: Store) -> list[tuple[int, int, str, str, str]]:
    rows = await store.fetchall(
        "t.rows",
        "SELECT user_id, hour, exchange, account_type, equity FROM equity_snapshots "
        "ORDER BY user_id, hour, exchange",
    )
    return [tuple(r) for r in rows]


async def test_flush_writes_every_account_seen_in_one_statement(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 29, 10, 5, tzinfo=UTC))
    log = StatementLog()
    async with Store(tmp_path / "e.db", observer=log) as store:
        recorder = EquityRecorder(EquityRepository(store), clock)
        recorder.observe(1, "bybit", "demo", balance("1000"))
        recorder.observe(1, "paper", "paper", balance("50"))
        clock.advance(60)
        recorder.observe(1, "bybit", "demo", balance("1010"))  # same hour: the later one wins
        recorder.observe(2, "paper", "paper", balance("7.5"))
        assert recorder.pending == 3
        log.names.clear()
        report = await recorder.flush()
        assert report is not None and report.written == 3
        assert log.names.count("equity.upsert_many") == 1  # one executemany, one transaction
        assert "3 accounts, one statement" in str(report) and "write" in str(report)
        hour = hour_of(clock.now())
        assert await _rows(store) == [
            (1, hour, "bybit", "demo", "1010"),
            (1, hour, "paper", "paper", "50"),
            (2, hour, "paper", "paper", "7.5"),
        ]
        assert recorder.pending == 0
        assert await recorder.flush() is None  # nothing seen, pruned within the hour
        clock.advance(3600)
        recorder.observe(1, "bybit", "demo", balance("990"))
        await recorder.flush()
        assert len(await _rows(store)) == 4  # a new hour is a new row


async def test_a_failed_flush_keeps_what_it_took(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 29, 10, tzinfo=UTC))
    store = Store(tmp_path / "e.db")
    await store.open()
    recorder = EquityRecorder(EquityRepository(store), clock)
    recorder.observe(1, "paper", "paper", balance("10"))
    await store.close()
    with pytest.raises(StoreError):
        await recorder.flush()
    assert recorder.pending == 1
    async with Store(tmp_path / "e.db") as reopened:
        recorder._repo = EquityRepository(reopened)  # the same recorder over a working store
        assert await recorder.flush() is not None
        assert len(await _rows(reopened)) == 1


async def test_retention_prunes_old_hours(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with Store(tmp_path / "e.db") as store:
        recorder = EquityRecorder(EquityRepository(store), clock, retention_days=30)
        recorder.observe(1, "paper", "paper", balance("1"))
        await recorder.flush()
        clock.advance(31 * 86_400)
        recorder.observe(1, "paper", "paper", balance("2"))
        report = await recorder.flush()
        assert report is not None and report.pruned == 1
        assert [r[4] for r in await _rows(store)] == ["2"]


async def test_closes_read_the_last_snapshot_of_each_account_per_window(tmp_path: Path) -> None:
    async with Store(tmp_path / "e.db") as store:
        repo = EquityRepository(store)
        clock = FakeClock(datetime(2026, 3, 28, 8, tzinfo=UTC))
        recorder = EquityRecorder(repo, clock)
        for hours, equity in ((0, "100"), (5, "110"), (30, "120")):
            move_to(clock, datetime(2026, 3, 28, 8, tzinfo=UTC) + timedelta(hours=hours))
            recorder.observe(1, "paper", "paper", balance(equity))
            await recorder.flush()
        first = hour_of(datetime(2026, 3, 28, tzinfo=UTC))
        closes = await repo.closes([(1, first, first + 24), (1, first + 24, first + 48)])
        assert [(c.end_hour - first, c.equity) for c in closes] == [(24, D(110)), (48, D(120))]
        assert await repo.closes([(2, first, first + 48)]) == []


async def _report_world(store: Store, clock: FakeClock) -> tuple[ScheduledReports, EquityRecorder]:
    users, strategies = UserRepository(store), StrategyRepository(store)
    for uid, tz in ((1, "Europe/Berlin"), (3, "UTC"), (4, "Asia/Kolkata"), (6, "UTC")):
        at = "11:30" if tz == "Asia/Kolkata" else "08:00" if tz == "Europe/Berlin" else "06:00"
        await users.upsert(UserProfile(uid, 1000 + uid, f"U{uid}"), clock.now())
        await strategies.save(StrategyRecord(uid, timezone=tz, report_time=at), clock.now())
    snapshots = EquityRepository(store)
    recorder = EquityRecorder(snapshots, clock)
    outbox = Outbox(NotificationRepository(store), clock)
    reports = ScheduledReports(
        ReportRepository(store), TradeRepository(store), UnitOfWork(store, outbox), clock,
        equity=recorder, snapshots=snapshots,
    )  # fmt: skip
    return reports, recorder


async def _seen(
    recorder: EquityRecorder, clock: FakeClock, at: datetime, seen: list[tuple[int, str, str]]
) -> None:
    move_to(clock, at)
    for user_id, exchange, equity in seen:
        recorder.observe(user_id, exchange, "demo" if exchange == "bybit" else "paper",
                         balance(equity))  # fmt: skip
    await recorder.flush()


async def test_daily_report_shows_each_accounts_equity_change(tmp_path: Path) -> None:
    clock = FakeClock(MONDAY_0800_BERLIN)
    log = StatementLog()
    async with Store(tmp_path / "r.db", observer=log) as store:
        reports, recorder = await _report_world(store, clock)
        # Saturday evening (UTC): the close before yesterday for everyone.
        await _seen(recorder, clock, datetime(2026, 3, 28, 20, tzinfo=UTC),
                    [(1, "paper", "1000"), (1, "bybit", "500"), (3, "paper", "200")])  # fmt: skip
        # Sunday 21:30 UTC is 23:30 in Berlin: still Sunday there.
        await _seen(recorder, clock, datetime(2026, 3, 29, 21, 30, tzinfo=UTC),
                    [(1, "paper", "1100.5"), (3, "paper", "150")])  # fmt: skip
        # Sunday 22:30 UTC is Monday 00:30 in Berlin: after its close, before UTC's.
        await _seen(recorder, clock, datetime(2026, 3, 29, 22, 30, tzinfo=UTC),
                    [(1, "paper", "9999"), (3, "paper", "180")])  # fmt: skip
        move_to(clock, MONDAY_0800_BERLIN)
        recorder.observe(4, "paper", "paper", balance("77"))  # seen this morning, not flushed
        log.names.clear()
        assert await reports.send_due() == 8  # four traders, daily and weekly
        reads = [n for n in log.names if not n.startswith("notifications.")]
        assert reads == [
            "reports.due",
            "trades.periods",
            "reports.open_positions",
            "equity.upsert_many",
            "equity.prune",
            "equity.closes",
        ]  # fmt: skip  (the hourly prune is due: the clock moved on since the last flush)
        rows = await store.fetchall("t.q", "SELECT dedup_key, payload FROM notifications")
        queued = {r["dedup_key"]: json.loads(r["payload"])["text"] for r in rows}
        berlin = queued["report:daily:1:2026-03-29"]
        assert "Equity Paper: 1,100.50 USDT, <b>+100.50 USDT</b> (+10.05%) on the day" in berlin
        assert (
            "Equity Bybit (demo): no balance recorded that day (last 500.00 USDT on 2026-03-28)"
            in berlin
        )
        utc = queued["report:daily:3:2026-03-29"]
        assert "Equity Paper: 180.00 USDT, <b>-20.00 USDT</b> (-10.00%) on the day" in utc
        # India's report at 11:30 covers Sunday: this morning's balance is after its close.
        assert "Equity change: no balance recorded yet" in queued["report:daily:4:2026-03-29"]
        assert "Equity change: no balance recorded yet" in queued["report:daily:6:2026-03-29"]


async def test_first_recorded_day_has_nothing_to_compare(tmp_path: Path) -> None:
    clock = FakeClock(MONDAY_0800_BERLIN)
    async with Store(tmp_path / "r.db") as store:
        reports, recorder = await _report_world(store, clock)
        await _seen(recorder, clock, datetime(2026, 3, 29, 12, tzinfo=UTC), [(3, "paper", "42")])
        move_to(clock, MONDAY_0800_BERLIN)
        await reports.send_due()
        text = await store.fetchval(
            "t.q", "SELECT payload FROM notifications WHERE dedup_key = 'report:daily:3:2026-03-29'"
        )
        assert "Equity Paper: 42.00 USDT; none recorded the day before" in json.loads(text)["text"]
