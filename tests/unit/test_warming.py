"""Cache warming reloads active users' entries just before they expire, and only those."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from core.cache import CacheLayer
from core.exchange.errors import ExchangeUnavailable
from services.caching import ACCOUNTS, BALANCE, POSITIONS, define_trader_caches
from services.warming import CacheWarmer
from tests.fakes.clock import FakeClock


class NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return 0.0


class FakePortfolio:
    """Implements `Warmable`: records what it was asked to reload, writes a new value."""

    def __init__(self, cache: CacheLayer, fail: bool = False) -> None:
        self.cache = cache
        self.fail = fail
        self.warmed: list[tuple[str, str]] = []

    async def warm(self, kind: str, key: str) -> None:
        self.warmed.append((kind, key))
        if self.fail:
            raise ExchangeUnavailable("bybit", "down")

        async def load() -> str:
            return "fresh"

        await self.cache.cache(kind).refresh(key, load)


class FakeUsers:
    """Implements `RecentUsers`: users seen earlier in the list were seen longer ago."""

    def __init__(self, active: set[int] | list[int]) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        self.seen = {uid: start + timedelta(seconds=i) for i, uid in enumerate(active)}
        self.unflushed: dict[int, datetime] = {}

    async def last_seen_since(self, since_s: float) -> dict[int, datetime]:
        return dict(self.seen)

    def presence(self) -> dict[int, datetime]:
        return self.unflushed

    def arrive(self, user_id: int) -> None:
        self.unflushed[user_id] = datetime(2026, 1, 2, tzinfo=UTC)


async def _drain(warmer: CacheWarmer) -> None:
    await asyncio.gather(*warmer._tasks)


async def test_only_entries_about_to_expire_for_active_users_are_reloaded() -> None:
    clock = FakeClock()
    layer = CacheLayer(clock)
    define_trader_caches(layer)
    layer.cache(BALANCE.name).set("1:bybit:demo", "old")
    layer.cache(POSITIONS.name).set("2:bybit:demo", "old")  # user 2 is not active
    clock.advance(5)
    layer.cache(BALANCE.name).set("3:paper:paper", "old")  # set later: far from expiry
    portfolio = FakePortfolio(layer)
    warmer = CacheWarmer(portfolio, FakeUsers({1, 3}), layer, clock, lead_s=3.0, rng=NoJitter())
    clock.advance(BALANCE.ttl - 5 - 0.3)  # user 1 has 0.3 s left: reloaded almost at once
    assert await warmer.warm_once() == 1
    await _drain(warmer)
    assert portfolio.warmed == [("balance", "1:bybit:demo")]
    assert layer.cache(BALANCE.name).get("1:bybit:demo") == "fresh"
    assert warmer.stats.refreshed == 1


async def test_a_pending_reload_is_not_scheduled_twice() -> None:
    clock = FakeClock()
    layer = CacheLayer(clock)
    define_trader_caches(layer)
    layer.cache(BALANCE.name).set("1:bybit:demo", "old")
    clock.advance(BALANCE.ttl - 0.3)
    warmer = CacheWarmer(FakePortfolio(layer), FakeUsers({1}), layer, clock, rng=random.Random(1))
    first = await warmer.warm_once()
    second = await warmer.warm_once()
    assert (first, second) == (1, 0)
    await warmer.aclose()


async def test_failures_are_counted_and_readers_keep_the_old_value() -> None:
    clock = FakeClock()
    layer = CacheLayer(clock)
    define_trader_caches(layer)
    layer.cache(BALANCE.name).set("1:bybit:demo", "old")
    clock.advance(BALANCE.ttl - 0.3)
    warmer = CacheWarmer(
        FakePortfolio(layer, fail=True), FakeUsers({1}), layer, clock, rng=NoJitter()
    )
    await warmer.warm_once()
    await _drain(warmer)
    assert warmer.stats.failed == 1
    assert layer.cache(BALANCE.name).get("1:bybit:demo") == "old"


async def test_refresh_keeps_serving_the_old_value_while_loading() -> None:
    clock = FakeClock()
    layer = CacheLayer(clock)
    cache = layer.define("balance", 15, 10)
    cache.set("k", "old")
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "new"

    refreshing = asyncio.create_task(cache.refresh("k", slow))
    await asyncio.sleep(0)
    assert cache.get("k") == "old"  # a hit while the reload runs
    release.set()
    assert await refreshing == "new"
    assert cache.get("k") == "new"
    assert [k for k, _ in cache.expiring(15)] == ["k"]


async def test_warming_stays_within_its_share_of_the_budget_most_recent_first() -> None:
    clock = FakeClock()
    layer = CacheLayer(clock)
    define_trader_caches(layer)
    for uid in range(1, 11):
        layer.cache(BALANCE.name).set(f"{uid}:bybit:demo", "old")
    layer.cache(BALANCE.name).set("11:paper:paper", "old")  # the paper exchange has no limit
    portfolio = FakePortfolio(layer)
    # Bybit allows 2 requests/s; half of it for warming over a 3 s lead: 3 reloads.
    warmer = CacheWarmer(
        portfolio,
        FakeUsers(list(range(1, 12))),  # user 10 was seen most recently among Bybit users
        layer,
        clock,
        lead_s=3.0,
        budget=lambda exchange: 2.0 if exchange == "bybit" else None,
        share=0.5,
        rng=NoJitter(),
    )
    clock.advance(BALANCE.ttl - 2.5)
    assert await warmer.warm_once() == 1  # paper only: Bybit's allowance starts empty
    clock.advance(2.0)  # and fills with time: 1 request/s for warming
    assert await warmer.warm_once() == 2  # the two Bybit users seen most recently
    await _drain(warmer)
    assert sorted(portfolio.warmed) == [
        ("balance", "10:bybit:demo"),
        ("balance", "11:paper:paper"),
        ("balance", "9:bybit:demo"),
    ]
    assert warmer.stats.skipped == 10 + 8  # first run: all ten; second: the eight left


async def test_a_trader_who_just_arrived_is_warmed_without_waiting_for_the_database() -> None:
    clock = FakeClock()
    layer = CacheLayer(clock)
    define_trader_caches(layer)
    users = FakeUsers(set())  # nobody in the database's view yet
    warmer = CacheWarmer(FakePortfolio(layer), users, layer, clock, rng=NoJitter())
    assert await warmer.warm_once() == 0  # reads the database's view (empty) for a minute
    users.arrive(5)  # their first command: presence noted in memory, not written yet
    layer.cache(BALANCE.name).set("5:bybit:demo", "old")
    clock.advance(BALANCE.ttl - 1)
    assert await warmer.warm_once() == 1
    await _drain(warmer)
    assert layer.cache(BALANCE.name).get("5:bybit:demo") == "fresh"


class StuckExchange(FakePortfolio):
    """Exchange reloads wait (the venue's budget is spent); database reloads do not."""

    def __init__(self, cache: CacheLayer) -> None:
        super().__init__(cache)
        self.release = asyncio.Event()

    async def warm(self, kind: str, key: str) -> None:
        if kind != ACCOUNTS.name:
            await self.release.wait()
        await super().warm(kind, key)


async def test_database_reloads_do_not_queue_behind_exchange_reloads() -> None:
    clock = FakeClock()
    layer = CacheLayer(clock)
    define_trader_caches(layer)
    layer.cache(BALANCE.name).set("1:bybit:demo", "old")
    clock.advance(10)
    layer.cache(ACCOUNTS.name).set("1:active", "old")
    portfolio = StuckExchange(layer)
    warmer = CacheWarmer(portfolio, FakeUsers({1}), layer, clock, concurrency=1, rng=NoJitter())
    clock.advance(BALANCE.ttl - 10 - 0.2)
    assert await warmer.warm_once() == 1  # the balance reload takes the one exchange slot
    await asyncio.sleep(0)
    clock.advance(ACCOUNTS.ttl - BALANCE.ttl + 10)  # now the active account is due too
    assert await warmer.warm_once() == 1
    for _ in range(20):  # let the reloads run as far as they can
        await asyncio.sleep(0)
    assert layer.cache(ACCOUNTS.name).get("1:active") == "fresh"  # not stuck behind Bybit
    portfolio.release.set()
    await _drain(warmer)
    assert warmer.stats.refreshed == 2
