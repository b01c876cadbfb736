"""Order intents: every order is written down, with its client order id, before it is sent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.exchange.models import Order
from core.lifecycle import MAY_HAVE_OPENED, UNRESOLVED, IntentStatus, sql_list
from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, from_ms_req, to_dec, to_ms, to_text
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class IntentRecord:
    client_order_id: str
    user_id: int
    exchange: str
    account_type: str
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal | None
    reduce_only: bool
    leverage: int | None
    take_profit: Decimal | None
    stop_loss: Decimal | None
    origin: str
    signal_id: int | None
    status: IntentStatus
    exchange_order_id: str | None
    filled_qty: Decimal | None
    avg_price: Decimal | None
    fee: Decimal | None
    error: str | None
    attempts: int
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    post_only: bool = False


@dataclass(slots=True, frozen=True)
class NewIntent:
    client_order_id: str
    user_id: int
    exchange: str
    account_type: str
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    origin: str
    status: IntentStatus = IntentStatus.PENDING
    price: Decimal | None = None
    reduce_only: bool = False
    leverage: int | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    signal_id: int | None = None
    expires_at: datetime | None = None
    post_only: bool = False


@dataclass(slots=True, frozen=True)
class IntentUpdate:
    status: IntentStatus
    exchange_order_id: str | None = None
    filled_qty: Decimal | None = None
    avg_price: Decimal | None = None
    fee: Decimal | None = None
    error: str | None = None

    @classmethod
    def of_order(cls, order: Order) -> IntentUpdate:
        """What the exchange's record of the order settles its intent to."""
        return cls(
            IntentStatus.of_order(order.status),
            exchange_order_id=order.order_id,
            filled_qty=order.filled_qty,
            avg_price=order.avg_price,
            fee=order.fee,
        )


_COLUMNS = (
    "client_order_id, user_id, exchange, account_type, symbol, side, order_type, qty, price, "
    "reduce_only, leverage, take_profit, stop_loss, origin, signal_id, status, "
    "exchange_order_id, filled_qty, avg_price, fee, error, attempts, expires_at, created_at, "
    "updated_at, post_only"
)
_INSERT = """
INSERT INTO order_intents (client_order_id, user_id, exchange, account_type, symbol, side,
    order_type, qty, price, reduce_only, leverage, take_profit, stop_loss, origin, signal_id,
    status, expires_at, created_at, updated_at, post_only)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (client_order_id) DO NOTHING
"""
_GET = f"SELECT {_COLUMNS} FROM order_intents WHERE client_order_id = ?"
_UNRESOLVED = (
    f"SELECT {_COLUMNS} FROM order_intents "
    f"WHERE status IN {sql_list(UNRESOLVED)} AND updated_at <= ? ORDER BY updated_at"
)
_FILLED_CLOSES = (
    f"SELECT {_COLUMNS} FROM order_intents "
    f"WHERE reduce_only = 1 AND status = '{IntentStatus.FILLED}' AND updated_at >= ? "
    "ORDER BY updated_at"
)
_FOR_USER = (
    f"SELECT {_COLUMNS} FROM order_intents WHERE user_id = ? ORDER BY created_at DESC LIMIT ?"
)
_EXPIRE_DRAFTS = (
    f"UPDATE order_intents SET status = '{IntentStatus.EXPIRED}', updated_at = :now "
    f"WHERE status = '{IntentStatus.DRAFT}' AND expires_at <= :now"
)
# The newest order of ours that opened (or may have opened) a position on one account and
# symbol; served by ix_order_intents_opening, newest first, so LIMIT 1 stops at the match.
_OPENING = (
    f"SELECT {_COLUMNS} FROM order_intents "
    "WHERE user_id = :user AND symbol = :symbol AND exchange = :exchange "
    "AND account_type = :account_type AND side = :side AND reduce_only = 0 "
    "AND status IN {statuses} ORDER BY created_at DESC LIMIT 1"
)
_LATEST_OPENING = _OPENING.format(statuses=sql_list(MAY_HAVE_OPENED))
_LATEST_FILLED_OPENING = _OPENING.format(statuses=sql_list(frozenset({IntentStatus.FILLED})))
_MARK_SENT = (
    f"UPDATE order_intents SET status = '{IntentStatus.SENT}', attempts = attempts + 1, "
    "updated_at = ? WHERE client_order_id = ?"
)
_CLAIM_DRAFT = (
    f"UPDATE order_intents SET status = '{IntentStatus.PENDING}', updated_at = ? "
    f"WHERE client_order_id = ? AND user_id = ? AND status = '{IntentStatus.DRAFT}' "
    "AND expires_at > ?"
)
_CLOSE_DRAFT = (
    "UPDATE order_intents SET status = ?, updated_at = ? "
    f"WHERE client_order_id = ? AND user_id = ? AND status = '{IntentStatus.DRAFT}'"
)

_OPENING_PARAMS = {"user": 1, "exchange": "x", "account_type": "y", "symbol": "z", "side": "buy"}

HOT_QUERIES = (
    HotQuery("intents.get", _GET, ("tw0",)),
    HotQuery("intents.expire_drafts", _EXPIRE_DRAFTS, {"now": 0}),
    HotQuery("intents.unresolved", _UNRESOLVED, (0,)),
    HotQuery("intents.for_user", _FOR_USER, (1, 20)),
    HotQuery("intents.latest_opening", _LATEST_OPENING, _OPENING_PARAMS),
    HotQuery("intents.latest_filled_opening", _LATEST_FILLED_OPENING, _OPENING_PARAMS),
)


class IntentRepository(Repository):
    """SQL for order_intents."""

    async def create(self, new: NewIntent, now: datetime, tx: Tx | None = None) -> bool:
        """Record an intent; False if one with this client order id already exists."""
        async with self._tx(tx) as t:
            changed = await t.execute("intents.create", _INSERT, _insert_params(new, now))
        return changed == 1

    async def create_many(
        self, intents: list[NewIntent], now: datetime, tx: Tx | None = None
    ) -> int:
        """Record many intents in one statement (auto-trading fans one signal out)."""
        async with self._tx(tx) as t:
            return await t.executemany(
                "intents.create_many", _INSERT, [_insert_params(i, now) for i in intents]
            )

    async def recorded(self, client_order_ids: Sequence[str]) -> set[str]:
        """Which of these client order ids have an intent (primary-key lookups, in chunks)."""
        found: set[str] = set()
        for start in range(0, len(client_order_ids), 500):
            chunk = tuple(client_order_ids[start : start + 500])
            sql = (
                "SELECT client_order_id FROM order_intents "
                f"WHERE client_order_id IN ({','.join('?' * len(chunk))})"
            )
            rows = await self.store.fetchall("intents.recorded", sql, chunk)
            found.update(row["client_order_id"] for row in rows)
        return found

    async def get(self, client_order_id: str) -> IntentRecord | None:
        row = await self.store.fetchone("intents.get", _GET, (client_order_id,))
        return None if row is None else _record(row)

    async def mark_sent(self, client_order_id: str, now: datetime) -> None:
        """Committed before the request leaves, so a crash mid-flight is known to be unsure."""
        await self.store.execute("intents.mark_sent", _MARK_SENT, (to_ms(now), client_order_id))

    async def update(
        self, client_order_id: str, change: IntentUpdate, now: datetime, tx: Tx | None = None
    ) -> None:
        await self.update_many([client_order_id], change, now, tx)

    async def update_many(
        self,
        client_order_ids: Iterable[str],
        change: IntentUpdate,
        now: datetime,
        tx: Tx | None = None,
    ) -> None:
        """Apply one change to several intents in one statement batch."""
        fields = (
            change.status.value,
            change.exchange_order_id,
            to_text(change.filled_qty),
            to_text(change.avg_price),
            to_text(change.fee),
            change.error,
            to_ms(now),
        )
        async with self._tx(tx) as t:
            await t.executemany(
                "intents.update",
                "UPDATE order_intents SET status = ?, "
                "exchange_order_id = COALESCE(?, exchange_order_id), "
                "filled_qty = COALESCE(?, filled_qty), avg_price = COALESCE(?, avg_price), "
                "fee = COALESCE(?, fee), error = ?, updated_at = ? WHERE client_order_id = ?",
                [(*fields, cid) for cid in client_order_ids],
            )

    async def filled_closes(self, since: datetime) -> list[IntentRecord]:
        """Closing orders of ours that filled since `since` (a start-up check of the ledger)."""
        rows = await self.store.fetchall("intents.filled_closes", _FILLED_CLOSES, (to_ms(since),))
        return [_record(row) for row in rows]

    async def unresolved(self, older_than: datetime) -> list[IntentRecord]:
        """Intents whose outcome is not known yet (pending, sent or unknown)."""
        rows = await self.store.fetchall("intents.unresolved", _UNRESOLVED, (to_ms(older_than),))
        return [_record(row) for row in rows]

    async def for_user(self, user_id: int, limit: int = 20) -> list[IntentRecord]:
        rows = await self.store.fetchall("intents.for_user", _FOR_USER, (user_id, limit))
        return [_record(row) for row in rows]

    async def latest_opening(
        self,
        user_id: int,
        exchange: str,
        account_type: str,
        symbol: str,
        side: str,
        *,
        filled_only: bool = False,
    ) -> IntentRecord | None:
        """The newest order of ours on this account that may have opened a position on
        `symbol` with an order to `side` (filled, resting or sent; only filled with
        `filled_only`), or None."""
        name, sql = (
            ("intents.latest_filled_opening", _LATEST_FILLED_OPENING)
            if filled_only
            else ("intents.latest_opening", _LATEST_OPENING)
        )
        params = {
            "user": user_id,
            "exchange": exchange,
            "account_type": account_type,
            "symbol": symbol,
            "side": side,
        }
        row = await self.store.fetchone(name, sql, params)
        return None if row is None else _record(row)

    async def claim_draft(self, client_order_id: str, user_id: int, now: datetime) -> bool:
        """Move the owner's unexpired draft to pending; False if another press got it first."""
        changed = await self.store.execute(
            "intents.claim_draft",
            _CLAIM_DRAFT,
            (to_ms(now), client_order_id, user_id, to_ms(now)),
        )
        return changed == 1

    async def close_draft(
        self, client_order_id: str, user_id: int, new_status: IntentStatus, now: datetime
    ) -> bool:
        """End the owner's draft as cancelled or expired; False if it is no draft any more."""
        changed = await self.store.execute(
            "intents.close_draft",
            _CLOSE_DRAFT,
            (new_status.value, to_ms(now), client_order_id, user_id),
        )
        return changed == 1

    async def expire_drafts(self, now: datetime) -> int:
        """End every confirmation card left unpressed past its expiry; return how many."""
        return await self.store.execute(
            "intents.expire_drafts", _EXPIRE_DRAFTS, {"now": to_ms(now)}
        )


def _insert_params(new: NewIntent, now: datetime) -> tuple[object, ...]:
    return (
        new.client_order_id,
        new.user_id,
        new.exchange,
        new.account_type,
        new.symbol,
        new.side,
        new.order_type,
        str(new.qty),
        to_text(new.price),
        int(new.reduce_only),
        new.leverage,
        to_text(new.take_profit),
        to_text(new.stop_loss),
        new.origin,
        new.signal_id,
        new.status.value,
        None if new.expires_at is None else to_ms(new.expires_at),
        to_ms(now),
        to_ms(now),
        int(new.post_only),
    )


def _record(row: Row) -> IntentRecord:
    return IntentRecord(
        client_order_id=row["client_order_id"],
        user_id=row["user_id"],
        exchange=row["exchange"],
        account_type=row["account_type"],
        symbol=row["symbol"],
        side=row["side"],
        order_type=row["order_type"],
        qty=Decimal(row["qty"]),
        price=to_dec(row["price"]),
        reduce_only=bool(row["reduce_only"]),
        leverage=row["leverage"],
        take_profit=to_dec(row["take_profit"]),
        stop_loss=to_dec(row["stop_loss"]),
        origin=row["origin"],
        signal_id=row["signal_id"],
        status=IntentStatus(row["status"]),
        exchange_order_id=row["exchange_order_id"],
        filled_qty=to_dec(row["filled_qty"]),
        avg_price=to_dec(row["avg_price"]),
        fee=to_dec(row["fee"]),
        error=row["error"],
        attempts=row["attempts"],
        expires_at=from_ms(row["expires_at"]),
        created_at=from_ms_req(row["created_at"]),
        updated_at=from_ms_req(row["updated_at"]),
        post_only=bool(row["post_only"]),
    )
