"""What a pushed account feed hands over: the role both the ccxt.pro streams
(`core.exchange.streams`) and the paper exchange's events (`core.paper.events`) play.

Each `next_*` waits for the next push of its topic and returns the changed items only: the
orders whose state changed (final ones included, so a reader can drop them), the new
executions, the positions that changed (a flat one as `(symbol, None)`), the whole balance.
A feed that lost its connection raises `FeedLost` from every waiting call; the next calls
connect again (and whoever reads must then catch up by REST: pushes were missed). Pushes
lost without losing the connection are reported to the feed's `GapHandler`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from core.exchange.credentials import ApiCredentials
from core.exchange.errors import TemporaryError
from core.exchange.models import Balance, Fill, Order, Position, Ticker

PositionUpdate = tuple[str, Position | None]  # (symbol, the position or None when flat)
# Told that pushes were lost or cannot be named, and why ("malformed": a frame could not
# be read; "paper_fills": fills not stored yet): the reader catches up by REST.
GapHandler = Callable[[str], None]


class FeedLost(TemporaryError):
    """The feed's connection dropped, stalled or was refused; pushes may have been missed."""


class AccountFeed(Protocol):
    """The pushed state of one trader's account, one connection for all its topics."""

    @property
    def exchange(self) -> str: ...

    async def ready(self) -> None:
        """Connect and subscribe every topic; return when pushes will be heard."""
        ...

    async def next_orders(self) -> Sequence[Order]: ...

    async def next_fills(self) -> Sequence[Fill]: ...

    async def next_positions(self) -> Sequence[PositionUpdate]: ...

    async def next_balance(self) -> Balance: ...

    async def aclose(self) -> None: ...


class FeedSource(Protocol):
    """Opens the account feeds of one venue (`core.exchange.streams.CcxtFeeds`)."""

    async def open(
        self, account_type: str, credentials: ApiCredentials, on_gap: GapHandler
    ) -> AccountFeed: ...

    async def aclose(self) -> None: ...


class TickerFeed(Protocol):
    """A venue's public ticker stream over one connection (`core.exchange.streams`)."""

    @property
    def exchange(self) -> str: ...

    async def next_tickers(self, symbols: Sequence[str], wait_s: float) -> Mapping[str, Ticker]:
        """Subscribe what is not subscribed yet (waiting for each new symbol's snapshot),
        else wait up to `wait_s` for a push; return every ticker of `symbols` that changed
        since the last call (all of them the first time, none when nothing was pushed)."""
        ...

    async def aclose(self) -> None: ...


def open_ticker_feed(venue: Any, on_gap: GapHandler) -> TickerFeed:
    """The public ticker stream of a ccxt venue; ccxt.pro is imported only now."""
    module = importlib.import_module("core.exchange.streams")
    feed: TickerFeed = module.CcxtTickerFeed.open(venue, on_gap)
    return feed


def open_feeds(venue: Any, *, keepalive_ms: int | None = None) -> FeedSource:
    """The ccxt.pro feeds of a ccxt venue; ccxt.pro is imported only now."""
    module = importlib.import_module("core.exchange.streams")
    source: FeedSource = module.CcxtFeeds(venue, keepalive_ms=keepalive_ms)
    return source
