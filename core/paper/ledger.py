"""The `PaperLedger` role: where paper accounts live, the records it keeps, the money rules.

A mutation is a pure decision applied inside one write transaction: the ledger loads the
account's state, calls `decide(state)`, writes the `AccountChanges` it returns and commits.
An exception raised by `decide` (an `InvalidOrder`, `InsufficientFunds`) rolls everything
back, so a refused or crashed order never leaves half of itself behind, and two coroutines
mutating one account never interleave between read and write.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from core.exchange.models import OrderStatus, OrderType, PositionSide, Side

INITIAL_BALANCE = Decimal(10_000)
TAKER_FEE = Decimal("0.00055")
MAKER_FEE = Decimal("0.0002")
MAINTENANCE_MARGIN = Decimal("0.005")
DEFAULT_LEVERAGE = 10
_MONEY_PLACES = -8  # USDT amounts keep 8 decimals, like the venues
_PRICE_PLACES = -12  # average entry prices may be finer than a tick


def _trim(value: Decimal, places: int) -> Decimal:
    """Round to `places` decimals only if the value is finer than that."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < places:
        return value.quantize(Decimal(1).scaleb(places))
    return value


def money(value: Decimal) -> Decimal:
    """Round a USDT amount to 8 decimals (only if it is finer)."""
    return _trim(value, _MONEY_PLACES)


def fine_price(value: Decimal) -> Decimal:
    """Round a computed price (average entry, liquidation) to 12 decimals if it is finer."""
    return _trim(value, _PRICE_PLACES)


def fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    return money(qty * price * rate)


def margin_for(qty: Decimal, price: Decimal, leverage: int) -> Decimal:
    return money(qty * price / leverage)


def pnl(side: PositionSide, qty: Decimal, entry: Decimal, price: Decimal) -> Decimal:
    """Return the PnL of `qty` of a position entered at `entry`, marked at `price`."""
    move = price - entry if side is PositionSide.LONG else entry - price
    return money(qty * move)


def liquidation_price(
    side: PositionSide, entry: Decimal, leverage: int, mmr: Decimal = MAINTENANCE_MARGIN
) -> Decimal:
    inverse = Decimal(1) / leverage
    factor = 1 - inverse + mmr if side is PositionSide.LONG else 1 + inverse - mmr
    return fine_price(entry * factor)


def ledger_time(moment: datetime) -> datetime:
    """Truncate to the millisecond the ledger keeps, so records read back compare equal."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def position_side(side: Side) -> PositionSide:
    return PositionSide.LONG if side is Side.BUY else PositionSide.SHORT


R = TypeVar("R")


@dataclass(slots=True, frozen=True)
class AccountRecord:
    account_id: int
    user_id: int
    balance: Decimal  # wallet: initial + realised PnL - fees
    created_at: datetime
    reset_at: datetime | None = None


@dataclass(slots=True, frozen=True)
class OrderRecord:
    order_id: str
    account_id: int
    client_order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    reduce_only: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    fee: Decimal = Decimal(0)


@dataclass(slots=True, frozen=True)
class PositionRecord:
    account_id: int
    symbol: str
    side: PositionSide
    qty: Decimal
    entry_price: Decimal
    leverage: int
    margin: Decimal  # isolated: entry notional / leverage
    liq_price: Decimal | None
    opened_at: datetime
    updated_at: datetime
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    realised_pnl: Decimal = Decimal(0)  # over this position's life, before fees
    trail_distance: Decimal | None = None  # a trailing stop: the SL follows the best price
    trail_activation: Decimal | None = None  # ... once the price reached this
    trail_peak: Decimal | None = None  # best price since activation; None: not yet active


@dataclass(slots=True, frozen=True)
class FillRecord:
    account_id: int
    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    realised_pnl: Decimal
    is_maker: bool
    at: datetime
    fill_id: int = 0  # the ledger's row id, once stored
    client_order_id: str | None = None  # the order's, when read back with it
    reduce_only: bool | None = None


@dataclass(slots=True)
class AccountState:
    """One account as a decision sees it, read inside the mutating transaction."""

    account: AccountRecord
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    open_orders: dict[str, OrderRecord] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    client_order: OrderRecord | None = None  # the order already holding the asked client id


@dataclass(slots=True)
class AccountChanges:
    """What a decision wrote: the ledger persists exactly this, in the same transaction."""

    account_id: int
    balance: Decimal | None = None
    orders: list[OrderRecord] = field(default_factory=list)  # inserted or updated by id
    positions: list[PositionRecord] = field(default_factory=list)  # upserted
    closed: list[str] = field(default_factory=list)  # symbols whose position is gone
    leverage: dict[str, int] = field(default_factory=dict)
    fills: list[FillRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.balance is not None
            or self.orders
            or self.positions
            or self.closed
            or self.leverage
            or self.fills
        )


@dataclass(slots=True, frozen=True)
class Watch:
    """Price levels the engine watches for one account on one symbol: a resting limit order's
    price, or a position's stop loss, take profit and liquidation price."""

    account_id: int
    symbol: str
    below: tuple[Decimal, ...] = ()  # something fires at a price at or under any of these
    above: tuple[Decimal, ...] = ()  # ... or at or over any of these

    def fires(self, price: Decimal) -> bool:
        return any(price <= level for level in self.below) or any(
            price >= level for level in self.above
        )


class PaperLedger(Protocol):
    """Persistence of paper accounts; each mutation is one transaction."""

    async def load(self, user_id: int) -> AccountState | None:
        """Return the account's state, or None before its first mutation."""
        ...

    async def find_order(
        self, user_id: int, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> OrderRecord | None: ...

    async def fills(self, user_id: int, limit: int = 100) -> list[FillRecord]:
        """Return the account's most recent fills, newest first."""
        ...

    async def fills_since(self, user_id: int, since: datetime, limit: int) -> list[FillRecord]:
        """Return the account's fills at or after `since`, oldest first, at most `limit`,
        with their ids and their orders' client ids and reduce-only flags."""
        ...

    async def mutate(
        self,
        user_id: int,
        now: datetime,
        decide: Callable[[AccountState], tuple[AccountChanges, R]],
        *,
        client_order_id: str | None = None,
        initial_balance: Decimal = INITIAL_BALANCE,
    ) -> R:
        """Create the account if needed, decide on its state and persist the changes."""
        ...

    async def mutate_many(
        self,
        account_ids: Collection[int],
        now: datetime,
        decide: Callable[[Mapping[int, AccountState]], tuple[list[AccountChanges], R]],
    ) -> R:
        """Decide on many existing accounts at once, persisting all changes in one transaction."""
        ...

    async def reset(self, user_id: int, now: datetime, initial_balance: Decimal) -> AccountRecord:
        """Wipe positions, orders, leverage and fills; restore the initial balance."""
        ...

    async def watches(self, symbols: Collection[str]) -> list[Watch]:
        """Return the levels of every open order and position on `symbols`, all accounts."""
        ...
