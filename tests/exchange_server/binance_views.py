"""Binance USDⓈ-M wire shapes over the shared matching engine: the error type and its
mapping from the engine's refusals, parameter checks, order and position JSON, and the
public market endpoints. The private ones are in ``binance_handlers``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from .engine import MMR
from .market import Instrument
from .models import Account, BybitError, Order, fmt_num, now_ms

Params = Mapping[str, str]
Handler = Callable[[Any, Account | None, Params], Any]
SIGNING = {"timestamp", "recvWindow", "signature"}
ORDER_PARAMS = {
    "symbol", "side", "type", "quantity", "price", "timeInForce", "newClientOrderId",
    "reduceOnly", "positionSide", "newOrderRespType", "stopPrice", "closePosition",
    "workingType", "priceProtect", "selfTradePreventionMode", "goodTillDate",
}  # fmt: skip
ALGO_PARAMS = ORDER_PARAMS | {"algoType", "triggerPrice", "clientAlgoId"}
_STATUS = {
    "New": "NEW",
    "PartiallyFilled": "PARTIALLY_FILLED",
    "Filled": "FILLED",
    "Cancelled": "CANCELED",
    "PartiallyFilledCanceled": "CANCELED",
    "Deactivated": "CANCELED",
    "Untriggered": "NEW",
}
_INTERVALS = {
    "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120",
    "4h": "240", "6h": "360", "12h": "720", "1d": "D", "1w": "W", "1M": "M",
}  # fmt: skip


class BinanceError(Exception):
    """A refusal, rendered as ``{"code": code, "msg": msg}`` with HTTP ``status``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.status, self.code, self.msg = status, code, msg

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def binance_error(err: BybitError) -> BinanceError:
    """The engine's refusal in Binance's words."""
    text = err.msg.lower()
    if err.code == 110007:
        return BinanceError(400, -2019, "Margin is insufficient.")
    if err.code == 110017:
        return BinanceError(400, -2022, "ReduceOnly Order is rejected.")
    if err.code == 110001:
        return BinanceError(400, -2011, "Unknown order sent.")
    if err.code == 110094:
        msg = "Order's notional must be no smaller than 5 (unless you choose reduce only)."
        return BinanceError(400, -4164, msg)
    if "takeprofit" in text or "stoploss" in text:
        return BinanceError(400, -2021, "Order would immediately trigger.")
    if "symbol" in text:
        return BinanceError(400, -1121, "Invalid symbol.")
    if "contracts exceeds" in text or "qty" in text:
        return BinanceError(400, -4003, "Quantity less than or equal to zero.")
    return BinanceError(400, -1102, f"A mandatory parameter was malformed: {err.msg}")


def order_no(order: Order) -> int:
    """Binance order ids are integers: a stable one derived from the engine's uuid (which
    the Binance server's engine makes rise with time, as Binance's ids do)."""
    return int(order.order_id.replace("-", "")[:13], 16)


def acct_of(account: Account | None) -> Account:
    assert account is not None
    return account


def only(params: Params, allowed: set[str]) -> None:
    """Binance refuses a parameter it does not read, rather than ignoring it."""
    sent = [k for k in params if k not in SIGNING]
    read = [k for k in sent if k in allowed]
    if len(read) != len(sent):
        counts = f"read '{len(read)}' parameter(s) but was sent '{len(sent)}'"
        raise BinanceError(400, -1104, f"Not all sent parameters were read; {counts}.")


def inst_of(server: Any, params: Params) -> Instrument:
    symbol = params.get("symbol", "")
    if not symbol:
        raise BinanceError(400, -1102, "Mandatory parameter 'symbol' was not sent.")
    inst: Instrument | None = server.market.tradable(symbol)
    if inst is None:
        raise BinanceError(400, -1121, "Invalid symbol.")
    return inst


def find(acct: Account, params: Params) -> Order | None:
    if params.get("orderId"):
        wanted = int(params["orderId"])
        return next((o for o in acct.orders.values() if order_no(o) == wanted), None)
    cid = params.get("origClientOrderId", "")
    if not cid:
        raise BinanceError(400, -1102, "Either orderId or origClientOrderId must be sent.")
    return acct.by_link.get(cid)


# ---- JSON shapes -------------------------------------------------------------
def order_json(server: Any, order: Order) -> dict[str, Any]:
    inst = server.market.instruments[order.symbol]
    avg = order.cum_value / order.cum_qty if order.cum_qty else Decimal(0)
    kind = "LIMIT" if order.order_type == "Limit" else "MARKET"
    kind = server.order_types.get(order.order_id, kind)
    return {
        "orderId": order_no(order),
        "symbol": order.symbol,
        "status": _STATUS.get(order.status, "EXPIRED"),
        "clientOrderId": order.link_id,
        "price": inst.price_str(order.price) if kind == "LIMIT" else "0",
        "avgPrice": fmt_num(avg),
        "origQty": inst.qty_str(order.qty),
        "executedQty": inst.qty_str(order.cum_qty),
        "cumQty": inst.qty_str(order.cum_qty),
        "cumQuote": fmt_num(order.cum_value),
        "timeInForce": "GTC",
        "type": kind,
        "origType": kind,
        "reduceOnly": order.reduce_only,
        "closePosition": False,
        "side": order.side.upper(),
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "time": order.created,
        "updateTime": order.updated,
    }


def position_json(server: Any, acct: Account, symbol: str) -> dict[str, Any]:
    engine, inst = server.engine, server.market.instruments[symbol]
    pos, mark = acct.position(symbol), server.market.tickers[symbol].mark
    size, lev = abs(pos.size), acct.lev(inst)
    sign = Decimal(1) if pos.size > 0 else Decimal(-1)
    liq = max(pos.avg * (1 - sign / lev + sign * MMR), inst.tick_size) if size else Decimal(0)
    im = engine.position_im(acct, pos)
    return {  # v3: no leverage and no margin type, unlike v2
        "symbol": symbol,
        "positionSide": "BOTH",
        "positionAmt": inst.qty_str(pos.size) if pos.size >= 0 else "-" + inst.qty_str(size),
        "entryPrice": fmt_num(pos.avg),
        "breakEvenPrice": fmt_num(pos.avg),
        "markPrice": inst.price_str(mark),
        "unRealizedProfit": fmt_num(engine.upnl(acct, pos)),
        "liquidationPrice": inst.price_str(liq) if size else "0",
        "isolatedMargin": "0",
        "notional": fmt_num(pos.size * mark),
        "marginAsset": "USDT",
        "isolatedWallet": "0",
        "initialMargin": fmt_num(im),
        "maintMargin": fmt_num(size * mark * MMR),
        "positionInitialMargin": fmt_num(im),
        "openOrderInitialMargin": "0",
        "adl": 2 if size else 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": pos.updated,
    }


# ---- public ------------------------------------------------------------------
def server_time(server: Any, _a: Account | None, _p: Params) -> Any:
    return {"serverTime": now_ms()}


def exchange_info(server: Any, _a: Account | None, _p: Params) -> Any:
    def entry(inst: Instrument) -> dict[str, Any]:
        tick, step = inst.tick_size, inst.qty_step
        return {
            "symbol": inst.symbol,
            "pair": inst.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": inst.launch_time,
            "status": "TRADING",
            "baseAsset": inst.base,
            "quoteAsset": "USDT",
            "marginAsset": "USDT",
            "pricePrecision": inst.price_scale,
            "quantityPrecision": max(0, -step.normalize().as_tuple().exponent),  # type: ignore[operator]
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "triggerProtect": "0.0500",
            "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": fmt_num(tick),
                 "minPrice": inst.price_str(tick), "maxPrice": inst.price_str(tick * 10**9)},
                {"filterType": "LOT_SIZE", "stepSize": fmt_num(step),
                 "minQty": inst.qty_str(inst.min_qty), "maxQty": inst.qty_str(inst.max_qty)},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": fmt_num(step),
                 "minQty": inst.qty_str(inst.min_qty), "maxQty": inst.qty_str(inst.max_mkt_qty)},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": fmt_num(inst.min_notional)},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                           "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }  # fmt: skip

    symbols = [entry(i) for i in server.market.listed()]
    return {"timezone": "UTC", "serverTime": now_ms(), "assets": [], "symbols": symbols}


def ticker_24hr(server: Any, _a: Account | None, params: Params) -> Any:
    def row(inst: Instrument) -> dict[str, Any]:
        t = server.market.tickers[inst.symbol]
        change = t.last - t.prev_24h
        return {
            "symbol": inst.symbol,
            "priceChange": inst.price_str(change) if change >= 0 else fmt_num(change),
            "priceChangePercent": fmt_num((change / t.prev_24h * 100).quantize(Decimal("0.001")))
            if t.prev_24h
            else "0",
            "weightedAvgPrice": inst.price_str(t.last),
            "lastPrice": inst.price_str(t.last),
            "lastQty": inst.qty_str(inst.min_qty),
            "openPrice": inst.price_str(t.prev_24h),
            "highPrice": inst.price_str(t.high_24h),
            "lowPrice": inst.price_str(t.low_24h),
            "volume": inst.qty_str(t.volume_24h),
            "quoteVolume": fmt_num(t.volume_24h * t.last),
            "openTime": now_ms() - 86_400_000,
            "closeTime": now_ms(),
            "firstId": 1,
            "lastId": 2,
            "count": 2,
        }

    if params.get("symbol"):
        return row(inst_of(server, params))
    return [row(i) for i in server.market.listed()]


def klines(server: Any, _a: Account | None, params: Params) -> Any:
    inst = inst_of(server, params)
    interval = _INTERVALS.get(params.get("interval", ""))
    if interval is None:
        raise BinanceError(400, -1120, "Invalid interval.")
    limit = int(params.get("limit") or 500)
    start = int(params["startTime"]) if params.get("startTime") else None
    end = int(params["endTime"]) if params.get("endTime") else None
    rows = server.market.klines(inst.symbol, interval, start, end, min(limit, 1500))
    return [[int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[0]) + 59_999, r[6], 1, "0", "0", "0"]
            for r in reversed(rows)]  # fmt: skip
