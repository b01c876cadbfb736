"""The ccxt adapter: `ExchangeClient` over `ccxt.async_support` for Bybit, Binance and OKX.

One `CcxtVenue` per exchange owns what all its clients share: one aiohttp session, one
rate limiter for the per-IP budget, and one public client whose markets every user client
borrows with `set_markets_from_exchange` (a user client never loads markets itself).
This module imports ccxt; nothing imports it until a real exchange is used.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_errors import map_error
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import ExchangeError, ExchangeUnavailable, InvalidOrder, OrderNotFound
from core.exchange.models import (
    Balance,
    Candle,
    Market,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Ticker,
)
from core.exchange.retry import RetryPolicy, with_retries
from core.exchange.venues import Venue
from core.metrics import Metrics
from core.ratelimit import TokenBucket

T = TypeVar("T")


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


class CcxtClient:
    """One account (or the public data feed) on one exchange, through ccxt."""

    def __init__(self, venue: CcxtVenue, api: Any, account_type: str, public: bool = False):
        self._venue = venue
        self.api = api
        self._account_type = account_type
        self._public = public
        self._markets_version = -1
        self._source: CcxtClient | None = None
        self.closed = False
        self.last_used = time.monotonic()

    @property
    def exchange(self) -> str:
        return self._venue.name

    @property
    def account_type(self) -> str:
        return self._account_type

    def share_markets(self, source: CcxtClient) -> None:
        self._source = source
        self.api.set_markets_from_exchange(source.api)
        self._markets_version = self._venue.markets_version

    def healthy(self) -> bool:
        """Cheap check before reuse: open, and its HTTP session still usable."""
        session = self.api.session
        return not self.closed and (session is None or not session.closed)

    async def call(
        self,
        method: str,
        fn: Callable[[], Awaitable[T]],
        *,
        retry: bool = True,
        placing: OrderRequest | None = None,
    ) -> T:
        """Run one ccxt call: metrics, error mapping, retries for reads only."""
        if self.closed:
            raise ExchangeUnavailable(self.exchange, "this exchange client is closed")
        if self._source is not None and self._markets_version != self._venue.markets_version:
            self.share_markets(self._source)  # markets were reloaded: borrow the new table
        self.last_used = time.monotonic()

        async def once() -> T:
            start = time.perf_counter()
            try:
                result = await fn()
            except Exception as exc:
                error = map_error(
                    self.exchange,
                    exc,
                    placing_order=placing is not None,
                    retry_after=self._retry_after(),
                    client_order_id=placing.client_order_id if placing else None,
                )
                self._observe(method, start, error)
                raise error from exc
            self._observe(method, start, None)
            return result

        if not retry or placing is not None:
            return await once()
        return await with_retries(once, self._venue.retry)

    def _observe(self, method: str, start: float, error: ExchangeError | None) -> None:
        metrics = self._venue.metrics
        if metrics is not None:
            kind = None if error is None else error.kind
            metrics.observe_exchange(self.exchange, method, time.perf_counter() - start, kind)

    def _retry_after(self) -> float | None:
        headers = getattr(self.api, "last_response_headers", None) or {}
        lowered = {str(k).lower(): v for k, v in dict(headers).items()}
        value = lowered.get("retry-after")
        if value is not None and str(value).replace(".", "", 1).isdigit():
            return float(value)
        reset = lowered.get("x-bapi-limit-reset-timestamp")
        if reset is not None and str(reset).isdigit():
            return max(0.0, int(reset) / 1000 - time.time())
        return None

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        if reload:
            return await self._venue.reload_markets()
        if not self._venue.markets():
            await self._venue.public()
        return self._venue.markets()

    async def fetch_tickers(self) -> Mapping[str, Ticker]:
        raw = await self.call("fetch_tickers", lambda: self.api.fetch_tickers())
        markets = self._venue.markets()
        return {s: parse.ticker(t) for s, t in raw.items() if s in markets}

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return parse.ticker(await self.call("fetch_ticker", lambda: self.api.fetch_ticker(symbol)))

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", limit: int = 100
    ) -> list[Candle]:
        rows = await self.call(
            "fetch_ohlcv", lambda: self.api.fetch_ohlcv(symbol, timeframe, limit=limit)
        )
        return [parse.candle(row) for row in rows]

    async def fetch_balance(self) -> Balance:
        raw = await self.call("fetch_balance", lambda: self.api.fetch_balance())
        return parse.balance(raw)

    async def fetch_positions(self) -> list[Position]:
        params = dict(self._venue.venue.linear_params)
        raw = await self.call("fetch_positions", lambda: self.api.fetch_positions(None, params))
        found = (parse.position(p) for p in raw)
        return [p for p in found if p is not None]

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        params = {} if symbol else dict(self._venue.venue.linear_params)
        raw = await self.call(
            "fetch_open_orders", lambda: self.api.fetch_open_orders(symbol, None, None, params)
        )
        return [parse.order(o) for o in raw]

    async def create_order(self, request: OrderRequest) -> Order:
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if request.reduce_only:
            params["reduceOnly"] = True
        if request.take_profit is not None:
            params["takeProfit"] = {"triggerPrice": float(request.take_profit)}
        if request.stop_loss is not None:
            params["stopLoss"] = {"triggerPrice": float(request.stop_loss)}
        price = (
            float(request.price)
            if request.order_type is OrderType.LIMIT and request.price
            else None
        )
        raw = await self.call(
            "create_order",
            lambda: self.api.create_order(
                request.symbol,
                request.order_type.value,
                request.side.value,
                float(request.qty),
                price,
                params,
            ),
            placing=request,
        )
        placed = parse.order({**raw, "symbol": raw.get("symbol") or request.symbol})
        return placed if placed.client_order_id else _with_cid(placed, request.client_order_id)

    async def cancel_order(self, symbol: str, order_id: str) -> Order:
        raw = await self.call("cancel_order", lambda: self.api.cancel_order(order_id, symbol))
        return parse.order({**raw, "symbol": raw.get("symbol") or symbol})

    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        if order_id is None and client_order_id is None:
            raise InvalidOrder(self.exchange, "an order id or client order id is required")
        if self.exchange == "bybit":
            return await self._bybit_lookup(symbol, order_id, client_order_id)
        params: dict[str, Any] = {}
        if client_order_id is not None:
            params["clientOrderId"] = client_order_id
        raw = await self.call(
            "fetch_order", lambda: self.api.fetch_order(order_id or "", symbol, params)
        )
        return parse.order(raw)

    async def _bybit_lookup(
        self, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> Order:
        """Bybit: search open orders, then history, by orderId or orderLinkId."""
        params = {"orderId": order_id} if order_id else {"orderLinkId": client_order_id}
        found = await self.call(
            "fetch_order", lambda: self.api.fetch_open_orders(symbol, None, None, dict(params))
        )
        if not found:
            found = await self.call(
                "fetch_order",
                lambda: self.api.fetch_closed_orders(symbol, None, None, dict(params)),
            )
        if not found:
            raise OrderNotFound(self.exchange, f"{self._venue.venue.title} has no such order")
        return parse.order(found[0])

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        try:
            await self.call("set_leverage", lambda: self.api.set_leverage(leverage, symbol))
        except InvalidOrder as error:
            if "not modified" in error.message.lower():
                return  # already at this leverage: Bybit answers 110043
            raise

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.api.close()


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


def _with_cid(order: Order, client_order_id: str) -> Order:
    return replace(order, client_order_id=client_order_id)
