"""Numbers traders type (USDT amounts, leverage, percentages) and the arithmetic of an order.

Every parser raises `InvalidInput` whose text names what was wrong and the accepted range,
so a handler can show it as it is. Nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from core.errors import InvalidInput
from core.exchange.models import ZERO, Market, PositionSide

MAX_DECIMALS = 8
MAX_USDT = Decimal(100_000_000)  # more than any account trades at once: beyond it, a typo
TAKER_FEE = Decimal("0.00055")
CENT = Decimal("0.01")
FEE_PLACES = Decimal("1e-10")  # a pro-rata fee share: finer than any venue charges

_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)
_MAX_CHARS = 24  # 9 integer digits, a point and 8 decimals, with room for zeros
_NOT_FINITE = {"nan", "+nan", "-nan", "snan", "inf", "+inf", "-inf", "infinity", "-infinity"}


@dataclass(slots=True, frozen=True)
class AmountRange:
    """The USDT notionals an order may have: the market's minimum to margin × leverage."""

    minimum: Decimal
    maximum: Decimal

    def __str__(self) -> str:
        return f"{self.minimum:,.2f} to {self.maximum:,.2f} USDT"


def parse_number(text: str, what: str, accepted: str) -> Decimal:
    """A plain finite decimal of at most 8 decimals; a refusal names `what` and `accepted`."""
    cleaned = text.strip()
    if cleaned.lower() in _NOT_FINITE:
        raise InvalidInput(f"{what} must be a finite number (accepted: {accepted}).")
    if not _PLAIN_NUMBER.fullmatch(cleaned):
        raise InvalidInput(
            f"{what} must be a plain number, not {cleaned[:20]} (accepted: {accepted})."
        )
    if len(cleaned) > _MAX_CHARS:
        raise InvalidInput(f"{what} has too many digits to be real (accepted: {accepted}).")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:  # the pattern admits only valid literals; kept as a safety net
        raise InvalidInput(f"{what} must be a plain number (accepted: {accepted}).") from None
    if decimals(value) > MAX_DECIMALS:
        raise InvalidInput(f"{what} has more than {MAX_DECIMALS} decimals (accepted: {accepted}).")
    return value


def decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def usdt_range(market: Market, price: Decimal, available: Decimal, leverage: int) -> AmountRange:
    """From the smallest amount that buys a valid quantity to available margin × leverage."""
    lots_for_notional = (market.min_notional / price / market.lot_size).to_integral_value(
        ROUND_CEILING
    )
    min_qty = max(market.min_qty, lots_for_notional * market.lot_size)
    minimum = (min_qty * price).quantize(CENT, ROUND_CEILING)
    maximum = (max(available, ZERO) * leverage).quantize(CENT, ROUND_FLOOR)
    return AmountRange(minimum, min(maximum, MAX_USDT))


def parse_usdt(text: str, allowed: AmountRange) -> Decimal:
    """The order's notional in USDT (`50`, `50.5`, `50usdt`), checked against `allowed`."""
    cleaned = re.sub(r"(?i)\s*usdt$", "", text.strip())
    value = parse_number(cleaned, "The amount", str(allowed))
    if value <= 0:
        raise InvalidInput(f"The amount must be positive (accepted: {allowed}).")
    if value > MAX_USDT:
        raise InvalidInput(f"{value:,.0f} USDT is not a realistic amount (accepted: {allowed}).")
    if allowed.maximum < allowed.minimum:
        raise InvalidInput(
            f"Not enough margin: your available balance allows at most "
            f"{allowed.maximum:,.2f} USDT at this leverage, and the minimum order is "
            f"{allowed.minimum:,.2f} USDT."
        )
    if value < allowed.minimum:
        raise InvalidInput(f"{value} USDT is below the minimum order (accepted: {allowed}).")
    if value > allowed.maximum:
        raise InvalidInput(
            f"{value} USDT is more than your available margin allows (accepted: {allowed})."
        )
    return value


def parse_leverage(text: str, max_leverage: int) -> int:
    """A whole leverage from 1 to the market's maximum (`10`, `10x`)."""
    cleaned = text.strip().lower().rstrip("x×")
    accepted = f"a whole number from 1 to {max_leverage}"
    if not cleaned.isascii() or not cleaned.isdigit():
        raise InvalidInput(f"Leverage must be {accepted}, e.g. 10 — not {text.strip()[:20]}.")
    if len(cleaned) > 4:
        raise InvalidInput(f"Leverage is out of range: {accepted}.")
    return check_leverage(int(cleaned), max_leverage)


def check_leverage(leverage: int, max_leverage: int, source: str = "Leverage") -> int:
    if not 1 <= leverage <= max_leverage:
        raise InvalidInput(
            f"{source} {leverage}× is out of range: a whole number from 1 to {max_leverage}."
        )
    return leverage


def parse_percent(text: str | None) -> Decimal:
    """A share of a position from 1 to 100 (`50`, `50%`); none given means all of it."""
    if text is None:
        return Decimal(100)
    value = parse_number(text.strip().rstrip("%"), "The percentage", "1 to 100")
    if not 1 <= value <= 100:
        raise InvalidInput(f"The percentage must be from 1 to 100, not {value} (e.g. 50).")
    return value


def protective_levels(
    side: PositionSide, price: Decimal, tp_pct: Decimal, sl_pct: Decimal, market: Market
) -> tuple[Decimal | None, Decimal | None]:
    """Take profit and stop loss around `price`, on the winning and losing sides, on the tick.

    A zero percentage (or one that would put the level at or below zero) means no level.
    """
    sign = 1 if side is PositionSide.LONG else -1
    take = market.round_price(price * (1 + sign * tp_pct / 100)) if tp_pct > 0 else None
    stop = market.round_price(price * (1 - sign * sl_pct / 100)) if sl_pct > 0 else None
    return _positive(take), _positive(stop)


def taker_fee(notional: Decimal) -> Decimal:
    return (notional * TAKER_FEE).quantize(Decimal("1e-8"))


def realised_pnl(
    side: PositionSide, entry: Decimal, exit_price: Decimal, qty: Decimal, fees: Decimal
) -> Decimal:
    """(exit − entry) × qty for a long, mirrored for a short, less the fees of both legs:
    the closing fee and the closed share of the opening fee (`opening_fee`). So a trade's
    PnL is what it did to the wallet."""
    move = exit_price - entry if side is PositionSide.LONG else entry - exit_price
    return move * qty - fees


def opening_fee(
    fee: Decimal | None, opened: Decimal | None, closed: Decimal, entry: Decimal
) -> Decimal:
    """The share of the opening fee that closing `closed` carries: the opening order paid
    `fee` for `opened`; a whole close carries all of it, a partial one its part.

    Unknown (a position opened outside Tradewind): the taker fee at the entry price, the
    rate a market order pays. A position built by several orders is charged at the rate of
    the latest, which `fee` and `opened` describe.
    """
    if fee is None or not opened or opened <= 0:
        return taker_fee(closed * entry)
    if closed == opened:
        return fee
    return (fee * closed / opened).quantize(FEE_PLACES)


def _positive(level: Decimal | None) -> Decimal | None:
    return level if level is not None and level > 0 else None
