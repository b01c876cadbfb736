"""How the rest of Tradewind reaches exchanges: one market feed, one client per account.

The market feed is the synthetic paper market or, when `TRADEWIND_MARKET_SOURCE` names an
exchange, that exchange's public client. Traders' clients come from the pool: paper
accounts need no keys; real accounts are built from credentials decrypted on demand and
dropped from the pool as soon as the credentials change.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal

from core.cache import CacheLayer, NamedCache
from core.clock import Clock
from core.crypto import SecretBox, SecretContext
from core.exchange.breaker import BreakerBoard, BreakerPolicy
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import AuthFailed, ExchangeError, InvalidOrder
from core.exchange.factory import VenueHandle, open_venue
from core.exchange.models import Balance, Ticker
from core.exchange.pool import ClientPool, PooledClient, PoolKey, PoolStats
from core.exchange.protocol import ExchangeClient
from core.exchange.venues import PAPER, VENUES, title
from core.metrics import Metrics
from core.paper.engine import EngineReport, PaperEngine
from core.paper.exchange import PaperExchange
from core.paper.ledger import PaperLedger
from core.paper.live_source import LiveMarketSource
from core.paper.market_source import MarketSource
from db.repositories.credentials import CredentialRepository
from db.repositories.intents import IntentRecord
from services.account_client import AccountCaches, AccountClient
from services.caching import TICKERS

log = logging.getLogger(__name__)

VenueOpener = Callable[[str], VenueHandle]


class ExchangeGateway:
    """Owns the venues, the paper world and the client pool; closes them all on `aclose`.

    Services reach a trader's account only through `account()`, whose reads and writes keep
    the shared account caches (in `cache`) true.
    """

    def __init__(
        self,
        *,
        market_source: str,
        paper_market: MarketSource,
        paper_ledger: PaperLedger,
        credentials: CredentialRepository,
        secrets: SecretBox,
        clock: Clock,
        metrics: Metrics | None = None,
        cache: CacheLayer | None = None,
        exchange_urls: Mapping[str, str] | None = None,
        venue_opener: VenueOpener | None = None,
        pool_size: int = 2000,
        idle_ttl_s: float = 900.0,
        breaker: BreakerPolicy | None = None,
    ) -> None:
        self.market_source = market_source
        # One breaker per exchange and account type, shared by every client of that venue.
        self.breakers = BreakerBoard(breaker, clock, metrics)
        self._paper_market = paper_market
        self._ledger = paper_ledger
        self._credentials = credentials
        self._secrets = secrets
        self._clock = clock
        self._urls = dict(exchange_urls or {})
        self._open_venue = venue_opener or self._default_opener(metrics)
        self._venues: dict[str, VenueHandle] = {}
        self._live: LiveMarketSource | None = None
        self.paper_engine = PaperEngine(paper_ledger, clock)
        self.pool = ClientPool(self._create, max_size=pool_size, idle_ttl_s=idle_ttl_s, clock=clock)
        layer = cache if cache is not None else CacheLayer(clock)
        layer.define(TICKERS.name, TICKERS.ttl, TICKERS.maxsize)
        # The ticker tape: one whole-market entry per exchange, for every reader.
        self._tickers: NamedCache[Mapping[str, Ticker]] = layer.cache(TICKERS.name)
        self.account_caches = AccountCaches(layer)
        # One object per account while anyone holds it; its state lives in the caches.
        self._accounts: weakref.WeakValueDictionary[PoolKey, AccountClient] = (
            weakref.WeakValueDictionary()
        )

    def _default_opener(self, metrics: Metrics | None) -> VenueOpener:
        def opener(name: str) -> VenueHandle:
            return open_venue(
                name, base_url=self._urls.get(name), metrics=metrics, breakers=self.breakers
            )

        return opener

    @asynccontextmanager
    async def lease(
        self, user_id: int, exchange: str, account_type: str
    ) -> AsyncIterator[PooledClient]:
        """Lend the client of one trader's account for the duration of the block."""
        async with self.pool.lease(user_id, exchange, account_type) as client:
            yield client

    def account(self, user_id: int, exchange: str, account_type: str) -> AccountClient:
        """The cache-aware client of one trader's account."""
        key = (user_id, exchange, account_type)
        found = self._accounts.get(key)
        if found is None:
            found = AccountClient(
                user_id, exchange, account_type, lender=self, caches=self.account_caches
            )
            self._accounts[key] = found
        return found

    @asynccontextmanager
    async def lease_for(self, intent: IntentRecord) -> AsyncIterator[AccountClient]:
        """Lend the account an order intent was placed on (to look the order up again)."""
        yield self.account(intent.user_id, intent.exchange, intent.account_type)

    def venue(self, name: str) -> VenueHandle:
        """The shared adapter of a real exchange, opened on first use."""
        if name not in VENUES:
            raise InvalidOrder(name, f"{title(name)} is not supported")
        venue = self._venues.get(name)
        if venue is None:
            venue = self._venues[name] = self._open_venue(name)
        return venue

    def request_budget(self, exchange: str) -> float | None:
        """Requests/s our shared limiter allows on a real exchange; None where none applies.

        A venue not opened yet has spent nothing, so there is nothing to budget either.
        """
        venue = self._venues.get(exchange)
        return venue.limiter.rate if venue is not None else None

    async def market_feed(self) -> ExchangeClient:
        """The client the scanner and registry read the whole market from."""
        if self.market_source == "paper":
            return PaperExchange(
                0, source=self._paper_market, ledger=self._ledger, clock=self._clock
            )
        return await self.venue(self.market_source).feed()

    async def tickers(self, exchange: str) -> Mapping[str, Ticker]:
        """Every ticker of a market, from the one tape all readers share.

        Paper: the paper source's prices, in memory. A real exchange: one bulk request per
        TTL for the scanner, the registry, paper settlement on live prices, alerts,
        trailing stops and commands together (concurrent readers share the request), and
        none while a ticker stream keeps the tape fresh (`push_tickers`).
        """
        if exchange == PAPER:
            return (await self.paper_source()).tickers()

        async def fetch() -> Mapping[str, Ticker]:
            return await (await self.venue(exchange).feed()).fetch_tickers()

        result: Mapping[str, Ticker] = await self._tickers.get_or_load(exchange, fetch)
        return result

    def push_tickers(self, exchange: str, tickers: Mapping[str, Ticker]) -> None:
        """A streamed snapshot of the whole market replaces the tape's; readers then cost
        no request until it is older than the TTL (a silent stream falls back to REST)."""
        self._tickers.set(exchange, tickers)

    def last_price(self, exchange: str, symbol: str) -> Decimal | None:
        """The symbol's last price as already known, never a request: paper from the prices
        it trades at (in memory), a real exchange from the tape while it is fresh (a peek:
        not counted as a cache miss, as nobody asked for a read)."""
        if exchange == PAPER:
            market = self._paper_market if self.market_source == PAPER else self._live
            try:
                return None if market is None else market.ticker(symbol).last
            except ExchangeError:  # not listed, or live prices still loading
                return None
        if self._tickers.peek_ttl_left(exchange) is None:
            return None
        found = (self._tickers.get(exchange) or {}).get(symbol)
        return None if found is None else found.last

    async def paper_source(self) -> MarketSource:
        """Prices paper accounts trade at: synthetic, or the live market source's snapshot."""
        if self.market_source == "paper":
            return self._paper_market
        if self._live is None:
            source = self.market_source
            self._live = LiveMarketSource(
                await self.venue(source).public(), tickers=lambda: self.tickers(source)
            )
            await self._live.refresh()
        return self._live

    async def settle_paper(self) -> EngineReport:
        """Move paper accounts to the latest prices: fills, TP/SL, liquidations.

        The engine is these accounts' exchange: what it moved is dropped from the caches.
        """
        source = await self.paper_source()
        if isinstance(source, LiveMarketSource):
            await source.refresh()
        prices: dict[str, Decimal] = {s: t.last for s, t in source.tickers().items()}
        report = await self.paper_engine.on_prices(prices)
        for user_id in {user_id for user_id, _, _ in report.affected}:
            self.account_caches.drop(user_id, "paper", "paper")
        return report

    async def probe(self, exchange: str, account_type: str, credentials: ApiCredentials) -> Balance:
        """Check keys with one balance call on a throwaway client; nothing pooled or stored."""
        client = await self.venue(exchange).client(account_type, credentials)
        try:
            return await client.fetch_balance()
        finally:
            await client.close()

    async def forget(
        self, user_id: int, exchange: str | None = None, account_type: str | None = None
    ) -> int:
        """Credentials changed or removed: close and drop the pooled clients, and forget
        what was cached about those accounts."""
        self.account_caches.drop(user_id, exchange, account_type)
        return await self.pool.drop(user_id, exchange, account_type)

    def pool_stats(self) -> PoolStats:
        return self.pool.stats()

    async def aclose(self) -> None:
        await self.pool.aclose()
        for venue in self._venues.values():
            await venue.aclose()
        self._venues.clear()

    async def _create(self, key: PoolKey) -> PooledClient:
        user_id, exchange, account_type = key
        if exchange == "paper":
            return PaperExchange(
                user_id, source=await self.paper_source(), ledger=self._ledger, clock=self._clock
            )
        credentials = await self.credentials(user_id, exchange, account_type)
        return await self.venue(exchange).client(account_type, credentials)

    async def credentials(self, user_id: int, exchange: str, account_type: str) -> ApiCredentials:
        """The decrypted keys of one connected account (for its REST client or its stream)."""
        record = await self._credentials.for_account(user_id, exchange, account_type)
        if record is None:
            raise AuthFailed(exchange, f"No {title(exchange)} {account_type} account is connected")
        ctx = SecretContext(user_id, exchange, account_type)
        return ApiCredentials(
            api_key=self._secrets.decrypt(record.api_key_enc, ctx),
            secret=self._secrets.decrypt(record.api_secret_enc, ctx),
            passphrase=(
                None
                if record.passphrase_enc is None
                else self._secrets.decrypt(record.passphrase_enc, ctx)
            ),
        )
