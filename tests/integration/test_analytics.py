"""Admin analytics on a real SQLite file: every figure, the trigger-kept totals, the cache."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from core.cache import CacheLayer
from db.migrations import load_migrations
from db.repositories.analytics import DAY_MS, AnalyticsRepository
from db.repositories.base import to_ms
from db.store import Store
from services.analytics import AnalyticsService
from tests.fakes.clock import FakeClock

NOW = datetime(2026, 3, 18, 15, 0, tzinfo=UTC)  # a Wednesday
HOUR_MS = 3_600_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def analytics(store: Store, clock: FakeClock) -> AnalyticsService:
    return AnalyticsService(AnalyticsRepository(store), CacheLayer(clock), clock)


async def _sql(store: Store, sql: str, rows: list[tuple[object, ...]]) -> None:
    await store.executemany("t.seed", sql, rows)


async def _user(store: Store, user_id: int, created: datetime, seen: datetime, name: str) -> None:
    await _sql(
        store,
        "INSERT INTO users (id, chat_id, username, first_name, created_at, last_seen_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(user_id, user_id, name, name.title(), to_ms(created), to_ms(seen))],
    )


async def _trades(store: Store, rows: list[tuple[int, str, float, float]]) -> None:
    """(user, symbol, pnl, notional) per trade, closed an hour ago."""
    at = to_ms(NOW) - HOUR_MS
    await _sql(
        store,
        "INSERT INTO trade_logs (user_id, exchange, account_type, symbol, side, qty, "
        "entry_price, exit_price, notional, pnl, fee, entry_ts, exit_ts) "
        "VALUES (?, 'paper', 'paper', ?, 'long', '1', '1', '1', ?, ?, 0.5, ?, ?)",
        [(u, s, notional, pnl, at, at) for u, s, pnl, notional in rows],
    )


async def _seed(store: Store) -> None:
    day = timedelta(days=1)
    await _user(store, 1, NOW - 40 * day, NOW - 2 * day, "old")  # active 7 d, not 24 h
    await _user(store, 2, NOW - 10 * day, NOW - timedelta(hours=1), "ann")  # active 24 h
    await _user(store, 3, NOW - timedelta(hours=30), NOW - 20 * day, "bea")  # new this week
    await _user(store, 4, NOW - timedelta(hours=2), NOW - timedelta(hours=2), "cid")
    now = to_ms(NOW)
    await _sql(
        store,
        "INSERT INTO user_licenses (user_id, plan, start_at, end_at, active, source, "
        "updated_at) VALUES (?, 'pro', 0, ?, ?, ?, 0)",
        [
            (1, now + 10 * DAY_MS, 1, "payment"),
            (2, now + 5 * HOUR_MS, 1, "promo"),  # expiring in 24 h
            (3, now - HOUR_MS, 1, "grant"),  # past its end, not yet deactivated
            (4, now + DAY_MS * 3, 0, "grant"),  # revoked
        ],
    )
    march, february = (
        to_ms(datetime(2026, 3, 2, tzinfo=UTC)),
        to_ms(datetime(2026, 2, 27, tzinfo=UTC)),
    )
    await _sql(
        store,
        "INSERT INTO payments (user_id, plan, days, currency, amount, "
        "telegram_payment_charge_id, payload, created_at) VALUES (?, ?, 30, 'XTR', ?, ?, '', ?)",
        [
            (1, "pro", 500, "c1", march),
            (2, "pro", 500, "c2", march),
            (2, "trial", 50, "c3", march),
            (1, "pro", 500, "c4", february),
        ],
    )
    today, yesterday = now - HOUR_MS, now - DAY_MS
    await _sql(
        store,
        "INSERT INTO signals (id, source, symbol, side, score, price, leverage, tp_pct, sl_pct, "
        "reasons, created_at) VALUES (?, 'paper', 'BTC/USDT:USDT', 'long', 0.9, '1', 5, '3', "
        "'1', '[]', ?)",
        [(1, today), (2, today), (3, yesterday)],
    )
    await _sql(
        store,
        "INSERT INTO executions (signal_id, user_id, status, at) VALUES (?, ?, ?, ?)",
        [
            (1, 1, "filled", today),
            (1, 2, "placed", today),
            (2, 1, "skipped", today),
            (3, 1, "filled", yesterday),
        ],
    )
    await _sql(
        store,
        "INSERT INTO active_positions (user_id, exchange, account_type, symbol, side, qty, "
        "entry_price, leverage, opened_at, updated_at) "
        "VALUES (?, 'paper', 'paper', ?, 'long', '1', '1', 5, 0, 0)",
        [(1, "BTC/USDT:USDT"), (2, "BTC/USDT:USDT"), (2, "ETH/USDT:USDT")],
    )
    await _sql(
        store,
        "INSERT INTO notifications (dedup_key, user_id, chat_id, kind, priority, payload, "
        "status, next_attempt_at, created_at) VALUES (?, 1, 1, 'signal', 1, '{}', ?, 0, 0)",
        [("a", "dead"), ("b", "dead"), ("c", "sent"), ("d", "pending")],
    )
    await _sql(
        store,
        "INSERT INTO promo_codes (code, plan, days, max_uses, uses, active, created_by, "
        "created_at) VALUES (?, 'pro', 7, ?, ?, ?, 99, 0)",
        [("SPRING", 100, 2, 1), ("VIP", 5, 5, 0), ("UNUSED", 10, 0, 1)],
    )
    await _sql(
        store,
        "INSERT INTO promo_redemptions (code, user_id, redeemed_at) VALUES (?, ?, ?)",
        [("SPRING", 2, now - DAY_MS), ("SPRING", 3, now - 40 * DAY_MS)],
    )
    await _trades(
        store,
        [
            (1, "BTC/USDT:USDT", 30.0, 1000.0),
            (1, "ETH/USDT:USDT", -10.0, 500.0),
            (2, "BTC/USDT:USDT", 5.0, 9000.0),
            (3, "SOL/USDT:USDT", -50.0, 200.0),
        ],
    )


async def test_dashboard_counts_everything_it_shows(
    store: Store, analytics: AnalyticsService
) -> None:
    await _seed(store)
    c = (await analytics.dashboard()).counts
    assert (c.users_total, c.active_24h, c.active_7d, c.new_this_week) == (4, 2, 3, 2)
    assert (c.licenses_active, c.expiring_24h) == (2, 1)
    assert c.revenue_month == {"XTR": 1050}
    assert (c.signals_today, c.autotrades_today) == (2, 2)
    assert (c.open_positions, c.dead_letters) == (3, 2)


async def test_stats_growth_leaders_symbols_promos_revenue(
    store: Store, analytics: AnalyticsService
) -> None:
    await _seed(store)
    stats = await analytics.stats()
    d = stats.data
    assert d.growth == [(date(2026, 3, 8), 1), (date(2026, 3, 17), 1), (date(2026, 3, 18), 1)]
    assert [(t.user_id, t.pnl, t.trades, t.wins) for t in d.top_pnl] == [
        (1, 20.0, 2, 1),
        (2, 5.0, 1, 1),
        (3, -50.0, 1, 0),
    ]
    assert [t.user_id for t in d.top_volume] == [2, 1, 3]
    assert d.top_volume[0].volume == 9000.0 and d.top_volume[0].username == "ann"
    assert [(s.symbol, s.trades, s.wins, s.pnl) for s in d.best_symbols] == [
        ("BTC/USDT:USDT", 2, 2, 35.0),
        ("ETH/USDT:USDT", 1, 0, -10.0),
        ("SOL/USDT:USDT", 1, 0, -50.0),
    ]
    assert [s.symbol for s in d.worst_symbols] == [
        "SOL/USDT:USDT",
        "ETH/USDT:USDT",
        "BTC/USDT:USDT",
    ]
    assert [(p.code, p.uses, p.active) for p in d.promos] == [
        ("VIP", 5, False),
        ("SPRING", 2, True),
        ("UNUSED", 0, True),
    ]
    assert d.redemptions_30d == 1
    assert sorted((r.plan, r.amount, r.payments) for r in d.revenue_month) == [
        ("pro", 1000, 2),
        ("trial", 50, 1),
    ]
    assert d.licenses_by_source == {"payment": 1, "promo": 1}


async def test_totals_follow_deletes(store: Store, analytics: AnalyticsService) -> None:
    await _seed(store)
    await store.execute("t.del", "DELETE FROM trade_logs WHERE user_id = 1 AND pnl < 0")
    await store.execute("t.del", "DELETE FROM active_positions WHERE user_id = 2")
    await store.execute("t.del", "DELETE FROM users WHERE id = 3")  # cascades to their trades
    analytics.invalidate()
    counts = (await analytics.dashboard()).counts
    assert (counts.users_total, counts.open_positions) == (3, 1)
    data = (await analytics.stats()).data
    assert [(t.user_id, t.trades, t.pnl) for t in data.top_pnl] == [(1, 1, 30.0), (2, 1, 5.0)]
    assert [(s.symbol, s.trades) for s in data.best_symbols] == [("BTC/USDT:USDT", 2)]


async def test_figures_are_cached_until_invalidated_or_expired(
    store: Store, analytics: AnalyticsService, clock: FakeClock
) -> None:
    await _seed(store)
    first = await analytics.dashboard()
    await _user(store, 5, NOW, NOW, "dan")
    assert await analytics.dashboard() is first  # cached
    analytics.invalidate()
    assert (await analytics.dashboard()).counts.users_total == 5
    await _user(store, 6, NOW, NOW, "eve")
    clock.advance(61)
    assert (await analytics.dashboard()).counts.users_total == 6  # the TTL ran out


async def test_the_migration_totals_what_was_there_before(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    migrations = load_migrations()
    admin = next(m.version for m in migrations if m.name.endswith("_admin.sql"))
    with sqlite3.connect(path) as conn:
        for migration in migrations[: admin - 1]:
            conn.executescript(migration.sql)
        conn.execute(f"PRAGMA user_version = {admin - 1}")
        conn.executemany(
            "INSERT INTO users (id, chat_id, created_at, last_seen_at) VALUES (?, ?, 0, 0)",
            [(1, 1), (2, 2)],
        )
        conn.executemany(
            "INSERT INTO trade_logs (user_id, exchange, account_type, symbol, side, qty, "
            "entry_price, exit_price, notional, pnl, fee, entry_ts, exit_ts) "
            "VALUES (?, 'paper', 'paper', 'BTC/USDT:USDT', 'long', '1', '1', '1', 100, ?, 0, 0, 0)",
            [(1, 3.0), (1, -1.0), (2, 4.0)],
        )
        conn.execute(
            "INSERT INTO payments (user_id, plan, days, currency, amount, "
            "telegram_payment_charge_id, payload, created_at) "
            "VALUES (1, 'pro', 30, 'XTR', 500, 'c', '', ?)",
            (to_ms(NOW),),
        )
    conn.close()
    clock = FakeClock(NOW)
    async with Store(path) as store:
        service = AnalyticsService(AnalyticsRepository(store), CacheLayer(clock), clock)
        counts = (await service.dashboard()).counts
        data = (await service.stats()).data
    assert counts.users_total == 2 and counts.revenue_month == {"XTR": 500}
    assert [(t.user_id, t.trades, t.pnl) for t in data.top_pnl] == [(2, 1, 4.0), (1, 2, 2.0)]
