"""trade_day_totals against a plain Python sum: any period start, breakevens, deletions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from db.repositories.trades import TradeLog, TradeRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.history import HistoryService

NOW = datetime(2026, 3, 29, 15, 0, tzinfo=UTC)
SYMBOLS = ("BTC", "ETH", "SOL", "XRP")


def _trades(rng: random.Random, count: int) -> list[TradeLog]:
    found = []
    for _ in range(count):
        exit_ts = NOW - timedelta(minutes=rng.randrange(40 * 24 * 60))
        pnl = D(rng.choice(["0", "1.5", "-2.25", "7", "-0.5", "0"]))
        symbol = f"{rng.choice(SYMBOLS)}/USDT:USDT"
        found.append(
            TradeLog(
                user_id=rng.choice((1, 1, 1, 2)),
                exchange="paper",
                account_type="paper",
                symbol=symbol,
                side="long",
                qty=D(1),
                entry_price=D(100),
                exit_price=D(100),
                pnl=pnl,
                fee=D("0.1"),
                entry_ts=exit_ts - timedelta(hours=1),
                exit_ts=exit_ts,
            )
        )
    return found


async def _seed(store: Store, trades: list[TradeLog]) -> None:
    for uid in (1, 2):
        await UserRepository(store).upsert(UserProfile(uid, uid, f"U{uid}"), NOW)
    await TradeRepository(store).record_many(trades)


def _expected(trades: list[TradeLog], since: datetime) -> dict[str, tuple[int, int, int, D]]:
    found: dict[str, tuple[int, int, int, D]] = {}
    for t in trades:
        if t.user_id == 1 and t.exit_ts >= since:
            n, w, lo, p = found.get(t.symbol, (0, 0, 0, D(0)))
            found[t.symbol] = (n + 1, w + (t.pnl > 0), lo + (t.pnl < 0), p + t.pnl)
    return found


async def test_any_period_start_matches_a_python_sum(store: Store) -> None:
    rng = random.Random(5)
    trades = _trades(rng, 600)
    await _seed(store, trades)
    repo = TradeRepository(store)
    starts = [NOW - timedelta(minutes=rng.randrange(45 * 24 * 60)) for _ in range(15)]
    starts += [datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 27, 23, tzinfo=UTC)]
    # a month's first day: the month totals serve it (with and without leading hours)
    starts += [datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 2, 28, 23, tzinfo=UTC)]
    starts += [datetime(2026, 2, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]
    for since in starts:
        got = {
            s.symbol: (s.trades, s.wins, s.losses, s.pnl) for s in await repo.by_symbol(1, since)
        }
        assert got == _expected(trades, since), since
        best, worst = await repo.extremes(1, since)
        mine = [t.pnl for t in trades if t.user_id == 1 and t.exit_ts >= since]
        assert best is not None and worst is not None
        assert (best.trade.pnl, worst.trade.pnl) == (max(mine), min(mine))
        assert best.trade.exit_ts >= since and worst.trade.exit_ts >= since


async def test_breakeven_trades_are_counted_apart(store: Store) -> None:
    trades = _trades(random.Random(9), 200)
    await _seed(store, trades)
    report = await HistoryService(TradeRepository(store)).pnl_report(1, "all", NOW)
    mine = [t for t in trades if t.user_id == 1]
    assert report.breakeven == sum(t.pnl == 0 for t in mine) > 0
    assert report.wins + report.losses + report.breakeven == report.trades == len(mine)


async def test_deleted_trades_leave_the_totals(store: Store) -> None:
    trades = _trades(random.Random(11), 300)
    await _seed(store, trades)
    await store.execute("t.del", "DELETE FROM trade_logs WHERE pnl < 0 AND user_id = 1")
    left = [t for t in trades if not (t.pnl < 0 and t.user_id == 1)]
    repo = TradeRepository(store)
    for since in (NOW - timedelta(days=50), datetime(2026, 2, 1, tzinfo=UTC)):
        by_symbol = await repo.by_symbol(1, since)
        got = {s.symbol: (s.trades, s.wins, s.losses, s.pnl) for s in by_symbol}
        assert got == _expected(left, since)
        _, worst = await repo.extremes(1, since)
        assert worst is not None and worst.trade.pnl == D(0)
    await store.execute("t.user", "DELETE FROM users WHERE id = 1")
    assert (
        await store.fetchval("t.n", "SELECT COUNT(*) FROM trade_day_totals WHERE user_id = 1") == 0
    )
