"""What a trader sees of an order before and after Confirm: the cards and their outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.errors import InvalidInput
from core.exchange.models import ZERO, OrderType, PositionSide, Side
from core.lifecycle import UNRESOLVED
from db.repositories.intents import IntentRecord
from services.accounts import AccountRef
from services.history import TradeLog


class CardExpired(InvalidInput):
    """The card's two minutes are over, or it was cancelled: nothing will be placed."""


@dataclass(slots=True, frozen=True)
class LimitTerms:
    """What makes an opening card a limit order: where it rests and for how long."""

    price: Decimal  # on the tick
    last: Decimal  # the last price it was measured against
    distance_pct: Decimal  # −1.00: 1 % below the last price
    takes: bool  # on the wrong side of the last price: fills at once as taker
    post_only: bool
    ttl_min: int  # cancelled this long after it is placed, if still unfilled


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
    limit: LimitTerms | None = None  # None: a market order


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
    limit_price: Decimal | None = None  # a limit order's price
    resting: bool = False  # a limit accepted and waiting on the book
    expires_at: datetime | None = None  # when a resting limit is cancelled if unfilled


def placement(
    intent: IntentRecord,
    *,
    error: str | None = None,
    repeated: bool = False,
    trade: TradeLog | None = None,
) -> Placement:
    """What a trader is told of an intent: its fill, or why it was not placed."""
    side = Side(intent.side)
    opened = side if not intent.reduce_only else side.opposite
    return Placement(
        client_order_id=intent.client_order_id,
        account=AccountRef(intent.user_id, 0, intent.exchange, intent.account_type).label,
        symbol=intent.symbol,
        side=PositionSide.LONG if opened is Side.BUY else PositionSide.SHORT,
        closing=intent.reduce_only,
        qty=intent.qty,
        filled_qty=intent.filled_qty or ZERO,
        avg_price=intent.avg_price,
        fee=intent.fee or ZERO,
        order_id=intent.exchange_order_id,
        leverage=intent.leverage,
        take_profit=intent.take_profit,
        stop_loss=intent.stop_loss,
        error=error,
        repeated=repeated,
        in_flight=intent.status in UNRESOLVED,
        trade=trade,
        limit_price=intent.price if intent.order_type == OrderType.LIMIT.value else None,
    )
