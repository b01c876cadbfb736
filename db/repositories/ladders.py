"""Take-profit ladders waiting for their first part to fill, to move the stop loss to the
entry then. A handful per trader at most, read whole by the trailing job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from db.repositories.base import Repository, to_ms
from db.store import Row

_COLUMNS = "first_order, user_id, exchange, account_type, symbol, side, entry"
_INSERT = f"""
INSERT INTO ladder_watches ({_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (first_order) DO NOTHING
"""
_ALL = f"SELECT {_COLUMNS} FROM ladder_watches"
_DELETE = "DELETE FROM ladder_watches WHERE first_order = ?"


@dataclass(slots=True, frozen=True)
class LadderWatch:
    first_order: str  # the first part's client order id
    user_id: int
    exchange: str
    account_type: str
    symbol: str
    side: str
    entry: Decimal


class LadderRepository(Repository):
    """SQL for ladder_watches."""

    async def watch(self, watch: LadderWatch, now: datetime) -> None:
        params = (
            watch.first_order, watch.user_id, watch.exchange, watch.account_type, watch.symbol,
            watch.side, str(watch.entry), to_ms(now),
        )  # fmt: skip
        async with self._tx(None) as t:
            await t.execute("ladders.insert", _INSERT, params)

    async def all(self) -> list[LadderWatch]:
        return [_watch(r) for r in await self.store.fetchall("ladders.all", _ALL, ())]

    async def done(self, first_order: str) -> None:
        async with self._tx(None) as t:
            await t.execute("ladders.delete", _DELETE, (first_order,))


def _watch(row: Row) -> LadderWatch:
    return LadderWatch(
        row["first_order"], row["user_id"], row["exchange"], row["account_type"], row["symbol"],
        row["side"], Decimal(row["entry"]),
    )  # fmt: skip
