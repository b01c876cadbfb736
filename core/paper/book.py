"""How paper orders fill: one account's book of orders, positions and margin
(`core.paper.engine` applies prices to every account through it).

Fills:        a market order fills at once at the current price as taker; a limit order
              rests and fills at its own price as maker once the price trades through it,
              or at once as taker (at the current price) if it crosses on arrival.
Margin:       isolated; a position's margin is its entry notional / leverage. Available
              = wallet − position margins − margin reserved by resting opening orders;
              unrealised PnL never adds to it. A position never loses more than its margin.
Liquidation:  long at entry × (1 − 1/lev + mmr), short at entry × (1 + 1/lev − mmr); the
              position is closed at that price and its whole margin is lost (what is left
              of the maintenance margin is charged as the liquidation fee).
Triggers:     at one price, the crossed levels (resting orders, stop loss, take profit,
              liquidation) are applied farthest-from-price first: that is the order a
              continuous path from the previous price would have crossed them in.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from core.exchange.errors import InsufficientFunds, InvalidOrder
from core.exchange.models import ZERO, OrderStatus, OrderType, PositionSide, Side, TradingStop
from core.paper.ledger import (
    DEFAULT_LEVERAGE,
    MAKER_FEE,
    TAKER_FEE,
    AccountChanges,
    AccountState,
    FillRecord,
    OrderRecord,
    PositionRecord,
    fee,
    fine_price,
    liquidation_price,
    margin_for,
    money,
    pnl,
    position_side,
)
from core.paper.protection import protect, trail

EXCHANGE = "paper"


def new_order_id() -> str:
    return uuid.uuid4().hex


def trigger_of(order_id: str) -> str | None:
    """What sent a paper order the trader did not place: take_profit, stop_loss or
    liquidation (None for a trader's order)."""
    kind, _, rest = order_id.partition("-")
    return kind if rest and kind in _TRIGGER_KINDS else None


def crosses(order: OrderRecord, price: Decimal) -> bool:
    """True when a resting limit order would trade at `price`."""
    assert order.price is not None
    return price <= order.price if order.side is Side.BUY else price >= order.price


class EventKind(enum.StrEnum):
    ORDER_FILLED = "order_filled"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    LIQUIDATION = "liquidation"
    ORDER_CANCELLED = "order_cancelled"  # a resting reduce-only order with nothing to reduce


_RANK = {k: r for r, k in enumerate(EventKind)}
_TRIGGER_KINDS = frozenset(
    {"take_profit", "stop_loss", "liquidation"}
)  # ties: orders, then SL, TP, liquidation


def triggers(position: PositionRecord, price: Decimal) -> list[tuple[Decimal, EventKind]]:
    """Return the (level, kind) of each stop loss, take profit or liquidation `price` hits."""
    long = position.side is PositionSide.LONG
    levels = (
        (position.stop_loss, EventKind.STOP_LOSS, long),
        (position.take_profit, EventKind.TAKE_PROFIT, not long),
        (position.liq_price, EventKind.LIQUIDATION, long),
    )
    return [
        (level, kind)
        for level, kind, below in levels
        if level is not None and (price <= level if below else price >= level)
    ]


@dataclass(slots=True, frozen=True)
class Executed:
    """One thing a price did to an account: the order that traded (or was cancelled)."""

    kind: EventKind
    order: OrderRecord
    fill: FillRecord | None


class AccountBook:
    """One account under a decision: applies orders and fills, and records the changes."""

    def __init__(self, state: AccountState, now: datetime, new_id: Callable[[], str]) -> None:
        self.state = state
        self.now = now
        self._new_id = new_id
        self._start = state.account.balance
        self.balance = state.account.balance
        self._changes = AccountChanges(state.account.account_id)

    @property
    def changes(self) -> AccountChanges:
        self._changes.balance = self.balance if self.balance != self._start else None
        return self._changes

    def leverage(self, symbol: str) -> int:
        position = self.state.positions.get(symbol)
        if position is not None:
            return position.leverage
        return self.state.leverage.get(symbol, DEFAULT_LEVERAGE)

    def reserved(self, order: OrderRecord) -> Decimal:
        """Margin a resting order holds back: its remaining notional / leverage."""
        if order.reduce_only or order.price is None:
            return ZERO
        return margin_for(order.qty - order.filled_qty, order.price, self.leverage(order.symbol))

    def used_margin(self) -> Decimal:
        held = sum((p.margin for p in self.state.positions.values()), ZERO)
        return held + sum((self.reserved(o) for o in self.state.open_orders.values()), ZERO)

    def available(self) -> Decimal:
        return self.balance - self.used_margin()

    def place(self, order: OrderRecord, last: Decimal) -> OrderRecord:
        """Accept a validated new order: fill it now if it crosses, otherwise rest it."""
        if order.reduce_only:
            order = self._clip(order)
        if order.order_type is OrderType.MARKET or crosses(order, last):
            before, exposure = self.available(), self._exposure(order)
            filled = self.fill(order, order.qty, last, maker=False)
            if self.available() < 0 and self._exposure(order) > exposure:
                raise _insufficient(order, before - self.available(), before)
            return filled
        assert order.price is not None
        need = self.reserved(order) + fee(order.qty, order.price, MAKER_FEE)
        if need > self.available():
            raise _insufficient(order, need, self.available())
        self.state.open_orders[order.order_id] = order
        self._changes.orders.append(order)
        return order

    def cancel(self, order: OrderRecord) -> OrderRecord:
        cancelled = replace(order, status=OrderStatus.CANCELLED, updated_at=self.now)
        self.state.open_orders.pop(order.order_id, None)
        self._changes.orders.append(cancelled)
        return cancelled

    def set_leverage(self, symbol: str, leverage: int, last: Decimal) -> None:
        """Change a symbol's leverage, re-margining its open position (isolated)."""
        self.state.leverage[symbol] = self._changes.leverage[symbol] = leverage
        position = self.state.positions.get(symbol)
        if position is not None:
            liq = liquidation_price(position.side, position.entry_price, leverage)
            if last <= liq if position.side is PositionSide.LONG else last >= liq:
                raise InvalidOrder(
                    EXCHANGE, f"leverage {leverage}x would liquidate your {symbol} position now"
                )
            margin = margin_for(position.qty, position.entry_price, leverage)
            self._put(replace(position, leverage=leverage, margin=margin, liq_price=liq))
        if self.available() < 0:
            raise InsufficientFunds(
                EXCHANGE, f"not enough available margin to use {leverage}x on {symbol}"
            )

    def fill(self, order: OrderRecord, qty: Decimal, price: Decimal, *, maker: bool) -> OrderRecord:
        """Trade `qty` of `order` at `price`; return the order as updated."""
        charged = fee(qty, price, MAKER_FEE if maker else TAKER_FEE)
        realised = self._trade(order, qty, price)
        self.balance += realised - charged
        self._fill_record(order, qty, price, charged, realised, maker)
        filled = order.filled_qty + qty
        average = (order.filled_qty * (order.avg_price or ZERO) + qty * price) / filled
        done = filled >= order.qty
        updated = replace(
            order,
            filled_qty=filled,
            avg_price=fine_price(average),
            fee=order.fee + charged,
            status=OrderStatus.FILLED if done else OrderStatus.OPEN,
            updated_at=self.now,
        )
        if done:
            self.state.open_orders.pop(order.order_id, None)
        else:
            self.state.open_orders[order.order_id] = updated
        self._changes.orders.append(updated)
        return updated

    def settle(self, symbol: str, price: Decimal) -> list[Executed]:
        """Apply everything `price` triggers on `symbol`, farthest level first."""
        done: list[Executed] = []
        for _ in range(2 * len(self.state.open_orders) + 4):  # each fill may fire a trigger
            hits: list[tuple[Decimal, EventKind, OrderRecord | None]] = [
                (o.price, EventKind.ORDER_FILLED, o)
                for o in self.state.open_orders.values()
                if o.symbol == symbol and o.price is not None and crosses(o, price)
            ]
            position = self._trailed(self.state.positions.get(symbol), price)
            if position is not None:
                hits.extend((level, kind, None) for level, kind in triggers(position, price))
            if not hits:
                break
            level, kind, order = max(hits, key=lambda h: (abs(h[0] - price), -_RANK[h[1]]))
            if order is not None:
                done.append(self._fill_resting(order))
            elif position is not None and kind is EventKind.LIQUIDATION:
                done.append(self._liquidate(position, level))
            elif position is not None:
                closing = self._closing_order(position, kind)
                closed = self.fill(closing, position.qty, price, maker=False)
                done.append(Executed(kind, closed, self._changes.fills[-1]))
        return done

    def protect(self, stop: TradingStop, last: Decimal) -> PositionRecord:
        """Set, move or remove the TP, SL and trailing stop of the open position."""
        position = self.state.positions.get(stop.symbol)
        if position is None or position.side is not stop.side:
            raise InvalidOrder(EXCHANGE, f"no open {stop.side} {stop.symbol} position")
        protected = protect(position, stop, last, self.now)
        self._put(protected)
        return protected

    def _trailed(self, position: PositionRecord | None, price: Decimal) -> PositionRecord | None:
        """The position after its trailing stop (if any) followed `price`."""
        moved = None if position is None else trail(position, price, self.now)
        if moved is None:
            return position
        self._put(moved)
        return moved

    def _fill_resting(self, order: OrderRecord) -> Executed:
        limit = order.price
        assert limit is not None
        if order.reduce_only:
            position = self.state.positions.get(order.symbol)
            if position is None or position.side is position_side(order.side):
                return Executed(EventKind.ORDER_CANCELLED, self.cancel(order), None)
            left = min(order.qty - order.filled_qty, position.qty)
            order = replace(order, qty=order.filled_qty + left)
        filled = self.fill(order, order.qty - order.filled_qty, limit, maker=True)
        return Executed(EventKind.ORDER_FILLED, filled, self._changes.fills[-1])

    def _liquidate(self, position: PositionRecord, price: Decimal) -> Executed:
        """Close at the liquidation price; the whole margin is lost, the rest of it as fee."""
        order = replace(self._closing_order(position, EventKind.LIQUIDATION), price=price)
        realised = max(
            pnl(position.side, position.qty, position.entry_price, price), -position.margin
        )
        charged = max(position.margin + realised, ZERO)
        self.balance += realised - charged
        self._drop(position.symbol)
        self._fill_record(order, position.qty, price, charged, realised, False)
        filled = replace(
            order, status=OrderStatus.FILLED, filled_qty=order.qty, avg_price=price, fee=charged
        )
        self._changes.orders.append(filled)
        return Executed(EventKind.LIQUIDATION, filled, self._changes.fills[-1])

    def _closing_order(self, position: PositionRecord, kind: EventKind) -> OrderRecord:
        """The market order a trigger sends to close a whole position; its id names the
        trigger (`take_profit-…`), which the fills read back (`trigger_of`)."""
        return OrderRecord(
            order_id=f"{kind.value}-{self._new_id()}",
            account_id=position.account_id,
            client_order_id=None,
            symbol=position.symbol,
            side=position.side.closing_side,
            order_type=OrderType.MARKET,
            qty=position.qty,
            price=None,
            status=OrderStatus.OPEN,
            created_at=self.now,
            updated_at=self.now,
            reduce_only=True,
        )

    def _exposure(self, order: OrderRecord) -> Decimal:
        """Return the size of the position on the order's side (zero if none or opposite)."""
        position = self.state.positions.get(order.symbol)
        if position is None or position.side is not position_side(order.side):
            return ZERO
        return position.qty

    def _clip(self, order: OrderRecord) -> OrderRecord:
        """Refuse a reduce-only order that cannot reduce; shrink it to the position."""
        position = self.state.positions.get(order.symbol)
        if position is None:
            raise InvalidOrder(
                EXCHANGE, f"reduce-only order refused: no open {order.symbol} position"
            )
        if position.side is position_side(order.side):
            raise InvalidOrder(
                EXCHANGE,
                f"reduce-only {order.side} order refused: it would increase your "
                f"{position.side} {order.symbol} position",
            )
        return replace(order, qty=min(order.qty, position.qty))

    def _trade(self, order: OrderRecord, qty: Decimal, price: Decimal) -> Decimal:
        """Move the position by one fill (reduce, close, open or flip); return realised PnL."""
        side = position_side(order.side)
        position = self.state.positions.get(order.symbol)
        realised = ZERO
        if position is not None and position.side is not side:
            closing = min(qty, position.qty)
            share = money(position.margin * closing / position.qty)
            realised = max(pnl(position.side, closing, position.entry_price, price), -share)
            rest = position.qty - closing
            if rest > 0:
                self._put(
                    replace(
                        position,
                        qty=rest,
                        margin=position.margin - share,
                        realised_pnl=position.realised_pnl + realised,
                        updated_at=self.now,
                    )
                )
            else:
                self._drop(order.symbol)
            qty, position = qty - closing, None
        if qty > 0:
            self._put(self._grown(position, order, side, qty, price))
        return realised

    def _grown(
        self,
        position: PositionRecord | None,
        order: OrderRecord,
        side: PositionSide,
        qty: Decimal,
        price: Decimal,
    ) -> PositionRecord:
        """The position after opening or adding `qty` at `price`."""
        lev = self.leverage(order.symbol)
        total = qty + (position.qty if position else ZERO)
        entry = price
        if position is not None:
            entry = fine_price((position.qty * position.entry_price + qty * price) / total)
        grown = PositionRecord(
            account_id=order.account_id,
            symbol=order.symbol,
            side=side,
            qty=total,
            entry_price=entry,
            leverage=lev,
            margin=margin_for(total, entry, lev),
            liq_price=liquidation_price(side, entry, lev),
            opened_at=position.opened_at if position else self.now,
            updated_at=self.now,
            take_profit=position.take_profit if position else None,
            stop_loss=position.stop_loss if position else None,
            realised_pnl=position.realised_pnl if position else ZERO,
            trail_distance=position.trail_distance if position else None,
            trail_activation=position.trail_activation if position else None,
            trail_peak=position.trail_peak if position else None,
        )
        if order.take_profit is not None or order.stop_loss is not None:
            grown = replace(grown, take_profit=order.take_profit, stop_loss=order.stop_loss)
        return grown

    def _put(self, position: PositionRecord) -> None:
        self.state.positions[position.symbol] = position
        self._changes.closed = [s for s in self._changes.closed if s != position.symbol]
        self._changes.positions = [
            p for p in self._changes.positions if p.symbol != position.symbol
        ]
        self._changes.positions.append(position)

    def _drop(self, symbol: str) -> None:
        self.state.positions.pop(symbol, None)
        self._changes.positions = [p for p in self._changes.positions if p.symbol != symbol]
        if symbol not in self._changes.closed:
            self._changes.closed.append(symbol)

    def _fill_record(
        self, order: OrderRecord, qty: Decimal, price: Decimal, charged: Decimal,
        realised: Decimal, maker: bool,
    ) -> None:  # fmt: skip
        fill = FillRecord(
            order.account_id, order.order_id, order.symbol, order.side, qty, price, charged,
            realised, maker, self.now,
        )  # fmt: skip
        self._changes.fills.append(fill)


def _insufficient(order: OrderRecord, need: Decimal, available: Decimal) -> InsufficientFunds:
    return InsufficientFunds(
        EXCHANGE,
        f"insufficient margin for {order.qty} {order.symbol}: it needs {need:.2f} USDT, "
        f"{max(available, ZERO):.2f} USDT is available",
    )
