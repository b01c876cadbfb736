"""The market source's tickers pushed by the venue's public stream into the gateway's tape.

While the stream is connected, the tape (`ExchangeGateway.tickers`) is replaced once per
`publish_s` with the latest state of every symbol (unchanged symbols stay current: the
venue would have pushed a change), so the scanner, paper
settlement, alerts, trailing stops and commands read it without a request. A stream that
drops, stalls (silent for `silent_s`) or cannot connect stops publishing: the tape then
ages past its TTL and the next reader makes the one bulk REST read, exactly as with
streams off, until the stream is back (reconnected with backoff).

Symbols come from the venue's markets (reloaded by the registry sync), so a new listing is
subscribed at the next publish and a delisted one leaves the tape.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from core.exchange.errors import ExchangeError
from core.exchange.feed import FeedLost, TickerFeed
from core.exchange.models import Ticker

log = logging.getLogger(__name__)

TickerFeedOpener = Callable[[], Awaitable[TickerFeed]]


class TickerTape(Protocol):
    """Where the stream publishes and what it starts from: the gateway's tape."""

    async def tickers(self, exchange: str) -> Mapping[str, Ticker]: ...

    def push_tickers(self, exchange: str, tickers: Mapping[str, Ticker]) -> None: ...


@dataclass(slots=True)
class TickerStreamStats:
    connected: bool = False
    connects: int = 0
    drops: int = 0
    publishes: int = 0
    updates: int = 0  # tickers changed by pushes, summed over publishes
    gaps: int = 0  # unreadable frames


class TickerStream:
    """Keeps one exchange's ticker tape fresh from its public stream (see the module)."""

    def __init__(
        self,
        exchange: str,
        tape: TickerTape,
        opener: TickerFeedOpener,
        symbols: Callable[[], Collection[str]],
        *,
        publish_s: float = 1.0,
        silent_s: float = 30.0,
        backoff_s: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self.exchange = exchange
        self._tape = tape
        self._open = opener
        self._symbols = symbols
        self.publish_s = publish_s
        self.silent_s = silent_s
        self._backoff = backoff_s
        self.stats = TickerStreamStats()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.stats.connected = False

    def gap(self, why: str) -> None:
        """A frame was lost without the connection: the next push of that symbol heals it
        (a ticker frame carries the whole state), so the gap is only counted."""
        self.stats.gaps += 1
        log.info("%s ticker stream: a frame was lost (%s)", self.exchange, why)

    def gauges(self) -> dict[str, float]:
        s = self.stats
        return {
            "connected": float(s.connected),
            "connects": float(s.connects),
            "drops": float(s.drops),
            "publishes": float(s.publishes),
        }

    async def _run(self) -> None:
        failures = 0
        while True:
            feed: TickerFeed | None = None
            try:
                feed = await self._open()
                await self._pump(feed)
            except TimeoutError:
                # A venue pushes tickers many times a second; a quiet test market does not.
                failures = 0 if self.stats.connected else failures
                self.stats.drops += 1
                log.info(
                    "%s ticker stream silent for %.0f s; connecting again",
                    self.exchange,
                    self.silent_s,
                )
            except (FeedLost, ExchangeError) as exc:
                failures = 0 if self.stats.connected else failures  # it was up: backoff anew
                self.stats.drops += 1
                log.warning("%s ticker stream lost (%s); REST reads meanwhile", self.exchange, exc)
            except Exception:
                self.stats.drops += 1
                log.exception("%s ticker stream failed; REST reads meanwhile", self.exchange)
            finally:
                self.stats.connected = False
                if feed is not None:
                    await feed.aclose()
            base, cap = self._backoff
            delay = min(cap, base * 2**failures)
            failures += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _pump(self, feed: TickerFeed) -> None:
        """Publish the merged market once per `publish_s` while the stream talks."""
        loop = asyncio.get_running_loop()
        current = dict(await self._tape.tickers(self.exchange))  # the REST tape to start
        heard = loop.time()
        while True:
            began = loop.time()
            symbols = sorted(self._symbols()) or sorted(current)  # markets not loaded yet
            changed = await feed.next_tickers(symbols, self.publish_s)
            if changed:
                heard = loop.time()
            elif loop.time() - heard > self.silent_s:
                raise TimeoutError  # connected, but nothing for too long: connect again
            if not self.stats.connected:
                self.stats.connects += 1
                self.stats.connected = True
                log.info("%s ticker stream: %d symbols pushed", self.exchange, len(symbols))
            listed = set(symbols)
            merged = {s: t for s, t in current.items() if s in listed}
            merged.update(changed)
            current = merged  # a new mapping each time: readers keep the one they hold
            self._tape.push_tickers(self.exchange, current)
            self.stats.publishes += 1
            self.stats.updates += len(changed)
            await asyncio.sleep(max(0.0, self.publish_s - (loop.time() - began)))
