"""Real-exchange venues, created on first use so a paper-only process never loads ccxt."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol

from core.exchange.breaker import BreakerBoard
from core.exchange.credentials import ApiCredentials
from core.exchange.models import Market
from core.exchange.pool import PooledClient
from core.exchange.venues import VENUES
from core.metrics import Metrics
from core.ratelimit import TokenBucket


class VenueHandle(Protocol):
    """One exchange's shared adapter state (`core.exchange.ccxt_venue.CcxtVenue`)."""

    limiter: TokenBucket  # the per-IP request budget every client of the venue shares

    async def public(self) -> PooledClient: ...

    async def feed(self) -> PooledClient: ...

    async def client(self, account_type: str, credentials: ApiCredentials) -> PooledClient: ...

    async def check_account(self, account_type: str, credentials: ApiCredentials) -> None:
        """Raise `AccountSetupRequired` when the account's settings rule out trading it."""
        ...

    async def reload_markets(self) -> Mapping[str, Market]: ...

    def markets(self) -> Mapping[str, Market]: ...

    async def aclose(self) -> None: ...


def open_venue(
    name: str,
    *,
    base_url: str | None,
    metrics: Metrics | None,
    breakers: BreakerBoard | None = None,
) -> VenueHandle:
    """Build the ccxt-backed venue `name`; importing ccxt costs ~70 MB, so only now."""
    module = importlib.import_module("core.exchange.ccxt_venue")
    venue: VenueHandle = module.CcxtVenue(
        VENUES[name], base_url=base_url, metrics=metrics, breakers=breakers
    )
    return venue
