"""Price alerts: what traders asked to be told, and which of them have fired.

An alert is active while `fired_at` is NULL; both partial indexes cover active alerts only,
so fired ones stop costing anything. Firing reads the due alerts with their owners' chats
and marks them fired inside the caller's transaction, where the notices are queued too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx

ABOVE, BELOW = "above", "below"
CHUNK = 500  # ids per IN (...) list: well under SQLite's parameter limit


@dataclass(slots=True, frozen=True)
class NewAlert:
    user_id: int
    source: str
    symbol: str
    direction: str  # above | below
    threshold: float
    created_price: float


@dataclass(slots=True, frozen=True)
class PriceAlert:
    """A stored alert; `direction` above fires at price ≥ threshold, below at ≤."""

    id: int
    user_id: int
    source: str
    symbol: str
    direction: str
    threshold: float
    created_price: float
    created_at: datetime


@dataclass(slots=True, frozen=True)
class ActiveLevel:
    """What the in-memory index needs of an active alert."""

    id: int
    symbol: str
    direction: str
    threshold: float


@dataclass(slots=True, frozen=True)
class DueAlert:
    """An alert being fired, with the chat its notice goes to."""

    alert: PriceAlert
    chat_id: int


_COLUMNS = "id, user_id, source, symbol, direction, threshold, created_price, created_at"
_INSERT = f"""
INSERT INTO price_alerts (user_id, source, symbol, direction, threshold, created_price,
                          created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
RETURNING {_COLUMNS}
"""
_OF_USER = f"SELECT {_COLUMNS} FROM price_alerts WHERE user_id = ? AND fired_at IS NULL ORDER BY id"
_COUNT = "SELECT COUNT(*) FROM price_alerts WHERE user_id = ? AND fired_at IS NULL"
_LEVELS = """
SELECT id, symbol, direction, threshold FROM price_alerts
WHERE source = ? AND fired_at IS NULL ORDER BY source, symbol, direction, threshold
"""
_REMOVE = (
    f"DELETE FROM price_alerts WHERE id = ? AND user_id = ? AND fired_at IS NULL "
    f"RETURNING {_COLUMNS}"
)
_DUE = """
SELECT a.id, a.user_id, a.source, a.symbol, a.direction, a.threshold, a.created_price,
       a.created_at, u.chat_id
FROM price_alerts a JOIN users u ON u.id = a.user_id
WHERE a.id IN ({marks}) AND a.fired_at IS NULL
"""
_FIRE = "UPDATE price_alerts SET fired_at = ?, fired_price = ? WHERE id = ? AND fired_at IS NULL"

HOT_QUERIES = (
    HotQuery("price_alerts.of_user", _OF_USER, (1,)),
    HotQuery("price_alerts.count", _COUNT, (1,)),
    HotQuery("price_alerts.levels", _LEVELS, ("paper",)),
    HotQuery("price_alerts.remove", _REMOVE, (1, 1)),
    HotQuery("price_alerts.due", _DUE.format(marks="?, ?"), (1, 2)),
    HotQuery("price_alerts.fire", _FIRE, (0, 1.0, 1)),
)


class PriceAlertRepository(Repository):
    """SQL for price alerts."""

    async def insert(self, alert: NewAlert, now: datetime, tx: Tx | None = None) -> PriceAlert:
        params = (
            alert.user_id,
            alert.source,
            alert.symbol,
            alert.direction,
            alert.threshold,
            alert.created_price,
            to_ms(now),
        )
        async with self._tx(tx) as t:
            row = await t.fetchone("price_alerts.insert", _INSERT, params)
        assert row is not None
        return _alert(row)

    async def of_user(self, user_id: int) -> list[PriceAlert]:
        """A trader's active alerts, oldest first."""
        rows = await self.store.fetchall("price_alerts.of_user", _OF_USER, (user_id,))
        return [_alert(r) for r in rows]

    async def count(self, user_id: int, tx: Tx | None = None) -> int:
        if tx is None:
            return int(await self.store.fetchval("price_alerts.count", _COUNT, (user_id,)))
        row = await tx.fetchone("price_alerts.count", _COUNT, (user_id,))
        return int(row[0]) if row is not None else 0

    async def levels(self, source: str) -> list[ActiveLevel]:
        """Every active alert of a market, by symbol, direction and threshold."""
        rows = await self.store.fetchall("price_alerts.levels", _LEVELS, (source,))
        return [
            ActiveLevel(r["id"], r["symbol"], r["direction"], float(r["threshold"])) for r in rows
        ]

    async def remove(self, user_id: int, alert_id: int, tx: Tx | None = None) -> PriceAlert | None:
        """Delete an active alert of this trader; None if it is not theirs or not active."""
        async with self._tx(tx) as t:
            row = await t.fetchone("price_alerts.remove", _REMOVE, (alert_id, user_id))
        return None if row is None else _alert(row)

    async def fire(self, prices: dict[int, float], now: datetime, tx: Tx) -> list[DueAlert]:
        """Mark these alerts (id → price that crossed) fired; return those still active."""
        ids = list(prices)
        due: list[DueAlert] = []
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            sql = _DUE.format(marks=", ".join("?" * len(chunk)))
            rows = await tx.fetchall("price_alerts.due", sql, chunk)
            due.extend(DueAlert(_alert(r), r["chat_id"]) for r in rows)
        stamp = to_ms(now)
        fired = [(stamp, prices[d.alert.id], d.alert.id) for d in due]
        if fired:
            await tx.executemany("price_alerts.fire", _FIRE, fired)
        return due


def _alert(row: Row) -> PriceAlert:
    return PriceAlert(
        id=row["id"],
        user_id=row["user_id"],
        source=row["source"],
        symbol=row["symbol"],
        direction=row["direction"],
        threshold=float(row["threshold"]),
        created_price=float(row["created_price"]),
        created_at=from_ms_req(row["created_at"]),
    )
