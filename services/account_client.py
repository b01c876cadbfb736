"""One trader's exchange account as services see it: cached reads, writes that drop what
they change, and pushed values that replace cached ones.

Reads (balance, positions, open orders) go through the shared caches with their TTLs from
`services.caching`, single-flight, so a burst of identical reads makes one exchange call;
`fresh=True` drops the stored value first. Every write goes to the exchange and then, when
the exchange has answered (or failed, or timed out: the outcome may be anything), drops
exactly the entries that write can change:

    create_order   balance, positions, orders   (a fill moves all three)
    cancel_order   balance, orders              (the order and the margin it held)
    set_leverage   balance, positions           (a position's leverage and margin)
    set_trading_stop  positions, orders         (its TP/SL/trailing; Bybit and Binance
                                                 show them as conditional orders too)

A value the exchange pushes (a websocket update) replaces the cached one with `push_*`, and
readers are served it without a call. `AccountCaches.on_order` is told of every order sent
(the stream manager starts streaming that account). Positions and open orders are
`Listing`s: read to the end of the venue's pages, or marked incomplete when a trader has
more than the bound. The entries are the ones the cache warmer reloads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from core.cache import CacheLayer, NamedCache
from core.exchange.models import Balance, Listing, Order, OrderRequest, Position, TradingStop
from core.exchange.protocol import ExchangeClient
from services.caching import BALANCE, ORDERS, PER_ACCOUNT, POSITIONS, account_key

T = TypeVar("T")
# Told of every balance an account loads or is pushed: (user id, exchange, account type, it).
BalanceObserver = Callable[[int, str, str, Balance], None]


class ClientLender(Protocol):
    """Lends the exchange client of one trader's account (the pool behind the gateway)."""

    def lease(
        self, user_id: int, exchange: str, account_type: str
    ) -> AbstractAsyncContextManager[ExchangeClient]: ...


class AccountCaches:
    """The per-account caches (balance, positions, orders) of one cache layer."""

    def __init__(self, layer: CacheLayer) -> None:
        for spec in PER_ACCOUNT:
            layer.define(spec.name, spec.ttl, spec.maxsize)
        self.balance: NamedCache[Balance] = layer.cache(BALANCE.name)
        self.positions: NamedCache[Listing[Position]] = layer.cache(POSITIONS.name)
        self.orders: NamedCache[Listing[Order]] = layer.cache(ORDERS.name)
        # The equity snapshots (services.equity) listen here; None records nothing.
        self.on_balance: BalanceObserver | None = None
        # Told (user id, exchange, account type) after an order is sent from an account.
        self.on_order: list[Callable[[int, str, str], None]] = []

    def by_kind(self, kind: str) -> NamedCache[Any]:
        """The cache the warmer names by `kind` (balance, positions, orders)."""
        caches: dict[str, NamedCache[Any]] = {
            BALANCE.name: self.balance,
            POSITIONS.name: self.positions,
            ORDERS.name: self.orders,
        }
        try:
            return caches[kind]
        except KeyError:
            raise ValueError(f"no account cache {kind!r}") from None

    def drop(
        self, user_id: int, exchange: str | None = None, account_type: str | None = None
    ) -> None:
        """Forget what is cached about a user's accounts: all, one exchange's, or one."""
        for cache in (self.balance, self.positions, self.orders):
            if exchange is not None and account_type is not None:
                cache.invalidate(account_key(user_id, exchange, account_type))
            else:
                cache.invalidate_prefix(f"{user_id}:{exchange}:" if exchange else f"{user_id}:")


class AccountClient:
    """One trader's account: the only way services read or change its state."""

    __slots__ = ("__weakref__", "_caches", "_lender", "account_type", "exchange", "key", "user_id")

    def __init__(
        self,
        user_id: int,
        exchange: str,
        account_type: str,
        *,
        lender: ClientLender,
        caches: AccountCaches,
    ) -> None:
        self.user_id = user_id
        self.exchange = exchange
        self.account_type = account_type
        self.key = account_key(user_id, exchange, account_type)
        self._lender = lender
        self._caches = caches

    # Reads: through the cache, one exchange call for any number of concurrent readers.

    async def balance(self, fresh: bool = False) -> Balance:
        """The balance, at most 15 s old unless `fresh`."""
        return await self._read(self._caches.balance, self._load_balance, fresh)

    async def positions(self, fresh: bool = False) -> Listing[Position]:
        """The open positions, at most 10 s old unless `fresh`."""
        return await self._read(self._caches.positions, self._load_positions, fresh)

    async def open_orders(self, fresh: bool = False) -> Listing[Order]:
        """The resting orders, at most 10 s old unless `fresh`."""
        return await self._read(self._caches.orders, self._load_orders, fresh)

    async def check(self) -> Balance:
        """One balance call that must reach the exchange now: do the keys answer? Not kept,
        so the next read still loads what the account holds by then."""
        async with self._client() as client:
            return self._seen(await client.fetch_balance())

    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        """Look one order up (never cached: it answers "does it exist, how did it end")."""
        async with self._client() as client:
            return await client.fetch_order(
                symbol, order_id=order_id, client_order_id=client_order_id
            )

    async def refresh(self, kind: str) -> None:
        """Reload one cached entry before it expires; readers keep the old value meanwhile."""
        cache = self._caches.by_kind(kind)
        loaders: dict[str, Callable[[], Awaitable[Any]]] = {
            BALANCE.name: self._load_balance,
            POSITIONS.name: self._load_positions,
            ORDERS.name: self._load_orders,
        }
        await cache.refresh(self.key, loaders[kind])

    def cached_balance(self) -> Balance | None:
        """The cached balance, if any, without a call."""
        return self._caches.balance.get(self.key)

    # Pushed values: the exchange said so, no need to ask it.

    def push_balance(self, balance: Balance) -> None:
        self._caches.balance.set(self.key, self._seen(balance))

    def push_positions(self, positions: Iterable[Position]) -> None:
        self._caches.positions.set(self.key, Listing(positions))

    def push_orders(self, orders: Iterable[Order]) -> None:
        self._caches.orders.set(self.key, Listing(orders))

    def forget(self) -> None:
        """Drop everything cached about this account."""
        self._caches.drop(self.user_id, self.exchange, self.account_type)

    # Writes: sent once; what they may have changed is dropped whatever the outcome.

    async def create_order(self, request: OrderRequest) -> Order:
        try:
            async with self._client() as client:
                return await client.create_order(request)
        finally:
            self._drop(self._caches.balance, self._caches.positions, self._caches.orders)
            for listener in self._caches.on_order:
                listener(self.user_id, self.exchange, self.account_type)

    async def cancel_order(self, symbol: str, order_id: str) -> Order:
        try:
            async with self._client() as client:
                return await client.cancel_order(symbol, order_id)
        finally:
            self._drop(self._caches.balance, self._caches.orders)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        try:
            async with self._client() as client:
                await client.set_leverage(symbol, leverage)
        finally:
            self._drop(self._caches.balance, self._caches.positions)

    async def set_trading_stop(self, stop: TradingStop) -> None:
        try:
            async with self._client() as client:
                await client.set_trading_stop(stop)
        finally:
            self._drop(self._caches.positions, self._caches.orders)

    def _drop(self, *caches: NamedCache[Any]) -> None:
        # Also stops a read that started before the write from storing what it saw.
        for cache in caches:
            cache.invalidate(self.key)

    async def _read(self, cache: NamedCache[T], load: Callable[[], Awaitable[T]], fresh: bool) -> T:
        # `fresh` drops a stored value so the read reaches the exchange; a load already in
        # flight answers after this call began, so it is joined: a double-pressed Refresh
        # still makes one call.
        if fresh and cache.peek_ttl_left(self.key) is not None:
            cache.invalidate(self.key)
        return await cache.get_or_load(self.key, load)

    async def _load_balance(self) -> Balance:
        async with self._client() as client:
            return self._seen(await client.fetch_balance())

    def _seen(self, balance: Balance) -> Balance:
        observer = self._caches.on_balance
        if observer is not None:
            observer(self.user_id, self.exchange, self.account_type, balance)
        return balance

    async def _load_positions(self) -> Listing[Position]:
        # Cached values are shared by every reader: immutable, so no caller edits another's.
        async with self._client() as client:
            found = await client.fetch_positions()
        return Listing(found, found.complete)

    async def _load_orders(self) -> Listing[Order]:
        async with self._client() as client:
            found = await client.fetch_open_orders()
        return Listing(found, found.complete)

    def _client(self) -> AbstractAsyncContextManager[ExchangeClient]:
        return self._lender.lease(self.user_id, self.exchange, self.account_type)
