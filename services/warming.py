"""Cache warming: active traders' balance and positions are reloaded just before they expire.

A trader who looks at the bot finds the numbers already there: every read is a cache hit,
and the exchange sees about one call per user per TTL window per kind. Reloads land just
before expiry; entries were made at different moments, and a little jitter spreads them
further, so warming never bursts against the exchange's limits. The active account
(a database read) is kept warm the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
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
    async def active_since_ids(self, since_s: float) -> set[int]: ...


@dataclass(slots=True)
class WarmStats:
    scheduled: int = 0
    refreshed: int = 0
    failed: int = 0


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
        rng: random.Random | None = None,
    ) -> None:
        self._portfolio = portfolio
        self._users = users
        self._cache = cache
        self._clock = clock
        self.lead_s = lead_s
        self._gate = asyncio.Semaphore(concurrency)
        self._rng = rng or random.Random()
        self._pending: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = WarmStats()
        self._active: set[int] = set()
        self._active_at = float("-inf")

    async def warm_once(self) -> int:
        """Schedule reloads of what expires within the lead time; return how many.

        Reloads run in the background, each after a random share of the time left, so the
        job itself returns at once and never overlaps its next run.
        """
        active = await self._active_users()
        scheduled = 0
        for spec in WARMED:
            for key, left in self._cache.cache(spec.name).expiring(self.lead_s):
                entry = (spec.name, str(key))
                if entry in self._pending or int(str(key).split(":", 1)[0]) not in active:
                    continue
                self._pending.add(entry)
                # Reload just before expiry (so about one call per TTL window), spread by a
                # little jitter on top of the natural spread of when entries were made.
                delay = max(0.0, left - 0.25 - self._rng.uniform(0, 0.5))
                task = asyncio.get_running_loop().create_task(self._reload(entry, delay))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                scheduled += 1
        self.stats.scheduled += scheduled
        return scheduled

    async def aclose(self) -> None:
        """Cancel reloads still waiting (on shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _reload(self, entry: tuple[str, str], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            async with self._gate:
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

    async def _active_users(self) -> set[int]:
        now = self._clock.monotonic()
        if now - self._active_at > 60:  # who is active changes slowly: ask once a minute
            self._active = await self._users.active_since_ids(ACTIVE_WINDOW.total_seconds())
            self._active_at = now
        return self._active
