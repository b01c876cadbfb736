"""Auto-trade executions: who a signal could trade for, and what happened to each of them.

`candidates` is the one query behind a signal's fan-out: every auto-trading user whose
threshold the score meets, with their settings, licence, active account and open position
count, minus traders who turned auto-trade on after the signal was published and
the users this signal already has an outcome for (a redelivered signal finds
nobody new). Outcomes are written once per (signal, user); a second write is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.lifecycle import ExecutionStatus
from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_dec, to_ms, to_text
from db.repositories.strategy import StrategyRecord, strategy_from_row
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class Candidate:
    """An auto-trading user a signal may trade for, with what deciding needs."""

    user_id: int
    chat_id: int
    strategy: StrategyRecord
    licensed: bool
    exchange: str | None  # the active account; None when no account is connected
    account_type: str | None
    open_positions: int  # on the active account, as position sync last saw them


@dataclass(slots=True, frozen=True)
class ExecutionRecord:
    """One user's outcome of one signal."""

    signal_id: int
    user_id: int
    status: ExecutionStatus
    at: datetime
    reason: str | None = None
    client_order_id: str | None = None
    signal_price: Decimal | None = None
    fill_price: Decimal | None = None
    latency_ms: float | None = None


_CANDIDATES = """
SELECT s.user_id, u.chat_id, s.size_usdt, s.risk_pct, s.leverage, s.tp_pct, s.sl_pct,
    s.max_positions, s.auto_trade, s.min_score, s.allow_symbols, s.deny_symbols,
    s.limit_order_ttl_min, s.auto_trade_since, s.max_drift_pct, s.max_signal_age_s,
    s.post_only, s.autotrade_entry,
    COALESCE(l.active = 1 AND l.end_at > :now, 0) AS licensed,
    c.exchange, c.account_type,
    (SELECT COUNT(*) FROM active_positions p
     WHERE p.user_id = s.user_id AND p.account_type = c.account_type
       AND p.exchange = c.exchange) AS open_positions
FROM strategy_settings s
JOIN users u ON u.id = s.user_id
LEFT JOIN user_licenses l ON l.user_id = s.user_id
LEFT JOIN api_credentials c ON c.id = COALESCE(
    (SELECT a.id FROM api_credentials a
     WHERE a.id = u.active_credential_id AND a.user_id = s.user_id),
    (SELECT f.id FROM api_credentials f WHERE f.user_id = s.user_id
     ORDER BY f.exchange, f.account_type LIMIT 1))
WHERE s.auto_trade = 1 AND s.min_score <= :score AND u.is_active = 1 AND u.is_blocked = 0
  AND s.auto_trade_since <= :published
  AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.signal_id = :signal AND e.user_id = s.user_id)
"""
_COLUMNS = (
    "signal_id, user_id, status, reason, client_order_id, signal_price, fill_price, latency_ms, at"
)
_INSERT = f"""
INSERT INTO executions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (signal_id, user_id) DO NOTHING
"""
_FOR_SIGNAL = f"SELECT {_COLUMNS} FROM executions WHERE signal_id = ?"
_GET = f"SELECT {_COLUMNS} FROM executions WHERE signal_id = ? AND user_id = ?"
_MARK_FILLED = f"""
UPDATE executions SET status = '{ExecutionStatus.FILLED}', fill_price = ?
WHERE signal_id = ? AND user_id = ? AND status = '{ExecutionStatus.PLACED}'
"""

HOT_QUERIES = (
    HotQuery(
        "executions.candidates",
        _CANDIDATES,
        {"now": 0, "score": 0.8, "signal": 1, "published": 0},
    ),
    HotQuery("executions.for_signal", _FOR_SIGNAL, (1,)),
    HotQuery("executions.get", _GET, (1, 2)),
)


class ExecutionRepository(Repository):
    """SQL for executions (and the candidate query that feeds them)."""

    async def candidates(
        self, signal_id: int, score: float, now: datetime, published: datetime
    ) -> list[Candidate]:
        """Only traders whose auto-trade was on when the signal was `published`."""
        params = {
            "now": to_ms(now),
            "score": score,
            "signal": signal_id,
            "published": to_ms(published),
        }
        rows = await self.store.fetchall("executions.candidates", _CANDIDATES, params)
        return [_candidate(row) for row in rows]

    async def record_many(self, records: Sequence[ExecutionRecord], tx: Tx | None = None) -> int:
        """Write outcomes in one statement; an outcome already written is kept as it is."""
        async with self._tx(tx) as t:
            return await t.executemany(
                "executions.record_many", _INSERT, [_params(r) for r in records]
            )

    async def mark_filled(
        self, fills: Sequence[tuple[int, int, Decimal]], tx: Tx | None = None
    ) -> int:
        """Placed orders whose fill price is now known: (signal id, user id, price)."""
        rows = [(str(price), signal_id, user_id) for signal_id, user_id, price in fills]
        async with self._tx(tx) as t:
            return await t.executemany("executions.mark_filled", _MARK_FILLED, rows)

    async def get(self, signal_id: int, user_id: int) -> ExecutionRecord | None:
        row = await self.store.fetchone("executions.get", _GET, (signal_id, user_id))
        return None if row is None else _record(row)

    async def for_signal(self, signal_id: int) -> list[ExecutionRecord]:
        rows = await self.store.fetchall("executions.for_signal", _FOR_SIGNAL, (signal_id,))
        return [_record(row) for row in rows]


def _candidate(row: Row) -> Candidate:
    return Candidate(
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        strategy=strategy_from_row(row),
        licensed=bool(row["licensed"]),
        exchange=row["exchange"],
        account_type=row["account_type"],
        open_positions=row["open_positions"] or 0,
    )


def _params(record: ExecutionRecord) -> tuple[object, ...]:
    return (
        record.signal_id,
        record.user_id,
        record.status.value,
        record.reason,
        record.client_order_id,
        to_text(record.signal_price),
        to_text(record.fill_price),
        record.latency_ms,
        to_ms(record.at),
    )


def _record(row: Row) -> ExecutionRecord:
    return ExecutionRecord(
        signal_id=row["signal_id"],
        user_id=row["user_id"],
        status=ExecutionStatus(row["status"]),
        at=from_ms_req(row["at"]),
        reason=row["reason"],
        client_order_id=row["client_order_id"],
        signal_price=to_dec(row["signal_price"]),
        fill_price=to_dec(row["fill_price"]),
        latency_ms=row["latency_ms"],
    )
