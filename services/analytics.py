"""The business at a glance: the /admin dashboard and the /stats report, cached.

Both are a few indexed reads (see `db.repositories.analytics`), kept for `TTL_S` seconds in
the `analytics` cache. Whatever changes a figure (a trade closed, a licence granted or
revoked, a payment) calls `invalidate()`, so an admin never waits out the TTL to see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.cache import CacheLayer
from core.clock import Clock
from db.repositories.analytics import (
    AnalyticsRepository,
    DashboardCounts,
    PromoUsage,
    Revenue,
    StatsData,
    SymbolTotal,
    UserTotal,
)

__all__ = [
    "AnalyticsService",
    "Dashboard",
    "DashboardCounts",
    "PromoUsage",
    "Revenue",
    "Stats",
    "StatsData",
    "SymbolTotal",
    "UserTotal",
]

ANALYTICS_CACHE = "analytics"
TTL_S = 60.0
GROWTH_DAYS = 30
TOP = 10


@dataclass(slots=True, frozen=True)
class Dashboard:
    counts: DashboardCounts
    as_of: datetime


@dataclass(slots=True, frozen=True)
class Stats:
    data: StatsData
    days: int
    as_of: datetime


class AnalyticsService:
    """Reads the admin figures once per TTL (or per change), for every admin at once."""

    def __init__(self, repo: AnalyticsRepository, cache: CacheLayer, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock
        self._cache = cache.define(ANALYTICS_CACHE, ttl=TTL_S, maxsize=8)

    async def dashboard(self) -> Dashboard:
        """/admin: users, licences, revenue this month, today's activity, the queue's dead."""
        dashboard: Dashboard = await self._cache.get_or_load("dashboard", self._load_dashboard)
        return dashboard

    async def stats(self) -> Stats:
        """/stats: growth, top traders, symbols, promos and revenue."""
        stats: Stats = await self._cache.get_or_load("stats", self._load_stats)
        return stats

    def invalidate(self) -> None:
        """Something the figures count changed: the next read loads afresh."""
        self._cache.clear()

    async def _load_dashboard(self) -> Dashboard:
        now = self._clock.now()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        week = today - timedelta(days=today.weekday())
        return Dashboard(await self._repo.dashboard(now, today, week), now)

    async def _load_stats(self) -> Stats:
        now = self._clock.now()
        return Stats(await self._repo.stats(now, GROWTH_DAYS, TOP), GROWTH_DAYS, now)
