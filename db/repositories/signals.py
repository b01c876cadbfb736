"""Signals the scanner found, and who wants to hear about them.

A signal is written once and never changed. The cooldown check reads the latest signal of
one symbol and side through `ix_signals_symbol_side_ts`; the audience of a signal (users
subscribed with a threshold the score meets, and their allow/deny lists) comes from the
partial index `ix_users_subscribed` in one query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class SignalDraft:
    """A signal before it is stored: what the scanner suggests and why."""

    source: str
    symbol: str
    side: str  # long | short
    score: float
    price: Decimal
    leverage: int
    tp_pct: Decimal
    sl_pct: Decimal
    reasons: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class SignalRecord:
    """A stored signal; `score` is 0..1, `tp_pct`/`sl_pct` are distances from `price` in %."""

    id: int
    source: str
    symbol: str
    side: str  # long | short
    score: float
    price: Decimal
    leverage: int
    tp_pct: Decimal
    sl_pct: Decimal
    reasons: tuple[str, ...]
    created_at: datetime


@dataclass(slots=True, frozen=True)
class Subscriber:
    """A user who gets signals at or above `min_score`, within their symbol lists."""

    user_id: int
    chat_id: int
    min_score: float
    allow_symbols: tuple[str, ...]
    deny_symbols: tuple[str, ...]

    def wants(self, symbol: str, score: float) -> bool:
        if score < self.min_score or symbol in self.deny_symbols:
            return False
        return not self.allow_symbols or symbol in self.allow_symbols


_COLUMNS = "id, source, symbol, side, score, price, leverage, tp_pct, sl_pct, reasons, created_at"
_INSERT = f"""
INSERT INTO signals (source, symbol, side, score, price, leverage, tp_pct, sl_pct, reasons,
                     created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING {_COLUMNS}
"""
_LAST_AT = (
    "SELECT created_at FROM signals WHERE symbol = ? AND side = ? ORDER BY created_at DESC LIMIT 1"
)
_GET = f"SELECT {_COLUMNS} FROM signals WHERE id = ?"
_RECENT = f"SELECT {_COLUMNS} FROM signals ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
_SINCE = f"SELECT {_COLUMNS} FROM signals WHERE created_at >= ? ORDER BY created_at, id"
_AUDIENCE = """
SELECT u.id, u.chat_id, u.signals_min_score,
       COALESCE(s.allow_symbols, '[]') AS allow_symbols,
       COALESCE(s.deny_symbols, '[]') AS deny_symbols
FROM users u LEFT JOIN strategy_settings s ON s.user_id = u.id
WHERE u.signals_subscribed = 1 AND u.is_active = 1 AND u.is_blocked = 0
  AND u.signals_min_score <= ?
"""
_SUBSCRIBE = (
    "UPDATE users SET signals_subscribed = 1, "
    "signals_min_score = COALESCE(?, signals_min_score) WHERE id = ? RETURNING signals_min_score"
)
_SUBSCRIPTION = "SELECT signals_subscribed, signals_min_score FROM users WHERE id = ?"
_UNSUBSCRIBE = "UPDATE users SET signals_subscribed = 0 WHERE id = ?"

HOT_QUERIES = (
    HotQuery("signals.last_at", _LAST_AT, ("BTC/USDT:USDT", "long")),
    HotQuery("signals.get", _GET, (1,)),
    HotQuery("signals.recent", _RECENT, (5, 0)),
    HotQuery("signals.since", _SINCE, (0,)),
    HotQuery("signals.audience", _AUDIENCE, (0.8,)),
    HotQuery("signals.subscription", _SUBSCRIPTION, (1,)),
)


class SignalRepository(Repository):
    """SQL for signals and for the signal subscription on the users row."""

    async def last_at(self, symbol: str, side: str, tx: Tx | None = None) -> datetime | None:
        """When this symbol and side were last signalled (inside `tx` when given)."""
        params = (symbol, side)
        if tx is None:
            row = await self.store.fetchone("signals.last_at", _LAST_AT, params)
        else:
            row = await tx.fetchone("signals.last_at", _LAST_AT, params)
        return None if row is None else from_ms(row[0])

    async def insert(self, draft: SignalDraft, now: datetime, tx: Tx | None = None) -> SignalRecord:
        async with self._tx(tx) as t:
            row = await t.fetchone("signals.insert", _INSERT, _params(draft, now))
        assert row is not None  # RETURNING always yields the row
        return _record(row)

    async def get(self, signal_id: int) -> SignalRecord | None:
        row = await self.store.fetchone("signals.get", _GET, (signal_id,))
        return None if row is None else _record(row)

    async def recent(self, limit: int, offset: int = 0) -> list[SignalRecord]:
        """Newest first; `offset` pages back."""
        rows = await self.store.fetchall("signals.recent", _RECENT, (limit, offset))
        return [_record(row) for row in rows]

    async def since(self, moment: datetime) -> list[SignalRecord]:
        """Signals created at or after `moment`, oldest first."""
        rows = await self.store.fetchall("signals.since", _SINCE, (to_ms(moment),))
        return [_record(row) for row in rows]

    async def audience(self, score: float, tx: Tx | None = None) -> list[Subscriber]:
        """Every reachable subscriber whose threshold `score` meets, with symbol lists."""
        if tx is None:
            rows = await self.store.fetchall("signals.audience", _AUDIENCE, (score,))
        else:
            rows = await tx.fetchall("signals.audience", _AUDIENCE, (score,))
        return [_subscriber(row) for row in rows]

    async def subscribe(
        self, user_id: int, min_score: float | None, tx: Tx | None = None
    ) -> float | None:
        """Turn signals on (at `min_score`, or the user's last threshold); None: no such user."""
        async with self._tx(tx) as t:
            row = await t.fetchone("signals.subscribe", _SUBSCRIBE, (min_score, user_id))
        return None if row is None else float(row[0])

    async def subscription(self, user_id: int) -> tuple[bool, float] | None:
        """(subscribed, min score) of a user; None if unknown."""
        row = await self.store.fetchone("signals.subscription", _SUBSCRIPTION, (user_id,))
        return None if row is None else (bool(row[0]), float(row[1]))

    async def unsubscribe(self, user_id: int, tx: Tx | None = None) -> bool:
        async with self._tx(tx) as t:
            changed = await t.execute("signals.unsubscribe", _UNSUBSCRIBE, (user_id,))
        return changed == 1


def _params(draft: SignalDraft, now: datetime) -> tuple[object, ...]:
    return (
        draft.source,
        draft.symbol,
        draft.side,
        draft.score,
        str(draft.price),
        draft.leverage,
        str(draft.tp_pct),
        str(draft.sl_pct),
        json.dumps(list(draft.reasons), ensure_ascii=False),
        to_ms(now),
    )


def _record(row: Row) -> SignalRecord:
    return SignalRecord(
        id=row["id"],
        source=row["source"],
        symbol=row["symbol"],
        side=row["side"],
        score=row["score"],
        price=Decimal(row["price"]),
        leverage=row["leverage"],
        tp_pct=Decimal(row["tp_pct"]),
        sl_pct=Decimal(row["sl_pct"]),
        reasons=tuple(json.loads(row["reasons"])),
        created_at=from_ms_req(row["created_at"]),
    )


def _subscriber(row: Row) -> Subscriber:
    return Subscriber(
        user_id=row["id"],
        chat_id=row["chat_id"],
        min_score=row["signals_min_score"],
        allow_symbols=tuple(json.loads(row["allow_symbols"])),
        deny_symbols=tuple(json.loads(row["deny_symbols"])),
    )
