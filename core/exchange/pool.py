"""Per-user exchange clients, created lazily, shared while in use, closed when idle.

Keyed by (user, exchange, account type). Clients are lent with `async with pool.lease(...)`
so an evicted client is never closed under a request that is still using it: its close waits
for the last lease. Concurrent first requests for one key create one client. An LRU bound
and an idle timeout keep memory flat however many traders come and go.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from core.clock import Clock, SystemClock
from core.exchange.protocol import ExchangeClient

log = logging.getLogger(__name__)

PoolKey = tuple[int, str, str]  # (user id, exchange, account type)


class PooledClient(ExchangeClient, Protocol):
    def healthy(self) -> bool:
        """Cheap, local check that the client can still be used (no network call)."""
        ...


ClientFactory = Callable[[PoolKey], Awaitable[PooledClient]]


@dataclass(slots=True)
class _Entry:
    client: PooledClient
    last_used: float
    leases: int = 0
    retired: bool = False


@dataclass(slots=True, frozen=True)
class PoolStats:
    size: int
    leased: int
    created: int
    evicted: int
    replaced_unhealthy: int


class ClientPool:
    """LRU-bounded pool of exchange clients with idle eviction."""

    def __init__(
        self,
        factory: ClientFactory,
        *,
        max_size: int = 2000,
        idle_ttl_s: float = 900.0,
        health_check_after_s: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        self._factory = factory
        self._max_size = max_size
        self._idle_ttl = idle_ttl_s
        self._health_after = health_check_after_s
        self._clock = clock or SystemClock()
        self._entries: OrderedDict[PoolKey, _Entry] = OrderedDict()
        self._creating: dict[PoolKey, asyncio.Future[_Entry]] = {}
        self._created = self._evicted = self._unhealthy = 0
        self._closed = False

    @asynccontextmanager
    async def lease(
        self, user_id: int, exchange: str, account_type: str
    ) -> AsyncIterator[PooledClient]:
        """Lend the user's client for the duration of the block."""
        entry = await self._acquire((user_id, exchange, account_type))
        entry.leases += 1
        try:
            yield entry.client
        finally:
            entry.leases -= 1
            entry.last_used = self._clock.monotonic()
            if entry.retired and entry.leases == 0:
                await self._close(entry)

    async def _acquire(self, key: PoolKey) -> _Entry:
        if self._closed:
            raise RuntimeError("client pool is closed")
        entry = self._entries.get(key)
        now = self._clock.monotonic()
        if entry is not None:
            if now - entry.last_used > self._health_after and not entry.client.healthy():
                self._unhealthy += 1
                await self._retire(key)
            else:
                self._entries.move_to_end(key)
                entry.last_used = now
                return entry
        pending = self._creating.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._create(key))
            self._creating[key] = pending
            pending.add_done_callback(lambda _: self._creating.pop(key, None))
        return await asyncio.shield(pending)

    async def _create(self, key: PoolKey) -> _Entry:
        client = await self._factory(key)
        entry = _Entry(client, self._clock.monotonic())
        self._entries[key] = entry
        self._created += 1
        while len(self._entries) > self._max_size:
            oldest = next(iter(self._entries))
            self._evicted += 1
            await self._retire(oldest)
        return entry

    async def drop(
        self, user_id: int, exchange: str | None = None, account_type: str | None = None
    ) -> int:
        """Forget a user's clients (credentials replaced or removed); return how many."""
        keys = [
            key
            for key in self._entries
            if key[0] == user_id
            and (exchange is None or key[1] == exchange)
            and (account_type is None or key[2] == account_type)
        ]
        for key in keys:
            await self._retire(key)
        return len(keys)

    async def evict_idle(self) -> int:
        """Close clients unused for longer than the idle timeout (a job calls this)."""
        cutoff = self._clock.monotonic() - self._idle_ttl
        idle = [k for k, e in self._entries.items() if e.last_used < cutoff and e.leases == 0]
        for key in idle:
            await self._retire(key)
        self._evicted += len(idle)
        return len(idle)

    def stats(self) -> PoolStats:
        leased = sum(1 for e in self._entries.values() if e.leases)
        return PoolStats(len(self._entries), leased, self._created, self._evicted, self._unhealthy)

    async def aclose(self) -> None:
        """Close every client; idempotent. Pending creations are awaited and closed too."""
        self._closed = True
        for pending in list(self._creating.values()):
            try:
                await pending
            except Exception:  # a failed creation has nothing to close
                log.debug("client creation failed during pool close", exc_info=True)
        for key in list(self._entries):
            entry = self._entries.pop(key)
            await self._close(entry)

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _retire(self, key: PoolKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        entry.retired = True
        if entry.leases == 0:
            await self._close(entry)

    async def _close(self, entry: _Entry) -> None:
        try:
            await entry.client.close()
        except Exception:  # closing must never take the pool down
            log.warning("closing an exchange client failed", exc_info=True)
