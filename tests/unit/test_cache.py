from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from core.cache import CacheLayer, CacheStats, NamedCache, tally_reads
from tests.fakes.clock import FakeClock

T = TypeVar("T")


class Gate:
    """A loader the test opens by hand; counts calls and notes cancellation."""

    def __init__(self, value: object = "loaded", error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        if self.error is not None:
            raise self.error
        return self.value


def counting(value: T) -> tuple[Callable[[], Awaitable[T]], list[int]]:
    calls: list[int] = []

    async def load() -> T:
        calls.append(1)
        return value

    return load, calls


async def wait(event: asyncio.Event) -> None:
    # Guards against a hung test, not a timing assumption.
    await asyncio.wait_for(event.wait(), timeout=5)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def layer(clock: FakeClock) -> CacheLayer:
    return CacheLayer(clock)


@pytest.fixture
def cache(layer: CacheLayer) -> NamedCache[object]:
    return layer.define("balances", ttl=30.0, maxsize=100)


async def test_concurrent_misses_share_one_loader_call(cache: NamedCache[object]) -> None:
    gate = Gate(value={"USDT": 100})
    tasks = [asyncio.create_task(cache.get_or_load("1:balance", gate)) for _ in range(100)]
    await wait(gate.started)
    gate.release.set()
    results = await asyncio.gather(*tasks)

    assert gate.calls == 1
    assert results == [{"USDT": 100}] * 100
    assert await cache.get_or_load("1:balance", gate) == {"USDT": 100}
    assert gate.calls == 1
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads, stats.size) == (1, 100, 1, 1)


async def test_entry_expires_with_fake_clock_and_reloads(
    cache: NamedCache[object], clock: FakeClock
) -> None:
    load, calls = counting("v")
    assert await cache.get_or_load("k", load) == "v"
    clock.advance(29.9)
    assert await cache.get_or_load("k", load) == "v"
    assert len(calls) == 1

    clock.advance(0.1)  # exactly ttl after the store: expired
    assert cache.peek_ttl_left("k") is None
    assert await cache.get_or_load("k", load) == "v"
    assert len(calls) == 2
    assert cache.stats().evictions == 1


async def test_maxsize_evicts_least_recently_used_and_counts_it(layer: CacheLayer) -> None:
    small: NamedCache[int] = layer.define("small", ttl=60.0, maxsize=2)
    small.set("a", 1)
    small.set("b", 2)
    assert small.get("a") == 1  # "a" is now the most recently used
    small.set("c", 3)

    assert len(small) == 2
    assert small.get("b") is None
    assert small.get("a") == 1
    assert small.get("c") == 3
    assert small.stats().evictions == 1


async def test_expired_and_size_evictions_both_count(layer: CacheLayer, clock: FakeClock) -> None:
    small: NamedCache[int] = layer.define("small", ttl=10.0, maxsize=2)
    small.set("a", 1)
    clock.advance(5)
    small.set("b", 2)
    clock.advance(6)  # "a" expired, "b" still fresh
    small.set("c", 3)  # room comes from the expired entry, no LRU eviction
    small.set("d", 4)  # now "b" must go

    assert sorted(k for k in ("a", "b", "c", "d") if small.peek_ttl_left(k) is not None) == [
        "c",
        "d",
    ]
    assert small.stats().evictions == 2


async def test_exception_reaches_every_waiter_and_is_not_cached(
    cache: NamedCache[object],
) -> None:
    gate = Gate(error=RuntimeError("exchange down"))
    tasks = [asyncio.create_task(cache.get_or_load("k", gate)) for _ in range(3)]
    await wait(gate.started)
    gate.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert gate.calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "exchange down" for r in results)
    assert len(cache) == 0

    load, calls = counting("recovered")
    assert await cache.get_or_load("k", load) == "recovered"
    assert calls == [1]
    stats = cache.stats()
    assert (stats.loads, stats.load_errors, stats.misses) == (2, 1, 4)


async def test_cancelled_waiter_does_not_disturb_the_others(cache: NamedCache[object]) -> None:
    gate = Gate(value="v")
    first, second, third = (asyncio.create_task(cache.get_or_load("k", gate)) for _ in range(3))
    await wait(gate.started)

    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not gate.cancelled.is_set()

    gate.release.set()
    assert await second == "v"
    assert await third == "v"
    assert gate.calls == 1
    assert cache.get("k") == "v"


async def test_all_waiters_cancelled_cancels_load_and_key_loads_again(
    cache: NamedCache[object],
) -> None:
    gate = Gate(value="never")
    waiters = [asyncio.create_task(cache.get_or_load("k", gate)) for _ in range(2)]
    await wait(gate.started)
    for task in waiters:
        task.cancel()
    for task in waiters:
        with pytest.raises(asyncio.CancelledError):
            await task

    load, calls = counting("fresh")
    assert await cache.get_or_load("k", load) == "fresh"
    assert calls == [1]
    await wait(gate.cancelled)
    assert cache.get("k") == "fresh"
    assert cache.stats().load_errors == 0


async def test_invalidate_during_load_wins(cache: NamedCache[object]) -> None:
    old = Gate(value="stale")
    old_waiter = asyncio.create_task(cache.get_or_load("k", old))
    await wait(old.started)

    assert cache.invalidate("k") is False  # nothing stored yet, but the load is in flight
    new = Gate(value="fresh")
    new_waiter = asyncio.create_task(cache.get_or_load("k", new))
    await wait(new.started)  # a fresh load, not a join of the stale one

    new.release.set()
    assert await new_waiter == "fresh"
    old.release.set()
    assert await old_waiter == "stale"  # its own waiter still gets the value
    assert cache.get("k") == "fresh"  # but the stale value is not stored


async def test_invalidate_during_load_leaves_cache_empty(cache: NamedCache[object]) -> None:
    gate = Gate(value="stale")
    waiter = asyncio.create_task(cache.get_or_load("k", gate))
    await wait(gate.started)
    cache.invalidate("k")
    gate.release.set()

    assert await waiter == "stale"
    assert len(cache) == 0
    load, calls = counting("fresh")
    assert await cache.get_or_load("k", load) == "fresh"
    assert calls == [1]


async def test_set_during_load_is_not_overwritten(cache: NamedCache[object]) -> None:
    gate = Gate(value="from-loader")
    waiter = asyncio.create_task(cache.get_or_load("k", gate))
    await wait(gate.started)
    cache.set("k", "from-set")
    gate.release.set()

    assert await waiter == "from-loader"
    assert cache.get("k") == "from-set"


async def test_invalidate_removes_stored_value(cache: NamedCache[object]) -> None:
    cache.set("k", 1)
    assert cache.invalidate("k") is True
    assert cache.get("k") is None
    assert cache.invalidate("k") is False


async def test_invalidate_prefix_matches_str_and_tuple_keys(cache: NamedCache[object]) -> None:
    cache.set("42:balance", 1)
    cache.set("42:positions", 2)
    cache.set(("42", "pnl", 7), 3)
    cache.set("420:balance", 4)
    cache.set(("7", "pnl"), 5)

    assert cache.invalidate_prefix("42:") == 3
    assert cache.get("42:balance") is None
    assert cache.get(("42", "pnl", 7)) is None
    assert cache.get("420:balance") == 4
    assert cache.get(("7", "pnl")) == 5

    assert cache.invalidate_prefix("7:pn") == 1
    assert cache.get(("7", "pnl")) is None
    assert len(cache) == 1


async def test_invalidate_prefix_stops_in_flight_load_from_storing(
    cache: NamedCache[object],
) -> None:
    gate = Gate(value="stale")
    waiter = asyncio.create_task(cache.get_or_load(("42", "balance"), gate))
    await wait(gate.started)
    assert cache.invalidate_prefix("42:") == 0
    gate.release.set()

    assert await waiter == "stale"
    assert cache.get(("42", "balance")) is None


async def test_rejects_keys_without_string_form(cache: NamedCache[object]) -> None:
    with pytest.raises(TypeError):
        cache.set((42, "balance"), 1)  # statically fine; the str-first rule is checked at runtime
    with pytest.raises(TypeError):
        cache.get(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.get(())


async def test_stats_counts_are_exact(layer: CacheLayer, clock: FakeClock) -> None:
    cache: NamedCache[str] = layer.define("agg", ttl=10.0, maxsize=2)
    load, _ = counting("v")

    async def boom() -> str:
        raise ValueError("sql")

    cache.set("a", "1")  # no hit, no miss, no load
    assert cache.get("a") == "1"  # hit
    assert cache.get("b") is None  # miss
    assert await cache.get_or_load("b", load) == "v"  # miss + load
    assert await cache.get_or_load("b", load) == "v"  # hit
    with pytest.raises(ValueError, match="sql"):
        await cache.get_or_load("c", boom)  # miss + load + error
    cache.set("c", "3")  # evicts "a", the least recently used
    clock.advance(10)  # "b" and "c" expire
    assert cache.peek_ttl_left("b") is None  # neither hit nor miss

    assert layer.stats() == {
        "agg": CacheStats(
            hits=2,
            misses=3,
            loads=2,
            load_errors=1,
            evictions=3,
            stale_hits=0,
            size=0,
            maxsize=2,
            ttl=10.0,
        )
    }


async def test_peek_ttl_left_follows_clock(cache: NamedCache[object], clock: FakeClock) -> None:
    assert cache.peek_ttl_left("k") is None
    cache.set("k", 1)
    assert cache.peek_ttl_left("k") == pytest.approx(30.0)
    clock.advance(12.5)
    assert cache.peek_ttl_left("k") == pytest.approx(17.5)
    cache.set("k", 2)  # rewriting restarts the ttl
    assert cache.peek_ttl_left("k") == pytest.approx(30.0)
    clock.advance(30)
    assert cache.peek_ttl_left("k") is None
    assert (cache.stats().hits, cache.stats().misses) == (0, 0)


async def test_define_and_lookup_rules(layer: CacheLayer) -> None:
    first = layer.define("prices", ttl=5.0, maxsize=10)
    assert layer.define("prices", ttl=5.0, maxsize=10) is first
    assert layer.cache("prices") is first
    with pytest.raises(ValueError, match="already defined"):
        layer.define("prices", ttl=6.0, maxsize=10)
    with pytest.raises(KeyError):
        layer.cache("nope")
    with pytest.raises(ValueError, match="maxsize"):
        layer.define("bad", ttl=5.0, maxsize=0)
    with pytest.raises(ValueError, match="ttl"):
        layer.define("bad", ttl=0, maxsize=1)


async def test_layer_clear_empties_every_cache_and_keeps_counters(layer: CacheLayer) -> None:
    a: NamedCache[int] = layer.define("a", ttl=5.0, maxsize=10)
    b: NamedCache[object] = layer.define("b", ttl=5.0, maxsize=10)
    a.set("x", 1)
    b.set("y", 2)
    assert a.get("x") == 1

    gate = Gate(value=3)
    waiter = asyncio.create_task(b.get_or_load("z", gate))
    await wait(gate.started)
    layer.clear()
    gate.release.set()

    assert await waiter == 3
    assert (len(a), len(b)) == (0, 0)
    assert a.stats().hits == 1
    assert a.stats().evictions == 0


def test_cache_stats_is_frozen() -> None:
    stats = CacheStats(
        hits=0,
        misses=0,
        loads=0,
        load_errors=0,
        evictions=0,
        stale_hits=0,
        size=0,
        maxsize=1,
        ttl=1.0,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.hits = 1  # type: ignore[misc]


def test_default_clock_is_the_system_clock() -> None:
    cache: NamedCache[int] = CacheLayer().define("real", ttl=60.0, maxsize=1)
    cache.set("k", 1)
    left = cache.peek_ttl_left("k")
    assert left is not None
    assert 59.0 < left <= 60.0


async def test_refresh_past_expiry_serves_the_replaced_value(
    cache: NamedCache[object], clock: FakeClock
) -> None:
    cache.set("k", "old")
    gate = Gate(value="new")
    refresher = asyncio.create_task(cache.refresh("k", gate))
    await wait(gate.started)
    clock.advance(cache.ttl + 1)  # the entry expires while its reload is still in flight

    load, calls = counting("unused")
    assert await cache.get_or_load("k", load) == "old"
    assert calls == []  # no second exchange call: the reader did not wait for one
    assert cache.stats().stale_hits == 1

    gate.release.set()
    assert await refresher == "new"
    assert await cache.get_or_load("k", load) == "new"
    assert calls == []


async def test_a_held_value_is_served_only_within_the_grace(
    cache: NamedCache[object], clock: FakeClock
) -> None:
    cache.set("k", "old")
    cache.hold("k")  # the warmer promised a reload that is running late
    clock.advance(cache.ttl + cache.grace / 2)
    load, calls = counting("new")
    assert await cache.get_or_load("k", load) == "old" and calls == []
    clock.advance(cache.grace)  # past the grace: a normal miss
    assert await cache.get_or_load("k", load) == "new" and calls == [1]
    assert cache.stats().stale_hits == 1


async def test_invalidation_stops_serving_the_replaced_value(
    cache: NamedCache[object], clock: FakeClock
) -> None:
    cache.set("k", "old")
    gate = Gate(value="new")
    refresher = asyncio.create_task(cache.refresh("k", gate))
    await wait(gate.started)
    clock.advance(cache.ttl + 1)
    cache.invalidate("k")  # e.g. an order was placed: the old balance is wrong now

    load, calls = counting("after-order")
    assert await cache.get_or_load("k", load) == "after-order"
    assert calls == [1]
    gate.release.set()
    await refresher
    assert cache.get("k") == "after-order"  # the detached reload did not overwrite it


async def test_tally_counts_the_reads_of_one_block(cache: NamedCache[object]) -> None:
    load, _ = counting("v")
    await cache.get_or_load("a", load)
    with tally_reads() as tally:
        await cache.get_or_load("a", load)
        await asyncio.gather(cache.get_or_load("b", load), cache.get_or_load("a", load))
    await cache.get_or_load("c", load)  # outside the block: not counted
    assert (tally.hits, tally.misses) == (2, 1)


async def test_prefix_invalidation_ends_a_hold(cache: NamedCache[object], clock: FakeClock) -> None:
    cache.set("7:bybit:demo", "before the order")
    cache.hold("7:bybit:demo")
    cache.invalidate_prefix("7:")  # the trader placed an order
    load, calls = counting("after the order")
    assert await cache.get_or_load("7:bybit:demo", load) == "after the order"
    assert calls == [1]
