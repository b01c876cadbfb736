"""Engine state: orders, positions, accounts, the Bybit error type and param helpers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .market import Instrument, Ticker

DEFAULT_LEVERAGE = Decimal("10")
OPEN = ("New", "PartiallyFilled", "Untriggered")


class BybitError(Exception):
    """Rejected request; rendered as ``{"retCode": code, "retMsg": msg}`` with HTTP 200."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg = code, msg


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Order:
    order_id: str
    link_id: str
    symbol: str
    side: str  # Buy / Sell
    order_type: str  # Market / Limit
    qty: Decimal  # 0 = "whole position" (position TP/SL orders)
    price: Decimal
    time_in_force: str
    reduce_only: bool
    status: str
    created: int
    last_price_on_created: Decimal
    take_profit: Decimal = Decimal(0)
    stop_loss: Decimal = Decimal(0)
    trigger_price: Decimal = Decimal(0)
    trigger_direction: int = 0
    stop_order_type: str = ""
    create_type: str = "CreateByUser"
    close_on_trigger: bool = False
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    cum_qty: Decimal = Decimal(0)
    cum_value: Decimal = Decimal(0)
    cum_fee: Decimal = Decimal(0)
    updated: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def leaves(self) -> Decimal:
        return max(self.qty - self.cum_qty, Decimal(0)) if self.is_open else Decimal(0)


@dataclass
class Position:
    symbol: str
    size: Decimal = Decimal(0)  # signed: > 0 long, < 0 short
    avg: Decimal = Decimal(0)
    take_profit: Decimal = Decimal(0)
    stop_loss: Decimal = Decimal(0)
    trailing_stop: Decimal = Decimal(0)  # distance behind the best price; 0: none
    active_price: Decimal = Decimal(0)  # where trailing starts; 0: at once
    trail_peak: Decimal = Decimal(0)  # best price since activation; 0: not active yet
    cur_realised: Decimal = Decimal(0)
    cum_realised: Decimal = Decimal(0)
    open_fee: Decimal = Decimal(0)  # opening fees the open size still carries (closed PnL)
    created: int = 0
    updated: int = 0
    seq: int = 0


@dataclass
class KeyPermissions:
    """What `/v5/user/query-api` reports about a key; the default is a healthy trading key
    (orders allowed, no withdrawals, bound to the loopback address)."""

    read_only: bool = False
    trade: bool = True  # ContractTrade Order/Position
    withdraw: bool = False  # Wallet Withdraw
    ips: tuple[str, ...] = ("127.0.0.1",)  # ("*",) is Bybit's "no IP restriction"


@dataclass
class Account:
    api_key: str
    secret: str
    wallet: Decimal
    leverage: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    by_link: dict[str, Order] = field(default_factory=dict)
    executions: list[dict[str, Any]] = field(default_factory=list)
    closed_pnl: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    uid: int = 0
    hedge: bool = False  # Bybit "both sides" position mode: orders need positionIdx 1 or 2
    key: KeyPermissions = field(default_factory=KeyPermissions)

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position(symbol))

    def lev(self, inst: Instrument) -> Decimal:
        return self.leverage.get(inst.symbol, min(DEFAULT_LEVERAGE, inst.max_leverage))


def param_decimal(
    params: Mapping[str, Any], key: str, default: Decimal | None = None
) -> Decimal | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise BybitError(10001, f"params error: {key} invalid") from None
    if not value.is_finite():
        raise BybitError(10001, f"params error: {key} invalid")
    return value


def param_flag(params: Mapping[str, Any], key: str) -> bool:
    raw = params.get(key)
    return raw is True or (isinstance(raw, str) and raw.lower() == "true")


def param_text(params: Mapping[str, Any], key: str) -> str:
    raw = params.get(key)
    return "" if raw is None else str(raw)


def fmt_num(value: Decimal) -> str:
    text = format(value.quantize(Decimal("1e-10")).normalize(), "f")
    return "0" if text in ("-0", "") else text


def check_tpsl(side: str, base: Decimal, tp: Decimal, sl: Decimal) -> None:
    """Bybit's TP/SL sanity rule relative to the base (last or order) price."""
    long = side == "Buy"
    if tp and (tp <= base if long else tp >= base):
        word = "higher" if long else "lower"
        raise BybitError(
            10001,
            f"TakeProfit:{tp} set for {side} position should be {word} than "
            f"base_price:{base}??LastPrice",
        )
    if sl and (sl >= base if long else sl <= base):
        word = "lower" if long else "higher"
        raise BybitError(
            10001,
            f"StopLoss:{sl} set for {side} position should be {word} than "
            f"base_price:{base}??LastPrice",
        )


def execution_row(
    inst: Instrument,
    ticker: Ticker,
    order: Order,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
    rate: Decimal,
    maker: bool,
    closed: Decimal,
    realised: Decimal = Decimal(0),
) -> dict[str, Any]:
    """One ``/v5/execution/list`` entry (execId and seq are added by the engine);
    `execPnl` is the closed part's price move, before fees, as Bybit reports it."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderLinkId": order.link_id,
        "side": order.side,
        "orderPrice": inst.price_str(order.price),
        "orderQty": inst.qty_str(order.qty),
        "leavesQty": inst.qty_str(order.leaves),
        "createType": order.create_type,
        "orderType": order.order_type,
        "stopOrderType": order.stop_order_type,
        "execFee": fmt_num(fee),
        "execPrice": inst.price_str(price),
        "execQty": inst.qty_str(qty),
        "execType": "Trade",
        "execValue": fmt_num(qty * price),
        "execTime": str(order.updated),
        "feeCurrency": "USDT",
        "isMaker": maker,
        "feeRate": fmt_num(rate),
        "tradeIv": "",
        "markIv": "",
        "markPrice": inst.price_str(ticker.mark),
        "indexPrice": inst.price_str(ticker.index),
        "underlyingPrice": "",
        "blockTradeId": "",
        "closedSize": inst.qty_str(closed),
        "execPnl": fmt_num(realised),
        "extraFees": "",
    }


def closed_pnl_row(
    inst: Instrument,
    order: Order,
    closed: Decimal,
    entry: Decimal,
    price: Decimal,
    open_fee: Decimal,
    close_fee: Decimal,
    realised: Decimal,
    leverage: Decimal,
) -> dict[str, Any]:
    """One ``/v5/position/closed-pnl`` entry: `closedPnl` is net of both legs' fees and
    `side` is the closing order's, as Bybit has them."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "side": order.side,
        "qty": inst.qty_str(order.qty),
        "orderPrice": inst.price_str(order.price),
        "orderType": order.order_type,
        "execType": "Trade",
        "closedSize": inst.qty_str(closed),
        "cumEntryValue": fmt_num(closed * entry),
        "avgEntryPrice": fmt_num(entry),
        "cumExitValue": fmt_num(closed * price),
        "avgExitPrice": fmt_num(price),
        "closedPnl": fmt_num(realised - open_fee - close_fee),
        "openFee": fmt_num(open_fee),
        "closeFee": fmt_num(close_fee),
        "fillCount": "1",
        "leverage": fmt_num(leverage),
        "createdTime": str(order.updated),
        "updatedTime": str(order.updated),
    }
