"""Which accounts are streamed, within the caps; the rest are polled as before.

An account streams when it was active (a command touched it, an order was placed on it)
within the last `active_window_s`, or while its stream shows open positions or orders. At
most `total` accounts stream in this process (`TRADEWIND_STREAMS`; 0 turns streaming off)
and at most `per_venue[exchange]` on one venue (its connection limits). When a new account
would pass a cap, the stream of the least recently active account is dropped first (one
without positions or orders before one with them). Each stream is one connection for all
of its account's topics (`services.account_stream`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from core.clock import Clock
from core.config import DEFAULT_STREAMS
from core.metrics import Metrics
from services.account_client import AccountClient
from services.account_stream import (
    AccountStream,
    CatchUp,
    ConnectGate,
    FeedOpener,
    FillSink,
    Key,
    MarkReader,
)

log = logging.getLogger(__name__)

# Private connections one IP may hold open on each venue, with room to spare.
VENUE_STREAMS: Mapping[str, int] = {"bybit": 1000, "binance": 300, "okx": 300, "paper": 100_000}
SWEEP_S = 60.0


# New private connections a second each venue allows one IP (Bybit: 500 per 5 minutes).
VENUE_CONNECTS: Mapping[str, float] = {"bybit": 1.6, "binance": 1.0, "okx": 1.0}


@dataclass(slots=True, frozen=True)
class StreamLimits:
    total: int = DEFAULT_STREAMS
    per_venue: Mapping[str, int] = field(default_factory=lambda: dict(VENUE_STREAMS))
    active_window_s: float = 900.0  # "active" means touched within the last 15 minutes
    connects_per_s: Mapping[str, float] = field(default_factory=lambda: dict(VENUE_CONNECTS))
    connect_burst: float = 50  # connections opened at once before the pace applies


class StreamManager:
    """Starts, keeps and drops account streams as traders come and go."""

    def __init__(
        self,
        *,
        limits: StreamLimits,
        opener: FeedOpener,
        accounts: Callable[[int, str, str], AccountClient],
        sink: FillSink,
        catch_up: CatchUp,
        clock: Clock,
        metrics: Metrics | None = None,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        marks: MarkReader | None = None,
    ) -> None:
        self.limits = limits
        self._marks = marks
        self._opener = opener
        self._accounts = accounts
        self.sink = sink  # where pushed executions go (a benchmark may wrap it)
        self._catch_up = catch_up
        self._clock = clock
        self._metrics = metrics
        self._backoff = backoff_s
        self._last_active: dict[Key, float] = {}
        self._streams: dict[Key, AccountStream] = {}
        self._gates: dict[str, ConnectGate] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.limits.total > 0

    def touch(self, user_id: int, exchange: str, account_type: str) -> None:
        """The account was just used: it is active, and streams if the caps allow."""
        key = (user_id, exchange, account_type)
        self._last_active[key] = self._clock.monotonic()
        if key not in self._streams:
            self._admit(key)

    def expose(self, keys: Iterable[Key]) -> None:
        """These accounts hold positions or orders: stream them (as least recently active)."""
        for key in keys:
            self._last_active.setdefault(key, float("-inf"))
            if key not in self._streams:
                self._admit(key)

    def streaming(self, user_id: int, exchange: str, account_type: str) -> bool:
        return (user_id, exchange, account_type) in self._streams

    def stream(self, user_id: int, exchange: str, account_type: str) -> AccountStream | None:
        return self._streams.get((user_id, exchange, account_type))

    def counts(self) -> dict[str, float]:
        """Streams per venue (and connected ones), for the metrics gauge and /health."""
        out: dict[str, float] = {}
        for (_, exchange, _), stream in self._streams.items():
            out[exchange] = out.get(exchange, 0) + 1
            if stream.connected:
                out[f"{exchange}_connected"] = out.get(f"{exchange}_connected", 0) + 1
        return out

    def start(self) -> None:
        if self._sweeper is None and self.enabled:
            self._sweeper = asyncio.ensure_future(self._sweep_forever())

    async def sweep(self) -> int:
        """Drop the streams of accounts idle past the window with nothing open; how many."""
        cutoff = self._clock.monotonic() - self.limits.active_window_s
        idle = [
            key
            for key, stream in self._streams.items()
            if self._last_active.get(key, float("-inf")) < cutoff and not stream.exposed
        ]
        for key in idle:
            await self._drop(key, "idle")
        for key in [k for k, at in self._last_active.items() if at < cutoff]:
            if key not in self._streams:
                del self._last_active[key]
        return len(idle)

    async def aclose(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        streams, self._streams = list(self._streams.values()), {}
        await asyncio.gather(*(s.stop() for s in streams), *self._stopping)
        await self._opener.aclose()

    # ---- admission ------------------------------------------------------
    def _admit(self, key: Key) -> None:
        if self._closed or not self.enabled:
            return
        exchange = key[1]
        venue_cap = self.limits.per_venue.get(exchange, self.limits.total)
        if venue_cap <= 0:
            return
        on_venue = [k for k in self._streams if k[1] == exchange]
        if len(on_venue) >= venue_cap and not self._evict(on_venue, key):
            return
        if len(self._streams) >= self.limits.total and not self._evict(list(self._streams), key):
            return
        stream = AccountStream(
            key,
            account=self._accounts(*key),
            opener=self._opener,
            sink=self.sink,
            catch_up=self._catch_up,
            metrics=self._metrics,
            backoff_s=self._backoff,
            marks=self._marks,
            gate=self._gate(exchange),
        )
        self._streams[key] = stream
        stream.start()
        log.debug("streaming %s (%d streams)", key, len(self._streams))

    def _gate(self, exchange: str) -> ConnectGate:
        gate = self._gates.get(exchange)
        if gate is None:
            per_s = self.limits.connects_per_s.get(exchange, 1000.0)  # paper: no connections
            gate = self._gates[exchange] = ConnectGate(per_s=per_s, burst=self.limits.connect_burst)
        return gate

    def _evict(self, candidates: list[Key], newcomer: Key) -> bool:
        """Make room by dropping the least recently active stream, if it is less recently
        active than the newcomer."""
        if not candidates:
            return False

        def rank(key: Key) -> tuple[bool, float]:
            return self._streams[key].exposed, self._last_active.get(key, float("-inf"))

        victim = min(candidates, key=rank)
        if rank(victim) >= (False, self._last_active.get(newcomer, float("-inf"))):
            return False
        stream = self._streams.pop(victim)
        self._count(victim[1], "evicted")
        task = asyncio.ensure_future(stream.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        return True

    async def _drop(self, key: Key, why: str) -> None:
        stream = self._streams.pop(key, None)
        if stream is not None:
            self._count(key[1], why)
            await stream.stop()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                await self.sweep()
            except Exception:
                log.exception("stream sweep failed")

    def _count(self, exchange: str, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.stream_events.labels(exchange, kind).inc()
