"""The price of a limit order: `64000`, `64k`, or `-1%` / `+0.5%` from the last price.

A price is rounded to the market's nearest tick, and must stay within `MAX_DISTANCE_PCT`
of the last price (further is a typo far more often than a plan). A limit on the wrong
side of the last price (a buy at or above it, a sell at or below it) would fill at once as
taker, like a market order: the card says so before Confirm, and with post-only on it is
refused outright, since the exchange would cancel it anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from core.errors import InvalidInput
from core.exchange.models import Market, PositionSide

MAX_DISTANCE_PCT = Decimal(50)
MIN_OFFSET_PCT = Decimal("0.01")
_ABSOLUTE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([km]?)", re.ASCII)
_RELATIVE = re.compile(r"([+-]?)(\d+(?:\.\d+)?|\.\d+)%", re.ASCII)
_SCALE = {"": Decimal(1), "k": Decimal(1_000), "m": Decimal(1_000_000)}
FORMS = "a price (64000, 64.5k) or a move from the last price (-1%, +0.5%)"


@dataclass(slots=True, frozen=True)
class LimitPrice:
    """A price as typed: an absolute one, or a signed percentage of the last price."""

    value: Decimal
    relative: bool
    text: str


@dataclass(slots=True, frozen=True)
class LimitLevel:
    """Where the order rests: the price on the tick and how it sits against the last one."""

    price: Decimal
    last: Decimal
    distance_pct: Decimal  # (price − last) / last, in percent: −1 is 1 % below
    takes: bool  # on the wrong side: fills at once as taker


def is_price_form(text: str) -> bool:
    """Whether the text is written as a limit price (the value is checked later)."""
    cleaned = text.strip().lower().replace(",", "")
    return _ABSOLUTE.fullmatch(cleaned) is not None or _RELATIVE.fullmatch(cleaned) is not None


def parse_limit_price(text: str) -> LimitPrice:
    """`64000`, `64,000`, `64k`, `-1%`, `+0.5%`; anything else refused naming the forms."""
    cleaned = text.strip().lower().replace(",", "")
    try:
        relative = _RELATIVE.fullmatch(cleaned)
        if relative is not None and not relative[1]:
            raise InvalidInput(
                f"Say which way {cleaned} goes: -{cleaned} (below the last price) or "
                f"+{cleaned} (above it)."
            )
        if relative is not None:
            sign = -1 if relative[1] == "-" else 1
            return LimitPrice(sign * Decimal(relative[2]), True, text.strip())
        absolute = _ABSOLUTE.fullmatch(cleaned)
        if absolute is not None:
            value = Decimal(absolute[1]) * _SCALE[absolute[2]]
            return LimitPrice(value, False, text.strip())
    except InvalidOperation:
        pass
    raise InvalidInput(f"The limit price must be {FORMS}, not “{text.strip()[:20]}”.")


def limit_level(
    side: PositionSide, wanted: LimitPrice, last: Decimal, market: Market
) -> LimitLevel:
    """The order's price on the tick, refused when it rounds to nothing or is too far."""
    if wanted.relative:
        size = abs(wanted.value)
        if not MIN_OFFSET_PCT <= size <= MAX_DISTANCE_PCT:
            raise InvalidInput(
                f"A move of {wanted.text} is out of range: from {MIN_OFFSET_PCT} % to "
                f"{MAX_DISTANCE_PCT:,.0f} % of the last price, e.g. @-1% or @+0.5%."
            )
        raw = last * (1 + wanted.value / 100)
    else:
        raw = wanted.value
    tick = market.tick_size
    price = market.round_price(raw)
    if price <= 0:
        raise InvalidInput(
            f"{wanted.text} rounds to 0 on the {market.symbol} tick of {tick}; "
            f"the price must be at least {tick}."
        )
    if wanted.relative and price == last:
        raise InvalidInput(
            f"{wanted.text} moves the price less than one tick ({tick}) from the last price "
            f"{last}; give a larger move, or trade at market without @."
        )
    low, high = last * (1 - MAX_DISTANCE_PCT / 100), last * (1 + MAX_DISTANCE_PCT / 100)
    if not low <= price <= high:
        raise InvalidInput(
            f"{price:,f} is too far from the last price {last:,f}: a limit must be within "
            f"{MAX_DISTANCE_PCT:,.0f} % of it ({market.round_price(low):,f} to "
            f"{market.round_price(high):,f})."
        )
    takes = price >= last if side is PositionSide.LONG else price <= last
    distance = ((price - last) / last * 100).quantize(Decimal("0.01"))
    return LimitLevel(price, last, distance, takes)


def refuse_taking(side: PositionSide, level: LimitLevel) -> InvalidInput:
    """Post-only on, and the price would take: the exchange would cancel it, so refuse now."""
    where = "below" if side is PositionSide.LONG else "above"
    return InvalidInput(
        f"Post-only is on, and a {side.opening_side.value} limit at {level.price:,f} would fill "
        f"at once against the last price {level.last:,f}, so the exchange would cancel it. "
        f"Price it {where} {level.last:,f}, or /set post_only off to let it take."
    )
