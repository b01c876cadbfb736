"""The websocket side of the local Bybit: `/v5/public/linear` and `/v5/private`.

Served on the REST server's own host and port, so a client rebased to `http://H:P` streams
from `ws://H:P` with Bybit's paths. Private connections authenticate with Bybit's message
`{"op": "auth", "args": [api_key, expires, hex(HMAC_SHA256(secret, "GET/realtime" +
expires))]}` and then subscribe to `execution`, `order`, `position` and `wallet`; every
engine change is pushed to the account's connections (`ws_views.Published` says what
changed). Public connections subscribe to `tickers.SYMBOL`. Both answer `ping`.

Faults (`StreamFaults`) act on the next frames a connection would send:
    drop       the connection closes instead (the frame is lost)
    stall      the connection goes silent: no frames, no pongs, until the client gives up
    malformed  the frame is sent cut in half (not JSON)
    miss       the frame is never sent
`latency_ms` delays every frame, like the REST side's latency.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import WSMsgType, web

from .engine import Engine
from .models import Account
from .ws_views import PRIVATE_TOPICS, Published, ticker_frame

PUBLIC_PATH = "/v5/public/linear"
PRIVATE_PATH = "/v5/private"
FAULT_PATH = "/test/ws-fault"
STATS_PATH = "/test/stats"


class StreamFaultKind(StrEnum):
    DROP = "drop"
    STALL = "stall"
    MALFORMED = "malformed"
    MISS = "miss"


@dataclass
class StreamFault:
    kind: StreamFaultKind
    topic: str | None = None  # "execution", "order", ..., "tickers.BTCUSDT"; None = any
    times: int = 1
    hits: int = 0

    def matches(self, topic: str) -> bool:
        return self.hits < self.times and (self.topic is None or self.topic == topic)


class StreamFaults:
    def __init__(self) -> None:
        self.faults: list[StreamFault] = []

    def add(
        self, kind: StreamFaultKind | str, topic: str | None = None, times: int = 1
    ) -> StreamFault:
        fault = StreamFault(StreamFaultKind(kind), topic, times)
        self.faults.append(fault)
        return fault

    def take(self, topic: str) -> StreamFault | None:
        for fault in self.faults:
            if fault.matches(topic):
                fault.hits += 1
                self.faults = [f for f in self.faults if f.hits < f.times]
                return fault
        return None

    def clear(self) -> None:
        self.faults.clear()


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    conn_id: str
    queue: asyncio.Queue[tuple[float, str | None]] = field(default_factory=asyncio.Queue)
    account: Account | None = None
    topics: set[str] = field(default_factory=set)
    stalled: bool = False


class StreamHub:
    """Every websocket connection of one server, and what each account last published."""

    def __init__(self, engine: Engine, latency_ms: Callable[[], float] = lambda: 0.0) -> None:
        self.engine = engine
        self.latency_ms = latency_ms
        self.faults = StreamFaults()
        self.stats: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._connections: set[_Connection] = set()
        self._published: dict[str, Published] = {}  # api key → what its topics last said
        engine.listeners.append(self.on_change)
        engine.price_listeners.append(self.on_price)

    def add_routes(
        self, app: web.Application, rest_stats: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        """The two stream paths, the fault control and `GET /test/stats` (REST requests in
        total and per API key, and these streams' counters: for benchmarks in another
        process)."""
        app.router.add_get(PUBLIC_PATH, self.public)
        app.router.add_get(PRIVATE_PATH, self.private)
        app.router.add_post(FAULT_PATH, self.control)

        async def stats(request: web.Request) -> web.StreamResponse:
            rest = rest_stats() if rest_stats is not None else {}
            return web.json_response(
                {**rest, "streams": dict(self.stats), "connections": self.connections()}
            )

        app.router.add_get(STATS_PATH, stats)

    def connections(self, api_key: str | None = None) -> int:
        """Open connections (of one account, or all)."""
        return sum(
            1
            for c in self._connections
            if api_key is None or (c.account is not None and c.account.api_key == api_key)
        )

    def drop(self, api_key: str | None = None) -> int:
        """Close the connections of one account (or all) now, as a network drop would."""
        hit = [
            c
            for c in self._connections
            if api_key is None or (c.account is not None and c.account.api_key == api_key)
        ]
        for conn in hit:
            conn.queue.put_nowait((0.0, None))
        return len(hit)

    # ---- engine events --------------------------------------------------
    def on_change(self, acct: Account) -> None:
        published = self._published.get(acct.api_key)
        if published is None:
            return  # nobody listens to this account
        for topic, body in published.changes(self.engine, acct):
            text = json.dumps(body, separators=(",", ":"))
            for conn in self._connections:
                if conn.account is acct and topic in conn.topics:
                    self._send(conn, topic, text)

    def on_price(self, symbol: str) -> None:
        topic = f"tickers.{symbol}"
        listeners = [c for c in self._connections if topic in c.topics]
        if listeners:
            text = json.dumps(ticker_frame(self.engine, symbol), separators=(",", ":"))
            for conn in listeners:
                self._send(conn, topic, text)

    def _send(self, conn: _Connection, topic: str, text: str) -> None:
        if conn.stalled:
            return
        fault = self.faults.take(topic)
        kind = fault.kind if fault is not None else None
        if kind is not None:
            self.stats[f"fault_{kind.value}"] += 1
        if kind is StreamFaultKind.MISS:
            return
        if kind is StreamFaultKind.STALL:
            conn.stalled = True
            return
        if kind is StreamFaultKind.DROP:
            conn.queue.put_nowait((0.0, None))
            return
        if kind is StreamFaultKind.MALFORMED:
            text = text[: len(text) // 2]
        self.stats[f"frames_{topic.partition('.')[0]}"] += 1
        conn.queue.put_nowait((time.monotonic() + self.latency_ms() / 1000, text))

    # ---- connections ----------------------------------------------------
    async def public(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, private=False)

    async def private(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, private=True)

    async def _serve(self, request: web.Request, *, private: bool) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws, f"conn-{next(self._ids)}")
        self._connections.add(conn)
        self.stats["connections"] += 1
        sender = asyncio.ensure_future(self._sender(conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT or conn.stalled:
                    continue
                try:
                    body = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(body, dict):
                    self._answer(conn, body, private)
        finally:
            self._connections.discard(conn)
            sender.cancel()
            if conn.account is not None and not self.connections(conn.account.api_key):
                self._published.pop(conn.account.api_key, None)
        return ws

    async def _sender(self, conn: _Connection) -> None:
        while True:
            due, text = await conn.queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if text is None:
                self.stats["drops"] += 1
                await conn.ws.close()
                return
            if conn.stalled:
                continue
            try:
                await conn.ws.send_str(text)
            except ConnectionError:
                return

    def _answer(self, conn: _Connection, body: dict[str, Any], private: bool) -> None:
        op, req_id = body.get("op"), body.get("req_id")
        reply: dict[str, Any] = {"success": True, "ret_msg": "", "conn_id": conn.conn_id}
        if req_id is not None:
            reply["req_id"] = req_id
        args = body.get("args") or []
        if op == "ping":
            if private:
                reply = {"req_id": req_id, "op": "pong", "args": [str(int(time.time() * 1000))]}
                reply["conn_id"] = conn.conn_id
            else:
                reply |= {"ret_msg": "pong", "op": "ping"}
        elif op == "auth" and private:
            reply["op"] = "auth"
            error = self._authenticate(conn, args)
            if error:
                reply |= {"success": False, "ret_msg": error}
        elif op in ("subscribe", "unsubscribe"):
            reply["op"] = op
            error = self._subscribe(conn, op, args, private)
            if error:
                reply |= {"success": False, "ret_msg": error}
        else:
            reply |= {"success": False, "ret_msg": f"unknown op {op!r}", "op": op}
        conn.queue.put_nowait((0.0, json.dumps(reply, separators=(",", ":"))))

    def _authenticate(self, conn: _Connection, args: list[Any]) -> str:
        """Bybit's check: a known key, an expiry still ahead, the HMAC of "GET/realtime"."""
        self.stats["auths"] += 1
        if len(args) != 3:
            return "Params Error"
        key, expires, signature = (str(a) for a in args)
        account = self.engine.accounts.get(key)
        if account is None:
            self.stats["auth_failures"] += 1
            return "Invalid apikey"
        if not expires.isdigit() or int(expires) <= int(time.time() * 1000):
            self.stats["auth_failures"] += 1
            return "Params Error: expires is in the past"
        origin = f"GET/realtime{expires}".encode()
        expected = hmac.new(account.secret.encode(), origin, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            self.stats["auth_failures"] += 1
            return "Invalid sign"
        conn.account = account
        if account.api_key not in self._published:
            self._published[account.api_key] = Published.now(self.engine, account)
        return ""

    def _subscribe(self, conn: _Connection, op: str, args: list[Any], private: bool) -> str:
        topics = [str(a) for a in args]
        for topic in topics:
            if private and topic not in PRIVATE_TOPICS:
                return f"topic {topic} is not a private topic"
            if not private and not (
                topic.startswith("tickers.") and topic[8:] in self.engine.market.instruments
            ):
                return f"Invalid topic: {topic}"
        if private and conn.account is None:
            return "Request not authorized"
        if op == "unsubscribe":
            conn.topics.difference_update(topics)
            return ""
        conn.topics.update(topics)
        for topic in topics:
            if topic.startswith("tickers."):  # a ticker subscription starts with a snapshot
                text = json.dumps(ticker_frame(self.engine, topic[8:]), separators=(",", ":"))
                self._send(conn, topic, text)
        return ""

    # ---- test control ---------------------------------------------------
    async def control(self, request: web.Request) -> web.StreamResponse:
        """`POST /test/ws-fault {"kind": "drop", "topic": "execution", "times": 1}`;
        `{"kind": "drop_now", "api_key": ...}` closes connections at once, `"clear"` empties."""
        body = await request.json()
        kind = str(body.get("kind", ""))
        if kind == "clear":
            self.faults.clear()
            return web.json_response({"ok": True})
        if kind == "drop_now":
            return web.json_response({"dropped": self.drop(body.get("api_key"))})
        try:
            self.faults.add(kind, body.get("topic"), int(body.get("times", 1)))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})
