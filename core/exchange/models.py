"""The records exchanges hand to services. Money, prices and sizes are Decimal; time is UTC.

Symbols are unified (`BTC/USDT:USDT`, a linear USDT perpetual); `exchange_id` keeps the
venue's own id (`BTCUSDT`) for the adapters. Quantities are in base currency.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from core.exchange.ids import PREFIX

ZERO = Decimal(0)
LIST_PAGES = 50  # most pages one list read follows: 2,500 open orders on Bybit

T = TypeVar("T")


class PagedList(list[T]):
    """What a list read (positions, open orders) found on the venue's pages.

    `complete` is False when the read stopped at `LIST_PAGES` pages with more left: the
    items are then the newest ones only, and whoever shows them must say so.
    """

    __slots__ = ("complete",)

    def __init__(self, items: Iterable[T] = (), complete: bool = True) -> None:
        super().__init__(items)
        self.complete = complete


class Listing(tuple[T, ...]):
    """An immutable `PagedList`, as caches share it: the items and whether they are all."""

    complete: bool

    def __new__(cls, items: Iterable[T] = (), complete: bool = True) -> Listing[T]:
        listing = super().__new__(cls, items)
        listing.complete = complete
        return listing


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class PositionSide(enum.StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def opening_side(self) -> Side:
        return Side.BUY if self is PositionSide.LONG else Side.SELL

    @property
    def closing_side(self) -> Side:
        return Side.SELL if self is PositionSide.LONG else Side.BUY


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(enum.StrEnum):
    OPEN = "open"  # resting, possibly partly filled
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self is not OrderStatus.OPEN


class AccountType(enum.StrEnum):
    LIVE = "live"
    DEMO = "demo"
    TESTNET = "testnet"
    PAPER = "paper"


@dataclass(slots=True, frozen=True)
class Market:
    """A tradable linear perpetual and its trading rules."""

    symbol: str
    exchange_id: str
    base: str
    quote: str
    settle: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_leverage: int
    active: bool = True
    listed_at: datetime | None = None

    def round_qty(self, qty: Decimal) -> Decimal:
        """Round a size down to the lot size (never up: never more than asked)."""
        return (qty // self.lot_size) * self.lot_size

    def round_price(self, price: Decimal) -> Decimal:
        """Round a price to the nearest tick."""
        return (price / self.tick_size).quantize(Decimal(1)) * self.tick_size


@dataclass(slots=True, frozen=True)
class Ticker:
    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    mark: Decimal | None
    high_24h: Decimal | None
    low_24h: Decimal | None
    base_volume_24h: Decimal
    quote_volume_24h: Decimal
    change_24h_pct: Decimal | None
    timestamp: datetime


@dataclass(slots=True, frozen=True)
class Candle:
    """One OHLCV bar; `ts` is the bar's open time in unix milliseconds."""

    ts: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(slots=True, frozen=True)
class AssetBalance:
    asset: str
    total: Decimal
    free: Decimal
    used: Decimal


@dataclass(slots=True, frozen=True)
class Balance:
    """Account equity in USDT and the per-asset breakdown."""

    equity: Decimal
    available: Decimal
    used_margin: Decimal
    unrealised_pnl: Decimal
    assets: tuple[AssetBalance, ...] = ()


@dataclass(slots=True, frozen=True)
class Position:
    symbol: str
    side: PositionSide
    qty: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealised_pnl: Decimal
    leverage: int
    margin: Decimal
    liquidation_price: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    trailing_distance: Decimal | None = None  # an exchange-native trailing stop's distance

    @property
    def notional(self) -> Decimal:
        return self.qty * self.mark_price

    @property
    def pnl_pct(self) -> Decimal:
        """Unrealised PnL as a percentage of the margin committed."""
        return self.unrealised_pnl / self.margin * 100 if self.margin else ZERO


@dataclass(slots=True, frozen=True)
class OrderRequest:
    """What a service asks an exchange to do; `client_order_id` is always set by the caller."""

    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    client_order_id: str
    price: Decimal | None = None
    reduce_only: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    post_only: bool = False  # a limit that must rest: refused rather than filled as taker


@dataclass(slots=True, frozen=True)
class TradingStop:
    """Position-level protection asked of one open position (one-way mode).

    Each level: None leaves it as the venue has it, `ZERO` removes it, a price sets it.
    `trailing_distance` is a price distance the stop keeps behind the best price since
    activation; `trailing_activation` is the price where trailing starts (None: at once).
    """

    symbol: str
    side: PositionSide
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    trailing_distance: Decimal | None = None
    trailing_activation: Decimal | None = None


@dataclass(slots=True, frozen=True)
class Order:
    order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: OrderStatus
    filled_qty: Decimal = ZERO
    avg_price: Decimal | None = None
    fee: Decimal = ZERO
    reduce_only: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    created_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(slots=True, frozen=True)
class Fill:
    """One execution as the exchange records it: the truth trade logs are derived from.

    `fill_id` is the venue's execution id, unique per account. `realised_pnl` is the
    closed PnL the venue reports on this execution where it does (None where it does not;
    then it is computed from the fills): the price move of the closed quantity, before fees
    (Bybit `execPnl`, Binance `realizedPnl`). `fee` is positive when paid, negative as a
    rebate. `trigger` names what sent a closing order the trader did not place: `take_profit`,
    `stop_loss` or `liquidation` (None for an order someone placed).
    """

    fill_id: str
    order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_currency: str
    ts: datetime
    realised_pnl: Decimal | None = None
    reduce_only: bool | None = None
    trigger: str | None = None


@dataclass(slots=True, frozen=True)
class ClosedPnl:
    """One position close as the venue's closed-PnL record states it (Bybit `closed-pnl`,
    OKX `positions-history`): the figure a trader compares the bot with. `closed_pnl` is
    net of the opening and closing fees of the closed quantity; `side` is the position's."""

    order_id: str
    symbol: str
    side: PositionSide
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    closed_pnl: Decimal
    ts: datetime
    open_fee: Decimal | None = None
    close_fee: Decimal | None = None


def unexplained_close(fill: Fill) -> bool:
    """A closing fill of an order Tradewind did not place, with nothing naming its cause
    (a venue's TP or SL, its liquidation, or the trader's own click on the venue's site)."""
    closing = fill.reduce_only or (fill.reduce_only is None and bool(fill.realised_pnl))
    ours = (fill.client_order_id or "").startswith(PREFIX)
    return bool(closing) and not ours and fill.trigger is None
