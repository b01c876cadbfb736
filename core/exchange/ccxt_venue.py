"""One exchange's shared state: the ccxt adapter's session, rate budget and markets.

One `CcxtVenue` per exchange owns what all its clients share: one aiohttp session, one
rate limiter for the per-IP budget, and one public client whose markets every user client
borrows with `set_markets_from_exchange` (a user client never loads markets itself).

Our `Market` table and ccxt's own market tables are kept apart: ours (symbol lookup, bulk
tickers, the registry) is refreshed by `reload_markets`, on Bybit without ccxt; ccxt's
(which only order placement and per-symbol calls need) is built once, on first need, and
rebuilt only when a reload finds a contract it lacks.

This module imports ccxt; nothing imports it until a real exchange is used.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import ssl
import types
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import certifi

from core.exchange.breaker import BreakerBoard
from core.exchange.ccxt_client import CcxtClient
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import ExchangeUnavailable, InvalidOrder
from core.exchange.models import Market
from core.exchange.retry import RetryPolicy
from core.exchange.venues import Venue
from core.metrics import Metrics
from core.ratelimit import TokenBucket
from core.redaction import SECRETS


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
        breakers: BreakerBoard | None = None,
    ) -> None:
        self.venue = venue
        self.breakers = breakers
        self.client_class = client_class(venue)
        self.base_url = base_url
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or TokenBucket(venue.rate_per_s)
        self.timeout_ms = timeout_ms
        self.markets_version = 0
        self._session: aiohttp.ClientSession | None = None
        self._public: CcxtClient | None = None
        self._markets: dict[str, Market] = {}
        self._by_id: dict[str, str] = {}  # exchange id → unified symbol of `_markets`
        self._loading: asyncio.Task[None] | None = None
        self._templates: dict[str, Any] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return self.venue.name

    async def public(self) -> CcxtClient:
        """The market-data client of this exchange, with markets loaded (once)."""
        public = await self.feed()
        if not self._markets:
            await self.reload_markets()
        return public

    async def feed(self) -> CcxtClient:
        """The same client for whole-market reads, markets not awaited: its first
        `load_markets` or `fetch_tickers` loads them, so a registry sync on a fresh venue
        (a reload plus tickers) loads them once, not twice."""
        if self._public is None:
            api = self._new_api("live", None)
            self._public = self.client_class(self, api, "live", public=True)
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
        public = await self.feed()
        tables = public.api.markets
        markets = await public.fetch_markets_lean()
        if public.api.markets and any(
            m.exchange_id not in public.api.markets_by_id for m in markets.values()
        ):  # a new listing: ccxt must know it before anyone trades it
            await public.call("load_markets", lambda: public.api.load_markets(reload=True))
        self._markets = markets
        self._by_id = {m.exchange_id: symbol for symbol, m in markets.items()}
        if public.api.markets is not tables:
            self.markets_version += 1  # ccxt's tables were rebuilt: clients borrow anew

    async def _ccxt_tables(self, public: CcxtClient) -> None:
        """ccxt's own market tables, built on first need (ccxt shares one concurrent load)."""
        if not public.api.markets:
            await public.call("load_markets", lambda: public.api.load_markets())

    def markets(self) -> Mapping[str, Market]:
        return self._markets

    def symbols_by_id(self) -> Mapping[str, str]:
        return self._by_id

    async def client(self, account_type: str, credentials: ApiCredentials) -> CcxtClient:
        """A user's client: borrows the public client's markets, loads nothing."""
        if account_type not in self.venue.account_types:
            raise InvalidOrder(self.name, f"{self.venue.title} has no {account_type} accounts")
        public = await self.public()
        await self._ccxt_tables(public)
        client = self.client_class(self, self._new_api(account_type, credentials), account_type)
        client.share_markets(public)
        return client

    async def check_account(self, account_type: str, credentials: ApiCredentials) -> None:
        """Check on a throwaway client that the account can be traded as it is set up."""
        client = await self.client(account_type, credentials)
        try:
            await client.check_account()
        finally:
            await client.close()

    def _new_api(self, account_type: str, credentials: ApiCredentials | None) -> Any:
        """A ccxt instance for one account, cloned from a configured template.

        Constructing a ccxt exchange costs ~2 ms (it copies its whole description); a clone
        of a ready template costs ~0.3 ms, which keeps a new trader's first request cheap.
        """
        if self._closed:
            raise ExchangeUnavailable(self.name, f"{self.venue.title} adapter is closed")
        template = self._templates.get(account_type)
        if template is None:
            template = self._templates[account_type] = self._configured_api(account_type)
        api = clone_api(template)
        if credentials is not None:
            api.apiKey = credentials.api_key
            api.secret = credentials.secret
            api.password = credentials.passphrase or ""
            SECRETS.hold(api, *credentials.values())  # masked in logs while the client lives
        _ResponseGuard(api)
        return api

    def _configured_api(self, account_type: str) -> Any:
        config: dict[str, Any] = {
            "timeout": self.timeout_ms,
            "verbose": False,  # verbose prints whole requests, signing headers included
            "enableRateLimit": True,
            "options": dict(self.venue.options),
            "session": self._shared_session(),
        }
        api = getattr(ccxt_async, self.venue.ccxt_id)(config)
        # Every client shares the venue's session, so ccxt's own per-instance SSL context
        # (25 ms and 0.6 MB to build on first use) would be pure waste: share one.
        api.ssl_context = self._ssl_context()
        api.timeout_on_exit = 0  # the shared session is closed by the venue, not per client
        api.throttle = self.limiter.acquire  # every client spends the exchange's one budget
        demo_trading = not self.venue.demo_in_sandbox and hasattr(api, "enable_demo_trading")
        if account_type == "demo" and demo_trading:
            api.enable_demo_trading(True)
        elif account_type in ("testnet", "demo"):
            api.set_sandbox_mode(True)
        if self.base_url:
            api.urls["api"] = rebase_urls(api.urls["api"], self.base_url)
        self.client_class.configure(api)
        return api

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=200, ssl=self._ssl_context(), enable_cleanup_closed=True
            )
            # Whole-market answers are MBs (5,000 tickers: 3 MB) and are read whole anyway: a
            # 64 KiB read buffer would pause and resume the socket dozens of times per answer.
            self._session = aiohttp.ClientSession(connector=connector, read_bufsize=2**22)
        return self._session

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    async def aclose(self) -> None:
        self._closed = True
        if self._public is not None:
            await self._public.close()
            self._public = None
        for template in self._templates.values():
            template.session = None  # templates never send; this just silences ccxt's __del__
        self._templates.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None


def client_class(venue: Venue) -> type[CcxtClient]:
    """The client class the venue table names for `venue` (its quirks live there)."""
    module, _, name = venue.client.rpartition(".")
    found = getattr(importlib.import_module(module), name)
    if not (isinstance(found, type) and issubclass(found, CcxtClient)):
        raise TypeError(f"{venue.client} is not a CcxtClient")
    return found


def rebase_urls(urls: Any, base_url: str) -> Any:
    """Point every URL in ccxt's (possibly nested) url map at `base_url`, keeping paths."""
    if isinstance(urls, dict):
        return {key: rebase_urls(value, base_url) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        return base_url.rstrip("/") + urlsplit(urls).path
    return urls


# describe() tables that ccxt only reads: clones share them instead of copying ~1 MB each.
_READ_ONLY_TABLES = frozenset(
    {"api", "exceptions", "features", "httpExceptions", "ecdsaCurves", "ecdsaPrehashedAlgorithms"}
)


def clone_api(template: Any) -> Any:
    """A new ccxt instance from a configured template, without re-running its constructor.

    Every mutable dict or list (options, urls, has, caches, nonce state) is deep-copied so
    clones never share account state; only the read-only describe() tables, the shared
    session, SSL context and our throttle hook are shared on purpose. tests pin this against
    the installed ccxt (test_ccxt_adapter: clones are isolated and sign for themselves).
    """
    api = copy.copy(template)
    state = vars(api)
    for name, value in vars(template).items():
        if isinstance(value, dict | list) and name not in _READ_ONLY_TABLES:
            state[name] = copy.deepcopy(value)
    api.origin = api.uuid()
    api.init_throttler()
    return api


class _ResponseGuard:
    """Refuses a 2xx answer that is not JSON: ccxt would hand it to its parsers as data
    (a garbled order confirmation would look like an order without an id)."""

    def __init__(self, api: Any) -> None:
        self._status = 0
        self._parse = types.MethodType(type(api).parse_json, api)
        api.on_rest_response = self.on_rest_response
        api.parse_json = self.parse_json

    def on_rest_response(
        self, code: int, reason: str, url: str, method: str, headers: Any, body: str, *rest: Any
    ) -> str:
        self._status = code  # parse_json follows immediately, with no await in between
        return body

    def parse_json(self, body: str) -> Any:
        parsed = self._parse(body)
        if parsed is None and 200 <= self._status < 300 and body and body.strip():
            raise ccxt.BadResponse("unreadable response from the exchange")
        return parsed
