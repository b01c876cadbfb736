"""Binance USDⓈ-M private `/fapi/*` endpoints over the shared matching engine.

Each handler turns Binance parameters into the engine's (Bybit-shaped) ones and the engine's
state into Binance's JSON. ``ROUTES`` maps ``(method, path)`` to ``(is_private, handler)``.
The traps that matter to a client are modelled: a client order id is unique among *open*
orders only, so reusing one after a fill places a second order; unread parameters are
refused (-1104); a hedge-mode account refuses an order without ``positionSide`` (-4061);
position risk v3 carries no leverage; order answers carry no fee.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import binance_views as public
from .binance_views import (
    ALGO_PARAMS,
    ORDER_PARAMS,
    BinanceError,
    Params,
    acct_of,
    find,
    inst_of,
    only,
    order_json,
    order_no,
    position_json,
)
from .engine import MMR, TAKER_FEE
from .models import Account, fmt_num, now_ms

Handler = Callable[[Any, Account | None, Params], Any]
WEEK_MS = 7 * 86_400_000


# ---- account -----------------------------------------------------------------
def account_v3(server: Any, account: Account | None, _p: Params) -> Any:
    acct = acct_of(account)
    t = server.engine.totals(acct)
    im = t["pos_im"] + t["order_im"]
    asset = {
        "asset": "USDT",
        "walletBalance": fmt_num(acct.wallet),
        "unrealizedProfit": fmt_num(t["upnl"]),
        "marginBalance": fmt_num(t["equity"]),
        "maintMargin": "0",
        "initialMargin": fmt_num(im),
        "positionInitialMargin": fmt_num(t["pos_im"]),
        "openOrderInitialMargin": fmt_num(t["order_im"]),
        "crossWalletBalance": fmt_num(acct.wallet),
        "crossUnPnl": fmt_num(t["upnl"]),
        "availableBalance": fmt_num(t["available"]),
        "maxWithdrawAmount": fmt_num(t["available"]),
        "updateTime": now_ms(),
    }
    return {
        "totalInitialMargin": fmt_num(im),
        "totalMaintMargin": "0",
        "totalWalletBalance": fmt_num(acct.wallet),
        "totalUnrealizedProfit": fmt_num(t["upnl"]),
        "totalMarginBalance": fmt_num(t["equity"]),
        "totalPositionInitialMargin": fmt_num(t["pos_im"]),
        "totalOpenOrderInitialMargin": fmt_num(t["order_im"]),
        "totalCrossWalletBalance": fmt_num(acct.wallet),
        "totalCrossUnPnl": fmt_num(t["upnl"]),
        "availableBalance": fmt_num(t["available"]),
        "maxWithdrawAmount": fmt_num(t["available"]),
        "assets": [asset],
        "positions": [],
    }


def position_risk_v3(server: Any, account: Account | None, params: Params) -> Any:
    acct = acct_of(account)
    symbols = [inst_of(server, params).symbol] if params.get("symbol") else list(acct.positions)
    return [position_json(server, acct, s) for s in symbols if acct.position(s).size]


def position_side_dual(server: Any, account: Account | None, _p: Params) -> Any:
    return {"dualSidePosition": acct_of(account).api_key in server.hedge_mode}


def api_restrictions(_server: Any, account: Account | None, _p: Params) -> Any:
    """`GET /sapi/v1/account/apiRestrictions`: the key's permissions (`Account.key`)."""
    key = acct_of(account).key
    return {
        "ipRestrict": "*" not in key.ips and bool(key.ips),
        "createTime": 1_700_000_000_000,
        "enableReading": True,
        "enableFutures": key.trade and not key.read_only,
        "enableWithdrawals": key.withdraw,
        "enableSpotAndMarginTrading": False,
        "enableInternalTransfer": False,
        "permitsUniversalTransfer": False,
        "enableMargin": False,
        "enableVanillaOptions": False,
        "enablePortfolioMarginTrading": False,
    }


def set_position_side_dual(server: Any, account: Account | None, params: Params) -> Any:
    acct, hedge = acct_of(account), params.get("dualSidePosition") == "true"
    if hedge == (acct.api_key in server.hedge_mode):
        raise BinanceError(400, -4059, "No need to change position side.")
    if any(p.size for p in acct.positions.values()):
        raise BinanceError(400, -4068, "Position side cannot be changed if there exists position.")
    (server.hedge_mode.add if hedge else server.hedge_mode.discard)(acct.api_key)
    return {"code": 200, "msg": "success"}


def leverage(server: Any, account: Account | None, params: Params) -> Any:
    inst, wanted = inst_of(server, params), params.get("leverage", "")
    if not wanted.isdigit() or not 1 <= int(wanted) <= inst.max_leverage:
        raise BinanceError(400, -4028, f"Leverage {wanted} is not valid")
    acct_of(account).leverage[inst.symbol] = Decimal(wanted)  # the same value is no error here
    return {"leverage": int(wanted), "maxNotionalValue": "1000000", "symbol": inst.symbol}


# ---- orders ------------------------------------------------------------------
def new_order(server: Any, account: Account | None, params: Params) -> Any:
    acct = acct_of(account)
    only(params, ORDER_PARAMS)
    inst = inst_of(server, params)
    hedge = acct.api_key in server.hedge_mode
    if (params.get("positionSide", "BOTH") == "BOTH") == hedge:
        raise BinanceError(400, -4061, "Order's position side does not match user's setting.")
    cid = params.get("newClientOrderId", "")
    if len(cid) > 36:
        raise BinanceError(400, -4015, "Client order id is not valid.")
    previous = acct.by_link.get(cid) if cid else None
    if previous is not None:
        if previous.is_open:
            raise BinanceError(400, -4116, "ClientOrderId is duplicated.")
        del acct.by_link[cid]  # unique among open orders only: a filled one's id is free again
    kind = params.get("type", "")
    if kind not in ("MARKET", "LIMIT"):
        raise BinanceError(400, -1116, "Invalid orderType.")
    tif = params.get("timeInForce") or ("GTC" if kind == "LIMIT" else "")
    if kind == "LIMIT" and tif not in ("GTC", "IOC", "FOK", "GTX"):
        raise BinanceError(400, -1115, "Invalid timeInForce.")
    if tif == "GTX" and _takes(server, inst.symbol, params):
        raise BinanceError(
            400,
            -5022,
            "Due to the order could not be executed as maker, the Post Only order will be "
            "rejected. The order will not be recorded in the order history",
        )
    order = server.engine.create_order(
        acct,
        {
            "category": "linear",
            "symbol": inst.symbol,
            "side": params.get("side", "").capitalize(),
            "orderType": kind.capitalize(),
            "qty": params.get("quantity", ""),
            "price": params.get("price", ""),
            "timeInForce": {"GTX": "PostOnly", "": "IOC"}.get(tif, tif),
            "orderLinkId": cid,
            "reduceOnly": params.get("reduceOnly", "false"),
        },
    )
    return order_json(server, order)


def _takes(server: Any, symbol: str, params: Params) -> bool:
    """Whether a limit order at its price would trade at once against the last price."""
    price, last = Decimal(params.get("price") or "0"), server.market.last(symbol)
    return price >= last if params.get("side") == "BUY" else price <= last


def algo_order(server: Any, account: Account | None, params: Params) -> Any:
    """A whole-position TAKE_PROFIT_MARKET / STOP_MARKET (``closePosition=true``).

    As on Binance it is an order of its own: it outlives the position it was placed for, and
    its sibling is not cancelled when one of them fires (``BinanceServer.set_price``)."""
    acct = acct_of(account)
    only(params, ALGO_PARAMS)
    inst, kind = inst_of(server, params), params.get("type", "")
    if params.get("closePosition") != "true" or kind not in ("TAKE_PROFIT_MARKET", "STOP_MARKET"):
        raise BinanceError(400, -4136, "Target strategy invalid for orderType and closePosition.")
    side, trigger = params.get("side", ""), Decimal(params.get("triggerPrice") or "0")
    last = server.market.last(inst.symbol)
    rising = (kind == "TAKE_PROFIT_MARKET") == (side == "SELL")
    if trigger <= 0 or (trigger <= last if rising else trigger >= last):
        raise BinanceError(400, -2021, "Order would immediately trigger.")
    cid = params.get("clientAlgoId", "")
    if any(a["clientAlgoId"] == cid and a["algoStatus"] == "NEW" for a in server.algos(acct)):
        raise BinanceError(400, -4116, "ClientOrderId is duplicated.")
    stamp = now_ms()
    algo = {
        "algoId": stamp * 100 + len(server.algos(acct)),
        "clientAlgoId": cid,
        "algoType": "CONDITIONAL",
        "orderType": kind,
        "symbol": inst.symbol,
        "side": side,
        "positionSide": "BOTH",
        "timeInForce": "GTC",
        "quantity": "0",
        "algoStatus": "NEW",
        "triggerPrice": inst.price_str(trigger),
        "price": "0",
        "closePosition": True,
        "reduceOnly": True,
        "workingType": "CONTRACT_PRICE",
        "createTime": stamp,
        "updateTime": stamp,
    }
    server.algos(acct).append(algo)
    return algo


def open_algo_orders(server: Any, account: Account | None, params: Params) -> Any:
    symbol = inst_of(server, params).symbol if params.get("symbol") else ""
    algos = server.algos(acct_of(account))
    return [a for a in algos if a["algoStatus"] == "NEW" and (not symbol or a["symbol"] == symbol)]


def cancel_algo_orders(server: Any, account: Account | None, params: Params) -> Any:
    symbol = inst_of(server, params).symbol
    for algo in server.algos(acct_of(account)):
        if algo["symbol"] == symbol and algo["algoStatus"] == "NEW":
            algo["algoStatus"], algo["updateTime"] = "CANCELED", now_ms()
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def query_order(server: Any, account: Account | None, params: Params) -> Any:
    inst_of(server, params)
    order = find(acct_of(account), params)
    if order is None or order.symbol != params["symbol"]:
        raise BinanceError(400, -2013, "Order does not exist.")
    return order_json(server, order)


def cancel_order(server: Any, account: Account | None, params: Params) -> Any:
    acct, inst = acct_of(account), inst_of(server, params)
    order = find(acct, params)
    if order is None or not order.is_open or order.symbol != inst.symbol:
        raise BinanceError(400, -2011, "Unknown order sent.")
    server.engine.cancel_order(
        acct, {"category": "linear", "symbol": inst.symbol, "orderId": order.order_id}
    )
    return order_json(server, order)


def open_orders(server: Any, account: Account | None, params: Params) -> Any:
    symbol = inst_of(server, params).symbol if params.get("symbol") else ""
    orders = [
        o
        for o in acct_of(account).orders.values()
        if o.is_open and not o.stop_order_type and (not symbol or o.symbol == symbol)
    ]
    return [order_json(server, o) for o in orders]


def all_orders(server: Any, account: Account | None, params: Params) -> Any:
    """`GET /fapi/v1/allOrders`: one symbol's orders, ascending by id, at most `limit`
    (500 by default, 1,000 at most): from `orderId` on when it is given, else the newest
    within `startTime`..`endTime` (the last 7 days by default)."""
    acct, inst = acct_of(account), inst_of(server, params)
    limit = min(int(params.get("limit") or 500), 1000)
    orders = sorted((o for o in acct.orders.values() if o.symbol == inst.symbol), key=order_no)
    if params.get("orderId"):
        first = int(params["orderId"])
        chosen = [o for o in orders if order_no(o) >= first][:limit]
    else:
        end = int(params.get("endTime") or now_ms())
        start = int(params.get("startTime") or end - WEEK_MS)
        chosen = [o for o in orders if start <= o.created <= end][-limit:]
    return [order_json(server, o) for o in chosen]


def user_trades(server: Any, account: Account | None, params: Params) -> Any:
    """The account's trades on one symbol, oldest first: from `fromId`, else the newest
    `limit` from `startTime` on. Each trade's id is its place in the account's history."""
    acct, inst = acct_of(account), inst_of(server, params)
    wanted = int(params["orderId"]) if params.get("orderId") else None
    start = int(params.get("startTime") or 0)
    first = int(params.get("fromId") or 0)
    by_id = {o.order_id: o for o in acct.orders.values()}
    rows = []
    for n, e in enumerate(acct.executions):
        order = by_id[e["orderId"]]
        if e["symbol"] != inst.symbol or (wanted is not None and order_no(order) != wanted):
            continue
        if int(e["execTime"]) < start or n + 1 < first:
            continue
        rows.append(
            {
                "symbol": e["symbol"],
                "id": n + 1,
                "orderId": order_no(order),
                "side": e["side"].upper(),
                "price": e["execPrice"],
                "qty": e["execQty"],
                "realizedPnl": e.get("execPnl", "0"),
                "quoteQty": e["execValue"],
                "commission": e["execFee"],
                "commissionAsset": "USDT",
                "time": int(e["execTime"]),
                "positionSide": "BOTH",
                "buyer": e["side"] == "Buy",
                "maker": e["isMaker"],
            }
        )
    limit = min(int(params.get("limit") or 500), 1000)
    return rows[:limit] if first else rows[-limit:]


def income(server: Any, account: Account | None, params: Params) -> Any:
    """Income history, oldest first: a COMMISSION row per trade and a REALIZED_PNL row per
    closing trade, from `startTime`, at most `limit` (1,000)."""
    acct = acct_of(account)
    start = int(params.get("startTime") or 0)
    kind = params.get("incomeType") or ""
    rows = []
    for n, e in enumerate(acct.executions):
        if int(e["execTime"]) < start or (params.get("symbol") and e["symbol"] != params["symbol"]):
            continue
        entries = [("COMMISSION", "-" + e["execFee"])]
        if Decimal(e.get("closedSize") or 0) > 0:
            entries.append(("REALIZED_PNL", e.get("execPnl", "0")))
        for part, (income_type, amount) in enumerate(entries):
            if kind and income_type != kind:
                continue
            rows.append(
                {
                    "symbol": e["symbol"], "incomeType": income_type, "income": amount,
                    "asset": "USDT", "info": "", "time": int(e["execTime"]),
                    "tranId": (n + 1) * 2 + part, "tradeId": str(n + 1),
                }
            )  # fmt: skip
    return rows[: min(int(params.get("limit") or 100), 1000)]


def leverage_bracket(server: Any, account: Account | None, params: Params) -> Any:
    insts = [inst_of(server, params)] if params.get("symbol") else server.market.listed()
    return [
        {
            "symbol": i.symbol,
            "brackets": [
                {
                    "bracket": 1,
                    "initialLeverage": int(i.max_leverage),
                    "notionalCap": 1_000_000,
                    "notionalFloor": 0,
                    "maintMarginRatio": float(MMR),
                    "cum": 0.0,
                },
            ],
        }
        for i in insts
    ]


def commission_rate(server: Any, account: Account | None, params: Params) -> Any:
    inst = inst_of(server, params)
    rate = fmt_num(TAKER_FEE)
    return {"symbol": inst.symbol, "makerCommissionRate": rate, "takerCommissionRate": rate}


ROUTES: dict[tuple[str, str], tuple[bool, Handler]] = {
    ("GET", "/fapi/v1/time"): (False, public.server_time),
    ("GET", "/fapi/v1/exchangeInfo"): (False, public.exchange_info),
    ("GET", "/fapi/v1/ticker/24hr"): (False, public.ticker_24hr),
    ("GET", "/fapi/v1/klines"): (False, public.klines),
    ("GET", "/fapi/v3/account"): (True, account_v3),
    ("GET", "/fapi/v3/positionRisk"): (True, position_risk_v3),
    ("GET", "/fapi/v1/positionSide/dual"): (True, position_side_dual),
    ("GET", "/sapi/v1/account/apiRestrictions"): (True, api_restrictions),
    ("POST", "/fapi/v1/positionSide/dual"): (True, set_position_side_dual),
    ("POST", "/fapi/v1/leverage"): (True, leverage),
    ("POST", "/fapi/v1/order"): (True, new_order),
    ("POST", "/fapi/v1/algoOrder"): (True, algo_order),
    ("GET", "/fapi/v1/openAlgoOrders"): (True, open_algo_orders),
    ("DELETE", "/fapi/v1/algoOpenOrders"): (True, cancel_algo_orders),
    ("GET", "/fapi/v1/order"): (True, query_order),
    ("DELETE", "/fapi/v1/order"): (True, cancel_order),
    ("GET", "/fapi/v1/openOrders"): (True, open_orders),
    ("GET", "/fapi/v1/allOrders"): (True, all_orders),
    ("GET", "/fapi/v1/userTrades"): (True, user_trades),
    ("GET", "/fapi/v1/income"): (True, income),
    ("GET", "/fapi/v1/leverageBracket"): (True, leverage_bracket),
    ("GET", "/fapi/v1/commissionRate"): (True, commission_rate),
}
