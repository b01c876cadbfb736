"""Admin analytics: counts and totals for /admin, /stats and the /users card.

Every figure is one indexed read. Whole-table counts and all-time trade totals come from the
trigger-kept tables of migration 0007 (admin_counters, trade_user_totals,
trade_symbol_totals, revenue_monthly), so nothing here aggregates the big tables row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from core.lifecycle import ExecutionStatus, sql_list
from db.repositories import HotQuery
from db.repositories.base import Repository, to_ms
from db.store import Row

DAY_MS = 86_400_000
# The licence sources the schema knows; listing them lets GROUP BY walk the index in order.
LICENSE_SOURCES = ("grant", "payment", "promo", "trial")


@dataclass(slots=True, frozen=True)
class DashboardCounts:
    users_total: int
    active_24h: int
    active_7d: int
    new_this_week: int
    licenses_active: int
    expiring_24h: int
    revenue_month: dict[str, int]  # currency → amount (Stars are whole units)
    signals_today: int
    autotrades_today: int
    open_positions: int
    dead_letters: int


@dataclass(slots=True, frozen=True)
class UserTotal:
    user_id: int
    username: str | None
    first_name: str
    trades: int
    wins: int
    pnl: float
    volume: float


@dataclass(slots=True, frozen=True)
class SymbolTotal:
    symbol: str
    trades: int
    wins: int
    pnl: float
    volume: float
    fees: float


@dataclass(slots=True, frozen=True)
class PromoUsage:
    code: str
    plan: str
    days: int
    uses: int
    max_uses: int
    active: bool


@dataclass(slots=True, frozen=True)
class Revenue:
    currency: str
    plan: str
    amount: int
    payments: int


@dataclass(slots=True, frozen=True)
class StatsData:
    growth: list[tuple[date, int]]  # only days with new users, oldest first
    top_pnl: list[UserTotal]
    top_volume: list[UserTotal]
    best_symbols: list[SymbolTotal]
    worst_symbols: list[SymbolTotal]
    promos: list[PromoUsage]
    redemptions_30d: int
    revenue_month: list[Revenue]
    licenses_by_source: dict[str, int]


@dataclass(slots=True, frozen=True)
class UserBrief:
    user_id: int
    username: str | None
    first_name: str
    is_blocked: bool


_COUNTER = "SELECT value FROM admin_counters WHERE name = ?"
_ACTIVE_SINCE = "SELECT COUNT(*) FROM users WHERE last_seen_at >= ?"
_NEW_SINCE = "SELECT COUNT(*) FROM users WHERE created_at >= ?"
_LICENSES = "SELECT COUNT(*) FROM user_licenses WHERE active = 1 AND end_at > ? AND end_at <= ?"
_REVENUE_TOTAL = (
    "SELECT currency, SUM(amount) AS amount FROM revenue_monthly WHERE month = ? GROUP BY currency"
)
_SIGNALS_SINCE = "SELECT COUNT(*) FROM signals WHERE created_at >= ?"
_AUTOTRADES_SINCE = (
    "SELECT COUNT(*) FROM executions WHERE at >= ? "
    f"AND status IN {sql_list((ExecutionStatus.FILLED, ExecutionStatus.PLACED))}"
)
# The range on the partial index keeps this a search of the dead rows only.
_DEAD = "SELECT COUNT(*) FROM notifications WHERE status = 'dead' AND created_at >= 0"

_GROWTH = (
    "SELECT created_at / 86400000 AS day, COUNT(*) AS n FROM users "
    "WHERE created_at / 86400000 >= ? GROUP BY created_at / 86400000"
)
_USER_TOTALS = (
    "SELECT t.user_id, u.username, u.first_name, t.trades, t.wins, t.pnl, t.volume "
    "FROM trade_user_totals t JOIN users u ON u.id = t.user_id "
)
_TOP_PNL = _USER_TOTALS + "WHERE t.trades > 0 ORDER BY t.pnl DESC LIMIT ?"
_TOP_VOLUME = _USER_TOTALS + "WHERE t.trades > 0 ORDER BY t.volume DESC LIMIT ?"
_SYMBOLS = (
    "SELECT symbol, trades, wins, pnl, volume, fees FROM trade_symbol_totals WHERE trades > 0 "
)
_BEST_SYMBOLS = _SYMBOLS + "ORDER BY pnl DESC LIMIT ?"
_WORST_SYMBOLS = _SYMBOLS + "ORDER BY pnl ASC LIMIT ?"
_PROMOS = (
    "SELECT code, plan, days, uses, max_uses, active FROM promo_codes ORDER BY uses DESC LIMIT ?"
)
_REDEMPTIONS = "SELECT COUNT(*) FROM promo_redemptions WHERE redeemed_at >= ?"
_REVENUE = "SELECT currency, plan, amount, payments FROM revenue_monthly WHERE month = ?"
_BY_SOURCE = (
    "SELECT source, COUNT(*) AS n FROM user_licenses WHERE active = 1 "
    f"AND source IN ({', '.join(repr(s) for s in LICENSE_SOURCES)}) AND end_at > ? "
    "GROUP BY source"
)

_USER_TOTAL = _USER_TOTALS + "WHERE t.user_id = ?"
# Three NOCASE index ranges (MULTI-INDEX OR); the few rows found are sorted in Python, as an
# ORDER BY across three indexes would sort in a temporary b-tree.
_SEARCH = (
    "SELECT id, username, first_name, is_blocked FROM users "
    "WHERE username LIKE ?1 ESCAPE '\\' OR first_name LIKE ?1 ESCAPE '\\' "
    "OR last_name LIKE ?1 ESCAPE '\\' LIMIT ?2"
)
# `id > 0` (every Telegram user id) makes this a search of the partial index, not a scan.
_BLOCKED = "SELECT id FROM users WHERE is_blocked = 1 AND id > 0"

HOT_QUERIES = (
    HotQuery("analytics.counter", _COUNTER, ("users",)),
    HotQuery("analytics.active_since", _ACTIVE_SINCE, (0,)),
    HotQuery("analytics.new_since", _NEW_SINCE, (0,)),
    HotQuery("analytics.licenses", _LICENSES, (0, 1)),
    HotQuery("analytics.revenue_total", _REVENUE_TOTAL, ("2026-01",)),
    HotQuery("analytics.signals_since", _SIGNALS_SINCE, (0,)),
    HotQuery("analytics.autotrades_since", _AUTOTRADES_SINCE, (0,)),
    HotQuery("analytics.dead", _DEAD),
    HotQuery("analytics.growth", _GROWTH, (0,)),
    HotQuery("analytics.top_pnl", _TOP_PNL, (10,)),
    HotQuery("analytics.top_volume", _TOP_VOLUME, (10,)),
    HotQuery("analytics.best_symbols", _BEST_SYMBOLS, (10,)),
    HotQuery("analytics.worst_symbols", _WORST_SYMBOLS, (5,)),
    HotQuery("analytics.promos", _PROMOS, (10,)),
    HotQuery("analytics.redemptions", _REDEMPTIONS, (0,)),
    HotQuery("analytics.revenue", _REVENUE, ("2026-01",)),
    HotQuery("analytics.by_source", _BY_SOURCE, (0,)),
    HotQuery("analytics.user_total", _USER_TOTAL, (1,)),
    HotQuery("analytics.search", _SEARCH, ("al%", 10)),
    HotQuery("analytics.blocked", _BLOCKED),
)


class AnalyticsRepository(Repository):
    """Read-only SQL behind the admin dashboards."""

    async def dashboard(self, now: datetime, today: datetime, week: datetime) -> DashboardCounts:
        """The /admin figures; `today` and `week` are the UTC starts of the day and week."""
        at = to_ms(now)
        revenue = await self._rows("analytics.revenue_total", _REVENUE_TOTAL, (_month(now),))
        return DashboardCounts(
            users_total=await self._count("analytics.counter", _COUNTER, ("users",)),
            active_24h=await self._count("analytics.active_since", _ACTIVE_SINCE, (at - DAY_MS,)),
            active_7d=await self._count(
                "analytics.active_since", _ACTIVE_SINCE, (at - 7 * DAY_MS,)
            ),
            new_this_week=await self._count("analytics.new_since", _NEW_SINCE, (to_ms(week),)),
            licenses_active=await self._count("analytics.licenses", _LICENSES, (at, 2**62)),
            expiring_24h=await self._count("analytics.licenses", _LICENSES, (at, at + DAY_MS)),
            revenue_month={row["currency"]: int(row["amount"]) for row in revenue},
            signals_today=await self._count(
                "analytics.signals_since", _SIGNALS_SINCE, (to_ms(today),)
            ),
            autotrades_today=await self._count(
                "analytics.autotrades_since", _AUTOTRADES_SINCE, (to_ms(today),)
            ),
            open_positions=await self._count("analytics.counter", _COUNTER, ("open_positions",)),
            dead_letters=await self._count("analytics.dead", _DEAD),
        )

    async def stats(self, now: datetime, days: int = 30, top: int = 10) -> StatsData:
        """The /stats figures: growth over `days`, the `top` users and symbols, money."""
        first_day = to_ms(now) // DAY_MS - days + 1
        growth = await self._rows("analytics.growth", _GROWTH, (first_day,))
        promos = await self._rows("analytics.promos", _PROMOS, (top,))
        revenue = await self._rows("analytics.revenue", _REVENUE, (_month(now),))
        sources = await self._rows("analytics.by_source", _BY_SOURCE, (to_ms(now),))
        since = to_ms(now) - days * DAY_MS
        return StatsData(
            growth=[(date.fromordinal(_EPOCH + row["day"]), row["n"]) for row in growth],
            top_pnl=[
                _user_total(r) for r in await self._rows("analytics.top_pnl", _TOP_PNL, (top,))
            ],
            top_volume=[
                _user_total(r)
                for r in await self._rows("analytics.top_volume", _TOP_VOLUME, (top,))
            ],
            best_symbols=[
                _symbol(r)
                for r in await self._rows("analytics.best_symbols", _BEST_SYMBOLS, (top,))
            ],
            worst_symbols=[
                _symbol(r)
                for r in await self._rows("analytics.worst_symbols", _WORST_SYMBOLS, (top // 2,))
            ],
            promos=[
                PromoUsage(
                    r["code"], r["plan"], r["days"], r["uses"], r["max_uses"], bool(r["active"])
                )
                for r in promos
            ],
            redemptions_30d=await self._count("analytics.redemptions", _REDEMPTIONS, (since,)),
            revenue_month=[
                Revenue(r["currency"], r["plan"], r["amount"], r["payments"]) for r in revenue
            ],
            licenses_by_source={row["source"]: row["n"] for row in sources},
        )

    async def user_total(self, user_id: int) -> UserTotal | None:
        """One user's all-time realised trades, or None if they never closed one."""
        row = await self.store.fetchone("analytics.user_total", _USER_TOTAL, (user_id,))
        return None if row is None else _user_total(row)

    async def search_users(self, prefix: str, limit: int = 10) -> list[UserBrief]:
        """Users whose username, first or last name starts with the prefix (any case),
        alphabetically by username, else first name."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._rows("analytics.search", _SEARCH, (f"{escaped}%", limit))
        found = [
            UserBrief(r["id"], r["username"], r["first_name"], bool(r["is_blocked"])) for r in rows
        ]
        return sorted(found, key=lambda u: ((u.username or u.first_name).lower(), u.user_id))

    async def blocked_user_ids(self) -> frozenset[int]:
        rows = await self._rows("analytics.blocked", _BLOCKED, ())
        return frozenset(row[0] for row in rows)

    async def _count(self, name: str, sql: str, params: tuple[object, ...] = ()) -> int:
        return int(await self.store.fetchval(name, sql, params) or 0)

    async def _rows(self, name: str, sql: str, params: tuple[object, ...]) -> list[Row]:
        return await self.store.fetchall(name, sql, params)


_EPOCH = date(1970, 1, 1).toordinal()


def _month(now: datetime) -> str:
    return now.strftime("%Y-%m")


def _user_total(row: Row) -> UserTotal:
    return UserTotal(
        user_id=row["user_id"],
        username=row["username"],
        first_name=row["first_name"],
        trades=row["trades"],
        wins=row["wins"],
        pnl=row["pnl"],
        volume=row["volume"],
    )


def _symbol(row: Row) -> SymbolTotal:
    return SymbolTotal(
        row["symbol"], row["trades"], row["wins"], row["pnl"], row["volume"], row["fees"]
    )
