"""What a trader sees of an order before and after Confirm: the cards and their outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.errors import InvalidInput
from core.exchange.models import PositionSide
from services.history import TradeLog


class CardExpired(InvalidInput):
    """The card's two minutes are over, or it was cancelled: nothing will be placed."""


@dataclass(slots=True, frozen=True)
class OpenCard:
    """What Confirm would open, priced now."""

    client_order_id: str
    account: str
    symbol: str
    side: PositionSide
    price: Decimal
    qty: Decimal
    notional: Decimal
    leverage: int
    margin: Decimal
    take_profit: Decimal | None
    stop_loss: Decimal | None
    fee: Decimal
    expires_at: datetime
    tick: Decimal | None = None  # the market's, so prices print as /positions prints them


@dataclass(slots=True, frozen=True)
class CloseCard:
    """What Confirm would close: `percent` of the position, at about `price`."""

    client_order_id: str
    account: str
    symbol: str
    side: PositionSide
    qty: Decimal
    position_qty: Decimal
    percent: Decimal
    entry_price: Decimal
    price: Decimal
    pnl: Decimal  # estimated, net of both legs' fees
    fee: Decimal  # the closing fee estimated, and the opening fee's share of `qty`
    expires_at: datetime
    tick: Decimal | None = None


@dataclass(slots=True, frozen=True)
class Placement:
    """What became of a confirmed card."""

    client_order_id: str
    account: str
    symbol: str
    side: PositionSide  # the position's side (a close of a long is a sell)
    closing: bool
    qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal | None
    fee: Decimal
    order_id: str | None
    leverage: int | None
    take_profit: Decimal | None
    stop_loss: Decimal | None
    error: str | None = None  # why the exchange refused; nothing was placed
    repeated: bool = False  # settled by an earlier press; nothing was sent this time
    in_flight: bool = False  # sent or being sent; the outcome is not known yet
    trade: TradeLog | None = None  # the realised trade of a filled close
