"""Period tables against a plain Python sum, in whole-hour, half-hour and DST timezones."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from db.repositories.trades import TradeLog, TradeRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.reports import ReportService

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a week after Europe's autumn change


async def _seed(store: Store, rng: random.Random) -> list[TradeLog]:
    for uid in (1, 2):
        await UserRepository(store).upsert(UserProfile(uid, uid, f"U{uid}"), NOW)
    trades = []
    for _ in range(800):
        exit_ts = NOW - timedelta(minutes=rng.randrange(80 * 24 * 60))
        trades.append(
            TradeLog(
                user_id=rng.choice((1, 1, 2)), exchange="paper", account_type="paper",
                symbol="BTC/USDT:USDT", side="long", qty=D(1), entry_price=D(1), exit_price=D(1),
                pnl=D(rng.choice(["0", "2.5", "-1.25", "4"])), fee=D("0.05"),
                entry_ts=exit_ts - timedelta(hours=1), exit_ts=exit_ts,
            )
        )  # fmt: skip
    await TradeRepository(store).record_many(trades)
    return trades


@pytest.mark.parametrize("tz", [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata"),
                                ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/New_York")],
                         ids=str)  # fmt: skip
@pytest.mark.parametrize(("unit", "count"), [("day", 60), ("week", 10), ("month", 3)])
async def test_each_period_matches_a_python_sum(
    store: Store, tz: tzinfo, unit: str, count: int
) -> None:
    trades = await _seed(store, random.Random(3))
    table = await ReportService(TradeRepository(store)).period_table(1, unit, count, NOW, tz)
    assert len(table.rows) == count
    for row in table.rows:
        mine = [t for t in trades if t.user_id == 1 and row.start <= t.exit_ts < row.end]
        assert (row.trades, row.wins, row.losses) == (
            len(mine), sum(t.pnl > 0 for t in mine), sum(t.pnl < 0 for t in mine),
        ), row  # fmt: skip
        assert row.pnl == sum((t.pnl for t in mine), D(0))
        assert row.fees == sum((t.fee for t in mine), D(0))
        assert row.breakeven == sum(t.pnl == 0 for t in mine)
    assert table.trades == sum(r.trades for r in table.rows)


async def test_deleted_trades_leave_their_hour(store: Store) -> None:
    trades = await _seed(store, random.Random(4))
    await store.execute("t.del", "DELETE FROM trade_logs WHERE pnl > 3")
    table = await ReportService(TradeRepository(store)).period_table(1, "day", 90, NOW, UTC)
    kept = [t for t in trades if t.user_id == 1 and t.pnl <= 3]
    assert table.trades == len(kept)
    assert table.pnl == sum((t.pnl for t in kept), D(0))
