"""Trailing stops the bot keeps for venues without a native one.

One row per account and symbol. `peak` is the best price since activation (NULL: waiting
for `activation`, or for the next price when that is NULL too). A pass moves the peaks of
every stop of one symbol and side with one statement, the way the in-memory index moves
them: whatever is behind the new best price, or waiting for an activation it reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class NewTrailing:
    user_id: int
    exchange: str
    account_type: str
    symbol: str
    side: str  # long | short
    distance: float
    activation: float | None
    peak: float | None
    entry: float


@dataclass(slots=True, frozen=True)
class TrailingRecord:
    id: int
    user_id: int
    exchange: str
    account_type: str
    symbol: str
    side: str
    distance: float
    activation: float | None
    peak: float | None
    entry: float
    created_at: datetime


_COLUMNS = (
    "id, user_id, exchange, account_type, symbol, side, distance, activation, peak, entry, "
    "created_at"
)
_UPSERT = f"""
INSERT INTO trailing_stops (user_id, exchange, account_type, symbol, side, distance,
                            activation, peak, entry, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, exchange, account_type, symbol) DO UPDATE SET
    side = excluded.side, distance = excluded.distance, activation = excluded.activation,
    peak = excluded.peak, entry = excluded.entry, created_at = excluded.created_at,
    updated_at = excluded.updated_at
RETURNING {_COLUMNS}
"""
_OF_EXCHANGE = f"SELECT {_COLUMNS} FROM trailing_stops WHERE exchange = ?"
_EXCHANGES = "SELECT DISTINCT exchange FROM trailing_stops"
_ONE = (
    f"SELECT {_COLUMNS} FROM trailing_stops "
    "WHERE user_id = ? AND exchange = ? AND account_type = ? AND symbol = ?"
)
_REMOVE = (
    "DELETE FROM trailing_stops WHERE user_id = ? AND exchange = ? AND account_type = ? "
    f"AND symbol = ? RETURNING {_COLUMNS}"
)
_DELETE = "DELETE FROM trailing_stops WHERE id = ?"
# `sign` mirrors a short into a long: its best price is the lowest.
_MOVE = """
UPDATE trailing_stops SET peak = :price, updated_at = :now
WHERE exchange = :exchange AND symbol = :symbol AND side = :side
  AND ((peak IS NULL AND (activation IS NULL OR activation * :sign <= :price * :sign))
       OR peak * :sign < :price * :sign)
"""

HOT_QUERIES = (
    HotQuery("trailing.of_exchange", _OF_EXCHANGE, ("binance",)),
    HotQuery("trailing.one", _ONE, (1, "binance", "live", "BTC/USDT:USDT")),
    HotQuery(
        "trailing.move",
        _MOVE,
        {"price": 1.0, "now": 0, "exchange": "binance", "symbol": "B", "side": "long", "sign": 1},
    ),
)


class TrailingRepository(Repository):
    """SQL for trailing_stops."""

    async def keep(self, stop: NewTrailing, now: datetime, tx: Tx | None = None) -> TrailingRecord:
        """Store the account's trailing stop on a symbol, replacing an earlier one."""
        params = (
            stop.user_id, stop.exchange, stop.account_type, stop.symbol, stop.side,
            stop.distance, stop.activation, stop.peak, stop.entry, to_ms(now), to_ms(now),
        )  # fmt: skip
        async with self._tx(tx) as t:
            row = await t.fetchone("trailing.upsert", _UPSERT, params)
        assert row is not None
        return _record(row)

    async def of_exchange(self, exchange: str) -> list[TrailingRecord]:
        rows = await self.store.fetchall("trailing.of_exchange", _OF_EXCHANGE, (exchange,))
        return [_record(r) for r in rows]

    async def exchanges(self) -> list[str]:
        rows = await self.store.fetchall("trailing.exchanges", _EXCHANGES, ())
        return [r[0] for r in rows]

    async def one(
        self, user_id: int, exchange: str, account_type: str, symbol: str
    ) -> TrailingRecord | None:
        row = await self.store.fetchone(
            "trailing.one", _ONE, (user_id, exchange, account_type, symbol)
        )
        return None if row is None else _record(row)

    async def remove(
        self, user_id: int, exchange: str, account_type: str, symbol: str
    ) -> TrailingRecord | None:
        async with self._tx(None) as t:
            row = await t.fetchone(
                "trailing.remove", _REMOVE, (user_id, exchange, account_type, symbol)
            )
        return None if row is None else _record(row)

    async def delete(self, ids: Sequence[int], tx: Tx | None = None) -> None:
        async with self._tx(tx) as t:
            await t.executemany("trailing.delete", _DELETE, [(i,) for i in ids])

    async def move(
        self, exchange: str, moved: Sequence[tuple[str, str, float]], now: datetime
    ) -> None:
        """Store the new peaks of one pass: one statement per symbol and side that moved."""
        if not moved:
            return
        rows = [
            {"price": price, "now": to_ms(now), "exchange": exchange, "symbol": symbol,
             "side": side, "sign": 1 if side == "long" else -1}
            for symbol, side, price in moved
        ]  # fmt: skip
        async with self._tx(None) as t:
            await t.executemany("trailing.move", _MOVE, rows)


def _record(row: Row) -> TrailingRecord:
    return TrailingRecord(
        id=row["id"],
        user_id=row["user_id"],
        exchange=row["exchange"],
        account_type=row["account_type"],
        symbol=row["symbol"],
        side=row["side"],
        distance=float(row["distance"]),
        activation=None if row["activation"] is None else float(row["activation"]),
        peak=None if row["peak"] is None else float(row["peak"]),
        entry=float(row["entry"]),
        created_at=from_ms_req(row["created_at"]),
    )
