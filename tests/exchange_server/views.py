"""Bybit v5 JSON shapes for engine state, plus the list/filter/pagination rules of the
order, execution and position query endpoints."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

from .engine import MMR, Engine
from .market import fmt
from .models import Account, BybitError, Order, Position, fmt_num, now_ms, param_text

T = TypeVar("T")
WEEK_MS = 7 * 86_400_000


def _limit(params: Mapping[str, Any], default: int, maximum: int) -> int:
    try:
        limit = int(param_text(params, "limit") or default)
    except ValueError:
        raise BybitError(10001, "params error: limit invalid") from None
    if not 1 <= limit <= maximum:
        raise BybitError(10001, f"params error: limit must be in [1, {maximum}]")
    return limit


def paginate(
    items: Sequence[T], params: Mapping[str, Any], default: int, maximum: int
) -> tuple[list[T], str]:
    """Cursor pagination; cursors are opaque-looking but URL-safe (ccxt sends them raw)."""
    limit = _limit(params, default, maximum)
    cursor = param_text(params, "cursor")
    offset = int(cursor[4:]) if cursor.startswith("page") and cursor[4:].isdigit() else 0
    page = list(items[offset : offset + limit])
    nxt = f"page{offset + limit}" if offset + limit < len(items) else ""
    return page, nxt


def keyset_paginate(
    rows: Sequence[T],
    params: Mapping[str, Any],
    default: int,
    maximum: int,
    mark: Callable[[T], tuple[str, int]],
    tie: Callable[[str], Any],
) -> tuple[list[T], str]:
    """Bybit's cursor over a list newest first (open orders, positions).

    Rows run by (time, tie(id)) descending, `mark` giving a row's id and time. A page's
    `nextPageCursor` names its first and last rows, `id:time,id:time`, percent-encoded as
    Bybit sends it (`...%3A1757837618905%2C...`): a client passes it back untouched, and
    the query decodes it. The next page starts after the last row named, so rows added or
    removed meanwhile move nothing. Every page with rows names a cursor, the last page too;
    the page after the last is empty, its cursor "".
    """
    limit = _limit(params, default, maximum)

    def rank(row: T) -> tuple[int, Any]:
        ident, at = mark(row)
        return at, tie(ident)

    ordered = sorted(rows, key=rank, reverse=True)
    cursor = param_text(params, "cursor")
    if cursor:
        last = cursor.rpartition(",")[2]
        ident, _, at = last.rpartition(":")
        if not ident or not at.isdigit():
            raise BybitError(10001, "params error: cursor invalid")
        after = (int(at), tie(ident))
        ordered = [r for r in ordered if rank(r) < after]
    page = ordered[:limit]
    if not page:
        return [], ""
    (first, first_at), (final, final_at) = mark(page[0]), mark(page[-1])
    return page, quote(f"{first}:{first_at},{final}:{final_at}", safe="")


def _require_category(params: Mapping[str, Any]) -> None:
    if param_text(params, "category") != "linear":
        raise BybitError(10001, "params error: category only support linear")


def _require_scope(params: Mapping[str, Any]) -> None:
    if not any(param_text(params, k) for k in ("symbol", "baseCoin", "settleCoin")):
        raise BybitError(
            10001, "Missing some parameters that must filled in, symbol or settleCoin or baseCoin"
        )


def _in_scope(engine: Engine, symbol: str, params: Mapping[str, Any]) -> bool:
    if param_text(params, "symbol") and symbol != param_text(params, "symbol"):
        return False
    settle = param_text(params, "settleCoin")
    if settle and settle != "USDT":
        return False
    base = param_text(params, "baseCoin")
    return not base or engine.market.instruments[symbol].base == base


def order_json(engine: Engine, order: Order) -> dict[str, Any]:
    inst = engine.market.instruments[order.symbol]
    price = inst.price_str
    avg = fmt_num(order.cum_value / order.cum_qty) if order.cum_qty else ""
    tpsl = bool(order.take_profit or order.stop_loss or order.close_on_trigger)
    return {
        "orderId": order.order_id,
        "orderLinkId": order.link_id,
        "blockTradeId": "",
        "parentOrderLinkId": "",
        "symbol": order.symbol,
        "price": price(order.price) if order.price else "0",
        "qty": inst.qty_str(order.qty),
        "side": order.side,
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": order.status,
        "createType": order.create_type,
        "cancelType": order.cancel_type,
        "rejectReason": order.reject_reason,
        "avgPrice": avg,
        "leavesQty": inst.qty_str(order.leaves),
        "leavesValue": fmt_num(order.leaves * order.price),
        "cumExecQty": inst.qty_str(order.cum_qty),
        "cumExecValue": fmt_num(order.cum_value),
        "cumExecFee": fmt_num(order.cum_fee),
        "timeInForce": order.time_in_force,
        "orderType": order.order_type,
        "stopOrderType": order.stop_order_type,
        "orderIv": "",
        "marketUnit": "",
        "triggerPrice": price(order.trigger_price),
        "takeProfit": price(order.take_profit),
        "stopLoss": price(order.stop_loss),
        "tpslMode": "Full" if tpsl else "",
        "ocoTriggerBy": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "tpTriggerBy": "LastPrice" if order.take_profit else "",
        "slTriggerBy": "LastPrice" if order.stop_loss else "",
        "triggerDirection": order.trigger_direction,
        "triggerBy": "LastPrice" if order.trigger_price else "",
        "lastPriceOnCreated": price(order.last_price_on_created),
        "basePrice": "",
        "reduceOnly": order.reduce_only,
        "closeOnTrigger": order.close_on_trigger,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(order.created),
        "updatedTime": str(order.updated),
        "cumFeeDetail": {"USDT": fmt_num(order.cum_fee)} if order.cum_fee else {},
    }


def position_json(engine: Engine, acct: Account, pos: Position) -> dict[str, Any]:
    inst = engine.market.instruments[pos.symbol]
    ticker = engine.market.tickers[pos.symbol]
    lev = acct.lev(inst)
    size = abs(pos.size)
    liq = bust = ""
    if size:
        sign = Decimal(1) if pos.size > 0 else Decimal(-1)
        bust = inst.price_str(max(pos.avg * (1 - sign / lev), inst.tick_size))
        liq = inst.price_str(max(pos.avg * (1 - sign / lev + sign * MMR), inst.tick_size))
    side = "" if not size else ("Buy" if pos.size > 0 else "Sell")
    im = engine.position_im(acct, pos)
    return {
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": pos.symbol,
        "side": side,
        "size": inst.qty_str(size),
        "avgPrice": fmt_num(pos.avg),
        "positionValue": fmt_num(size * pos.avg),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if size else 0,
        "leverage": fmt_num(lev),
        "positionBalance": fmt_num(im),
        "markPrice": inst.price_str(ticker.mark),
        "liqPrice": liq,
        "bustPrice": bust,
        "positionMM": fmt_num(size * ticker.mark * MMR),
        "positionIM": fmt_num(im),
        "tpslMode": "Full",
        "takeProfit": inst.price_str(pos.take_profit) if pos.take_profit else "",
        "stopLoss": inst.price_str(pos.stop_loss) if pos.stop_loss else "",
        "trailingStop": inst.price_str(pos.trailing_stop) if pos.trailing_stop else "0",
        "sessionAvgPrice": "",
        "delta": "",
        "gamma": "",
        "vega": "",
        "theta": "",
        "unrealisedPnl": fmt_num(engine.upnl(acct, pos)),
        "curRealisedPnl": fmt_num(pos.cur_realised),
        "cumRealisedPnl": fmt_num(pos.cum_realised),
        "seq": pos.seq,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": str(pos.created or now_ms()),
        "updatedTime": str(pos.updated or now_ms()),
    }


def wallet_json(engine: Engine, acct: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    if param_text(params, "accountType") != "UNIFIED":
        raise BybitError(10001, "accountType only support UNIFIED.")
    t = engine.totals(acct)
    mm = sum(
        (abs(p.size) * engine.market.tickers[p.symbol].mark * MMR for p in acct.positions.values()),
        Decimal(0),
    )
    im = t["pos_im"] + t["order_im"]
    equity = t["equity"]
    cum = sum((p.cum_realised for p in acct.positions.values()), Decimal(0))
    coin = {
        "coin": "USDT",
        "equity": fmt_num(equity),
        "usdValue": fmt_num(equity),
        "walletBalance": fmt_num(acct.wallet),
        "locked": "0",
        "spotHedgingQty": "0",
        "borrowAmount": "0",
        "availableToWithdraw": "",
        "availableToBorrow": "",
        "accruedInterest": "0",
        "totalOrderIM": fmt_num(t["order_im"]),
        "totalPositionIM": fmt_num(t["pos_im"]),
        "totalPositionMM": fmt_num(mm),
        "unrealisedPnl": fmt_num(t["upnl"]),
        "cumRealisedPnl": fmt_num(cum),
        "bonus": "0",
        "marginCollateral": True,
        "collateralSwitch": True,
    }
    wanted = [c for c in param_text(params, "coin").split(",") if c]

    def rate(amount: Decimal) -> str:
        return fmt((amount / equity).quantize(Decimal("0.0001"))) if equity > 0 else "0"

    return {
        "list": [
            {
                "accountType": "UNIFIED",
                "accountIMRate": rate(im),
                "accountMMRate": rate(mm),
                "accountLTV": "0",
                "totalEquity": fmt_num(equity),
                "totalWalletBalance": fmt_num(acct.wallet),
                "totalMarginBalance": fmt_num(equity),
                "totalAvailableBalance": fmt_num(t["available"]),
                "totalPerpUPL": fmt_num(t["upnl"]),
                "totalInitialMargin": fmt_num(im),
                "totalMaintenanceMargin": fmt_num(mm),
                "coin": [coin] if not wanted or "USDT" in wanted else [],
            }
        ]
    }


def _order_filter(order: Order, params: Mapping[str, Any]) -> bool:
    kind = param_text(params, "orderFilter")
    if kind == "Order":
        return not order.stop_order_type
    if kind == "StopOrder":
        return bool(order.stop_order_type)
    return True


def realtime_orders(engine: Engine, acct: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    _require_category(params)
    _require_scope(params)
    order_id, link_id = param_text(params, "orderId"), param_text(params, "orderLinkId")
    if order_id:  # priority: orderId > orderLinkId > symbol > baseCoin; openOnly ignored
        found = acct.orders.get(order_id)
        orders = [found] if found else []
    elif link_id:
        found = acct.by_link.get(link_id)
        orders = [found] if found else []
    else:
        want_open = param_text(params, "openOnly") in ("", "0")
        orders = [o for o in acct.orders.values() if o.is_open == want_open]
        if not want_open:
            orders = orders[-500:]
    orders = [o for o in orders if _in_scope(engine, o.symbol, params) and _order_filter(o, params)]
    placed = {order_id: n for n, order_id in enumerate(acct.orders)}  # same-ms orders: by arrival

    def tie(order_id: str) -> int:
        if order_id not in placed:
            raise BybitError(10001, "params error: cursor invalid")
        return placed[order_id]

    page, nxt = keyset_paginate(orders, params, 20, 50, lambda o: (o.order_id, o.created), tie)
    return {
        "category": "linear",
        "list": [order_json(engine, o) for o in page],
        "nextPageCursor": nxt,
    }


def history_orders(engine: Engine, acct: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    _require_category(params)
    end = int(param_text(params, "endTime") or now_ms())
    start = int(param_text(params, "startTime") or end - WEEK_MS)
    order_id, link_id = param_text(params, "orderId"), param_text(params, "orderLinkId")
    status = param_text(params, "orderStatus")
    orders = [
        o
        for o in acct.orders.values()
        if (not order_id or o.order_id == order_id)
        and (order_id or not link_id or o.link_id == link_id)
        and (not status or o.status == status)
        and start <= o.created <= end
        and _in_scope(engine, o.symbol, params)
        and _order_filter(o, params)
    ]
    orders.sort(key=lambda o: o.created, reverse=True)
    page, nxt = paginate(orders, params, 20, 50)
    return {
        "category": "linear",
        "list": [order_json(engine, o) for o in page],
        "nextPageCursor": nxt,
    }


def executions(engine: Engine, acct: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    _require_category(params)
    end = int(param_text(params, "endTime") or now_ms())
    start = int(param_text(params, "startTime") or end - WEEK_MS)
    keys = ("orderId", "orderLinkId", "execType")
    rows = [
        e
        for e in reversed(acct.executions)
        if all(not param_text(params, k) or e[k] == param_text(params, k) for k in keys)
        and start <= int(e["execTime"]) <= end
        and _in_scope(engine, e["symbol"], params)
    ]
    page, nxt = paginate(rows, params, 50, 100)
    return {"category": "linear", "list": page, "nextPageCursor": nxt}


def closed_pnl(engine: Engine, acct: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    """Closed-position records newest first, by `updatedTime`, cursor-paged like Bybit."""
    _require_category(params)
    end = int(param_text(params, "endTime") or now_ms())
    start = int(param_text(params, "startTime") or end - WEEK_MS)
    rows = [
        r
        for r in reversed(acct.closed_pnl)
        if start <= int(r["updatedTime"]) <= end and _in_scope(engine, r["symbol"], params)
    ]
    page, nxt = paginate(rows, params, 50, 100)
    return {"category": "linear", "list": page, "nextPageCursor": nxt}


def positions(engine: Engine, acct: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    _require_category(params)
    _require_scope(params)
    symbol = param_text(params, "symbol")
    if symbol:
        if symbol not in engine.market.instruments:
            raise BybitError(10001, "params error: symbol invalid")
        rows = [acct.position(symbol)]
    else:
        rows = [
            p for p in acct.positions.values() if p.size and _in_scope(engine, p.symbol, params)
        ]
    page, nxt = keyset_paginate(rows, params, 20, 200, lambda p: (p.symbol, p.updated), str)
    listed = [position_json(engine, acct, p) for p in page]
    if acct.hedge:  # a hedge-mode account lists each symbol once per side, 1 long, 2 short
        listed = [{**row, "positionIdx": 2 if row["side"] == "Sell" else 1} for row in listed]
        if symbol and listed and not listed[0]["side"]:
            listed.append({**listed[0], "positionIdx": 2})
    return {"category": "linear", "list": listed, "nextPageCursor": nxt}
