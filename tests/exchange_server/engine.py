"""Per-account matching engine: orders, executions, one-way linear positions, UTA wallet.

Prices come from :class:`MarketData`; there is no order book between accounts. Market
orders fill at the ticker's last price (taker fee), limit orders rest until the last
price crosses them (maker fee). All state changes are synchronous, so one aiohttp
request is atomic with respect to the others.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from .market import Instrument, MarketData
from .models import (
    Account,
    BybitError,
    Order,
    Position,
    check_tpsl,
    closed_pnl_row,
    execution_row,
    now_ms,
    param_decimal,
    param_flag,
    param_text,
)

TAKER_FEE = Decimal("0.00055")
MAKER_FEE = Decimal("0.0002")
MMR = Decimal("0.005")  # maintenance margin rate used for liqPrice / positionMM


class Engine:
    def __init__(self, market: MarketData, seed: int = 0) -> None:
        self.market = market
        self.accounts: dict[str, Account] = {}
        self._rng = random.Random(seed ^ 0x5EED)
        self._seq = 0
        # Told after every change to an account (the websocket side pushes from here).
        self.listeners: list[Callable[[Account], None]] = []
        self.price_listeners: list[Callable[[str], None]] = []  # told a symbol's price moved

    def changed(self, acct: Account) -> None:
        for listener in self.listeners:
            listener(acct)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def add_account(self, api_key: str, secret: str, balance_usdt: Decimal) -> Account:
        acct = Account(api_key, secret, Decimal(balance_usdt), uid=100_000 + len(self.accounts))
        self.accounts[api_key] = acct
        return acct

    # ---- margin ---------------------------------------------------------
    def upnl(self, acct: Account, pos: Position) -> Decimal:
        return (
            pos.size * (self.market.tickers[pos.symbol].mark - pos.avg) if pos.size else Decimal(0)
        )

    def position_im(self, acct: Account, pos: Position) -> Decimal:
        inst = self.market.instruments[pos.symbol]
        return abs(pos.size) * self.market.tickers[pos.symbol].mark / acct.lev(inst)

    def order_im(self, acct: Account, order: Order) -> Decimal:
        if order.reduce_only or order.order_type != "Limit" or order.status == "Untriggered":
            return Decimal(0)
        return order.leaves * order.price / acct.lev(self.market.instruments[order.symbol])

    def totals(self, acct: Account) -> dict[str, Decimal]:
        upnl = sum((self.upnl(acct, p) for p in acct.positions.values()), Decimal(0))
        pos_im = sum((self.position_im(acct, p) for p in acct.positions.values()), Decimal(0))
        order_im = sum(
            (self.order_im(acct, o) for o in acct.orders.values() if o.is_open), Decimal(0)
        )
        equity = acct.wallet + upnl
        return {
            "upnl": upnl,
            "pos_im": pos_im,
            "order_im": order_im,
            "equity": equity,
            "available": max(equity - pos_im - order_im, Decimal(0)),
        }

    # ---- orders ---------------------------------------------------------
    def _instrument(self, params: Mapping[str, Any]) -> Instrument:
        if param_text(params, "category") != "linear":
            raise BybitError(10001, "params error: category only support linear")
        inst = self.market.tradable(param_text(params, "symbol"))
        if inst is None:
            raise BybitError(10001, "params error: symbol invalid")
        return inst

    def create_order(self, acct: Account, params: Mapping[str, Any]) -> Order:
        inst = self._instrument(params)
        side, order_type = param_text(params, "side"), param_text(params, "orderType")
        if side not in ("Buy", "Sell"):
            raise BybitError(10001, "params error: side invalid")
        if order_type not in ("Market", "Limit"):
            raise BybitError(10001, "params error: orderType invalid")
        # A hedge-mode account's orders are then traded one-way: only the refusal is modelled.
        if param_text(params, "positionIdx") not in (("1", "2") if acct.hedge else ("", "0")):
            raise BybitError(10001, "position idx not match position mode")
        qty = param_decimal(params, "qty")
        if qty is None or qty <= 0:
            raise BybitError(10001, "params error: qty invalid")
        if qty % inst.qty_step != 0:
            raise BybitError(10001, "Qty invalid")
        max_qty = inst.max_mkt_qty if order_type == "Market" else inst.max_qty
        if qty < inst.min_qty:
            raise BybitError(10001, "The number of contracts exceeds minimum limit allowed")
        if qty > max_qty:
            raise BybitError(
                10001, "The number of contracts exceeds maximum limit allowed: too large"
            )
        last = self.market.last(inst.symbol)
        price = param_decimal(params, "price", Decimal(0)) or Decimal(0)
        if order_type == "Limit":
            if price <= 0:
                raise BybitError(10001, "params error: price invalid")
            if price % inst.tick_size != 0:
                raise BybitError(10001, "Price invalid")
            if price > inst.tick_size * 199_999_980:
                raise BybitError(110003, "Order price is out of permissible range")
        else:
            price = last * (Decimal("1.05") if side == "Buy" else Decimal("0.95"))
            price = price.quantize(inst.tick_size)
        link_id = param_text(params, "orderLinkId")
        if len(link_id) > 36:
            raise BybitError(10001, "params error: orderLinkId max length is 36")
        if link_id and link_id in acct.by_link:
            raise BybitError(110072, "OrderLinkedID is duplicate")
        tif = param_text(params, "timeInForce") or ("IOC" if order_type == "Market" else "GTC")
        if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
            raise BybitError(10001, "params error: timeInForce invalid")
        trigger = param_decimal(params, "triggerPrice", Decimal(0)) or Decimal(0)
        direction = int(param_text(params, "triggerDirection") or 0)
        if trigger and direction not in (1, 2):
            raise BybitError(10001, "params error: triggerDirection invalid")
        reduce_only = param_flag(params, "reduceOnly") or param_flag(params, "closeOnTrigger")
        ref = price if order_type == "Limit" else last
        if not reduce_only and qty * ref < inst.min_notional:
            raise BybitError(
                110094, f"Order does not meet minimum order value {inst.min_notional}USDT"
            )
        tp = param_decimal(params, "takeProfit", Decimal(0)) or Decimal(0)
        sl = param_decimal(params, "stopLoss", Decimal(0)) or Decimal(0)
        check_tpsl("Buy" if side == "Buy" else "Sell", trigger or ref, tp, sl)
        order = Order(
            order_id=self.new_id(),
            link_id=link_id,
            symbol=inst.symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            time_in_force=tif,
            reduce_only=reduce_only,
            status="New",
            created=now_ms(),
            last_price_on_created=last,
            take_profit=tp,
            stop_loss=sl,
            trigger_price=trigger,
            trigger_direction=direction,
            close_on_trigger=param_flag(params, "closeOnTrigger"),
        )
        if trigger:
            order.status, order.stop_order_type = "Untriggered", "Stop"
        if reduce_only and not trigger:
            self._fix_reduce_only(acct, order)
        if not reduce_only:
            self._check_margin(acct, inst, order, ref)
        order.updated = order.created
        acct.orders[order.order_id] = order
        if link_id:
            acct.by_link[link_id] = order
        if not trigger:
            self._activate(acct, order)
        self.changed(acct)
        return order

    def _fix_reduce_only(self, acct: Account, order: Order) -> None:
        pos = acct.position(order.symbol)
        if pos.size == 0:
            raise BybitError(110017, "current position is zero, cannot fix reduce-only order qty")
        if (pos.size > 0) == (order.side == "Buy"):
            raise BybitError(110017, "Reduce-only rule not satisfied")
        if order.qty > abs(pos.size):
            order.qty = abs(pos.size)

    def _check_margin(self, acct: Account, inst: Instrument, order: Order, ref: Decimal) -> None:
        pos = acct.position(inst.symbol)
        opening = order.qty
        if pos.size and (pos.size > 0) != (order.side == "Buy"):
            opening = max(order.qty - abs(pos.size), Decimal(0))
        needed = opening * ref / acct.lev(inst) + order.qty * ref * TAKER_FEE
        if needed > self.totals(acct)["available"]:
            raise BybitError(110007, "ab not enough for new order")

    def _crosses(self, order: Order, last: Decimal) -> bool:
        return last <= order.price if order.side == "Buy" else last >= order.price

    def _activate(self, acct: Account, order: Order) -> None:
        """Match a freshly live (new or just-triggered) order against the last price."""
        last = self.market.last(order.symbol)
        if order.order_type == "Market":
            self._fill(acct, order, order.qty - order.cum_qty, last, maker=False)
        elif self._crosses(order, last):
            if order.time_in_force == "PostOnly":
                self._finish(order, "Cancelled", reject="EC_PostOnlyWillTakeLiquidity")
            else:
                self._fill(acct, order, order.qty - order.cum_qty, last, maker=False)
        elif order.time_in_force in ("IOC", "FOK"):
            self._finish(order, "Cancelled", cancel="CancelByUser")

    def _finish(self, order: Order, status: str, *, cancel: str = "", reject: str = "") -> None:
        if order.status == "PartiallyFilled" and status == "Cancelled":
            status = "PartiallyFilledCanceled"
        order.status, order.updated = status, now_ms()
        order.cancel_type = cancel or order.cancel_type
        order.reject_reason = reject or order.reject_reason

    def cancel_order(self, acct: Account, params: Mapping[str, Any]) -> Order:
        self._instrument(params)
        order_id, link_id = param_text(params, "orderId"), param_text(params, "orderLinkId")
        if not order_id and not link_id:
            raise BybitError(10001, "params error: orderId or orderLinkId is required")
        order = acct.orders.get(order_id) if order_id else acct.by_link.get(link_id)
        if order is None or not order.is_open or order.symbol != param_text(params, "symbol"):
            raise BybitError(110001, "order not exists or too late to cancel")
        self._finish(
            order,
            "Deactivated" if order.status == "Untriggered" else "Cancelled",
            cancel="CancelByUser",
        )
        self.changed(acct)
        return order

    def cancel_all(self, acct: Account, params: Mapping[str, Any]) -> list[Order]:
        symbol = param_text(params, "symbol")
        if param_text(params, "category") != "linear":
            raise BybitError(10001, "params error: category only support linear")
        if (
            not symbol
            and not param_text(params, "settleCoin")
            and not param_text(params, "baseCoin")
        ):
            raise BybitError(10001, "symbol or settleCoin or baseCoin is required")
        done = []
        for order in list(acct.orders.values()):
            if (
                order.is_open
                and (not symbol or order.symbol == symbol)
                and not order.close_on_trigger
            ):
                self._finish(
                    order,
                    "Deactivated" if order.status == "Untriggered" else "Cancelled",
                    cancel="CancelByUser",
                )
                done.append(order)
        self.changed(acct)
        return done

    # ---- fills ----------------------------------------------------------
    def _fill(
        self, acct: Account, order: Order, qty: Decimal, price: Decimal, *, maker: bool
    ) -> None:
        inst = self.market.instruments[order.symbol]
        pos = acct.position(order.symbol)
        if order.reduce_only:
            same_dir = pos.size and (pos.size > 0) == (order.side == "Buy")
            room = Decimal(0) if not pos.size or same_dir else abs(pos.size)
            qty = room if order.qty == 0 else min(qty, room)
            if qty <= 0:
                self._finish(order, "Cancelled", cancel="CancelByReduceOnly")
                return
            if order.qty == 0:
                order.qty = qty
        signed = qty if order.side == "Buy" else -qty
        value, rate = qty * price, MAKER_FEE if maker else TAKER_FEE
        fee = (value * rate).quantize(Decimal("1e-8"))
        old, realised, closed = pos.size, Decimal(0), Decimal(0)
        new = old + signed
        entry, open_share = pos.avg, Decimal(0)
        if old and (old > 0) != (signed > 0):
            closed = min(abs(old), qty)
            realised = closed * (price - pos.avg) * (1 if old > 0 else -1)
            open_share = (pos.open_fee * closed / abs(old)).quantize(Decimal("1e-8"))
            pos.open_fee -= open_share
            if new == 0:
                pos.avg, pos.open_fee = Decimal(0), Decimal(0)
            elif (new > 0) != (old > 0):
                pos.avg = price
                pos.open_fee = (fee * (qty - closed) / qty).quantize(Decimal("1e-8"))
        else:
            if not old:
                pos.cur_realised, pos.created = Decimal(0), now_ms()
            pos.avg = (abs(old) * pos.avg + value) / abs(new)
            pos.open_fee += fee
        pos.size = new
        self._seq += 1
        pos.updated, pos.seq = now_ms(), self._seq
        pnl = realised - fee
        pos.cur_realised += pnl
        pos.cum_realised += pnl
        acct.wallet += pnl
        order.cum_qty += qty
        order.cum_value += value
        order.cum_fee += fee
        full = order.cum_qty >= order.qty
        order.status = "Filled" if full else "PartiallyFilled"
        if not full and order.order_type == "Market":
            order.status = "PartiallyFilledCanceled"
        order.updated = now_ms()
        ticker = self.market.tickers[order.symbol]
        row = execution_row(inst, ticker, order, qty, price, fee, rate, maker, closed, realised)
        acct.executions.append(row | {"execId": self.new_id(), "seq": self._seq})
        if closed:
            close_fee = fee if closed == qty else (fee * closed / qty).quantize(Decimal("1e-8"))
            acct.closed_pnl.append(
                closed_pnl_row(
                    inst, order, closed, entry, price, open_share, close_fee, realised,
                    acct.lev(inst),
                )
            )  # fmt: skip
        if order.take_profit or order.stop_loss:
            self.set_position_tpsl(acct, order.symbol, order.take_profit, order.stop_loss)
        if new == 0 or (old and (new > 0) != (old > 0)):
            self._position_reset(acct, pos, flat=new == 0)

    def fill_part(self, acct: Account, order: Order, qty: Decimal) -> None:
        """Trade `qty` of a resting limit order at its own price, as maker: a partial fill."""
        if order.order_type != "Limit" or not order.is_open or qty >= order.qty - order.cum_qty:
            raise ValueError("a partial fill needs a resting limit order and less than its rest")
        self._fill(acct, order, qty, order.price, maker=True)

    def _position_reset(self, acct: Account, pos: Position, *, flat: bool) -> None:
        pos.take_profit = pos.stop_loss = Decimal(0)
        pos.trailing_stop = pos.active_price = pos.trail_peak = Decimal(0)
        for order in acct.orders.values():
            if order.symbol != pos.symbol or not order.is_open:
                continue
            if order.stop_order_type in ("TakeProfit", "StopLoss", "TrailingStop"):
                self._finish(order, "Deactivated", cancel="CancelByTpSlTsClear")
            elif flat and order.reduce_only and order.status != "Untriggered":
                self._finish(order, "Cancelled", cancel="CancelByReduceOnly")

    # ---- positions ------------------------------------------------------
    def set_leverage(self, acct: Account, params: Mapping[str, Any]) -> None:
        inst = self._instrument(params)
        buy, sell = param_decimal(params, "buyLeverage"), param_decimal(params, "sellLeverage")
        if buy is None or sell is None:
            raise BybitError(10001, "params error: buyLeverage and sellLeverage are required")
        if buy != sell:
            raise BybitError(10001, "buy leverage must be equal to sell leverage in one-way mode")
        if buy < 1 or buy > inst.max_leverage or buy % Decimal("0.01"):
            raise BybitError(10001, f"leverage invalid, must be in [1, {inst.max_leverage}]")
        if buy == acct.lev(inst):
            raise BybitError(110043, "leverage not modified")
        acct.leverage[inst.symbol] = buy
        self.changed(acct)

    def trading_stop(self, acct: Account, params: Mapping[str, Any]) -> None:
        inst = self._instrument(params)
        pos = acct.position(inst.symbol)
        if pos.size == 0:
            raise BybitError(10001, "can not set tp/sl/ts for zero position")
        tp, sl = param_decimal(params, "takeProfit"), param_decimal(params, "stopLoss")
        trailing = param_decimal(params, "trailingStop")
        if tp is None and sl is None and trailing is None:
            raise BybitError(
                10001, "params error: takeProfit, stopLoss or trailingStop is required"
            )
        tp = pos.take_profit if tp is None else tp
        sl = pos.stop_loss if sl is None else sl
        if (tp, sl) == (pos.take_profit, pos.stop_loss) and trailing in (None, pos.trailing_stop):
            raise BybitError(34040, "not modified")
        check_tpsl("Buy" if pos.size > 0 else "Sell", self.market.last(inst.symbol), tp, sl)
        self.set_position_tpsl(acct, inst.symbol, tp, sl)
        if trailing is not None:
            if trailing < 0:
                raise BybitError(10001, "params error: trailingStop invalid")
            active = param_decimal(params, "activePrice", Decimal(0)) or Decimal(0)
            self._set_trailing(acct, pos, trailing, active)
        self.changed(acct)

    def _set_trailing(
        self, acct: Account, pos: Position, distance: Decimal, active: Decimal
    ) -> None:
        """A trailing stop as Bybit keeps it: one Untriggered `TrailingStop` order whose
        trigger follows the best price since `activePrice` (at once without one)."""
        for order in acct.orders.values():
            if (
                order.symbol == pos.symbol
                and order.is_open
                and order.stop_order_type == "TrailingStop"
            ):
                self._finish(order, "Deactivated", cancel="CancelByTpSlTsClear")
        pos.trailing_stop, pos.active_price, pos.trail_peak = distance, active, Decimal(0)
        if not distance:
            return
        long = pos.size > 0
        order = Order(
            order_id=self.new_id(), link_id="", symbol=pos.symbol,
            side="Sell" if long else "Buy", order_type="Market", qty=Decimal(0),
            price=Decimal(0), time_in_force="IOC", reduce_only=True, status="Untriggered",
            created=now_ms(), last_price_on_created=self.market.last(pos.symbol),
            trigger_price=Decimal(0), trigger_direction=2 if long else 1,
            stop_order_type="TrailingStop", create_type="CreateByTrailingStop",
            close_on_trigger=True, updated=now_ms(),
        )  # fmt: skip
        acct.orders[order.order_id] = order
        self._trail(acct, pos.symbol)

    def _trail(self, acct: Account, symbol: str) -> None:
        """Move a position's trailing stop after the best price (before triggers are read)."""
        pos = acct.positions.get(symbol)
        if pos is None or not pos.trailing_stop or not pos.size:
            return
        last, long = self.market.last(symbol), pos.size > 0
        if not pos.trail_peak:
            if pos.active_price and (last < pos.active_price if long else last > pos.active_price):
                return
            pos.trail_peak = last
        pos.trail_peak = max(pos.trail_peak, last) if long else min(pos.trail_peak, last)
        level = pos.trail_peak - pos.trailing_stop if long else pos.trail_peak + pos.trailing_stop
        for order in acct.orders.values():
            if order.symbol == symbol and order.is_open and order.stop_order_type == "TrailingStop":
                order.trigger_price = max(level, Decimal(0))

    def set_position_tpsl(self, acct: Account, symbol: str, tp: Decimal, sl: Decimal) -> None:
        """Full-mode position TP/SL, mirrored as Untriggered conditional orders like Bybit."""
        pos = acct.position(symbol)
        if pos.size == 0:
            return
        pos.take_profit, pos.stop_loss = tp, sl
        long = pos.size > 0
        for kind, price, rising in (("TakeProfit", tp, long), ("StopLoss", sl, not long)):
            existing = [
                o
                for o in acct.orders.values()
                if o.symbol == symbol and o.is_open and o.stop_order_type == kind
            ]
            for old in existing:
                self._finish(old, "Deactivated", cancel="CancelByTpSlTsClear")
            if not price:
                continue
            order = Order(
                order_id=self.new_id(),
                link_id="",
                symbol=symbol,
                side="Sell" if long else "Buy",
                order_type="Market",
                qty=Decimal(0),
                price=Decimal(0),
                time_in_force="IOC",
                reduce_only=True,
                status="Untriggered",
                created=now_ms(),
                last_price_on_created=self.market.last(symbol),
                trigger_price=price,
                trigger_direction=1 if rising else 2,
                stop_order_type=kind,
                create_type=f"CreateBy{kind}",
                close_on_trigger=True,
                updated=now_ms(),
            )
            acct.orders[order.order_id] = order

    # ---- price moves ----------------------------------------------------
    def announce_price(self, symbol: str) -> None:
        """Tell the price listeners (the public ticker stream) that `symbol` moved."""
        for price_listener in self.price_listeners:
            price_listener(symbol)

    def on_price(self, symbol: str) -> None:
        """Trigger conditional orders and fill crossed limit orders after a price change."""
        last = self.market.last(symbol)
        self.announce_price(symbol)
        for acct in self.accounts.values():
            self._trail(acct, symbol)
            touched = False
            for order in list(acct.orders.values()):
                if order.symbol != symbol or not order.is_open:
                    continue
                touched = True
                if order.status == "Untriggered":
                    if order.stop_order_type == "TrailingStop" and not order.trigger_price:
                        continue  # not activated yet
                    up = order.trigger_direction == 1
                    if (last >= order.trigger_price) if up else (last <= order.trigger_price):
                        order.status, order.updated = "New", now_ms()
                        self._activate(acct, order)
                elif order.order_type == "Limit" and self._crosses(order, last):
                    self._fill(acct, order, order.qty - order.cum_qty, order.price, maker=True)
            held = acct.positions.get(symbol)
            if touched or (held is not None and held.size):
                self.changed(acct)
