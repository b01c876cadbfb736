"""Named in-memory caches in front of slow reads (exchange calls, SQL aggregates).

A `CacheLayer` holds named caches, each a TTL + LRU store (cachetools) whose time
comes from the injected `Clock`, so tests move expiry with `FakeClock.advance`.

Single-flight: concurrent misses for one key share one loader call. The first miss
starts a task; later misses await the same task through `asyncio.shield`, so a
cancelled waiter leaves the load running for the others. When the last waiter is
cancelled the load is cancelled too and the key is free to load again. Exceptions
are passed to every waiter of that flight and never cached.

Generation rule: a load stores its result only if its key was not invalidated
(`invalidate`, `invalidate_prefix`, `clear`) or `set` while it was in flight. Such a
load is also detached, so calls after the invalidation start a fresh load instead of
joining the stale one; the stale load's own waiters still receive its value.

Keys are `str` or tuples whose first element is a `str`. Prefix invalidation matches
on the key's string form: the string itself, or a tuple's elements joined by ':'.
Convention: `f"{user_id}:balance"` or `(str(user_id), "balance")`, so that
`invalidate_prefix(f"{user_id}:")` drops everything cached for one user.

Refresh-ahead: the cache warmer `hold`s a key when it schedules its reload, and `refresh`
reloads it. Should the entry's TTL run out before the new value lands (a busy event loop,
a slow exchange), readers keep getting the held value for at most `grace` seconds past
its expiry instead of all missing at once (stale-while-revalidate, counted in
`stale_hits`). The new value, or any invalidation, ends the hold at once.

Statistics: `evictions` counts entries dropped by the cache itself, both expired
(TTL) and pushed out by `maxsize` (LRU); explicit invalidation is not an eviction.
A call that joins an in-flight load counts as a miss; `loads` counts loader calls.

`tally_reads()` counts the hits and misses of the code run inside it (one command, say),
so a caller can tell a reply served wholly from cache from one that waited for a load.

Not thread-safe: use from one event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

from cachetools import TTLCache

from core.clock import Clock, SystemClock

V = TypeVar("V")

CacheKey: TypeAlias = str | tuple[Hashable, ...]

MAX_GRACE_S = 5.0


@dataclass(slots=True, frozen=True)
class CacheStats:
    """Counters for one named cache since it was defined."""

    hits: int
    misses: int
    loads: int
    load_errors: int
    evictions: int
    stale_hits: int
    size: int
    maxsize: int
    ttl: float


@dataclass(slots=True)
class ReadTally:
    """Cache reads made inside one `tally_reads()` block."""

    hits: int = 0
    misses: int = 0


_tally: ContextVar[ReadTally | None] = ContextVar("tradewind_cache_tally", default=None)


@contextmanager
def tally_reads() -> Iterator[ReadTally]:
    """Count the hits and misses of every cache read made inside the block (and its tasks)."""
    tally = ReadTally()
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)


def _count(hit: bool) -> None:
    tally = _tally.get()
    if tally is not None:
        if hit:
            tally.hits += 1
        else:
            tally.misses += 1


def key_string(key: CacheKey) -> str:
    """Return the form of `key` that `invalidate_prefix` matches against."""
    if isinstance(key, str):
        return key
    return ":".join(str(part) for part in key)


def _check_key(key: object) -> None:
    # Prefix invalidation only works if every key has a meaningful string form.
    if isinstance(key, str) or (isinstance(key, tuple) and key and isinstance(key[0], str)):
        return
    raise TypeError(f"cache key must be a str or a tuple starting with a str, got {key!r}")


class _CountingTTLCache(TTLCache[CacheKey, Any, float]):
    """TTLCache that counts what it drops on its own and remembers expiry times."""

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float]) -> None:
        super().__init__(maxsize, ttl, timer)
        self._ttl_seconds = ttl
        self.evictions = 0
        # TTLCache keeps expiry times private; peek_ttl_left needs them.
        self._expires: dict[CacheKey, float] = {}

    def __setitem__(self, key: CacheKey, value: Any) -> None:
        with self.timer as now:
            super().__setitem__(key, value)
            self._expires[key] = now + self._ttl_seconds

    def __delitem__(self, key: CacheKey) -> None:
        try:
            super().__delitem__(key)
        finally:
            self._expires.pop(key, None)

    def expire(self, time: float | None = None) -> list[tuple[CacheKey, Any]]:
        # Also called by TTLCache itself on every write and from popitem.
        expired = super().expire(time)
        for key, _ in expired:
            self._expires.pop(key, None)
        self.evictions += len(expired)
        return expired

    def popitem(self) -> tuple[CacheKey, Any]:
        # TTLCache only calls popitem to make room, so each call is one LRU eviction.
        item = super().popitem()
        self.evictions += 1
        return item

    def clear(self) -> None:
        super().clear()
        self._expires.clear()

    def expires_at(self, key: CacheKey) -> float | None:
        return self._expires.get(key)

    def expiring(self, now: float, within: float) -> list[tuple[CacheKey, float]]:
        return [(k, at - now) for k, at in self._expires.items() if at - now <= within]


@dataclass(slots=True)
class _Flight(Generic[V]):
    """One in-flight load shared by every waiter for its key."""

    stale: bool = False
    waiters: int = 0
    task: asyncio.Task[V] = field(init=False)


class NamedCache(Generic[V]):
    """One named TTL + LRU cache with single-flight loading. Get it from `CacheLayer`."""

    def __init__(self, name: str, ttl: float, maxsize: int, clock: Clock) -> None:
        self.name = name
        self.ttl = ttl
        self.maxsize = maxsize
        # How long past expiry a value whose reload is promised may still be served.
        self.grace = min(ttl / 3, MAX_GRACE_S)
        self._clock = clock
        self._data = _CountingTTLCache(maxsize, ttl, clock.monotonic)
        self._inflight: dict[CacheKey, _Flight[V]] = {}
        # Detached (stale) loads are referenced only by their waiters; keep them alive.
        self._tasks: set[asyncio.Task[V]] = set()
        # Values whose reload is promised (`hold`): served until the deadline if they expire
        # before the reload lands.
        self._held: dict[CacheKey, tuple[V, float]] = {}
        self._hits = 0
        self._stale_hits = 0
        self._misses = 0
        self._loads = 0
        self._load_errors = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: CacheKey) -> V | None:
        """Return the cached value or None, without loading. Counts a hit or a miss."""
        _check_key(key)
        self._data.expire()
        try:
            value: V = self._data[key]
        except KeyError:
            self._misses += 1
            _count(hit=False)
            return None
        self._hits += 1
        _count(hit=True)
        return value

    def set(self, key: CacheKey, value: V) -> None:
        """Store `value`; a load for `key` already in flight will not overwrite it."""
        _check_key(key)
        self._detach_stale(key)
        self._data[key] = value

    def invalidate(self, key: CacheKey) -> bool:
        """Drop `key` and stop an in-flight load from storing. True if a value was dropped."""
        _check_key(key)
        self._detach_stale(key)
        self._data.expire()
        if key in self._data:
            del self._data[key]
            return True
        return False

    def invalidate_prefix(self, prefix: str) -> int:
        """Drop every key whose string form starts with `prefix`; return how many."""
        for key in [k for k in self._inflight if key_string(k).startswith(prefix)]:
            self._detach_stale(key)
        for key in [k for k in self._held if key_string(k).startswith(prefix)]:
            del self._held[key]
        self._data.expire()
        doomed = [k for k in self._data if key_string(k).startswith(prefix)]
        for key in doomed:
            del self._data[key]
        return len(doomed)

    def clear(self) -> None:
        """Drop every entry and stop every in-flight load from storing."""
        for key in list(self._inflight):
            self._detach_stale(key)
        self._data.clear()
        self._held.clear()

    def peek_ttl_left(self, key: CacheKey) -> float | None:
        """Seconds until `key` expires, or None if absent. Counts neither hit nor miss."""
        _check_key(key)
        self._data.expire()
        expires = self._data.expires_at(key)
        if expires is None:
            return None
        return max(0.0, expires - self._clock.monotonic())

    def expiring(self, within_s: float) -> list[tuple[CacheKey, float]]:
        """Keys that expire within `within_s` seconds, with the seconds left (cache warming)."""
        self._data.expire()
        now = self._clock.monotonic()
        for key in [k for k, (_, deadline) in self._held.items() if deadline < now]:
            del self._held[key]  # a promised reload that never came (its loader failed)
        return self._data.expiring(now, within_s)

    def hold(self, key: CacheKey) -> None:
        """Promise a reload of `key`: until it lands, readers may get the current value for
        up to `grace` seconds past its expiry. Nothing happens if `key` is not cached."""
        _check_key(key)
        expires = self._data.expires_at(key)
        if expires is not None and expires > self._clock.monotonic():
            self._held[key] = (self._data[key], expires + self.grace)

    async def refresh(self, key: CacheKey, loader: Callable[[], Awaitable[V]]) -> V:
        """Load `key` again while readers keep getting the current value until it lands.

        Joins a load already in flight for the key instead of starting a second one.
        """
        _check_key(key)
        flight = self._inflight.get(key)
        if flight is None:
            self.hold(key)
            flight = self._start(key, loader)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1

    def stats(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            loads=self._loads,
            load_errors=self._load_errors,
            evictions=self._data.evictions,
            stale_hits=self._stale_hits,
            size=len(self._data),
            maxsize=self.maxsize,
            ttl=self.ttl,
        )

    async def get_or_load(self, key: CacheKey, loader: Callable[[], Awaitable[V]]) -> V:
        """Return the cached value, or load it once for all concurrent callers."""
        _check_key(key)
        self._data.expire()
        try:
            value: V = self._data[key]
        except KeyError:
            pass
        else:
            self._hits += 1
            _count(hit=True)
            return value
        held = self._held.get(key)
        if held is not None:
            if self._clock.monotonic() <= held[1]:
                self._hits += 1
                self._stale_hits += 1
                _count(hit=True)
                return held[0]
            del self._held[key]
        self._misses += 1
        _count(hit=False)
        flight = self._inflight.get(key)
        if flight is None:
            flight = self._start(key, loader)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # Every caller gave up: stop the slow call rather than leak it, and
                # detach first so the next caller starts afresh instead of joining
                # a task that is about to raise CancelledError.
                self._detach(key, flight)
                flight.task.cancel()

    def _start(self, key: CacheKey, loader: Callable[[], Awaitable[V]]) -> _Flight[V]:
        flight: _Flight[V] = _Flight()
        task = asyncio.get_running_loop().create_task(
            self._load(key, flight, loader), name=f"cache-load:{self.name}:{key_string(key)}"
        )
        flight.task = task
        self._inflight[key] = flight
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return flight

    async def _load(
        self, key: CacheKey, flight: _Flight[V], loader: Callable[[], Awaitable[V]]
    ) -> V:
        self._loads += 1
        try:
            value = await loader()
        except Exception:
            self._load_errors += 1
            raise
        finally:
            # Before the task completes, so no caller can join a finished flight
            # and be handed an old exception.
            self._detach(key, flight)
        if not flight.stale:
            self._data[key] = value
            self._held.pop(key, None)
        return value

    def _task_done(self, task: asyncio.Task[V]) -> None:
        self._tasks.discard(task)
        # Mark the exception retrieved: waiters may all have left before it arrived.
        if not task.cancelled():
            task.exception()

    def _detach(self, key: CacheKey, flight: _Flight[V]) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]

    def _detach_stale(self, key: CacheKey) -> None:
        self._held.pop(key, None)
        flight = self._inflight.pop(key, None)
        if flight is not None:
            flight.stale = True


class CacheLayer:
    """Registry of named caches sharing one clock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._caches: dict[str, NamedCache[Any]] = {}

    def define(self, name: str, ttl: float, maxsize: int) -> NamedCache[Any]:
        """Register a named cache; defining it again with the same settings returns it."""
        if ttl <= 0:
            raise ValueError(f"cache {name!r}: ttl must be positive, got {ttl}")
        if maxsize < 1:
            raise ValueError(f"cache {name!r}: maxsize must be at least 1, got {maxsize}")
        existing = self._caches.get(name)
        if existing is not None:
            if (existing.ttl, existing.maxsize) != (ttl, maxsize):
                raise ValueError(
                    f"cache {name!r} already defined with ttl={existing.ttl}, "
                    f"maxsize={existing.maxsize}; got ttl={ttl}, maxsize={maxsize}"
                )
            return existing
        cache: NamedCache[Any] = NamedCache(name, ttl, maxsize, self._clock)
        self._caches[name] = cache
        return cache

    def cache(self, name: str) -> NamedCache[Any]:
        try:
            return self._caches[name]
        except KeyError:
            raise KeyError(f"no cache named {name!r}; call define() first") from None

    def stats(self) -> dict[str, CacheStats]:
        return {name: cache.stats() for name, cache in self._caches.items()}

    def clear(self) -> None:
        """Empty every named cache; counters are kept."""
        for cache in self._caches.values():
            cache.clear()
