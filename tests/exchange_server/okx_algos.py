"""OKX's TP/SL algo orders on the local v5 server.

On OKX a take profit or stop loss is never a level on the position: it is an algo order of
its own, ``conditional`` (one leg) or ``oco`` (both), placed on ``/api/v5/trade/order-algo``
or attached to an order (``attachAlgoOrds``), which then becomes a pending algo sized to the
order's fill once it filled. ``closeFraction: "1"`` makes it close the whole position
whatever its size (reduce-only, net mode, one such algo per position). A pending algo lives
in ``orders-algo-pending`` until the last price crosses a leg: it then sends a reduce-only
market order and moves to ``orders-algo-history`` as ``effective``, with ``actualSide``
``tp``/``sl`` and the ``ordId`` of the order it sent (the order itself carries no
``clOrdId``). ``cancel-algos`` cancels up to ten at once; the algos of a position that goes
flat are cancelled with it. Lists are newest first, 100 a page, ``after``/``before`` an
algoId. Only market legs (``tpOrdPx``/``slOrdPx`` ``-1``) are modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .models import Account, BybitError, Order, check_tpsl, fmt_num, now_ms
from .okx_views import (
    LOT,
    OkxError,
    Params,
    acct_of,
    contracts,
    ct_val,
    inst_id,
    inst_of,
    order_no,
    trade_target,
)

KINDS = ("conditional", "oco")
CANCEL_BATCH = 10  # the most algos one cancel-algos request names
FIRST_ID = 700_000_000_000_000_000  # algo ids are numbers that grow with time, as OKX's


@dataclass
class Algo:
    algo_id: str
    cid: str
    symbol: str
    ord_type: str  # conditional | oco
    side: str  # buy | sell: the side of the order it sends
    contracts: Decimal  # its size; 0 with close_fraction (the whole position)
    close_fraction: bool
    tp: Decimal
    sl: Decimal
    created: int
    state: str = "live"  # live | effective | canceled | order_failed
    actual_side: str = ""  # tp | sl once a leg fired
    ord_id: str = ""  # the order it sent
    actual_sz: str = ""
    trigger_time: str = ""
    updated: int = 0

    def fired(self, last: Decimal) -> str:
        """The leg the last price crossed: "tp", "sl" or ""."""
        closing_long = self.side == "sell"
        if self.tp and (last >= self.tp if closing_long else last <= self.tp):
            return "tp"
        if self.sl and (last <= self.sl if closing_long else last >= self.sl):
            return "sl"
        return ""

    def json(self, tick: Callable[[Decimal], str]) -> dict[str, Any]:
        def px(value: Decimal) -> str:
            return tick(value) if value else ""

        return {
            "instType": "SWAP", "instId": inst_id(self.symbol), "algoId": self.algo_id,
            "algoClOrdId": self.cid, "clOrdId": "", "ordType": self.ord_type,
            "side": self.side, "posSide": "net", "tdMode": "cross",
            "sz": "" if self.close_fraction else fmt_num(self.contracts),
            "closeFraction": "1" if self.close_fraction else "", "reduceOnly": "true",
            "state": self.state, "tpTriggerPx": px(self.tp),
            "tpTriggerPxType": "last" if self.tp else "", "tpOrdPx": "-1" if self.tp else "",
            "slTriggerPx": px(self.sl), "slTriggerPxType": "last" if self.sl else "",
            "slOrdPx": "-1" if self.sl else "", "actualSide": self.actual_side,
            "actualPx": px(self.tp if self.actual_side == "tp" else self.sl)
            if self.actual_side else "",
            "actualSz": self.actual_sz, "ordId": self.ord_id,
            "ordIdList": [self.ord_id] if self.ord_id else [], "triggerTime": self.trigger_time,
            "lever": "", "tag": "", "failCode": "", "cTime": str(self.created),
            "uTime": str(self.updated or self.created),
        }  # fmt: skip


class AlgoBook:
    """Every account's TP/SL algos, and the levels attached to orders not yet filled."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._algos: dict[str, list[Algo]] = {}  # api key → algos, oldest first
        self._attached: dict[str, tuple[Decimal, Decimal]] = {}  # order id → (tp, sl)
        self._armed: set[str] = set()  # orders whose attached levels became an algo
        self._seq = 0

    def of(self, acct: Account) -> list[Algo]:
        return self._algos.setdefault(acct.api_key, [])

    def live(self, acct: Account, symbol: str | None = None) -> list[Algo]:
        return [a for a in self.of(acct) if a.state == "live" and symbol in (None, a.symbol)]

    def attached(self, order: Order) -> tuple[Decimal, Decimal]:
        return self._attached.get(order.order_id, (Decimal(0), Decimal(0)))

    def attach(self, acct: Account, order: Order, tp: Decimal, sl: Decimal) -> None:
        """Levels that ride on an order: an algo of their own once it filled."""
        if tp or sl:
            self._attached[order.order_id] = (tp, sl)
            self.on_change(acct)

    def add(
        self, acct: Account, symbol: str, side: str, size: Decimal, tp: Decimal, sl: Decimal,
        cid: str = "",
    ) -> Algo:  # fmt: skip
        self._seq += 1
        algo = Algo(
            algo_id=str(FIRST_ID + self._seq), cid=cid, symbol=symbol,
            ord_type="oco" if tp and sl else "conditional", side=side, contracts=size,
            close_fraction=not size, tp=tp, sl=sl, created=now_ms(),
        )  # fmt: skip
        self.of(acct).append(algo)
        return algo

    # ---- engine hooks ---------------------------------------------------
    def on_change(self, acct: Account) -> None:
        """Arm the attached levels of orders that filled; cancel the algos of a position
        that went flat (they would close the next one)."""
        for order in list(acct.orders.values()):
            if order.order_id not in self._attached or order.order_id in self._armed:
                continue
            if order.is_open or not order.cum_qty:
                continue
            self._armed.add(order.order_id)
            tp, sl = self._attached[order.order_id]
            inst = self.server.market.instruments[order.symbol]
            closing = "sell" if order.side == "Buy" else "buy"
            self.add(acct, order.symbol, closing, order.cum_qty / ct_val(inst), tp, sl)
        for algo in self.live(acct):
            size = acct.position(algo.symbol).size
            if not size or (size > 0) != (algo.side == "sell"):
                algo.state, algo.updated = "canceled", now_ms()

    def on_price(self, symbol: str) -> None:
        """Fire the algos whose leg the new last price crossed: each sends a reduce-only
        market order for its size (the whole position with closeFraction)."""
        last = self.server.market.last(symbol)
        inst = self.server.market.instruments[symbol]
        for acct in list(self.server.engine.accounts.values()):
            for algo in self.live(acct, symbol):
                leg = algo.fired(last)
                if not leg or algo.state != "live":
                    continue
                held = abs(acct.position(symbol).size)
                qty = held if algo.close_fraction else min(held, algo.contracts * ct_val(inst))
                algo.state, algo.actual_side = "effective", leg
                algo.trigger_time = str(now_ms())
                algo.updated = now_ms()
                try:
                    order = self.server.engine.create_order(
                        acct,
                        {"category": "linear", "symbol": symbol, "side": algo.side.capitalize(),
                         "orderType": "Market", "qty": str(qty), "reduceOnly": "true"},
                    )  # fmt: skip
                except BybitError:
                    algo.state = "order_failed"
                    continue
                algo.ord_id, algo.actual_sz = order_no(order), contracts(inst, order.cum_qty)


# ---- endpoints ---------------------------------------------------------------
def place_algo(server: Any, account: Account | None, params: Params) -> Any:
    acct, inst = trade_target(server, account, params)
    side, kind = str(params.get("side") or ""), str(params.get("ordType") or "")
    if side not in ("buy", "sell"):
        raise OkxError("51000", "Parameter side error")
    if kind not in KINDS:
        raise OkxError("51000", "Parameter ordType error")
    wanted = ("long", "short") if acct.api_key in server.long_short else ("", "net")
    if str(params.get("posSide") or "") not in wanted:
        raise OkxError("51000", "Parameter posSide error")
    cid = str(params.get("algoClOrdId") or "")
    if cid and not (len(cid) <= 32 and cid.isascii() and cid.isalnum()):
        raise OkxError("51000", "Parameter algoClOrdId error")
    if cid and any(a.cid == cid for a in server.algos.live(acct)):
        raise OkxError("51016", "Duplicated clOrdId", in_data=True)
    tp, sl = _leg(params, "tp"), _leg(params, "sl")
    if (kind == "oco" and not (tp and sl)) or not (tp or sl):
        raise OkxError("51000", f"Parameter {'slTriggerPx' if tp else 'tpTriggerPx'} error")
    size = _size(server, acct, inst.symbol, side, params)
    _check_sides(side, server.market.last(inst.symbol), tp, sl)
    algo = server.algos.add(acct, inst.symbol, side, size, tp, sl, cid)
    algo.ord_type = kind
    return [{"algoId": algo.algo_id, "clOrdId": "", "algoClOrdId": cid, "tag": "",
             "sCode": "0", "sMsg": ""}]  # fmt: skip


def _leg(params: Params, leg: str) -> Decimal:
    trigger = str(params.get(f"{leg}TriggerPx") or "")
    if not trigger:
        return Decimal(0)
    if str(params.get(f"{leg}OrdPx") or "") != "-1":
        raise OkxError("51000", f"Parameter {leg}OrdPx error")  # only market legs modelled
    value = Decimal(trigger)
    if value <= 0:
        raise OkxError("51000", f"Parameter {leg}TriggerPx error")
    return value


def _size(server: Any, acct: Account, symbol: str, side: str, params: Params) -> Decimal:
    """Contracts the algo closes; 0 for the whole position (``closeFraction``)."""
    held = acct.position(symbol).size
    if params.get("closeFraction") not in (None, ""):
        if str(params["closeFraction"]) != "1":
            raise OkxError("51000", "Parameter closeFraction error")
        if str(params.get("reduceOnly", "")).lower() != "true":
            raise OkxError("51328", "closeFraction is only available for reduceOnly orders")
        if not held or (held > 0) != (side == "sell"):
            msg = "You don't have any positions in this direction to reduce or close."
            raise OkxError("51169", msg, in_data=True)
        if any(a.close_fraction for a in server.algos.live(acct, symbol)):
            msg = "You can only place 1 TP/SL order to close an entire position"
            raise OkxError("51088", msg, in_data=True)
        return Decimal(0)
    size = Decimal(str(params.get("sz") or "0"))
    if size <= 0 or size % LOT:
        msg = "Order count should be the integer multiples of the lot size"
        raise OkxError("51121", msg, in_data=True)
    return size


def _check_sides(side: str, last: Decimal, tp: Decimal, sl: Decimal) -> None:
    """A leg on the wrong side of the last price would fire at once: OKX refuses it."""
    if side == "sell":  # closing a long: TP above, SL below
        if tp and tp <= last:
            raise OkxError(
                "51279", "TP trigger price cannot be lower than the last price", 200, True
            )
        if sl and sl >= last:
            raise OkxError(
                "51280", "SL trigger price cannot be higher than the last price", 200, True
            )
    else:
        if tp and tp >= last:
            raise OkxError(
                "51277", "TP trigger price cannot be higher than the last price", 200, True
            )
        if sl and sl <= last:
            raise OkxError(
                "51278", "SL trigger price cannot be lower than the last price", 200, True
            )


def cancel_algos(server: Any, account: Account | None, params: Params) -> Any:
    """Each named algo cancelled on its own; none cancelled is code 1."""
    acct, entries = acct_of(account), params.get("batch") or []
    if not entries or len(entries) > CANCEL_BATCH:
        raise OkxError("51000", f"Parameter error: 1 to {CANCEL_BATCH} algo orders a request")
    rows, done = [], 0
    for entry in entries:
        inst = inst_of(server, entry)
        wanted = str(entry.get("algoId") or "")
        found = next((a for a in server.algos.live(acct) if a.algo_id == wanted), None)
        if found is None or inst is None or found.symbol != inst.symbol:
            rows.append({"algoId": wanted, "sCode": "51400",
                         "sMsg": "Cancellation failed as the order does not exist"})  # fmt: skip
            continue
        found.state, found.updated = "canceled", now_ms()
        rows.append({"algoId": wanted, "sCode": "0", "sMsg": ""})
        done += 1
    if not done:
        failed = OkxError("1", "All operations failed")
        failed.rows = rows
        raise failed
    return rows


def _listing(server: Any, account: Account | None, params: Params, pending: bool) -> Any:
    acct, only = acct_of(account), inst_of(server, params, required=False)
    kinds = [k for k in str(params.get("ordType") or "").split(",") if k]
    if not kinds:
        raise OkxError("50014", "Parameter ordType can not be empty")
    state = str(params.get("state") or "")
    if not pending and not state and not params.get("algoId"):
        raise OkxError("51000", "Parameter state or algoId error")
    algos = [
        a
        for a in reversed(server.algos.of(acct))
        if (a.state == "live") == pending
        and a.ord_type in kinds
        and (only is None or a.symbol == only.symbol)
        and (not state or a.state == state)
        and (not params.get("algoId") or a.algo_id == str(params["algoId"]))
    ]
    if params.get("after"):  # older than this algo
        algos = [a for a in algos if int(a.algo_id) < int(params["after"])]
    if params.get("before"):  # newer than this algo
        algos = [a for a in algos if int(a.algo_id) > int(params["before"])]
    limit = min(int(params.get("limit") or 100), 100)
    return [a.json(server.market.instruments[a.symbol].price_str) for a in algos[:limit]]


def algos_pending(server: Any, account: Account | None, params: Params) -> Any:
    return _listing(server, account, params, pending=True)


def algos_history(server: Any, account: Account | None, params: Params) -> Any:
    return _listing(server, account, params, pending=False)


def attached_levels(side: str, base: Decimal, params: Params) -> tuple[Decimal, Decimal]:
    """An order's ``attachAlgoOrds`` levels, checked against its price as OKX does."""
    tp = sl = Decimal(0)
    for algo in params.get("attachAlgoOrds") or []:
        tp = Decimal(str(algo.get("tpTriggerPx") or tp))
        sl = Decimal(str(algo.get("slTriggerPx") or sl))
    check_tpsl("Buy" if side == "buy" else "Sell", base, tp, sl)
    return tp, sl


ROUTES = {
    ("POST", "/api/v5/trade/order-algo"): (True, place_algo),
    ("POST", "/api/v5/trade/cancel-algos"): (True, cancel_algos),
    ("GET", "/api/v5/trade/orders-algo-pending"): (True, algos_pending),
    ("GET", "/api/v5/trade/orders-algo-history"): (True, algos_history),
}
