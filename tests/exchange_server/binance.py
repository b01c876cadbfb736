"""A local Binance USDⓈ-M futures server on the Bybit server's matching engine.

    async with BinanceServer(symbols=10, seed=1) as server:
        server.add_account("key", "secret")
        exchange = server.ccxt("key", "secret")  # real ccxt.async_support.binanceusdm

The request pipeline, faults, stats and test controls are the Bybit server's; what differs
is the wire: `/fapi/*` routes (``binance_views``), the HMAC-SHA256 signature of the query
string plus the form body (``timestamp``, ``recvWindow``, ``X-MBX-APIKEY``), and errors as
``{"code": -2019, "msg": ...}`` with Binance's HTTP status. Rate limits answer HTTP 429
(``RATE_LIMIT``, ``HTTP_429``) or 418 (``HTTP_403``: the IP ban) with ``Retry-After``.

Orders Binance sends itself are modelled as it records them: a fired conditional order is
a matching-engine order of the conditional order's type (``TAKE_PROFIT_MARKET``,
``STOP_MARKET``), and ``liquidate`` closes a position with an IOC limit order named
``autoclose-…`` (``adl_autoclose`` for auto-deleveraging). Order ids rise with time, as
Binance's do (``/fapi/v1/allOrders`` pages by them).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import ccxt.async_support as ccxt_async
from aiohttp import web

from core.exchange.ccxt_venue import rebase_urls

from .binance_handlers import ROUTES
from .binance_views import BinanceError, binance_error
from .engine import Engine
from .faults import Fault, FaultKind
from .models import Account, BybitError, now_ms
from .server import ExchangeServer, _dumps

DEFAULT_RECV_WINDOW = 5000
FIRST_ORDER = 500_000_000  # order numbers start near Binance's own (~8 × 10⁹)


class RisingIdEngine(Engine):
    """The matching engine with ids that rise: their first 12 hex digits count up, so the
    order number derived from them (``binance_views.order_no``) grows with time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._count = itertools.count(FIRST_ORDER)

    def new_id(self) -> str:
        low = self._rng.getrandbits(80)
        return str(uuid.UUID(int=next(self._count) << 80 | low, version=4))


class BinanceServer(ExchangeServer):
    """Local fake Binance USDⓈ-M futures; ``hedge_mode`` holds the api keys whose account
    is in hedge mode (``dualSidePosition``), every other account is one-way."""

    engine_class = RisingIdEngine

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limit_response = FaultKind.HTTP_429  # how this venue says "too many"
        self.hedge_mode: set[str] = set()
        self._algos: dict[str, list[dict[str, Any]]] = {}  # api key → conditional orders
        # Binance's type of the orders it placed itself (fired conditional orders).
        self.order_types: dict[str, str] = {}

    def algos(self, acct: Account) -> list[dict[str, Any]]:
        """The account's conditional (TP/SL) orders, in every state."""
        return self._algos.setdefault(acct.api_key, [])

    def set_price(self, symbol: str, price: Decimal | str | float) -> None:
        """Move the price, then fire the conditional orders it crosses: each closes whatever
        position there is then, and one that finds none expires."""
        super().set_price(symbol, price)
        last = self.market.last(symbol)
        for acct in self.engine.accounts.values():
            for algo in self.algos(acct):
                if algo["symbol"] != symbol or algo["algoStatus"] != "NEW":
                    continue
                trigger = Decimal(algo["triggerPrice"])
                rising = (algo["orderType"] == "TAKE_PROFIT_MARKET") == (algo["side"] == "SELL")
                if not (last >= trigger if rising else last <= trigger):
                    continue
                algo["algoStatus"], algo["updateTime"] = "FINISHED", now_ms()
                size = acct.position(symbol).size
                if not size or (size > 0) != (algo["side"] == "SELL"):
                    algo["algoStatus"] = "EXPIRED"
                    continue
                fired = self.engine.create_order(
                    acct,
                    {"category": "linear", "symbol": symbol, "side": algo["side"].capitalize(),
                     "orderType": "Market", "qty": str(abs(size)), "reduceOnly": "true"},
                )  # fmt: skip
                self.order_types[fired.order_id] = algo["orderType"]

    def liquidate(self, api_key: str, symbol: str, price: str, *, adl: bool = False) -> None:
        """Move the price to `price` and close the account's whole position there, as
        Binance's liquidation engine does: an IOC limit order whose client id is
        ``autoclose-…`` (``adl_autoclose``, the same for every one, when it deleverages)."""
        self.set_price(symbol, price)
        acct = self.account(api_key)
        size = acct.position(symbol).size
        if not size:
            raise ValueError(f"{api_key} holds no {symbol} position to liquidate")
        cid = "adl_autoclose" if adl else f"autoclose-{now_ms()}{len(acct.orders):07d}"
        acct.by_link.pop(cid, None)
        self.engine.create_order(
            acct,
            {"category": "linear", "symbol": symbol, "side": "Sell" if size > 0 else "Buy",
             "orderType": "Limit", "qty": str(abs(size)), "price": price,
             "timeInForce": "IOC", "orderLinkId": cid, "reduceOnly": "true"},
        )  # fmt: skip

    async def __aenter__(self) -> BinanceServer:
        await self.start()
        return self

    def ccxt(self, api_key: str | None = None, secret: str | None = None, **kwargs: Any) -> Any:
        """A real ``ccxt.async_support.binanceusdm`` whose every URL points here."""
        config: dict[str, Any] = {"timeout": 10_000, "enableRateLimit": False, **kwargs}
        if api_key is not None:
            config["apiKey"], config["secret"] = api_key, secret
        exchange = ccxt_async.binanceusdm(config)
        exchange.urls["api"] = rebase_urls(exchange.urls["api"], self.base_url)
        exchange.timeout_on_exit = 0
        exchange.has["fetchCurrencies"] = False  # spot wallet endpoints are not modelled
        return exchange

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        refused, fault = await self._admit(request)
        if refused is not None:
            return refused
        route = ROUTES.get((method, path))
        if route is None:
            return _error(404, -5000, f"Path {path}, Method {method} is invalid")
        private, handler = route
        query = request.raw_path.partition("?")[2]
        body = await request.text() if method in ("POST", "PUT") else ""
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        try:
            account = self._signed(request, query, body, params) if private else None
            payload: Any = handler(self, account, params)
        except BybitError as err:  # the engine speaks Bybit: answer in Binance's words
            mapped = binance_error(err)
            return await self._answer(request, mapped.status, mapped.body(), fault)
        except BinanceError as err:
            if err.code in (-2014, -2015, -1022):
                self.stats.auth_failures += 1
            return await self._answer(request, err.status, err.body(), fault)
        return await self._answer(request, 200, payload, fault)

    async def _answer(
        self, request: web.Request, status: int, payload: Any, fault: Fault | None
    ) -> web.StreamResponse:
        if status == 200 or fault is not None:
            return await self._respond(request, payload, fault, private=False)
        return web.json_response(payload, status=status, dumps=_dumps)

    def _signed(
        self, request: web.Request, query: str, body: str, params: dict[str, str]
    ) -> Account:
        """HMAC-SHA256 (hex) of the total parameters, query string then body, as sent."""
        account = self.engine.accounts.get(request.headers.get("X-MBX-APIKEY", ""))
        if account is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        ts_text = params.get("timestamp", "")
        recv_text = params.get("recvWindow") or str(DEFAULT_RECV_WINDOW)
        if not ts_text.isdigit() or not recv_text.isdigit():
            raise BinanceError(400, -1102, "Mandatory parameter 'timestamp' was not sent.")
        now, ts, recv = int(time.time() * 1000), int(ts_text), int(recv_text)
        if recv > 60_000:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000")
        if not (now - recv <= ts < now + 1000):
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        total = query + body
        signed, _, signature = total.rpartition("&signature=")
        if not signature:
            raise BinanceError(400, -1102, "Mandatory parameter 'signature' was not sent.")
        expected = hmac.new(account.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        return account

    def _refusal(
        self, kind: FaultKind, fault: Fault | None, request: web.Request | None = None
    ) -> web.StreamResponse:
        if kind in (FaultKind.RATE_LIMIT, FaultKind.HTTP_429):
            msg = "Too many requests; current limit of IP is 2400 requests per minute."
            return _error(429, -1003, msg, {"Retry-After": "1"})
        if kind is FaultKind.HTTP_403:  # Binance bans an IP that keeps going after 429s
            msg = "Way too many requests; IP banned until further notice."
            return _error(418, -1003, msg, {"Retry-After": "2"})
        if kind is FaultKind.RET_CODE and fault is not None:
            return _error(400, fault.ret_code, fault.ret_msg)
        return super()._refusal(kind, fault, request)


def _error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"code": code, "msg": msg}, status=status, headers=headers, dumps=_dumps
    )
