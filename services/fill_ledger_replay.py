"""From one account's fills on one symbol to its closes: pure arithmetic, no I/O.

The fills are replayed in time order the way a one-way position moves: a fill on the
position's side (or on a flat symbol) opens or adds at its price, the entry being the
volume-weighted price of the opening fills, and its fee joins the position's opening fees;
a fill against the position closes (part of) it, carrying the closed share of those fees.
Each closing order is one close: its exit is the volume-weighted price of its closing fills.
A fill that flips the position closes what there was and opens the rest.

A reduce-only fill found with no position before it closed one whose opening fills are not
in the ledger (opened before the ledger started): it is a close of unknown entry, which the
venue's closed-PnL record or the stored position supplies.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.exchange.models import ZERO, Fill, PositionSide, Side

PLACES = Decimal("1e-10")  # a volume-weighted price or a fee share: finer than any venue's tick


@dataclass(slots=True)
class Close:
    """What one closing order did to a position, from its fills."""

    order_id: str
    client_order_id: str | None
    symbol: str
    side: PositionSide  # the position's side
    qty: Decimal = ZERO
    entry_value: Decimal = ZERO  # Σ closed qty × the position's entry then
    exit_value: Decimal = ZERO  # Σ closed qty × fill price
    open_fee: Decimal = ZERO  # the closed share of the opening fees
    close_fee: Decimal = ZERO
    realised: Decimal | None = ZERO  # the venue's own figure, before fees; None: not all given
    entry_ts: datetime | None = None  # when the position was opened (None: unknown)
    exit_ts: datetime | None = None  # the last closing fill
    opening_client_id: str | None = None  # the order that opened the position
    trigger: str | None = None
    known_entry: bool = True

    @property
    def entry_price(self) -> Decimal:
        return (self.entry_value / self.qty).quantize(PLACES).normalize() if self.qty else ZERO

    @property
    def exit_price(self) -> Decimal:
        return (self.exit_value / self.qty).quantize(PLACES).normalize() if self.qty else ZERO

    @property
    def fee(self) -> Decimal:
        return self.open_fee + self.close_fee


@dataclass(slots=True)
class _Position:
    size: Decimal = ZERO  # signed: > 0 long
    entry: Decimal = ZERO
    fees: Decimal = ZERO  # opening fees not yet carried away by a close
    opened: datetime | None = None
    opening_client_id: str | None = None


def replay(fills: Iterable[Fill]) -> list[Close]:
    """The closes of one symbol's fills (given oldest first), in the order they happened."""
    position = _Position()
    closes: dict[str, Close] = {}
    for fill in fills:
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        if position.size == 0 or (position.size > 0) == (signed > 0):
            if position.size == 0 and fill.reduce_only:
                _unknown_entry(closes, fill)
                continue
            _open(position, fill, fill.qty, fill.fee)
            continue
        closing = min(fill.qty, abs(position.size))
        _close(position, closes, fill, closing)
        rest = fill.qty - closing
        if rest > 0:  # flipped: the rest of this fill opens the other side
            _open(position, fill, rest, fill.fee * rest / fill.qty)
    return list(closes.values())


def _open(position: _Position, fill: Fill, qty: Decimal, fee: Decimal) -> None:
    held = abs(position.size)
    if held == 0:
        position.opened, position.opening_client_id = fill.ts, fill.client_order_id
        position.fees = ZERO
    position.entry = (held * position.entry + qty * fill.price) / (held + qty)
    position.fees += fee
    position.size += qty if fill.side is Side.BUY else -qty


def _close(position: _Position, closes: dict[str, Close], fill: Fill, qty: Decimal) -> None:
    held = abs(position.size)
    side = PositionSide.LONG if position.size > 0 else PositionSide.SHORT
    close = closes.get(fill.order_id)
    if close is None:
        close = closes[fill.order_id] = Close(
            fill.order_id, fill.client_order_id, fill.symbol, side,
            entry_ts=position.opened, opening_client_id=position.opening_client_id,
            trigger=fill.trigger,
        )  # fmt: skip
    share = position.fees if qty == held else (position.fees * qty / held).quantize(PLACES)
    position.fees -= share
    close.qty += qty
    close.entry_value += qty * position.entry
    close.exit_value += qty * fill.price
    close.open_fee += share
    close.close_fee += fill.fee if qty == fill.qty else (fill.fee * qty / fill.qty).quantize(PLACES)
    close.realised = _add(close.realised, fill.realised_pnl, qty == fill.qty)
    close.exit_ts = fill.ts
    close.trigger = close.trigger or fill.trigger
    position.size += qty if fill.side is Side.BUY else -qty
    if position.size == 0:
        position.entry, position.fees, position.opened = ZERO, ZERO, None


def _unknown_entry(closes: dict[str, Close], fill: Fill) -> None:
    """A close of a position opened before the ledger's first fill on this symbol."""
    side = PositionSide.LONG if fill.side is Side.SELL else PositionSide.SHORT
    close = closes.get(fill.order_id)
    if close is None:
        close = closes[fill.order_id] = Close(
            fill.order_id, fill.client_order_id, fill.symbol, side, trigger=fill.trigger,
            known_entry=False,
        )  # fmt: skip
    close.qty += fill.qty
    close.exit_value += fill.qty * fill.price
    close.close_fee += fill.fee
    close.realised = _add(close.realised, fill.realised_pnl, True)
    close.exit_ts = fill.ts
    close.trigger = close.trigger or fill.trigger


def _add(total: Decimal | None, part: Decimal | None, whole: bool) -> Decimal | None:
    """The venue's realised PnL summed over a close's fills; None once one lacks it (or a
    flipping fill's figure cannot be split between its two halves)."""
    if total is None or part is None or not whole:
        return None
    return total + part


@dataclass(slots=True, frozen=True)
class OrderFill:
    """What an order that opened or added to a position has filled so far."""

    order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal  # volume-weighted
    fee: Decimal


def opening_orders(
    fills: Iterable[Fill], order_ids: Collection[str], closes: Iterable[Close]
) -> list[OrderFill]:
    """The orders of `order_ids` that only opened or added (a closing order is a trade), as
    filled so far, in the order of their first fill."""
    closing = {c.order_id for c in closes}
    wanted = [f for f in fills if f.order_id in order_ids and f.order_id not in closing]
    found: dict[str, list[Fill]] = {}
    for fill in wanted:
        found.setdefault(fill.order_id, []).append(fill)
    return [_order_fill(parts) for parts in found.values()]


def _order_fill(parts: list[Fill]) -> OrderFill:
    first = parts[0]
    qty = sum((f.qty for f in parts), ZERO)
    price = sum((f.qty * f.price for f in parts), ZERO) / qty
    fee = sum((f.fee for f in parts), ZERO)
    return OrderFill(
        first.order_id, first.client_order_id, first.symbol, first.side, qty,
        price.quantize(PLACES).normalize(), fee,
    )  # fmt: skip
