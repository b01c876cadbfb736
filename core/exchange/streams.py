"""A trader's account pushed by ccxt's websocket side (`ccxt.pro`), as Tradewind models.

One `CcxtAccountFeed` is one ccxt.pro instance, so one connection carries all four topics
(orders, executions, positions, balance). `CcxtFeeds` builds them for a venue the way the
venue builds REST clients: the venue's options, demo or testnet endpoints, the markets of
the venue's public client (never loaded again per account), and `TRADEWIND_EXCHANGE_URLS`:
a venue rebased to `http://H:P` streams from `ws://H:P` with the venue's own paths
(Bybit `/v5/public/linear`, `/v5/private`). All feeds of a venue share one HTTP session.

A frame that is not JSON would stop ccxt's receive loop (the decode error escapes its
callback); the feed reads frames through a guard that reports the frame and goes on.

This module imports ccxt; nothing imports it until a real exchange is streamed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt
import ccxt.pro as ccxt_pro

from core.exchange import ccxt_parse
from core.exchange.binance import pushed_trigger
from core.exchange.bybit import execution_trigger
from core.exchange.ccxt_venue import CcxtVenue, rebase_urls
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import AuthFailed
from core.exchange.feed import FeedLost, GapHandler, PositionUpdate
from core.exchange.models import ZERO, Balance, Fill, Order, Side, Ticker
from core.redaction import SECRETS

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0
TOPICS = 4  # orders, executions, positions, balance
SEEN_FILLS = 2000  # execution ids remembered to never hand one over twice
SUBSCRIBE_CHUNK = 10  # topics per subscribe message of a public stream


def rebase_ws_urls(urls: Any, base_url: str) -> Any:
    """Point every websocket URL of ccxt's url map at `base_url`'s host, keeping paths:
    `http://H:P` → `ws://H:P/v5/private`, `https://...` → `wss://...`."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    if isinstance(urls, dict):
        return {key: rebase_ws_urls(value, base_url) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith("ws"):
        return f"{scheme}://{parts.netloc}{urlsplit(urls).path}"
    return urls


def pro_api(
    venue: CcxtVenue,
    options: dict[str, Any],
    account_type: str,
    credentials: ApiCredentials | None,
    *,
    session: aiohttp.ClientSession | None = None,
) -> Any:
    """A ccxt.pro instance of `venue`: its endpoints (demo, testnet, or rebased by
    `TRADEWIND_EXCHANGE_URLS`, websockets included), its request budget, and the keys when
    given (a public stream has none)."""
    spec = venue.venue
    config: dict[str, Any] = {
        "timeout": venue.timeout_ms,
        "verbose": False,
        "enableRateLimit": True,
        "options": options,
    }
    if session is not None:
        config["session"] = session
    if credentials is not None:
        config.update(
            apiKey=credentials.api_key,
            secret=credentials.secret,
            password=credentials.passphrase or "",
        )
    api = getattr(ccxt_pro, spec.ccxt_id)(config)
    if credentials is not None:
        SECRETS.hold(api, *credentials.values())
    api.throttle = venue.limiter.acquire  # any REST it makes spends the venue budget
    if account_type == "demo" and not spec.demo_in_sandbox:
        api.enable_demo_trading(True)
    elif account_type in ("testnet", "demo"):
        api.set_sandbox_mode(True)
    if venue.base_url:
        api.urls["api"] = rebase_ws_urls(
            rebase_urls(api.urls["api"], venue.base_url), venue.base_url
        )
    return api


async def markets_of(venue: CcxtVenue) -> Any:
    """The venue's public ccxt instance, its markets loaded (once for every stream)."""
    public = await venue.public()
    if not public.api.markets:
        await public.call("load_markets", lambda: public.api.load_markets())
    return public.api


class CcxtFeeds:
    """Opens the account feeds of one venue; owns the HTTP session they share."""

    def __init__(self, venue: CcxtVenue, *, keepalive_ms: int | None = None) -> None:
        self.venue = venue
        self.keepalive_ms = keepalive_ms
        self._session: aiohttp.ClientSession | None = None

    async def open(
        self, account_type: str, credentials: ApiCredentials, on_gap: GapHandler
    ) -> CcxtAccountFeed:
        public = await markets_of(self.venue)
        api = self._new_api(account_type, credentials)
        api.set_markets_from_exchange(public)
        return CcxtAccountFeed(api, self.venue.name, on_gap)

    def _new_api(self, account_type: str, credentials: ApiCredentials) -> Any:
        options: dict[str, Any] = dict(self.venue.venue.options)
        # Positions are seeded by the caller's REST read: no snapshot per connection.
        options["watchPositions"] = {"fetchPositionsSnapshot": False}
        # No permessage-deflate: its zlib state costs ~0.7 MB per connection, and an
        # account's pushes are a few hundred bytes each.
        options["ws"] = {"compress": 0}
        if self.keepalive_ms is not None:
            options["ws"]["keepAlive"] = self.keepalive_ms
        return pro_api(
            self.venue, options, account_type, credentials, session=self._shared_session()
        )

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Each websocket holds one connection for its life: aiohttp's default cap of
            # 100 would silently stop the 101st stream (the venue caps are ours to keep).
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class CcxtAccountFeed:
    """One account's four topics over one ccxt.pro connection (an `AccountFeed`)."""

    def __init__(self, api: Any, exchange: str, on_gap: GapHandler) -> None:
        self.api = api
        self._exchange = exchange
        self._on_gap = on_gap
        self._first: dict[str, asyncio.Future[Any]] = {}
        self._acks = 0
        self._acked = asyncio.Event()
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        guard_frames(api, exchange, on_gap)
        handle = api.handle_message

        def heard(client: Any, message: Any) -> None:
            if isinstance(message, dict) and message.get("op") == "subscribe":
                self._acks += 1 if message.get("success") else 0
                if self._acks >= TOPICS:
                    self._acked.set()
            handle(client, message)

        api.handle_message = heard  # clients take it when they are created, after this

    @property
    def exchange(self) -> str:
        return self._exchange

    async def ready(self) -> None:
        """Start all four subscriptions on one connection; return once the venue has
        acknowledged them (pushes from then on are heard)."""
        self._acks = 0
        self._acked.clear()
        watches = {
            "orders": self.api.watch_orders,
            "fills": self.api.watch_my_trades,
            "positions": self.api.watch_positions,
            "balance": self.api.watch_balance,
        }
        for name, watch in watches.items():
            if name not in self._first:
                self._first[name] = asyncio.ensure_future(watch())
        acked = asyncio.ensure_future(self._acked.wait())
        waiting: set[asyncio.Future[Any]] = {acked, *self._first.values()}
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while not acked.done():
                    done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    # A watch that already returned (a push came first) is kept for its reader.
                    failed = [f for f in done if f is not acked and _failure(f) is not None]
                    if failed:
                        self._first.clear()
                        raise _lost(_failure(failed[0]))
        except TimeoutError:
            raise FeedLost(self._exchange, "the stream did not confirm its subscriptions") from None
        finally:
            acked.cancel()

    async def next_orders(self) -> Sequence[Order]:
        raw = await self._next("orders", self.api.watch_orders)
        return [ccxt_parse.order(o) for o in raw]

    async def next_fills(self) -> Sequence[Fill]:
        raw = await self._next("fills", self.api.watch_my_trades)
        fills = []
        for trade in raw:
            info = trade.get("info") or {}
            if info.get("execType", "Trade") != "Trade":  # funding, ADL, ... are not fills
                continue
            fill = stream_fill(trade)
            if fill.fill_id in self._seen:
                continue
            self._remember(fill.fill_id)
            fills.append(fill)
        return fills

    async def next_positions(self) -> Sequence[PositionUpdate]:
        raw = await self._next("positions", self.api.watch_positions)
        return [(p["symbol"], ccxt_parse.position(p)) for p in raw if p.get("symbol")]

    async def next_balance(self) -> Balance:
        return stream_balance(await self._next("balance", self.api.watch_balance))

    async def aclose(self) -> None:
        for first in self._first.values():
            first.cancel()
        self._first.clear()
        try:
            await self.api.close()
        except Exception:  # closing a dead connection may complain; it is closed either way
            log.debug("closing the %s stream failed", self._exchange, exc_info=True)

    async def _next(self, name: str, watch: Any) -> Any:
        first = self._first.pop(name, None)
        try:
            return await (first if first is not None else watch())
        except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
            raise AuthFailed(self._exchange, f"the stream refused the keys: {exc}") from exc
        except ccxt.BaseError as exc:
            raise _lost(exc) from exc

    def _remember(self, fill_id: str) -> None:
        self._seen.add(fill_id)
        self._seen_order.append(fill_id)
        if len(self._seen_order) > SEEN_FILLS:
            self._seen.discard(self._seen_order.popleft())


class CcxtTickerFeed:
    """The market's tickers from a venue's public stream (a `TickerFeed`): one ccxt.pro
    instance without keys, so one connection, sharing the public client's markets.

    Topics are subscribed `SUBSCRIBE_CHUNK` at a time, as venues cap a subscribe message.
    ccxt keeps every ticker current as frames arrive whether anyone waits or not, so a
    reader that asks once per interval still gets every symbol's latest state: each call
    hands over the tickers whose frame is newer than the one handed over before.
    """

    def __init__(self, venue: CcxtVenue, on_gap: GapHandler) -> None:
        self._venue = venue
        self._on_gap = on_gap
        self._api: Any | None = None
        self._subscribed: set[str] = set()
        self._seen: dict[str, Any] = {}  # symbol → the ccxt ticker last handed over
        self._watch: asyncio.Future[Any] | None = None

    @classmethod
    def open(cls, venue: CcxtVenue, on_gap: GapHandler) -> CcxtTickerFeed:
        return cls(venue, on_gap)

    @property
    def exchange(self) -> str:
        return self._venue.name

    async def next_tickers(self, symbols: Sequence[str], wait_s: float) -> Mapping[str, Ticker]:
        api = await self._connect()
        fresh = [s for s in symbols if s not in self._subscribed]
        try:
            if fresh:
                chunks = range(0, len(fresh), SUBSCRIBE_CHUNK)
                async with asyncio.timeout(READY_TIMEOUT_S):
                    await asyncio.gather(
                        *(api.watch_tickers(fresh[i : i + SUBSCRIBE_CHUNK]) for i in chunks)
                    )
                self._subscribed.update(fresh)
            else:
                await self._wait(api, symbols, wait_s)
        except ccxt.BaseError as exc:
            raise _lost(exc) from exc
        except TimeoutError:
            raise FeedLost(
                self.exchange, "the ticker stream did not answer its subscriptions"
            ) from None
        changed: dict[str, Ticker] = {}
        current = api.tickers
        for symbol in symbols:
            raw = current.get(symbol)
            if raw is not None and raw is not self._seen.get(symbol):  # a frame replaces it
                self._seen[symbol] = raw
                changed[symbol] = ccxt_parse.ticker(raw)
        return changed

    async def _wait(self, api: Any, symbols: Sequence[str], wait_s: float) -> None:
        """Wait up to `wait_s` for the next push; the watch outlives a timeout (cancelling it
        would cancel ccxt's own future), so the next call goes on waiting on it."""
        watch = self._watch
        if watch is None:
            watch = self._watch = asyncio.ensure_future(api.watch_tickers(list(symbols)))
        await asyncio.wait({watch}, timeout=wait_s)
        if watch.done():
            self._watch = None
            failure = _failure(watch)
            if failure is not None:
                raise failure

    async def aclose(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        api, self._api = self._api, None
        if api is None:
            return
        try:
            await api.close()
        except Exception:  # closing a dead connection may complain; it is closed either way
            log.debug("closing the %s ticker stream failed", self.exchange, exc_info=True)

    async def _connect(self) -> Any:
        if self._api is None:
            public = await markets_of(self._venue)
            api = pro_api(self._venue, dict(self._venue.venue.options), "live", None)
            api.set_markets_from_exchange(public)
            guard_frames(api, self.exchange, self._on_gap)
            self._api = api
        return self._api


def guard_frames(api: Any, exchange: str, on_gap: GapHandler) -> None:
    """Every websocket client of `api` reads frames through a guard: a frame that is not
    JSON is logged and reported to `on_gap`, and the connection goes on."""
    make_client = api.client

    def client(url: str) -> Any:
        found = make_client(url)
        if not getattr(found, "tradewind_guarded", False):
            found.tradewind_guarded = True
            decode = found.handle_text_or_binary_message

            def read(data: Any) -> None:
                try:
                    decode(data.decode() if isinstance(data, bytes) else data)
                except Exception:
                    # The frame is lost, the connection is not: readers catch up by REST.
                    text = data if isinstance(data, str) else repr(data)
                    log.warning("unreadable %s stream frame: %.120s", exchange, text, exc_info=True)
                    on_gap("malformed")

            found.handle_text_or_binary_message = read
        return found

    api.client = client


def _failure(future: asyncio.Future[Any]) -> BaseException | None:
    return None if future.cancelled() else future.exception()


def _lost(exc: BaseException | None) -> FeedLost:
    return FeedLost("stream", f"stream lost: {type(exc).__name__}: {exc}")


def stream_fill(raw: Mapping[str, Any]) -> Fill:
    """A ccxt trade of the account (`watch_my_trades`) as a `Fill`."""
    info = raw.get("info") or {}
    fee = raw.get("fee") or {}
    fee_cost = ccxt_parse.dec(fee.get("cost")) if isinstance(fee, dict) else None
    at = ccxt_parse.utc(raw.get("timestamp") or info.get("execTime"))
    if at is None:
        raise ValueError("an execution without a time")
    return Fill(
        fill_id=str(raw.get("id") or info.get("execId")),
        order_id=str(raw.get("order") or info.get("orderId")),
        # Bybit `orderLinkId`, Binance `c`, OKX `clOrdId`, where ccxt leaves it in `info`.
        client_order_id=(
            raw.get("clientOrderId")
            or info.get("orderLinkId")
            or info.get("c")
            or info.get("clOrdId")
            or None
        ),
        symbol=str(raw.get("symbol")),
        side=Side(str(raw.get("side") or "buy").lower()),
        price=ccxt_parse.dec0(raw.get("price")),
        qty=ccxt_parse.dec0(raw.get("amount")),
        fee=fee_cost if fee_cost is not None else ZERO,
        fee_currency=str((fee.get("currency") if isinstance(fee, dict) else None) or "USDT"),
        ts=at,
        # The venue's realised PnL of the fill, before fees: Bybit `execPnl`, Binance `rp`,
        # OKX `fillPnl`.
        realised_pnl=ccxt_parse.dec(
            _first(info, "execPnl", "rp", "fillPnl"),
        ),
        reduce_only=ccxt_parse.dec0(info.get("closedSize")) > 0 if "closedSize" in info else None,
        trigger=execution_trigger(info) or pushed_trigger(info),
    )


def _first(info: Mapping[str, Any], *names: str) -> Any:
    """The first of `names` that `info` holds (a venue's own name for one figure)."""
    return next((info[n] for n in names if info.get(n) not in (None, "")), None)


def stream_balance(raw: Mapping[str, Any]) -> Balance:
    """The balance a wallet push carries: the unified account's totals where they are
    (Bybit's `wallet` rows), else ccxt's per-asset lines."""
    info = raw.get("info")
    row = info[0] if isinstance(info, list) and info and isinstance(info[0], dict) else None
    if row is None or "totalEquity" not in row:
        return ccxt_parse.balance(raw)
    return ccxt_parse.balance({**raw, "info": {"result": {"list": [row]}}})
