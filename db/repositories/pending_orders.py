"""Resting limit orders Tradewind placed, each with the moment it is to be cancelled.

Position sync notes the limit orders it sees open (with the owner's time-to-live); the
expiry job reads the due ones through the partial index `ix_pending_limit_expiry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.lifecycle import LimitStatus, Origin
from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx

OPEN = LimitStatus.OPEN.value  # written into statements: the partial index matches on text


@dataclass(slots=True, frozen=True)
class PendingOrder:
    user_id: int
    exchange: str
    account_type: str
    symbol: str
    side: str  # buy | sell
    client_order_id: str
    exchange_order_id: str
    price: Decimal
    qty: Decimal
    created_at: datetime
    expires_at: datetime
    strategy: str = Origin.MANUAL
    status: str = LimitStatus.OPEN
    order_row_id: int = 0


_COLUMNS = (
    "id, user_id, exchange, account_type, symbol, side, strategy, client_order_id, "
    "exchange_order_id, price, qty, status, created_at, expires_at"
)
_TRACK = f"""
INSERT INTO pending_limit_orders (user_id, exchange, account_type, symbol, side, strategy,
    client_order_id, exchange_order_id, price, qty, status, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{OPEN}', ?, ?)
ON CONFLICT (client_order_id) DO NOTHING
"""
_DUE = (
    f"SELECT {_COLUMNS} FROM pending_limit_orders "
    f"WHERE status = '{OPEN}' AND expires_at <= ? ORDER BY expires_at LIMIT ?"
)
_OPEN_FOR_USER = (
    f"SELECT {_COLUMNS} FROM pending_limit_orders WHERE user_id = ? AND status = '{OPEN}'"
)
# Accounts with a limit still resting: position sync reads them however old the order is.
_OPEN_ACCOUNTS = (
    "SELECT user_id, exchange, account_type FROM pending_limit_orders "
    f"WHERE status = '{OPEN}' AND expires_at > ?"
)
_FINISH = f"UPDATE pending_limit_orders SET status = ? WHERE id = ? AND status = '{OPEN}'"

HOT_QUERIES = (
    HotQuery("pending_orders.due", _DUE, (0, 100)),
    HotQuery("pending_orders.open_for_user", _OPEN_FOR_USER, (1,)),
    HotQuery("pending_orders.open_accounts", _OPEN_ACCOUNTS, (0,)),
)


class PendingOrderRepository(Repository):
    """SQL for pending_limit_orders."""

    async def track_many(self, orders: Sequence[PendingOrder], tx: Tx | None = None) -> int:
        """Start tracking resting orders; one already tracked is left as it is."""
        rows = [
            (
                o.user_id,
                o.exchange,
                o.account_type,
                o.symbol,
                o.side,
                o.strategy,
                o.client_order_id,
                o.exchange_order_id,
                str(o.price),
                str(o.qty),
                to_ms(o.created_at),
                to_ms(o.expires_at),
            )
            for o in orders
        ]
        async with self._tx(tx) as t:
            return await t.executemany("pending_orders.track_many", _TRACK, rows)

    async def due(self, now: datetime, limit: int = 200) -> list[PendingOrder]:
        """Open orders whose time is up, the longest overdue first."""
        rows = await self.store.fetchall("pending_orders.due", _DUE, (to_ms(now), limit))
        return [_record(row) for row in rows]

    async def open_for_user(self, user_id: int) -> list[PendingOrder]:
        rows = await self.store.fetchall("pending_orders.open_for_user", _OPEN_FOR_USER, (user_id,))
        return [_record(row) for row in rows]

    async def open_accounts(self, now: datetime) -> set[tuple[int, str, str]]:
        """(user, exchange, account type) of every account with a tracked order resting."""
        rows = await self.store.fetchall(
            "pending_orders.open_accounts", _OPEN_ACCOUNTS, (to_ms(now),)
        )
        return {(row[0], row[1], row[2]) for row in rows}

    async def finish_many(self, outcomes: Sequence[tuple[int, str]], tx: Tx | None = None) -> int:
        """Close tracked orders: (row id, expired | closed)."""
        rows = [(status, row_id) for row_id, status in outcomes]
        async with self._tx(tx) as t:
            return await t.executemany("pending_orders.finish_many", _FINISH, rows)


def _record(row: Row) -> PendingOrder:
    return PendingOrder(
        order_row_id=row["id"],
        user_id=row["user_id"],
        exchange=row["exchange"],
        account_type=row["account_type"],
        symbol=row["symbol"],
        side=row["side"],
        strategy=row["strategy"],
        client_order_id=row["client_order_id"],
        exchange_order_id=row["exchange_order_id"] or "",
        price=Decimal(row["price"]),
        qty=Decimal(row["qty"]),
        status=row["status"],
        created_at=from_ms_req(row["created_at"]),
        expires_at=from_ms_req(row["expires_at"]),
    )
