"""OKX v5 wire shapes over the shared matching engine: errors, contract sizes, order and
position JSON, and the public market endpoints. Private endpoints: ``okx_handlers``.

OKX sizes swaps in contracts: ``sz`` × ``ctVal`` is the base quantity the engine trades.
Here ``ctVal`` is ten quantity steps and the lot 0.1 contract (BTC: 0.01 BTC a contract, as
on OKX), so a client that sends base quantities as ``sz`` trades 100 times too much or
too little, as it would on the real venue.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .market import Instrument
from .models import Account, BybitError, Order, fmt_num, now_ms

Params = Mapping[str, Any]
LOT = Decimal("0.1")
_STATE = {
    "New": "live",
    "PartiallyFilled": "partially_filled",
    "Filled": "filled",
    "Cancelled": "canceled",
    "PartiallyFilledCanceled": "canceled",
    "Deactivated": "canceled",
}
_BARS = {
    "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1H": "60", "2H": "120",
    "4H": "240", "6H": "360", "12H": "720", "1D": "D", "1W": "W", "1M": "M",
}  # fmt: skip


class OkxError(Exception):
    """A refusal. ``in_data``: an order-level one, told in ``data[].sCode`` under code 1."""

    def __init__(self, code: str, msg: str, status: int = 200, in_data: bool = False) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg, self.status, self.in_data = code, msg, status, in_data
        self.rows: list[dict[str, Any]] | None = None  # a batch's rows, when it failed whole

    def row(self) -> dict[str, Any]:
        return {"ordId": "", "clOrdId": "", "tag": "", "sCode": self.code, "sMsg": self.msg}

    def body(self) -> dict[str, Any]:
        if self.rows is not None:
            return {"code": "1", "msg": "All operations failed", "data": self.rows}
        if self.in_data:
            return {"code": "1", "msg": "All operations failed", "data": [self.row()]}
        return {"code": self.code, "msg": self.msg, "data": []}


def okx_error(err: BybitError) -> OkxError:
    """The engine's refusal of an order in OKX's words."""
    text = err.msg.lower()
    if err.code == 110007:
        return OkxError("51008", "Order failed. Insufficient USDT margin in account", in_data=True)
    if err.code == 110017:
        msg = "You don't have any positions in this direction to reduce or close."
        return OkxError("51169", msg, in_data=True)
    if err.code == 110001:
        msg = "Order cancellation failed as the order has been filled, canceled or does not exist"
        return OkxError("51400", msg, in_data=True)
    if err.code == 110094 or "minimum limit" in text:
        msg = "Order amount should be greater than the min available amount."
        return OkxError("51020", msg, in_data=True)
    if "takeprofit" in text or "stoploss" in text:
        return OkxError("51052", "TP/SL trigger price is on the wrong side.", in_data=True)
    if "qty" in text or "contracts exceeds" in text:
        msg = "Order count should be the integer multiples of the lot size"
        return OkxError("51121", msg, in_data=True)
    return OkxError("51000", f"Parameter error: {err.msg}", in_data=True)


def inst_id(symbol: str) -> str:
    return f"{symbol.removesuffix('USDT')}-USDT-SWAP"


def ct_val(inst: Instrument) -> Decimal:
    return (inst.qty_step * 10).normalize()


def contracts(inst: Instrument, qty: Decimal) -> str:
    return fmt_num(qty / ct_val(inst))


def acct_of(account: Account | None) -> Account:
    assert account is not None
    return account


def trade_target(
    server: Any, account: Account | None, params: Params
) -> tuple[Account, Instrument]:
    """The account and instrument an order or algo names, as OKX checks them first: a
    swap account (not the spot-only simple mode) and a margin mode."""
    acct, inst = acct_of(account), inst_of(server, params)
    assert inst is not None
    if acct.api_key in server.simple_mode:
        raise OkxError("51010", "Operation not supported under the current account mode")
    if params.get("tdMode") not in ("cross", "isolated"):
        raise OkxError("51000", "Parameter tdMode error")
    return acct, inst


def inst_of(server: Any, params: Params, *, required: bool = True) -> Instrument | None:
    given = str(params.get("instId") or "")
    if not given:
        if required:
            raise OkxError("50014", "Parameter instId can not be empty")
        return None
    symbol = given.removesuffix("-USDT-SWAP").replace("-", "") + "USDT"
    inst: Instrument | None = server.market.tradable(symbol)
    if not given.endswith("-USDT-SWAP") or inst is None:
        raise OkxError("51001", "Instrument ID does not exist")
    return inst


def order_no(order: Order) -> str:
    return str(int(order.order_id.replace("-", "")[:15], 16))


def order_json(server: Any, acct: Account, order: Order) -> dict[str, Any]:
    inst = server.market.instruments[order.symbol]
    avg = order.cum_value / order.cum_qty if order.cum_qty else Decimal(0)
    limit = order.order_type == "Limit"
    tp, sl = server.algos.attached(order)
    return {
        "instType": "SWAP",
        "instId": inst_id(order.symbol),
        "ordId": order_no(order),
        "clOrdId": order.link_id,
        "tag": "",
        "px": inst.price_str(order.price) if limit else "",
        "sz": contracts(inst, order.qty),
        "ordType": "limit" if limit else "market",
        "side": order.side.lower(),
        "posSide": server.pos_side(acct, order),
        "tdMode": "cross",
        "accFillSz": contracts(inst, order.cum_qty),
        "fillPx": inst.price_str(avg) if order.cum_qty else "",
        "avgPx": inst.price_str(avg) if order.cum_qty else "",
        "state": _STATE.get(order.status, "live"),
        "lever": fmt_num(acct.lev(inst)),
        "tpTriggerPx": inst.price_str(tp) if tp else "",
        "tpOrdPx": "-1" if tp else "",
        "slTriggerPx": inst.price_str(sl) if sl else "",
        "slOrdPx": "-1" if sl else "",
        "attachAlgoOrds": _attached_json(inst, tp, sl),
        "feeCcy": "USDT",
        "fee": fmt_num(-order.cum_fee),
        "rebateCcy": "USDT",
        "rebate": "0",
        "pnl": "0",
        "category": "normal",
        "reduceOnly": "true" if order.reduce_only else "false",
        "cancelSource": "",
        "cTime": str(order.created),
        "uTime": str(order.updated),
    }


def _attached_json(inst: Instrument, tp: Decimal, sl: Decimal) -> list[dict[str, str]]:
    if not tp and not sl:
        return []
    legs = {}
    for leg, price in (("tp", tp), ("sl", sl)):
        legs[f"{leg}TriggerPx"] = inst.price_str(price) if price else ""
        legs[f"{leg}OrdPx"] = "-1" if price else ""
    return [legs]


# ---- public ------------------------------------------------------------------
def public_time(server: Any, _a: Account | None, _p: Params) -> Any:
    return [{"ts": str(now_ms())}]


def instruments(server: Any, _a: Account | None, params: Params) -> Any:
    if params.get("instType") != "SWAP":
        return []

    def row(inst: Instrument) -> dict[str, Any]:
        size = ct_val(inst)
        return {
            "instType": "SWAP",
            "instId": inst_id(inst.symbol),
            "uly": f"{inst.base}-USDT",
            "instFamily": f"{inst.base}-USDT",
            "baseCcy": "",
            "quoteCcy": "",
            "settleCcy": "USDT",
            "ctVal": fmt_num(size),
            "ctMult": "1",
            "ctValCcy": inst.base,
            "ctType": "linear",
            "lotSz": fmt_num(LOT),
            "minSz": fmt_num(inst.min_qty / size),
            "maxLmtSz": fmt_num(inst.max_qty / size),
            "maxMktSz": fmt_num(inst.max_mkt_qty / size),
            "tickSz": fmt_num(inst.tick_size),
            "lever": fmt_num(inst.max_leverage),
            "listTime": str(inst.launch_time),
            "expTime": "",
            "state": "live",
            "optType": "",
            "stk": "",
            "alias": "",
        }

    return [row(i) for i in server.market.listed()]


def _ticker(server: Any, inst: Instrument) -> dict[str, Any]:
    t = server.market.tickers[inst.symbol]
    return {
        "instType": "SWAP",
        "instId": inst_id(inst.symbol),
        "last": inst.price_str(t.last),
        "lastSz": "1",
        "askPx": inst.price_str(t.last + inst.tick_size),
        "askSz": "10",
        "bidPx": inst.price_str(t.last - inst.tick_size),
        "bidSz": "10",
        "open24h": inst.price_str(t.prev_24h),
        "high24h": inst.price_str(t.high_24h),
        "low24h": inst.price_str(t.low_24h),
        "volCcy24h": inst.qty_str(t.volume_24h),
        "vol24h": contracts(inst, t.volume_24h),
        "sodUtc0": inst.price_str(t.prev_24h),
        "sodUtc8": inst.price_str(t.prev_24h),
        "ts": str(now_ms()),
    }


def tickers(server: Any, _a: Account | None, params: Params) -> Any:
    if params.get("instType") != "SWAP":
        return []
    return [_ticker(server, i) for i in server.market.listed()]


def ticker(server: Any, _a: Account | None, params: Params) -> Any:
    inst = inst_of(server, params)
    assert inst is not None
    return [_ticker(server, inst)]


def candles(server: Any, _a: Account | None, params: Params) -> Any:
    inst = inst_of(server, params)
    assert inst is not None
    bar = _BARS.get(str(params.get("bar") or "1m"))
    if bar is None:
        raise OkxError("51000", "Parameter bar error")
    limit = min(int(params.get("limit") or 100), 300)
    end = int(params["after"]) - 1 if params.get("after") else None
    start = int(params["before"]) + 1 if params.get("before") else None
    rows = server.market.klines(inst.symbol, bar, start, end, limit)
    return [[r[0], r[1], r[2], r[3], r[4], contracts(inst, Decimal(r[5])), r[5], r[6], "1"]
            for r in rows]  # fmt: skip
