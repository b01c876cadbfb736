"""Active positions: what Tradewind last saw open on each account, reconciled by position sync.

The table holds only open positions, so reading all of it is reading what is open; it is
read in id order, one bounded page at a time. Accounts that traded recently (orders in the
last hour) come from `order_intents` through `ix_order_intents_created`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.lifecycle import NEVER_SENT, Origin, sql_list
from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_dec, to_ms, to_text
from db.store import Row, Tx

AccountKey = tuple[int, str, str]  # (user id, exchange, account type)


@dataclass(slots=True, frozen=True)
class ActivePosition:
    """One open position as stored; `origin` and `signal_id` tell who opened it."""

    user_id: int
    exchange: str
    account_type: str
    symbol: str
    side: str  # long | short
    qty: Decimal
    entry_price: Decimal
    leverage: int
    opened_at: datetime
    updated_at: datetime
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    liq_price: Decimal | None = None
    origin: str = Origin.MANUAL
    signal_id: int | None = None
    position_id: int = 0

    @property
    def account(self) -> AccountKey:
        return (self.user_id, self.exchange, self.account_type)


_COLUMNS = (
    "id, user_id, exchange, account_type, symbol, side, qty, entry_price, leverage, "
    "take_profit, stop_loss, liq_price, origin, signal_id, opened_at, updated_at"
)
_PAGE = f"SELECT {_COLUMNS} FROM active_positions WHERE id > ? ORDER BY id LIMIT ?"
_FOR_USER = f"SELECT {_COLUMNS} FROM active_positions WHERE user_id = ?"
_RECENT_ACCOUNTS = (
    "SELECT user_id, exchange, account_type FROM order_intents "
    f"WHERE created_at >= ? AND status NOT IN {sql_list(NEVER_SENT)}"
)
# A new row keeps who opened it; an existing one takes the exchange's numbers.
_UPSERT = """
INSERT INTO active_positions (user_id, exchange, account_type, symbol, side, qty, entry_price,
    leverage, take_profit, stop_loss, liq_price, origin, signal_id, opened_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, exchange, account_type, symbol) DO UPDATE SET
    side = excluded.side, qty = excluded.qty, entry_price = excluded.entry_price,
    leverage = excluded.leverage, take_profit = excluded.take_profit,
    stop_loss = excluded.stop_loss, liq_price = excluded.liq_price,
    updated_at = excluded.updated_at
"""
_OPENED = """
INSERT INTO active_positions (user_id, exchange, account_type, symbol, side, qty, entry_price,
    leverage, take_profit, stop_loss, liq_price, origin, signal_id, opened_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, exchange, account_type, symbol) DO NOTHING
"""
_DELETE = (
    "DELETE FROM active_positions "
    "WHERE user_id = ? AND exchange = ? AND account_type = ? AND symbol = ?"
)

HOT_QUERIES = (
    HotQuery("positions.page", _PAGE, (0, 500)),
    HotQuery("positions.for_user", _FOR_USER, (1,)),
    HotQuery("positions.recent_accounts", _RECENT_ACCOUNTS, (0,)),
)


class PositionRepository(Repository):
    """SQL for active_positions."""

    async def all(self, page: int = 1000) -> list[ActivePosition]:
        """Every stored open position, read in bounded pages by id."""
        found: list[ActivePosition] = []
        after = 0
        while True:
            rows = await self.store.fetchall("positions.page", _PAGE, (after, page))
            found.extend(_record(row) for row in rows)
            if len(rows) < page:
                return found
            after = rows[-1]["id"]

    async def for_user(self, user_id: int) -> list[ActivePosition]:
        rows = await self.store.fetchall("positions.for_user", _FOR_USER, (user_id,))
        return [_record(row) for row in rows]

    async def recent_accounts(self, since: datetime) -> set[AccountKey]:
        """Accounts with an order recorded since `since` (drafts never sent do not count)."""
        rows = await self.store.fetchall(
            "positions.recent_accounts", _RECENT_ACCOUNTS, (to_ms(since),)
        )
        return {(row[0], row[1], row[2]) for row in rows}

    async def upsert_many(self, positions: Sequence[ActivePosition], tx: Tx | None = None) -> int:
        """Store positions as the exchange reports them; a new row keeps its origin."""
        async with self._tx(tx) as t:
            return await t.executemany(
                "positions.upsert_many", _UPSERT, [_params(p) for p in positions]
            )

    async def opened_many(self, positions: Sequence[ActivePosition], tx: Tx | None = None) -> int:
        """Note positions just opened by Tradewind; a row already there is left as it is."""
        async with self._tx(tx) as t:
            return await t.executemany(
                "positions.opened_many", _OPENED, [_params(p) for p in positions]
            )

    async def delete_many(self, positions: Sequence[ActivePosition], tx: Tx | None = None) -> int:
        rows = [(p.user_id, p.exchange, p.account_type, p.symbol) for p in positions]
        async with self._tx(tx) as t:
            return await t.executemany("positions.delete_many", _DELETE, rows)


def _params(p: ActivePosition) -> tuple[object, ...]:
    return (
        p.user_id,
        p.exchange,
        p.account_type,
        p.symbol,
        p.side,
        str(p.qty),
        str(p.entry_price),
        p.leverage,
        to_text(p.take_profit),
        to_text(p.stop_loss),
        to_text(p.liq_price),
        p.origin,
        p.signal_id,
        to_ms(p.opened_at),
        to_ms(p.updated_at),
    )


def _record(row: Row) -> ActivePosition:
    return ActivePosition(
        position_id=row["id"],
        user_id=row["user_id"],
        exchange=row["exchange"],
        account_type=row["account_type"],
        symbol=row["symbol"],
        side=row["side"],
        qty=Decimal(row["qty"]),
        entry_price=Decimal(row["entry_price"]),
        leverage=row["leverage"],
        take_profit=to_dec(row["take_profit"]),
        stop_loss=to_dec(row["stop_loss"]),
        liq_price=to_dec(row["liq_price"]),
        origin=row["origin"],
        signal_id=row["signal_id"],
        opened_at=from_ms_req(row["opened_at"]),
        updated_at=from_ms_req(row["updated_at"]),
    )
