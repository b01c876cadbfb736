"""aiohttp server speaking enough Bybit v5 REST for ``ccxt.async_support.bybit``.

Request pipeline: stats → token bucket (refusals still pay the global latency) → faults
taken → latency (global + LATENCY faults) → "before" faults (refusals, drops) → route →
params → auth (private) → handler → "after" faults (accept-then-drop/hang, malformed,
truncated: the request has already been executed) → envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import socket
import struct
import time
from collections.abc import Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import ccxt.async_support as ccxt_async
from aiohttp import web

from . import control
from .ccxt_support import make_ccxt_bybit
from .engine import Engine
from .faults import TERMINAL_BEFORE, Fault, FaultKind, FaultPlan, Stats, TokenBucket
from .handlers import ROUTES
from .market import FULL_SYMBOL_COUNT, Instrument, MarketData
from .models import Account, BybitError, KeyPermissions
from .mover import MarketMover
from .ws import StreamHub

HOST = "127.0.0.1"  # never bind anything else
TICK_PATH = "/test/tick"
KEY_PATH = "/test/key"  # POST {"api_key": ..., "read_only", "trade", "withdraw", "ips"}
HANG_S = 60.0  # a hung request is answered by a dropped connection after this (clients gave up)
KEY_HEADERS = ("X-BAPI-API-KEY", "X-MBX-APIKEY", "OK-ACCESS-KEY")
_JSON = "application/json; charset=utf-8"
_dumps = functools.partial(json.dumps, separators=(",", ":"))


def envelope(code: int, msg: str, result: Any) -> dict[str, Any]:
    return {
        "retCode": code,
        "retMsg": msg,
        "result": result,
        "retExtInfo": {},
        "time": int(time.time() * 1000),
    }


class ExchangeServer:
    """Local fake Bybit. Use as ``async with ExchangeServer(...) as server:``.

    ``symbols``: an int (generated universe; 530 by default, 5000 for the large mode) or
    an explicit list of ``XXXUSDT`` names. ``latency_ms`` is added to every request.
    ``rate_limit_per_s`` enables a global token bucket; refusals answer with
    ``rate_limit_response`` (``RATE_LIMIT`` = retCode 10006, ``HTTP_429`` or ``HTTP_403``).
    """

    engine_class: type[Engine] = Engine  # a venue whose ids differ brings its own

    def __init__(
        self,
        symbols: int | Sequence[str] = FULL_SYMBOL_COUNT,
        seed: int = 0,
        latency_ms: float = 0.0,
        *,
        port: int = 0,
        rate_limit_per_s: float | None = None,
        rate_limit_burst: float | None = None,
        rate_limit_response: FaultKind | str = FaultKind.RATE_LIMIT,
        moving: bool = False,
        control: bool = False,
    ) -> None:
        self.market = MarketData(symbols if isinstance(symbols, int) else list(symbols), seed)
        self.engine = self.engine_class(self.market, seed)
        # Benchmarks only: `POST /test/tick` moves the market one step (see `mover`).
        self.mover = MarketMover(self.market, self.engine, seed) if moving else None
        # Test drivers in another process only: `/test/...` reads books, sets prices, faults.
        self.control = control
        self.faults = FaultPlan()
        self.stats = Stats()
        self.latency_ms = latency_ms
        # The websocket side (`ws`), on this same host and port; frames share the latency.
        self.streams = StreamHub(self.engine, lambda: self.latency_ms)
        self._port = port
        self.bucket: TokenBucket | None = None
        self.rate_limit_response = FaultKind(rate_limit_response)
        if rate_limit_per_s:
            self.set_rate_limit(rate_limit_per_s, rate_limit_burst)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.base_url = ""

    # ---- lifecycle ------------------------------------------------------
    async def start(self) -> ExchangeServer:
        app = web.Application(client_max_size=1 << 20)
        self.streams.add_routes(app, self.stats_json)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://{HOST}:{port}"
        return self

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ExchangeServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- test controls --------------------------------------------------
    def add_account(
        self, api_key: str, secret: str, balance_usdt: Decimal | str = Decimal("10000")
    ) -> Account:
        return self.engine.add_account(api_key, secret, Decimal(balance_usdt))

    def account(self, api_key: str) -> Account:
        return self.engine.accounts[api_key]

    def set_key(
        self,
        api_key: str,
        *,
        read_only: bool = False,
        trade: bool = True,
        withdraw: bool = False,
        ips: Sequence[str] = ("127.0.0.1",),
    ) -> None:
        """Set what `/v5/user/query-api` reports about one key (`KEY_PATH` does it over HTTP)."""
        self.engine.accounts[api_key].key = KeyPermissions(read_only, trade, withdraw, tuple(ips))

    def set_price(self, symbol: str, price: Decimal | str | float) -> None:
        """Move last/mark/index price; triggers conditional orders and crossed limit orders."""
        self.market.set_price(symbol, price)
        self.engine.on_price(symbol)

    def fill_part(self, api_key: str, link_id: str, qty: Decimal | str) -> None:
        """Fill part of the account's resting limit order (by client id) at its price."""
        acct = self.account(api_key)
        self.engine.fill_part(acct, acct.by_link[link_id], Decimal(qty))

    def price(self, symbol: str) -> Decimal:
        return self.market.last(symbol)

    def add_symbol(self, symbol: str, price: Decimal | str | float | None = None) -> Instrument:
        return self.market.add_symbol(symbol, price)

    def delist(self, symbol: str, status: str = "Closed") -> None:
        """``Closed`` hides it from default instrument/ticker lists; ``Delivering`` keeps it."""
        self.market.delist(symbol, status=status)

    def set_rate_limit(self, rate_per_s: float | None, burst: float | None = None) -> None:
        self.bucket = TokenBucket(rate_per_s, burst) if rate_per_s else None

    def ccxt(
        self, api_key: str | None = None, secret: str | None = None, **kwargs: Any
    ) -> ccxt_async.bybit:
        return make_ccxt_bybit(self.base_url, api_key, secret, **kwargs)

    def stats_json(self) -> dict[str, Any]:
        """What `GET /test/stats` answers (the benchmarks' and the soaks' one view)."""
        return {
            "total": self.stats.total,
            "requests": self.stats.total,
            "by_key": dict(self.stats.by_key),
            "faults": dict(self.stats.faults),
        }

    # ---- request pipeline -----------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        if self.mover is not None and (method, path) == ("POST", TICK_PATH):
            return self._tick(request)
        if (method, path) == ("POST", KEY_PATH):
            return await self._key_control(request)
        if self.control and path.startswith(control.PREFIX):
            return await control.handle(self, request)
        refused, fault = await self._admit(request)
        if refused is not None:
            return refused
        route = ROUTES.get((method, path))
        if route is None:
            body = envelope(
                10017,
                f"route not found: {method} {path} (not implemented by tests.exchange_server)",
                {},
            )
            return web.json_response(body, status=404, dumps=_dumps)
        private, handler = route
        raw_query = request.raw_path.partition("?")[2]
        body_text = await request.text() if method == "POST" else ""
        try:
            params = self._params(method, raw_query, body_text)
            account = self._authenticate(request, raw_query, body_text) if private else None
            payload = envelope(0, "OK", handler(self.engine, account, params))
        except BybitError as err:
            if err.code in (10002, 10003, 10004):
                self.stats.auth_failures += 1
            payload = envelope(err.code, err.msg, {})
        return await self._respond(request, payload, fault, private)

    async def _admit(self, request: web.Request) -> tuple[web.StreamResponse | None, Fault | None]:
        """What every venue's server does before routing: count the request, apply the
        rate limit, the latency and a fault that ends it early. Returns the response when
        the request ends here, and the fault (if any) still due on the answer."""
        method, path = request.method, request.path
        self.stats.requests[path] += 1
        self.stats.by_method[(method, path)] += 1
        if self.bucket is not None and not self.bucket.try_acquire():
            self.stats.rate_limited += 1
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            return self._refusal(self.rate_limit_response, None), None
        extra_ms, fault = self.faults.take(method, path)
        if self.latency_ms or extra_ms:
            await asyncio.sleep((self.latency_ms + extra_ms) / 1000)
        if fault is not None:
            self.stats.faults[fault.kind.value] += 1
            key = next((request.headers[h] for h in KEY_HEADERS if h in request.headers), "")
            self.faults.note(key, fault, path)
            if fault.kind is FaultKind.HANG:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), HANG_S)
                return self._drop(request), fault
            if fault.kind in TERMINAL_BEFORE:
                return self._refusal(fault.kind, fault, request), fault
        return None, fault

    def _tick(self, request: web.Request) -> web.StreamResponse:
        """One step of the moving market; not counted, not delayed, not rate limited."""
        assert self.mover is not None
        query = request.query
        counts = {
            name: int(query.get(name, default))
            for name, default in (
                ("breakouts", 10), ("listings", 0), ("delistings", 0), ("changes", 0),
            )
        }  # fmt: skip
        report = self.mover.tick(walk=float(query.get("walk", 0.0005)), **counts)
        return web.json_response(report.as_json(), dumps=_dumps)

    async def _key_control(self, request: web.Request) -> web.StreamResponse:
        """The test control of a key's reported permissions; not counted, delayed or faulted."""
        try:
            body = json.loads(await request.text())
            options = {k: body[k] for k in ("read_only", "trade", "withdraw", "ips") if k in body}
            self.set_key(str(body["api_key"]), **options)
        except (ValueError, KeyError, TypeError) as err:
            return web.json_response({"ok": False, "error": repr(err)}, status=400, dumps=_dumps)
        return web.json_response({"ok": True}, dumps=_dumps)

    @staticmethod
    def _params(method: str, raw_query: str, body: str) -> dict[str, Any]:
        params: dict[str, Any] = dict(parse_qsl(raw_query, keep_blank_values=True))
        if method == "POST" and body.strip():
            try:
                decoded = json.loads(body)
            except ValueError:
                raise BybitError(10001, "params error: request body is not valid JSON") from None
            if not isinstance(decoded, dict):
                raise BybitError(10001, "params error: request body must be a JSON object")
            params.update({k: v for k, v in decoded.items() if v is not None})
        return params

    def _authenticate(self, request: web.Request, raw_query: str, body: str) -> Account:
        """Bybit v5 HMAC-SHA256: hex(HMAC(secret, ts + key + recvWindow + query|body))."""
        key = request.headers.get("X-BAPI-API-KEY", "")
        account = self.engine.accounts.get(key)
        if account is None:
            raise BybitError(10003, "API key is invalid.")
        ts_text = request.headers.get("X-BAPI-TIMESTAMP", "")
        recv_text = request.headers.get("X-BAPI-RECV-WINDOW", "") or "5000"
        now = int(time.time() * 1000)
        if not ts_text.isdigit() or not recv_text.isdigit():
            raise BybitError(10001, "params error: invalid timestamp or recv_window header")
        ts, recv = int(ts_text), int(recv_text)
        if not (now - recv <= ts < now + 1000):
            raise BybitError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{ts}],server_timestamp[{now}],recv_window[{recv}]",
            )
        origin = ts_text + key + request.headers.get("X-BAPI-RECV-WINDOW", "")
        origin += body if request.method == "POST" else raw_query
        expected = hmac.new(account.secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
        given = request.headers.get("X-BAPI-SIGN", "").lower()
        if not hmac.compare_digest(expected, given):
            raise BybitError(10004, f"error sign! origin_string[{origin}]")
        self.stats.by_key[key] += 1
        return account

    def _limit_headers(self, refused: bool) -> dict[str, str]:
        reset = self.bucket.reset_at_ms() if self.bucket else int(time.time() * 1000)
        if refused and not self.bucket:
            reset += 1000
        status = int(self.bucket.tokens) if self.bucket else 99
        limit = int(self.bucket.capacity) if self.bucket else 100
        return {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(0 if refused else status),
            "X-Bapi-Limit-Reset-Timestamp": str(reset),
        }

    def _refusal(
        self, kind: FaultKind, fault: Fault | None, request: web.Request | None = None
    ) -> web.StreamResponse:
        if kind is FaultKind.RATE_LIMIT:
            body = envelope(10006, "Too many visits!", {})
            return web.json_response(body, headers=self._limit_headers(True), dumps=_dumps)
        if kind is FaultKind.HTTP_429:
            return web.Response(
                status=429, text="Too Many Requests", headers=self._limit_headers(True)
            )
        if kind is FaultKind.HTTP_403:
            return web.Response(
                status=403, text="403 Forbidden: access too frequent", content_type="text/html"
            )
        if kind is FaultKind.HTTP_5XX:
            status = fault.status if fault else 503
            html = f"<html><body><h1>{status} Service Unavailable</h1></body></html>"
            return web.Response(status=status, text=html, content_type="text/html")
        if kind is FaultKind.RET_CODE and fault is not None:
            return web.json_response(envelope(fault.ret_code, fault.ret_msg, {}), dumps=_dumps)
        assert request is not None
        if kind is FaultKind.RESET:
            return self._reset(request)
        assert kind is FaultKind.DROP, kind
        return self._drop(request)

    @staticmethod
    def _reset(request: web.Request) -> web.StreamResponse:
        """Abort with a TCP RST (linger 0), as a crashed proxy or a firewall does."""
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=204)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)

    async def _respond(
        self, request: web.Request, payload: dict[str, Any], fault: Fault | None, private: bool
    ) -> web.StreamResponse:
        headers = self._limit_headers(False) if private else {}
        text = _dumps(payload)
        kind = fault.kind if fault is not None else None
        if kind is FaultKind.ACCEPT_THEN_DROP:
            return self._drop(request)
        if kind is FaultKind.ACCEPT_THEN_HANG:
            await self._closing.wait()
            return self._drop(request)
        if kind is FaultKind.MALFORMED:
            return web.Response(
                text=text[: max(1, len(text) // 2)],
                content_type="application/json",
                headers=headers,
            )
        if kind is FaultKind.TRUNCATED:
            data = text.encode()
            response = web.StreamResponse(headers={"Content-Type": _JSON, **headers})
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            if request.transport is not None:
                request.transport.close()
            return response
        return web.Response(body=text.encode(), headers={"Content-Type": _JSON, **headers})
