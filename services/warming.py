"""Cache warming: active traders' balance and positions are reloaded just before they expire.

A trader who looks at the bot finds the numbers already there: every read is a cache hit,
and the exchange sees about one call per user per TTL window per kind. Reloads land just
before expiry; entries were made at different moments, and a little jitter spreads them
further, so warming never bursts against the exchange's limits. The active account
(a database read) is kept warm the same way.

Warming spends at most a share of each exchange's request budget (the rest stays free
for orders and for reads that miss). When more entries are due than that share allows,
the traders seen most recently are warmed first; the others' entries simply expire and
their next read loads them, so a crowd of idle accounts can never starve the budget.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from core.cache import CacheLayer
from core.clock import Clock
from core.exchange.errors import ExchangeError
from services.caching import ACCOUNTS, BALANCE, ORDERS, POSITIONS

log = logging.getLogger(__name__)

WARMED = (ACCOUNTS, BALANCE, POSITIONS, ORDERS)
ACTIVE_WINDOW = timedelta(hours=24)


class Warmable(Protocol):
    async def warm(self, kind: str, key: str) -> None: ...


class RecentUsers(Protocol):
    async def last_seen_since(self, since_s: float) -> dict[int, datetime]: ...

    def presence(self) -> Mapping[int, datetime]:
        """Who was seen since presence was last written to the database, and when."""
        ...


# Requests per second an exchange lets us make (None: no limit, e.g. the paper exchange).
RequestBudget = Callable[[str], float | None]


@dataclass(slots=True)
class WarmStats:
    scheduled: int = 0
    refreshed: int = 0
    failed: int = 0
    skipped: int = 0  # due, but over the warming share of the exchange's budget


class _Allowance:
    """Requests the warmer may still start for one exchange (a token bucket)."""

    def __init__(self, now: float) -> None:
        self.tokens = 0.0
        self.updated = now

    def take(self, rate: float, burst: float, now: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class CacheWarmer:
    """Schedules reloads of entries about to expire, for users active in the last 24 h."""

    def __init__(
        self,
        portfolio: Warmable,
        users: RecentUsers,
        cache: CacheLayer,
        clock: Clock,
        *,
        lead_s: float = 3.0,
        concurrency: int = 50,
        budget: RequestBudget | None = None,
        share: float = 0.75,
        rng: random.Random | None = None,
    ) -> None:
        self._portfolio = portfolio
        self._users = users
        self._cache = cache
        self._clock = clock
        self.lead_s = lead_s
        self._gate = asyncio.Semaphore(concurrency)
        # Database reloads (the active account) never queue behind exchange reloads that
        # wait for the venue's budget.
        self._db_gate = asyncio.Semaphore(concurrency)
        self._budget = budget or (lambda exchange: None)
        self._share = share
        self._allowances: dict[str, _Allowance] = {}
        self._rng = rng or random.Random()
        self._pending: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = WarmStats()
        self._active: dict[int, datetime] = {}
        self._active_at = float("-inf")

    async def warm_once(self) -> int:
        """Schedule reloads of what expires within the lead time; return how many.

        Reloads run in the background, each after a random share of the time left, so the
        job itself returns at once and never overlaps its next run.
        """
        active = await self._active_users()
        due: list[tuple[datetime, tuple[str, str], float]] = []
        for spec in WARMED:
            for key, left in self._cache.cache(spec.name).expiring(self.lead_s):
                entry = (spec.name, str(key))
                seen = active.get(int(str(key).split(":", 1)[0]))
                if seen is not None and entry not in self._pending:
                    due.append((seen, entry, left))
        due.sort(key=lambda item: item[0], reverse=True)  # most recently seen first
        scheduled = 0
        for _, entry, left in due:
            if not self._affordable(entry):
                self.stats.skipped += 1
                continue
            self._pending.add(entry)
            self._cache.cache(entry[0]).hold(entry[1])  # a late reload still serves readers
            # Reload just before expiry (so about one call per TTL window), spread by a
            # little jitter on top of the natural spread of when entries were made.
            delay = max(0.0, left - 0.25 - self._rng.uniform(0, 0.5))
            task = asyncio.get_running_loop().create_task(self._reload(entry, delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            scheduled += 1
        self.stats.scheduled += scheduled
        return scheduled

    def _affordable(self, entry: tuple[str, str]) -> bool:
        """Whether the entry's exchange still has warming budget (database reads always do)."""
        if entry[0] == ACCOUNTS.name:
            return True
        exchange = entry[1].split(":", 2)[1]
        rate = self._budget(exchange)
        if rate is None:
            return True
        now = self._clock.monotonic()
        allowance = self._allowances.setdefault(exchange, _Allowance(now))
        warm_rate = rate * self._share
        return allowance.take(warm_rate, max(1.0, warm_rate * self.lead_s), now)

    async def aclose(self) -> None:
        """Cancel reloads still waiting (on shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _reload(self, entry: tuple[str, str], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            async with self._db_gate if entry[0] == ACCOUNTS.name else self._gate:
                await self._portfolio.warm(*entry)
            self.stats.refreshed += 1
        except ExchangeError as error:  # the entry just expires; the next read reloads it
            self.stats.failed += 1
            log.debug("warming %s failed: %s", entry, error)
        except Exception:  # a bug must show in the log, never kill the warmer
            self.stats.failed += 1
            log.exception("warming %s failed unexpectedly", entry)
        finally:
            self._pending.discard(entry)

    async def _active_users(self) -> dict[int, datetime]:
        now = self._clock.monotonic()
        if now - self._active_at > 60:  # the database's view changes slowly: once a minute
            self._active = await self._users.last_seen_since(ACTIVE_WINDOW.total_seconds())
            self._active_at = now
        # Plus everyone seen since (not written yet): a trader who just arrived is warmed
        # from their first read, not a minute later.
        self._active.update(self._users.presence())
        return self._active
