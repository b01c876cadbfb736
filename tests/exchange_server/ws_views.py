"""Bybit v5 websocket frames for engine state, and what an account last published.

The private topics carry the same objects as the REST lists (plus `category`), so the
shapes come from `views`. `Published` remembers what each topic last said about one
account; `changes` diffs the account against it and returns the frames to send, newest
state only: executions past the last one sent, then orders, positions and the wallet
whose content changed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .engine import Engine
from .models import Account
from .views import order_json, position_json, wallet_json

PRIVATE_TOPICS = ("execution", "order", "position", "wallet")


def frame(topic: str, data: Any, **extra: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"id": uuid.uuid4().hex, "topic": topic, "creationTime": now, "data": data, **extra}


def ticker_frame(engine: Engine, symbol: str) -> dict[str, Any]:
    """`tickers.SYMBOL`; sent whole (snapshot) every time, which a client merges as is."""
    now = int(time.time() * 1000)
    data = engine.market.ticker_json(symbol)
    return {"topic": f"tickers.{symbol}", "type": "snapshot", "data": data, "cs": now, "ts": now}


@dataclass
class Published:
    """What the private topics last told about one account."""

    executions: int = 0  # how many of `acct.executions` were sent
    orders: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    positions: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    wallet: tuple[Decimal, ...] = ()

    @classmethod
    def now(cls, engine: Engine, acct: Account) -> Published:
        """The account as it stands: a new connection hears only what changes after."""
        seen = cls()
        seen.changes(engine, acct)
        return seen

    def changes(self, engine: Engine, acct: Account) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        fresh = acct.executions[self.executions :]
        self.executions = len(acct.executions)
        if fresh:
            rows = [{"category": "linear", **row} for row in fresh]  # `seq` included, as Bybit
            out.append(("execution", frame("execution", rows)))
        orders = []
        for order in acct.orders.values():
            seen = (order.status, order.cum_qty, order.qty, order.updated, order.trigger_price)
            if self.orders.get(order.order_id) != seen:
                self.orders[order.order_id] = seen
                orders.append({"category": "linear", **order_json(engine, order)})
        if orders:
            out.append(("order", frame("order", orders)))
        positions = []
        for pos in acct.positions.values():
            mark = engine.market.tickers[pos.symbol].mark if pos.size else Decimal(0)
            state = (pos.size, pos.avg, pos.take_profit, pos.stop_loss, pos.seq, mark)
            if self.positions.get(pos.symbol, (Decimal(0),) * 6) != state:
                self.positions[pos.symbol] = state
                row = position_json(engine, acct, pos)
                positions.append({"category": "linear", "entryPrice": row["avgPrice"], **row})
        if positions:
            out.append(("position", frame("position", positions)))
        totals = engine.totals(acct)
        wallet = (acct.wallet, totals["equity"], totals["available"], totals["pos_im"])
        if wallet != self.wallet:
            self.wallet = wallet
            rows = wallet_json(engine, acct, {"accountType": "UNIFIED"})["list"]
            out.append(("wallet", frame("wallet", rows)))
        return out
