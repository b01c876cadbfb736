"""The words and numbers of TP/SL/trailing changes: parsing a level, checking its side and
range against the last price and the liquidation price, and whether it adds risk.

A level is a price (`64000`, `64,000.5`) or a distance from the last price in percent: a
take profit's on the winning side (`+3%`, `3%`), a stop loss's on the losing side (`-2%`,
`2%`). Every refusal names the accepted range.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from core.errors import InvalidInput
from core.exchange.models import Market, Position, PositionSide

TP_USAGE = "Usage: /tp SYMBOL PRICE or /tp SYMBOL +PCT% (e.g. /tp BTC 70000, /tp BTC +3%)."
SL_USAGE = "Usage: /sl SYMBOL PRICE or /sl SYMBOL -PCT% (e.g. /sl BTC 62000, /sl BTC -2%)."
TRAIL_USAGE = (
    "Usage: /trail SYMBOL DISTANCE or /trail SYMBOL PCT% [+ACTIVATION%] (e.g. /trail BTC 500, "
    "/trail BTC 1.5%, /trail BTC 1% +2%), /trail SYMBOL for your /strategy trail_pct, "
    "/trail SYMBOL off to stop trailing."
)
MAX_TP_PCT = Decimal(1000)
MAX_SL_PCT = Decimal(99)
_NUMBER = re.compile(
    r"(?P<sign>[+-]?)\s*(?P<value>[0-9][0-9,_]{0,15}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})\s*(?P<pct>%?)"
)


def show(value: Decimal, market: Market) -> str:
    """A price on the market's tick, thousands separated: 64,000.0."""
    return format(value.quantize(market.tick_size.normalize()), ",f")


def take_profit(text: str, position: Position, price: Decimal, market: Market) -> Decimal:
    """The take-profit level `text` means, refused off the winning side of `price`."""
    long = position.side is PositionSide.LONG
    level = _parse(text, price, market, winning=True, long=long, usage=TP_USAGE)
    if long and level <= price:
        raise InvalidInput(
            f"A take profit on your LONG {market.base} must be above the last price "
            f"{show(price, market)}: from {show(price + market.tick_size, market)} up. {TP_USAGE}"
        )
    if not long and level >= price:
        raise InvalidInput(
            f"A take profit on your SHORT {market.base} must be below the last price "
            f"{show(price, market)}: from {show(market.tick_size, market)} to "
            f"{show(price - market.tick_size, market)}. {TP_USAGE}"
        )
    return level


def stop_loss(text: str, position: Position, price: Decimal, market: Market) -> Decimal:
    """The stop-loss level `text` means, refused off the losing side or past liquidation."""
    long = position.side is PositionSide.LONG
    level = _parse(text, price, market, winning=False, long=long, usage=SL_USAGE)
    check_stop(level, position, price, market, SL_USAGE)
    return level


def check_stop(
    level: Decimal, position: Position, price: Decimal, market: Market, usage: str = ""
) -> None:
    """Refuse a stop level that is not between the liquidation price and the last price."""
    long = position.side is PositionSide.LONG
    liq = position.liquidation_price if position.liquidation_price else None
    low, high = stop_range(position, price, market)
    wrong_side = level >= price if long else level <= price
    beyond = liq is not None and (level <= liq if long else level >= liq)
    if wrong_side or beyond or level <= 0:
        why = (
            f"beyond your liquidation price {show(liq, market)}"
            if beyond and liq is not None
            else f"on the wrong side of the last price {show(price, market)}"
        )
        raise InvalidInput(
            f"A stop loss at {show(level, market)} on your {position.side.upper()} "
            f"{market.base} is {why}: accepted from {show(low, market)} to "
            f"{show(high, market)}. {usage}".rstrip()
        )


def stop_range(position: Position, price: Decimal, market: Market) -> tuple[Decimal, Decimal]:
    """The stop levels a position accepts now: between its liquidation price and the price."""
    tick, liq = market.tick_size, position.liquidation_price or None
    if position.side is PositionSide.LONG:
        low = (liq + tick) if liq is not None else tick
        return market.round_price(low), price - tick
    high = (liq - tick) if liq is not None else price * MAX_SL_PCT
    return price + tick, market.round_price(high)


def trail_distance(text: str, position: Position, price: Decimal, market: Market) -> Decimal:
    """A trailing distance (a price distance or a percent of `price`), on the tick, whose
    first stop level sits between the liquidation price and the price."""
    form = _NUMBER.fullmatch(text.strip())
    if form is None or form["sign"]:
        raise InvalidInput(TRAIL_USAGE)
    number = _decimal(form["value"], TRAIL_USAGE)
    distance = price * number / 100 if form["pct"] else number
    distance = market.round_price(distance)
    low, high = stop_range(position, price, market)
    widest = price - low if position.side is PositionSide.LONG else high - price
    if distance <= 0:
        raise InvalidInput(
            f"{number:f}{form['pct']} of {market.base}'s price ({show(price, market)}) rounds "
            f"to nothing on its {market.tick_size:f} tick; trail by at least "
            f"{show(market.tick_size, market)}."
        )
    if distance > widest:
        raise InvalidInput(
            f"A trailing distance of {show(distance, market)} would put the stop beyond your "
            f"liquidation price: accepted from {show(market.tick_size, market)} to "
            f"{show(widest, market)} ({widest / price * 100:.2f} %). {TRAIL_USAGE}"
        )
    return distance


def activation(text: str, position: Position, market: Market) -> Decimal:
    """The price where trailing starts: `+PCT%` profit from the entry price."""
    form = _NUMBER.fullmatch(text.strip())
    if form is None or form["sign"] == "-" or not form["pct"]:
        raise InvalidInput(TRAIL_USAGE)
    return activation_at(_decimal(form["value"], TRAIL_USAGE), position, market)


def activation_at(pct: Decimal, position: Position, market: Market) -> Decimal:
    sign = 1 if position.side is PositionSide.LONG else -1
    return market.round_price(position.entry_price * (1 + sign * pct / 100))


def riskier(side: PositionSide, current: Decimal | None, new: Decimal | None) -> bool:
    """True when a new stop loss (None: none) leaves the position more to lose."""
    if not current:
        return False
    if new is None:
        return True
    return new < current if side is PositionSide.LONG else new > current


def _parse(
    text: str, price: Decimal, market: Market, *, winning: bool, long: bool, usage: str
) -> Decimal:
    form = _NUMBER.fullmatch(text.strip())
    if form is None:
        raise InvalidInput(usage)
    number = _decimal(form["value"], usage)
    if not form["pct"]:
        if form["sign"]:
            raise InvalidInput(f"A price has no sign; a distance ends in %. {usage}")
        return market.round_price(number) if number >= market.tick_size else number
    wrong = "-" if winning else "+"
    if form["sign"] == wrong:
        what = "take profit is a gain" if winning else "stop loss is a loss"
        raise InvalidInput(f"A {what}: {'+' if winning else '-'}{number:f}%. {usage}")
    limit = MAX_TP_PCT if winning and long else MAX_SL_PCT
    if not Decimal("0.01") <= number <= limit:
        raise InvalidInput(f"A distance must be from 0.01 % to {limit:f} %. {usage}")
    up = winning == long
    level = market.round_price(price * (1 + (number if up else -number) / 100))
    if level == price or level <= 0:
        raise InvalidInput(
            f"{number:f} % of {market.base}'s price ({show(price, market)}) rounds to nothing "
            f"on its {market.tick_size:f} tick; ask for a bigger distance."
        )
    return level


def _decimal(value: str, usage: str) -> Decimal:
    try:
        return Decimal(value.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise InvalidInput(usage) from None
