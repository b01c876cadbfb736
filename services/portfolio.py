"""What a trader holds right now: balance, positions and open orders of the active account.

Every read goes through the shared cache (balance 15 s, positions and orders 10 s, keyed by
`account_key`), so a burst of identical reads makes one exchange call; `fresh=True` drops
the entry first and loads it again. The caches hold the exchange's own records (`Balance`,
tuples of `Position` / `Order`), so an order action's `invalidate_user` empties them here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, TypeVar

from core.cache import CacheLayer, NamedCache
from core.errors import Forbidden
from core.exchange.models import ZERO, Balance, Market, Order, Position
from core.exchange.protocol import ExchangeClient
from services.accounts import AccountRef
from services.caching import ACCOUNTS, BALANCE, ORDERS, POSITIONS, account_key, invalidate_user

T = TypeVar("T")

STALE_LIST = "That list is about another account than your active one; send the command again."


class ClientLender(Protocol):
    """Lends the exchange client of one trader's account (the `ExchangeGateway`)."""

    def lease(
        self, user_id: int, exchange: str, account_type: str
    ) -> AbstractAsyncContextManager[ExchangeClient]: ...


class ActiveAccounts(Protocol):
    """Knows which account a trader's commands act on (the `AccountService`)."""

    async def require_active(self, user_id: int) -> AccountRef: ...

    async def warm(self, user_id: int) -> None: ...


class MarketTable(Protocol):
    """The listed markets of an exchange (the `MarketService`)."""

    async def markets(self, exchange: str) -> Mapping[str, Market]: ...


@dataclass(slots=True, frozen=True)
class BalanceView:
    account: AccountRef
    balance: Balance


@dataclass(slots=True, frozen=True)
class PositionLine:
    position: Position
    market: Market | None  # None once the symbol is no longer listed

    @property
    def market_id(self) -> str:
        """The venue's id of the symbol (BTCUSDT): what buttons name."""
        return self.market.exchange_id if self.market else venue_id(self.position.symbol)


@dataclass(slots=True, frozen=True)
class PositionsView:
    account: AccountRef
    positions: tuple[PositionLine, ...]

    @property
    def unrealised_pnl(self) -> Decimal:
        return sum((line.position.unrealised_pnl for line in self.positions), ZERO)


@dataclass(slots=True, frozen=True)
class OrderLine:
    order: Order
    market: Market | None

    @property
    def market_id(self) -> str:
        return self.market.exchange_id if self.market else venue_id(self.order.symbol)


@dataclass(slots=True, frozen=True)
class OrdersView:
    account: AccountRef
    orders: tuple[OrderLine, ...]


def venue_id(symbol: str) -> str:
    """BTC/USDT:USDT → BTCUSDT, for a symbol the market table no longer lists."""
    return symbol.split(":")[0].replace("/", "")


class PortfolioService:
    """Reads a trader's balance, positions and open orders through the shared cache."""

    def __init__(
        self,
        gateway: ClientLender,
        accounts: ActiveAccounts,
        cache: CacheLayer,
        market: MarketTable,
    ) -> None:
        self._gateway = gateway
        self._accounts = accounts
        self._layer = cache
        self._balances = cache.cache(BALANCE.name)
        self._positions = cache.cache(POSITIONS.name)
        self._orders = cache.cache(ORDERS.name)
        self._market = market

    async def balance(
        self, user_id: int, fresh: bool = False, *, account_id: int | None = None
    ) -> BalanceView:
        """The active account's balance, at most 15 s old unless `fresh`."""
        ref = await self._account(user_id, account_id)
        key = account_key(user_id, ref.exchange, ref.account_type)
        load = self._reader(ref, lambda client: client.fetch_balance())
        balance: Balance = await _cached(self._balances, key, load, fresh)
        return BalanceView(ref, balance)

    async def positions(
        self, user_id: int, fresh: bool = False, *, account_id: int | None = None
    ) -> PositionsView:
        """The active account's open positions, at most 10 s old unless `fresh`.

        `account_id` (a button's memory of the account it listed) must still be the active
        account, else `Forbidden`.
        """
        ref = await self._account(user_id, account_id)
        key = account_key(user_id, ref.exchange, ref.account_type)
        load = self._reader(ref, lambda client: _as_tuple(client.fetch_positions()))
        positions, markets = await asyncio.gather(
            _cached(self._positions, key, load, fresh), self._market.markets(ref.exchange)
        )
        lines = tuple(PositionLine(p, markets.get(p.symbol)) for p in positions)
        return PositionsView(ref, lines)

    async def open_orders(
        self, user_id: int, fresh: bool = False, *, account_id: int | None = None
    ) -> OrdersView:
        """The active account's resting orders, at most 10 s old unless `fresh`."""
        ref = await self._account(user_id, account_id)
        key = account_key(user_id, ref.exchange, ref.account_type)
        load = self._reader(ref, lambda client: _as_tuple(client.fetch_open_orders()))
        orders, markets = await asyncio.gather(
            _cached(self._orders, key, load, fresh), self._market.markets(ref.exchange)
        )
        return OrdersView(ref, tuple(OrderLine(o, markets.get(o.symbol)) for o in orders))

    async def warm(self, kind: str, key: str) -> None:
        """Reload one cached entry (account, balance, positions, orders) before it expires.

        Readers keep the current value until the new one lands, so they never wait.
        """
        if kind == ACCOUNTS.name:  # key: "{user_id}:active"
            await self._accounts.warm(int(key.split(":", 1)[0]))
            return
        user_id, exchange, account_type = key.split(":", 2)
        ref = AccountRef(int(user_id), 0, exchange, account_type)
        if kind == BALANCE.name:
            await self._balances.refresh(key, self._reader(ref, lambda c: c.fetch_balance()))
        elif kind == POSITIONS.name:
            load = self._reader(ref, lambda c: _as_tuple(c.fetch_positions()))
            await self._positions.refresh(key, load)
        elif kind == ORDERS.name:
            reload = self._reader(ref, lambda c: _as_tuple(c.fetch_open_orders()))
            await self._orders.refresh(key, reload)
        else:
            raise ValueError(f"cannot warm {kind!r}")

    def invalidate(self, user_id: int) -> None:
        """Forget everything cached about the user's accounts (after any order action)."""
        invalidate_user(self._layer, user_id)

    async def _account(self, user_id: int, account_id: int | None) -> AccountRef:
        ref = await self._accounts.require_active(user_id)
        if account_id is not None and ref.credential_id != account_id:
            raise Forbidden(STALE_LIST)
        return ref

    def _reader(
        self, ref: AccountRef, read: Callable[[ExchangeClient], Awaitable[T]]
    ) -> Callable[[], Awaitable[T]]:
        """A cache loader: lease the account's client for the one read."""

        async def load() -> T:
            async with self._gateway.lease(ref.user_id, ref.exchange, ref.account_type) as client:
                return await read(client)

        return load


async def _cached(
    cache: NamedCache[T], key: str, load: Callable[[], Awaitable[T]], fresh: bool
) -> T:
    """Read through `cache`; `fresh` drops a stored value first so the read reaches the exchange.

    A load already in flight answers after this call began, so it is shared rather than
    repeated: a double-pressed Refresh still makes one call.
    """
    if fresh and cache.peek_ttl_left(key) is not None:
        cache.invalidate(key)
    return await cache.get_or_load(key, load)


async def _as_tuple(items: Awaitable[list[T]]) -> tuple[T, ...]:
    # Cached values are shared by every reader: immutable, so no caller can edit another's.
    return tuple(await items)
