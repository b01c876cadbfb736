"""What a trader holds right now: balance, positions and open orders of the active account.

Every read goes through the account's cache-aware client (balance 15 s, positions and orders
10 s), so a burst of identical reads makes one exchange call; `fresh=True` drops the entry
first and loads it again. Orders placed through that client drop what they change. Lists are
whole (every page the venue has); `complete` is False only past the page bound, and then the
views hold the newest items the bound allowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from core.errors import Forbidden
from core.exchange.models import ZERO, Balance, Market, Order, Position
from services.account_client import AccountCaches, AccountClient
from services.accounts import AccountRef
from services.caching import ACCOUNTS

STALE_LIST = "That list is about another account than your active one; send the command again."


class AccountDirectory(Protocol):
    """Hands out the cache-aware client of one trader's account (the `ExchangeGateway`)."""

    @property
    def account_caches(self) -> AccountCaches: ...

    def account(self, user_id: int, exchange: str, account_type: str) -> AccountClient: ...


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
    complete: bool = True  # False: the account holds more than one read may follow

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
    complete: bool = True  # False: the account holds more than one read may follow


def venue_id(symbol: str) -> str:
    """BTC/USDT:USDT → BTCUSDT, for a symbol the market table no longer lists."""
    return symbol.split(":")[0].replace("/", "")


class PortfolioService:
    """Reads a trader's balance, positions and open orders through the shared cache."""

    def __init__(
        self, gateway: AccountDirectory, accounts: ActiveAccounts, market: MarketTable
    ) -> None:
        self._gateway = gateway
        self._accounts = accounts
        self._market = market

    async def balance(
        self, user_id: int, fresh: bool = False, *, account_id: int | None = None
    ) -> BalanceView:
        """The active account's balance, at most 15 s old unless `fresh`."""
        ref = await self._account(user_id, account_id)
        balance: Balance = await self._client(ref).balance(fresh)
        return BalanceView(ref, balance)

    async def positions(
        self, user_id: int, fresh: bool = False, *, account_id: int | None = None
    ) -> PositionsView:
        """The active account's open positions, at most 10 s old unless `fresh`.

        `account_id` (a button's memory of the account it listed) must still be the active
        account, else `Forbidden`.
        """
        ref = await self._account(user_id, account_id)
        positions, markets = await asyncio.gather(
            self._client(ref).positions(fresh), self._market.markets(ref.exchange)
        )
        lines = tuple(PositionLine(p, markets.get(p.symbol)) for p in positions)
        return PositionsView(ref, lines, positions.complete)

    async def open_orders(
        self, user_id: int, fresh: bool = False, *, account_id: int | None = None
    ) -> OrdersView:
        """The active account's resting orders, at most 10 s old unless `fresh`."""
        ref = await self._account(user_id, account_id)
        orders, markets = await asyncio.gather(
            self._client(ref).open_orders(fresh), self._market.markets(ref.exchange)
        )
        lines = tuple(OrderLine(o, markets.get(o.symbol)) for o in orders)
        return OrdersView(ref, lines, orders.complete)

    async def warm(self, kind: str, key: str) -> None:
        """Reload one cached entry (account, balance, positions, orders) before it expires.

        Readers keep the current value until the new one lands, so they never wait.
        """
        if kind == ACCOUNTS.name:  # key: "{user_id}:active"
            await self._accounts.warm(int(key.split(":", 1)[0]))
            return
        user_id, exchange, account_type = key.split(":", 2)
        await self._gateway.account(int(user_id), exchange, account_type).refresh(kind)

    def invalidate(self, user_id: int) -> None:
        """Forget everything cached about the user's accounts."""
        self._gateway.account_caches.drop(user_id)

    async def _account(self, user_id: int, account_id: int | None) -> AccountRef:
        ref = await self._accounts.require_active(user_id)
        if account_id is not None and ref.credential_id != account_id:
            raise Forbidden(STALE_LIST)
        return ref

    def _client(self, ref: AccountRef) -> AccountClient:
        return self._gateway.account(ref.user_id, ref.exchange, ref.account_type)
