"""Bybit v5 endpoint implementations: ``(engine, account, params) -> result``.

``ROUTES`` maps ``(method, path)`` to ``(is_private, handler)``; public handlers get
``account=None``. A handler returns the ``result`` object of the response envelope or
raises :class:`BybitError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from . import views
from .engine import MAKER_FEE, TAKER_FEE, Engine
from .models import Account, BybitError, fmt_num, now_ms, param_text

Params = Mapping[str, Any]
Handler = Callable[[Engine, Account | None, Params], dict[str, Any]]
_CATEGORIES = ("spot", "linear", "inverse", "option")


def _category(params: Params, default: str | None = None) -> str:
    category = param_text(params, "category") or default
    if category not in _CATEGORIES:
        raise BybitError(10001, "params error: Category is invalid")
    return category


def _acct(account: Account | None) -> Account:
    assert account is not None, "private handler called without an account"
    return account


def _int_param(params: Params, key: str, default: int, lo: int, hi: int) -> int:
    raw = param_text(params, key)
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise BybitError(10001, f"params error: {key} invalid") from None
    if not lo <= value <= hi:
        raise BybitError(10001, f"params error: {key} must be in [{lo}, {hi}]")
    return value


def _listed_symbol(engine: Engine, params: Params) -> str:
    symbol = param_text(params, "symbol")
    if not symbol:
        raise BybitError(10001, "params error: symbol is required")
    inst = engine.market.instruments.get(symbol)
    if inst is None or inst.status == "Closed":
        raise BybitError(10001, "Not supported symbols")
    return symbol


# ---- public market data ----------------------------------------------------
def market_time(engine: Engine, _a: Account | None, _p: Params) -> dict[str, Any]:
    ns = time.time_ns()
    return {"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}


def instruments_info(engine: Engine, _a: Account | None, params: Params) -> dict[str, Any]:
    category = _category(params)
    if category != "linear":
        return {"category": category, "list": [], "nextPageCursor": ""}
    symbol, status = param_text(params, "symbol"), param_text(params, "status")
    if symbol:
        insts = [
            i
            for i in engine.market.instruments.values()
            if i.symbol == symbol and (not status or i.status == status)
        ]
    else:
        insts = engine.market.listed(status or None)
    base = param_text(params, "baseCoin")
    insts = [i for i in insts if not base or i.base == base]
    page, nxt = views.paginate(insts, params, 500, 1000)
    return {"category": "linear", "list": [i.to_json() for i in page], "nextPageCursor": nxt}


def tickers(engine: Engine, _a: Account | None, params: Params) -> dict[str, Any]:
    category = _category(params)
    if category != "linear":
        return {"category": category, "list": []}
    market = engine.market
    if param_text(params, "symbol"):
        symbols = [_listed_symbol(engine, params)]
    else:
        base = param_text(params, "baseCoin")
        symbols = [
            i.symbol
            for i in market.instruments.values()
            if i.status != "Closed" and (not base or i.base == base)
        ]
    return {"category": "linear", "list": [market.ticker_json(s) for s in symbols]}


def _kline(engine: Engine, params: Params, with_volume: bool) -> dict[str, Any]:
    category = _category(params, "linear")
    symbol = _listed_symbol(engine, params) if category == "linear" else ""
    interval = param_text(params, "interval")
    limit = _int_param(params, "limit", 200, 1, 1000)
    start = int(param_text(params, "start")) if param_text(params, "start") else None
    end = int(param_text(params, "end")) if param_text(params, "end") else None
    if not symbol:
        return {"category": category, "symbol": param_text(params, "symbol"), "list": []}
    try:
        rows = engine.market.klines(symbol, interval, start, end, limit, with_volume)
    except ValueError:
        raise BybitError(10001, "params error: Invalid period!") from None
    return {"category": category, "symbol": symbol, "list": rows}


def kline(engine: Engine, _a: Account | None, params: Params) -> dict[str, Any]:
    return _kline(engine, params, with_volume=True)


def price_kline(engine: Engine, _a: Account | None, params: Params) -> dict[str, Any]:
    return _kline(engine, params, with_volume=False)


def orderbook(engine: Engine, _a: Account | None, params: Params) -> dict[str, Any]:
    _category(params)
    symbol = _listed_symbol(engine, params)
    return engine.market.orderbook_json(symbol, _int_param(params, "limit", 25, 1, 500))


# ---- private: account ------------------------------------------------------
def query_api(engine: Engine, account: Account | None, _p: Params) -> dict[str, Any]:
    acct = _acct(account)
    return {
        "id": str(acct.uid),
        "note": "tests.exchange_server",
        "apiKey": acct.api_key,
        "readOnly": 1 if acct.key.read_only else 0,
        "secret": "",
        "permissions": {
            "ContractTrade": ["Order", "Position"] if acct.key.trade else [],
            "Spot": ["SpotTrade"],
            "Wallet": ["AccountTransfer"] + (["Withdraw"] if acct.key.withdraw else []),
            "Options": [],
            "Derivatives": [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "NFT": [],
            "Affiliate": [],
        },
        "ips": list(acct.key.ips),
        "type": 1,
        "deadlineDay": 90,
        "expiredAt": "",
        "createdAt": "",
        "unified": 0,
        "uta": 1,
        "userID": acct.uid,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
        "parentUid": "0",
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }


def account_info(engine: Engine, account: Account | None, _p: Params) -> dict[str, Any]:
    return {
        "unifiedMarginStatus": 6,
        "marginMode": "REGULAR_MARGIN",
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
        "updatedTime": str(now_ms()),
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
    }


def coin_info(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    coins = ["USDT", *sorted({i.base for i in engine.market.instruments.values()})]
    wanted = param_text(params, "coin")
    return {
        "rows": [
            {"name": c, "coin": c, "remainAmount": "1000000", "chains": []}
            for c in coins
            if not wanted or c == wanted
        ]
    }


def wallet_balance(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    return views.wallet_json(engine, _acct(account), params)


def fee_rate(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    category = _category(params, "spot")
    symbol = param_text(params, "symbol")
    symbols = (
        [symbol] if symbol else (list(engine.market.instruments) if category == "linear" else [])
    )
    return {
        "list": [
            {
                "symbol": s,
                "baseCoin": "",
                "takerFeeRate": fmt_num(TAKER_FEE),
                "makerFeeRate": fmt_num(MAKER_FEE),
            }
            for s in symbols
        ]
    }


# ---- private: positions / orders -------------------------------------------
def position_list(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    return views.positions(engine, _acct(account), params)


def set_leverage(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    engine.set_leverage(_acct(account), params)
    return {}


def trading_stop(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    engine.trading_stop(_acct(account), params)
    return {}


def switch_mode(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    if param_text(params, "mode") == "3":
        raise BybitError(10001, "hedge mode is not supported by tests.exchange_server")
    raise BybitError(110025, "Position mode is not modified")


def order_create(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    order = engine.create_order(_acct(account), params)
    return {"orderId": order.order_id, "orderLinkId": order.link_id}


def order_cancel(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    order = engine.cancel_order(_acct(account), params)
    return {"orderId": order.order_id, "orderLinkId": order.link_id}


def order_cancel_all(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    done = engine.cancel_all(_acct(account), params)
    return {
        "list": [{"orderId": o.order_id, "orderLinkId": o.link_id} for o in done],
        "success": "1",
    }


def order_realtime(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    return views.realtime_orders(engine, _acct(account), params)


def order_history(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    return views.history_orders(engine, _acct(account), params)


def execution_list(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    return views.executions(engine, _acct(account), params)


def closed_pnl(engine: Engine, account: Account | None, params: Params) -> dict[str, Any]:
    return views.closed_pnl(engine, _acct(account), params)


ROUTES: dict[tuple[str, str], tuple[bool, Handler]] = {
    ("GET", "/v5/market/time"): (False, market_time),
    ("GET", "/v5/market/instruments-info"): (False, instruments_info),
    ("GET", "/v5/market/tickers"): (False, tickers),
    ("GET", "/v5/market/kline"): (False, kline),
    ("GET", "/v5/market/mark-price-kline"): (False, price_kline),
    ("GET", "/v5/market/index-price-kline"): (False, price_kline),
    ("GET", "/v5/market/orderbook"): (False, orderbook),
    ("GET", "/v5/user/query-api"): (True, query_api),
    ("GET", "/v5/account/info"): (True, account_info),
    ("GET", "/v5/asset/coin/query-info"): (True, coin_info),
    ("GET", "/v5/account/wallet-balance"): (True, wallet_balance),
    ("GET", "/v5/account/fee-rate"): (True, fee_rate),
    ("GET", "/v5/position/list"): (True, position_list),
    ("POST", "/v5/position/set-leverage"): (True, set_leverage),
    ("POST", "/v5/position/trading-stop"): (True, trading_stop),
    ("POST", "/v5/position/switch-mode"): (True, switch_mode),
    ("POST", "/v5/order/create"): (True, order_create),
    ("POST", "/v5/order/cancel"): (True, order_cancel),
    ("POST", "/v5/order/cancel-all"): (True, order_cancel_all),
    ("GET", "/v5/order/realtime"): (True, order_realtime),
    ("GET", "/v5/order/history"): (True, order_history),
    ("GET", "/v5/execution/list"): (True, execution_list),
    ("GET", "/v5/position/closed-pnl"): (True, closed_pnl),
}
