"""`/test/...` endpoints for a test driver in another process (`--control`): read the books,
move a price, switch random faults on or off, read which faults hit whom.

    GET    /test/orders              every account's orders: key, link id, status, fill
    POST   /test/price  {"symbol": "BTCUSDT", "price": "60100"}
    POST   /test/chaos  {"rate": 0.2, "kinds": ["http_5xx", ...], "seed": 1,
                         "paths": {"accept_then_drop": "/v5/order/create"}}
    DELETE /test/chaos
    GET    /test/faults?since=EPOCH_S  injected faults: at, key, kind, path
    GET    /test/stats               requests served and faults injected, by kind

Never counted, delayed, rate limited or faulted themselves.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .faults import Chaos, FaultKind

if TYPE_CHECKING:
    from .server import ExchangeServer

PREFIX = "/test/"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, default=str), status=status, content_type="application/json"
    )


async def handle(server: ExchangeServer, request: web.Request) -> web.StreamResponse:
    route = (request.method, request.path.removeprefix(PREFIX))
    if route == ("GET", "orders"):
        return _json({"orders": _orders(server)})
    if route == ("POST", "price"):
        body = await request.json()
        server.set_price(str(body["symbol"]), str(body["price"]))
        return _json({"price": str(server.price(str(body["symbol"])))})
    if route == ("POST", "chaos"):
        body = await request.json()
        kinds = [FaultKind(k) for k in body["kinds"]]
        paths = {FaultKind(k): str(p) for k, p in (body.get("paths") or {}).items()}
        server.faults.chaos = Chaos(float(body["rate"]), kinds, int(body.get("seed", 0)), paths)
        return _json({"rate": server.faults.chaos.rate})
    if route == ("DELETE", "chaos"):
        server.faults.chaos = None
        return _json({"rate": 0})
    if route == ("GET", "faults"):
        since = float(request.query.get("since", "0"))
        hits = [
            {"at": f.at, "key": f.key, "kind": f.kind, "path": f.path}
            for f in server.faults.log
            if f.at >= since
        ]
        return _json({"faults": hits})
    if route == ("GET", "stats"):  # also served by the stream hub's route, same answer
        return _json(server.stats_json())
    return _json({"error": f"no test route {request.method} {request.path}"}, status=404)


def _orders(server: ExchangeServer) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "order_id": order.order_id,
            "link_id": order.link_id,
            "symbol": order.symbol,
            "side": order.side,
            "qty": str(order.qty),
            "status": order.status,
            "reduce_only": order.reduce_only,
            "filled": str(order.cum_qty),
            "create_type": order.create_type,
        }
        for key, account in server.engine.accounts.items()
        for order in account.orders.values()
    ]
