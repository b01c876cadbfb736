"""One exchange's shared state: the ccxt adapter's session, rate budget and markets.

One `CcxtVenue` per exchange owns what all its clients share: one aiohttp session, one
rate limiter for the per-IP budget, and one public client whose markets every user client
borrows with `set_markets_from_exchange` (a user client never loads markets itself).
This module imports ccxt; nothing imports it until a real exchange is used.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import ExchangeUnavailable, InvalidOrder
from core.exchange.models import Market
from core.exchange.retry import RetryPolicy
from core.exchange.venues import Venue
from core.metrics import Metrics
from core.ratelimit import TokenBucket


class CcxtVenue:
    """Shared state of one exchange: session, limiter, public client and its markets."""

    def __init__(
        self,
        venue: Venue,
        *,
        base_url: str | None = None,
        metrics: Metrics | None = None,
        retry: RetryPolicy | None = None,
        limiter: TokenBucket | None = None,
        timeout_ms: int = 10_000,
    ) -> None:
        self.venue = venue
        self.base_url = base_url
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or TokenBucket(venue.rate_per_s)
        self.timeout_ms = timeout_ms
        self.markets_version = 0
        self._session: aiohttp.ClientSession | None = None
        self._public: CcxtClient | None = None
        self._markets: dict[str, Market] = {}
        self._loading: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return self.venue.name

    async def public(self) -> CcxtClient:
        """The market-data client of this exchange, with markets loaded (once)."""
        if self._public is None:
            self._public = CcxtClient(self, self._new_api("live", None), "live", public=True)
        if not self._markets:
            await self.reload_markets()
        return self._public

    async def reload_markets(self) -> Mapping[str, Market]:
        """Load the linear USDT perpetuals; concurrent callers share one request."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        loading = self._loading
        try:
            await asyncio.shield(loading)
        finally:
            if loading.done() and self._loading is loading:
                self._loading = None
        return self._markets

    async def _load(self) -> None:
        if self._public is None:
            self._public = CcxtClient(self, self._new_api("live", None), "live", public=True)
        api = self._public.api
        raw = await self._public.call("load_markets", lambda: api.load_markets(reload=True))
        self._markets = {
            symbol: parse.market(m) for symbol, m in raw.items() if parse.is_linear_usdt_perp(m)
        }
        self.markets_version += 1

    def markets(self) -> Mapping[str, Market]:
        return self._markets

    async def client(self, account_type: str, credentials: ApiCredentials) -> CcxtClient:
        """A user's client: borrows the public client's markets, loads nothing."""
        if account_type not in self.venue.account_types:
            raise InvalidOrder(self.name, f"{self.venue.title} has no {account_type} accounts")
        public = await self.public()
        client = CcxtClient(self, self._new_api(account_type, credentials), account_type)
        client.share_markets(public)
        return client

    def _new_api(self, account_type: str, credentials: ApiCredentials | None) -> Any:
        if self._closed:
            raise ExchangeUnavailable(self.name, f"{self.venue.title} adapter is closed")
        config: dict[str, Any] = {
            "timeout": self.timeout_ms,
            "enableRateLimit": True,
            "options": dict(self.venue.options),
            "session": self._shared_session(),
        }
        if credentials is not None:
            config["apiKey"] = credentials.api_key
            config["secret"] = credentials.secret
            if credentials.passphrase:
                config["password"] = credentials.passphrase
        api = getattr(ccxt_async, self.venue.ccxt_id)(config)
        api.timeout_on_exit = 0  # the shared session is closed by the venue, not per client
        api.on_rest_response = _refuse_garbled  # ccxt would hand a garbled 200 to its parsers
        api.throttle = self.limiter.acquire  # every client spends the exchange's one budget
        if account_type == "demo" and hasattr(api, "enable_demo_trading") and self.name != "okx":
            api.enable_demo_trading(True)
        elif account_type in ("testnet", "demo"):
            api.set_sandbox_mode(True)
        if self.base_url:
            api.urls["api"] = rebase_urls(api.urls["api"], self.base_url)
        if self.name == "bybit":
            api.has["fetchCurrencies"] = False  # not needed for perpetuals; one request less
        return api

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=200, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        if self._public is not None:
            await self._public.close()
            self._public = None
        if self._session is not None:
            await self._session.close()
            self._session = None


def rebase_urls(urls: Any, base_url: str) -> Any:
    """Point every URL in ccxt's (possibly nested) url map at `base_url`, keeping paths."""
    if isinstance(urls, dict):
        return {key: rebase_urls(value, base_url) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        return base_url.rstrip("/") + urlsplit(urls).path
    return urls


def _refuse_garbled(
    code: int, reason: str, url: str, method: str, headers: Any, body: str, *rest: Any
) -> str:
    """A successful status with a body that is not JSON is a broken answer, not data."""
    if 200 <= code < 300 and body:
        try:
            json.loads(body)
        except ValueError:
            raise ccxt.BadResponse(f"unreadable response from {url}") from None
    return body
