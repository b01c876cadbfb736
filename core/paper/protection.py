"""A paper position's own protection: TP/SL set after entry, and its trailing stop.

Levels follow a venue's position-level TP/SL (Bybit's trading-stop in Full mode): a take
profit must be on the profit side of the last price and a stop loss on the loss side, or the
request is refused; a level of zero removes it. A trailing stop keeps the stop loss a fixed
distance behind the best price since activation (at once, or once the price reached the
activation price); the stop only ever tightens, and a loss-side move leaves it where it was.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from core.exchange.errors import InvalidOrder
from core.exchange.models import ZERO, PositionSide, TradingStop
from core.paper.ledger import PositionRecord, fine_price

EXCHANGE = "paper"


def protect(
    position: PositionRecord, stop: TradingStop, last: Decimal, now: datetime
) -> PositionRecord:
    """The position with `stop` applied; refused like a venue refuses a wrong-side level."""
    long = position.side is PositionSide.LONG
    tp = _level(position.take_profit, stop.take_profit)
    sl = _level(position.stop_loss, stop.stop_loss)
    if stop.take_profit and (stop.take_profit <= last if long else stop.take_profit >= last):
        where = "above" if long else "below"
        raise InvalidOrder(
            EXCHANGE, f"take profit {stop.take_profit} must be {where} the last price {last}"
        )
    if stop.stop_loss and (stop.stop_loss >= last if long else stop.stop_loss <= last):
        where = "below" if long else "above"
        raise InvalidOrder(
            EXCHANGE, f"stop loss {stop.stop_loss} must be {where} the last price {last}"
        )
    updated = replace(position, take_profit=tp, stop_loss=sl, updated_at=now)
    if stop.trailing_distance is None:
        return updated
    if stop.trailing_distance == ZERO:
        return replace(updated, trail_distance=None, trail_activation=None, trail_peak=None)
    if stop.trailing_distance < 0:
        raise InvalidOrder(EXCHANGE, "a trailing distance must be positive")
    start = stop.trailing_activation
    reached = start is None or (last >= start if long else last <= start)
    trailing = replace(
        updated,
        trail_distance=stop.trailing_distance,
        trail_activation=start,
        trail_peak=last if reached else None,
    )
    return trail(trailing, last, now) or trailing


def trail(position: PositionRecord, price: Decimal, now: datetime) -> PositionRecord | None:
    """The position with its trailing stop moved by `price`, or None when it did not move."""
    distance = position.trail_distance
    if distance is None:
        return None
    long = position.side is PositionSide.LONG
    peak = position.trail_peak
    if peak is None:
        start = position.trail_activation
        if start is not None and (price < start if long else price > start):
            return None
        peak = price
    else:
        peak = max(peak, price) if long else min(peak, price)
    level = fine_price(peak - distance if long else peak + distance)
    current = position.stop_loss
    if current is not None:
        level = max(current, level) if long else min(current, level)
    if level <= 0:
        level = current if current is not None else ZERO
    if peak == position.trail_peak and level == current:
        return None
    return replace(
        position, trail_peak=peak, stop_loss=level if level > 0 else None, updated_at=now
    )


def _level(current: Decimal | None, asked: Decimal | None) -> Decimal | None:
    """None keeps the current level, zero removes it, a price replaces it."""
    if asked is None:
        return current
    return None if asked == ZERO else asked
