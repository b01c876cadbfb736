"""A local OKX v5 (USDT swaps) server on the Bybit server's matching engine.

    async with OkxServer(symbols=10, seed=1) as server:
        server.add_account("key", "secret", passphrase="phrase")
        exchange = server.ccxt("key", "secret", "phrase")  # real ccxt.async_support.okx

The pipeline, faults, stats and test controls are the Bybit server's; the wire is OKX's:
``/api/v5/*`` routes (``okx_views``), OK-ACCESS-KEY/SIGN/TIMESTAMP/PASSPHRASE headers with
the base64 HMAC-SHA256 of timestamp + method + path (+ query) + body, and answers as
``{"code": "0", "msg": "", "data": [...]}``; a refused order says why in ``data[].sCode``.
Rate limits answer HTTP 429 with code 50011. ``long_short`` holds the api keys whose
account is in long/short position mode (every other account is in net mode);
``simple_mode`` those whose account is at level 1, which cannot trade swaps. TP/SL are
algo orders (``okx_algos``), kept in ``algos``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import ccxt.async_support as ccxt_async
from aiohttp import web

from core.exchange.ccxt_venue import rebase_urls

from .faults import Fault, FaultKind
from .models import Account, BybitError, Order
from .okx_algos import AlgoBook
from .okx_handlers import ROUTES
from .okx_views import OkxError, okx_error
from .server import ExchangeServer, _dumps


class OkxServer(ExchangeServer):
    """Local fake OKX: USDT-margined perpetual swaps only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limit_response = FaultKind.RATE_LIMIT  # how this venue says "too many"
        self.passphrases: dict[str, str] = {}
        self.long_short: set[str] = set()
        self.simple_mode: set[str] = set()  # account level 1: spot only
        self.algos = AlgoBook(self)  # TP/SL: algo orders, fired by the engine's price moves
        self.engine.listeners.append(self.algos.on_change)
        self.engine.price_listeners.append(self.algos.on_price)

    async def __aenter__(self) -> OkxServer:
        await self.start()
        return self

    def add_account(
        self,
        api_key: str,
        secret: str,
        balance_usdt: Decimal | str = Decimal("10000"),
        passphrase: str = "passphrase",
    ) -> Account:
        self.passphrases[api_key] = passphrase
        return super().add_account(api_key, secret, balance_usdt)

    def pos_side(self, acct: Account, order: Order) -> str:
        """``net`` in net mode; else the side of the position the order opens or closes."""
        if acct.api_key not in self.long_short:
            return "net"
        return "long" if (order.side == "Buy") != order.reduce_only else "short"

    def ccxt(
        self, api_key: str | None = None, secret: str | None = None, password: str = "", **kw: Any
    ) -> Any:
        """A real ``ccxt.async_support.okx`` whose every URL points here."""
        config: dict[str, Any] = {"timeout": 10_000, "enableRateLimit": False, **kw}
        if api_key is not None:
            config.update(apiKey=api_key, secret=secret, password=password)
        exchange = ccxt_async.okx(config)
        exchange.urls["api"] = rebase_urls(exchange.urls["api"], self.base_url)
        exchange.timeout_on_exit = 0
        exchange.has["fetchCurrencies"] = False  # the funding account is not modelled
        return exchange

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        refused, fault = await self._admit(request)
        if refused is not None:
            return refused
        route = ROUTES.get((method, path))
        if route is None:
            return _error(404, "50014", f"Path {method} {path} not found")
        private, handler = route
        query = request.raw_path.partition("?")[2]
        body = await request.text() if method == "POST" else ""
        try:
            params = _params(query, body)
            account = self._signed(request, query, body) if private else None
            data = handler(self, account, params)
            payload: Any = {"code": "0", "msg": "", "data": data}
        except BybitError as err:  # the engine speaks Bybit: answer in OKX's words
            payload = okx_error(err).body()
        except OkxError as err:
            if err.status == 401:
                self.stats.auth_failures += 1
                if fault is None:
                    return web.json_response(err.body(), status=401, dumps=_dumps)
            payload = err.body()
        return await self._respond(request, payload, fault, private=False)

    def _signed(self, request: web.Request, query: str, body: str) -> Account:
        headers = request.headers
        key = headers.get("OK-ACCESS-KEY", "")
        account = self.engine.accounts.get(key)
        if account is None:
            raise OkxError("50111", "Invalid OK-ACCESS-KEY", status=401)
        phrase = headers.get("OK-ACCESS-PASSPHRASE", "")
        if not phrase:
            raise OkxError("50103", "Request header OK-ACCESS-PASSPHRASE can not be empty", 401)
        if phrase != self.passphrases.get(key):
            raise OkxError("50105", "Request header OK-ACCESS-PASSPHRASE incorrect", 401)
        stamp = headers.get("OK-ACCESS-TIMESTAMP", "")
        try:
            sent = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP", 401) from None
        if abs(time.time() - sent) > 30:
            raise OkxError("50102", "Timestamp request expired", 401)
        path = request.path + (f"?{query}" if query else "")
        origin = stamp + request.method + path + body
        digest = hmac.new(account.secret.encode(), origin.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(
            base64.b64encode(digest).decode(), headers.get("OK-ACCESS-SIGN", "")
        ):
            raise OkxError("50113", "Invalid Sign", 401)
        return account

    def _refusal(
        self, kind: FaultKind, fault: Fault | None, request: web.Request | None = None
    ) -> web.StreamResponse:
        if kind in (FaultKind.RATE_LIMIT, FaultKind.HTTP_429, FaultKind.HTTP_403):
            return _error(429, "50011", "Too Many Requests")
        if kind is FaultKind.RET_CODE and fault is not None:
            return _error(200, str(fault.ret_code), fault.ret_msg)
        return super()._refusal(kind, fault, request)


def _params(query: str, body: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if body.strip():
        try:
            decoded = json.loads(body)
        except ValueError:
            raise OkxError("50002", "Json data format error") from None
        if isinstance(decoded, list):  # a batch: each entry is one request's parameters
            decoded = {"batch": [e for e in decoded if isinstance(e, dict)]}
        if not isinstance(decoded, dict):
            raise OkxError("50002", "Json data format error")
        params.update(decoded)
    return params


def _error(status: int, code: str, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg, "data": []}, status=status, dumps=_dumps)
