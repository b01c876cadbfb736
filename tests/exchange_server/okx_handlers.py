"""OKX v5 private endpoints over the shared matching engine.

``ROUTES`` maps ``(method, path)`` to ``(is_private, handler)``. The traps a client meets
are modelled: ``clOrdId`` is letters and digits, at most 32 (51000 otherwise); an id in use
by a pending order is refused (51016) and a finished order's id is accepted again; a
``long_short`` account refuses an order without ``posSide`` and a ``net`` one refuses
``long``/``short``; sizes are contracts; fees are negative numbers. TP/SL are algo orders
(``okx_algos``), also those attached to an order.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import okx_views as public
from .engine import MMR
from .models import Account, BybitError, Order, fmt_num, now_ms
from .okx_algos import ROUTES as ALGO_ROUTES
from .okx_algos import attached_levels
from .okx_views import (
    OkxError,
    Params,
    acct_of,
    contracts,
    ct_val,
    inst_id,
    inst_of,
    okx_error,
    order_json,
    order_no,
    trade_target,
)

Handler = Callable[[Any, Account | None, Params], Any]


def balance(server: Any, account: Account | None, _p: Params) -> Any:
    acct = acct_of(account)
    t = server.engine.totals(acct)
    im, stamp = t["pos_im"] + t["order_im"], str(now_ms())
    usdt = {
        "ccy": "USDT",
        "eq": fmt_num(t["equity"]),
        "cashBal": fmt_num(acct.wallet),
        "availBal": fmt_num(t["available"]),
        "availEq": fmt_num(t["available"]),
        "frozenBal": fmt_num(im),
        "ordFrozen": fmt_num(t["order_im"]),
        "upl": fmt_num(t["upnl"]),
        "eqUsd": fmt_num(t["equity"]),
        "isoEq": "0",
        "uTime": stamp,
    }
    total = {"totalEq": fmt_num(t["equity"]), "adjEq": fmt_num(t["equity"])}
    return [{**total, "imr": fmt_num(im), "upl": fmt_num(t["upnl"]), "uTime": stamp,
             "details": [usdt]}]  # fmt: skip


def positions(server: Any, account: Account | None, params: Params) -> Any:
    acct, only = acct_of(account), inst_of(server, params, required=False)
    rows = []
    for pos in acct.positions.values():
        if not pos.size or (only is not None and pos.symbol != only.symbol):
            continue
        inst, mark = server.market.instruments[pos.symbol], server.market.tickers[pos.symbol].mark
        hedged = acct.api_key in server.long_short
        side = ("long" if pos.size > 0 else "short") if hedged else "net"
        size = contracts(inst, pos.size if not hedged else abs(pos.size))
        im, lev = server.engine.position_im(acct, pos), acct.lev(inst)
        sign = Decimal(1) if pos.size > 0 else Decimal(-1)
        liq = max(pos.avg * (1 - sign / lev + sign * MMR), inst.tick_size)
        rows.append(
            {
                "instType": "SWAP",
                "instId": inst_id(pos.symbol),
                "mgnMode": "cross",
                "posSide": side,
                "pos": size,
                "posCcy": "",
                "avgPx": fmt_num(pos.avg),
                "markPx": inst.price_str(mark),
                "upl": fmt_num(server.engine.upnl(acct, pos)),
                "lever": fmt_num(lev),
                "liqPx": inst.price_str(liq),
                "imr": fmt_num(im),
                "margin": "",
                "mmr": fmt_num(abs(pos.size) * mark * MMR),
                "notionalUsd": fmt_num(abs(pos.size) * mark),
                "ccy": "USDT",
                "cTime": str(pos.created),
                "uTime": str(pos.updated),
            }
        )
    return rows


def config(server: Any, account: Account | None, _p: Params) -> Any:
    acct = acct_of(account)
    mode = "long_short_mode" if acct.api_key in server.long_short else "net_mode"
    uid, level = str(acct.uid), "1" if acct.api_key in server.simple_mode else "2"
    key = acct.key
    perm = ",".join(
        ["read_only"] + ["trade"] * (key.trade and not key.read_only) + ["withdraw"] * key.withdraw
    )
    ip = "" if "*" in key.ips else ",".join(key.ips)
    return [{"uid": uid, "mainUid": uid, "acctLv": level, "posMode": mode, "autoLoan": False,
             "level": "Lv1", "label": "", "perm": perm, "ip": ip}]  # fmt: skip


def set_leverage(server: Any, account: Account | None, params: Params) -> Any:
    inst = inst_of(server, params)
    assert inst is not None
    if params.get("mgnMode") not in ("cross", "isolated"):
        raise OkxError("51000", "Parameter mgnMode error")
    lever = str(params.get("lever", ""))
    if not lever.isdigit() or int(lever) < 1:
        raise OkxError("51000", "Parameter lever error")
    if int(lever) > inst.max_leverage:
        raise OkxError("59102", "Leverage exceeds the maximum leverage. Please adjust the leverage")
    acct_of(account).leverage[inst.symbol] = Decimal(lever)
    return [{"lever": lever, "mgnMode": params["mgnMode"], "instId": params["instId"],
             "posSide": "net"}]  # fmt: skip


def place_order(server: Any, account: Account | None, params: Params) -> Any:
    acct, inst = trade_target(server, account, params)
    cid = str(params.get("clOrdId") or "")
    if cid and not (len(cid) <= 32 and cid.isascii() and cid.isalnum()):
        raise OkxError("51000", "Parameter clOrdId error")
    side = str(params.get("posSide") or "")
    wanted = ("long", "short") if acct.api_key in server.long_short else ("", "net")
    if side not in wanted:
        raise OkxError("51000", "Parameter posSide error")
    previous = acct.by_link.get(cid) if cid else None
    if previous is not None:
        if previous.is_open:
            raise OkxError("51016", "Duplicated clOrdId", in_data=True)
        del acct.by_link[cid]
    kind = params.get("ordType")
    if kind not in ("market", "limit", "post_only"):
        raise OkxError("51000", "Parameter ordType error")
    size = Decimal(str(params.get("sz") or "0"))
    if size <= 0 or size % public.LOT:
        msg = "Order count should be the integer multiples of the lot size"
        raise OkxError("51121", msg, in_data=True)
    base = Decimal(str(params.get("px") or 0)) if kind != "market" else None
    tp, sl = attached_levels(
        str(params.get("side")), base or server.market.last(inst.symbol), params
    )
    order = server.engine.create_order(
        acct,
        {
            "category": "linear",
            "symbol": inst.symbol,
            "side": str(params.get("side", "")).capitalize(),
            "orderType": "Market" if kind == "market" else "Limit",
            # OKX accepts a crossing post_only order and cancels it at once, as Bybit does.
            "timeInForce": "PostOnly" if kind == "post_only" else "",
            "qty": str(size * ct_val(inst)),
            "price": str(params.get("px") or ""),
            "orderLinkId": cid,
            "reduceOnly": str(params.get("reduceOnly", "false")).lower(),
        },
    )
    server.algos.attach(acct, order, tp, sl)  # an algo of its own once the order filled
    return [{"ordId": order_no(order), "clOrdId": cid, "tag": str(params.get("tag") or ""),
             "ts": str(order.created), "sCode": "0", "sMsg": "Order placed"}]  # fmt: skip


def batch_orders(server: Any, account: Account | None, params: Params) -> Any:
    """Each order placed or refused on its own; all refused is code 1, some is code 2."""
    rows, placed = [], 0
    for entry in params.get("batch") or []:
        try:
            rows += place_order(server, account, entry)
            placed += 1
        except BybitError as err:
            rows.append(okx_error(err).row())
        except OkxError as err:
            rows.append(err.row())
    if not placed:
        failed = OkxError("1", "All operations failed")
        failed.rows = rows
        raise failed
    return rows


def _find(server: Any, acct: Account, params: Params) -> Order | None:
    inst = inst_of(server, params)
    if params.get("ordId"):
        wanted = str(params["ordId"])
        found = next((o for o in acct.orders.values() if order_no(o) == wanted), None)
    elif params.get("clOrdId"):
        found = acct.by_link.get(str(params["clOrdId"]))
    else:
        raise OkxError("51000", "Parameter ordId or clOrdId error")
    return found if found is not None and inst is not None and found.symbol == inst.symbol else None


def get_order(server: Any, account: Account | None, params: Params) -> Any:
    acct = acct_of(account)
    order = _find(server, acct, params)
    if order is None:
        raise OkxError("51603", "Order does not exist")
    return [order_json(server, acct, order)]


def cancel_order(server: Any, account: Account | None, params: Params) -> Any:
    acct = acct_of(account)
    order = _find(server, acct, params)
    if order is None or not order.is_open:
        msg = "Order cancellation failed as the order has been filled, canceled or does not exist"
        raise OkxError("51400", msg, in_data=True)
    server.engine.cancel_order(
        acct, {"category": "linear", "symbol": order.symbol, "orderId": order.order_id}
    )
    return [{"ordId": order_no(order), "clOrdId": order.link_id, "sCode": "0", "sMsg": ""}]


def _listing(server: Any, account: Account | None, params: Params, pending: bool) -> Any:
    """Newest first, at most ``limit`` (100) a page; ``after`` = an ordId to page past."""
    acct, only = acct_of(account), inst_of(server, params, required=False)
    orders = [  # newest first: OKX's ids grow with time, the engine's dict keeps the order
        o
        for o in reversed(acct.orders.values())
        if o.is_open == pending
        and not o.stop_order_type
        and (only is None or o.symbol == only.symbol)
    ]
    if params.get("after"):
        ids = [order_no(o) for o in orders]
        after = str(params["after"])
        orders = orders[ids.index(after) + 1 :] if after in ids else []
    limit = min(int(params.get("limit") or 100), 100)
    return [order_json(server, acct, o) for o in orders[:limit]]


def orders_pending(server: Any, account: Account | None, params: Params) -> Any:
    return _listing(server, account, params, pending=True)


def orders_history(server: Any, account: Account | None, params: Params) -> Any:
    return _listing(server, account, params, pending=False)


def fills(server: Any, account: Account | None, params: Params) -> Any:
    """Fills newest first; `begin`/`end` bound `ts`, `after` pages to older bills (each
    execution's bill id is its place in the account's history, so it never moves)."""
    acct, only = acct_of(account), inst_of(server, params, required=False)
    by_id = {o.order_id: o for o in acct.orders.values()}
    begin, end = int(params.get("begin") or 0), int(params.get("end") or 0)
    after = int(params.get("after") or 0)
    rows = []
    for n in range(len(acct.executions) - 1, -1, -1):
        e = acct.executions[n]
        order, inst = by_id[e["orderId"]], server.market.instruments[e["symbol"]]
        if (only is not None and e["symbol"] != only.symbol) or (
            params.get("ordId") and order_no(order) != str(params["ordId"])
        ):
            continue
        at = int(e["execTime"])
        if (begin and at < begin) or (end and at > end) or (after and n + 1 >= after):
            continue
        rows.append(
            {"instType": "SWAP", "instId": inst_id(e["symbol"]), "tradeId": str(n + 1),
             "ordId": order_no(order), "clOrdId": order.link_id, "billId": str(n + 1),
             "tag": "", "fillPx": e["execPrice"], "fillSz": contracts(inst, Decimal(e["execQty"])),
             "side": e["side"].lower(), "posSide": "net", "execType": "M" if e["isMaker"] else "T",
             "feeCcy": "USDT", "fee": fmt_num(-Decimal(e["execFee"])), "ts": e["execTime"],
             "fillPnl": e.get("execPnl", "0"), "subType": _sub_type(e)}
        )  # fmt: skip
    return rows[: min(int(params.get("limit") or 100), 100)]


def _sub_type(execution: dict[str, Any]) -> str:
    """OKX's bill type of a fill: 3/4 open long/short, 5/6 close long/short."""
    buy, closing = execution["side"] == "Buy", Decimal(execution["closedSize"]) > 0
    return ("6" if buy else "5") if closing else ("3" if buy else "4")


ROUTES: dict[tuple[str, str], tuple[bool, Handler]] = {
    ("GET", "/api/v5/public/time"): (False, public.public_time),
    ("GET", "/api/v5/public/instruments"): (False, public.instruments),
    ("GET", "/api/v5/market/tickers"): (False, public.tickers),
    ("GET", "/api/v5/market/ticker"): (False, public.ticker),
    ("GET", "/api/v5/market/candles"): (False, public.candles),
    ("GET", "/api/v5/account/balance"): (True, balance),
    ("GET", "/api/v5/account/positions"): (True, positions),
    ("GET", "/api/v5/account/config"): (True, config),
    ("POST", "/api/v5/account/set-leverage"): (True, set_leverage),
    ("POST", "/api/v5/trade/order"): (True, place_order),
    ("POST", "/api/v5/trade/batch-orders"): (True, batch_orders),
    ("GET", "/api/v5/trade/order"): (True, get_order),
    ("POST", "/api/v5/trade/cancel-order"): (True, cancel_order),
    ("GET", "/api/v5/trade/orders-pending"): (True, orders_pending),
    ("GET", "/api/v5/trade/orders-history"): (True, orders_history),
    ("GET", "/api/v5/trade/fills"): (True, fills),
    ("GET", "/api/v5/trade/fills-history"): (True, fills),  # the last three months
    **ALGO_ROUTES,
}
