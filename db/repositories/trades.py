"""Trade logs: one row per closed (or partly closed) position, the source of /trades and /pnl."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class TradeLog:
    """A realised trade: `pnl` is net of `fee`; `notional` is qty × exit price."""

    user_id: int
    exchange: str
    account_type: str
    symbol: str
    side: str  # long | short (the position's side)
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal
    fee: Decimal
    entry_ts: datetime
    exit_ts: datetime
    leverage: int | None = None
    origin: str = "manual"
    signal_id: int | None = None
    close_reason: str | None = None  # manual, take_profit, stop_loss, liquidation, sync

    @property
    def notional(self) -> Decimal:
        return self.qty * self.exit_price


@dataclass(slots=True, frozen=True)
class TradeRecord:
    trade_id: int
    trade: TradeLog


_COLUMNS = (
    "id, user_id, exchange, account_type, symbol, side, qty, entry_price, exit_price, pnl, "
    "fee, leverage, origin, signal_id, close_reason, entry_ts, exit_ts"
)
_INSERT = """
INSERT INTO trade_logs (user_id, exchange, account_type, symbol, side, qty, entry_price,
    exit_price, notional, pnl, fee, leverage, origin, signal_id, close_reason, entry_ts, exit_ts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_RECENT = (
    f"SELECT {_COLUMNS} FROM trade_logs WHERE user_id = ? "
    "ORDER BY exit_ts DESC, id DESC LIMIT ? OFFSET ?"
)

HOT_QUERIES = (HotQuery("trades.recent", _RECENT, (1, 10, 0)),)


class TradeRepository(Repository):
    """SQL for trade_logs."""

    async def record(self, trade: TradeLog, tx: Tx | None = None) -> int:
        async with self._tx(tx) as t:
            return await t.insert("trades.record", _INSERT, _params(trade))

    async def record_many(self, trades: Sequence[TradeLog], tx: Tx | None = None) -> int:
        """Write many trades in one statement (a job closing many positions at once)."""
        async with self._tx(tx) as t:
            return await t.executemany("trades.record_many", _INSERT, [_params(x) for x in trades])

    async def recent(self, user_id: int, limit: int = 10, offset: int = 0) -> list[TradeRecord]:
        """A page of the user's trades, newest first."""
        rows = await self.store.fetchall("trades.recent", _RECENT, (user_id, limit, offset))
        return [_record(row) for row in rows]


def _params(trade: TradeLog) -> tuple[object, ...]:
    return (
        trade.user_id,
        trade.exchange,
        trade.account_type,
        trade.symbol,
        trade.side,
        str(trade.qty),
        str(trade.entry_price),
        str(trade.exit_price),
        float(trade.notional),
        float(trade.pnl),
        float(trade.fee),
        trade.leverage,
        trade.origin,
        trade.signal_id,
        trade.close_reason,
        to_ms(trade.entry_ts),
        to_ms(trade.exit_ts),
    )


def _record(row: Row) -> TradeRecord:
    return TradeRecord(
        row["id"],
        TradeLog(
            user_id=row["user_id"],
            exchange=row["exchange"],
            account_type=row["account_type"],
            symbol=row["symbol"],
            side=row["side"],
            qty=Decimal(row["qty"]),
            entry_price=Decimal(row["entry_price"]),
            exit_price=Decimal(row["exit_price"]),
            pnl=Decimal(str(row["pnl"])),
            fee=Decimal(str(row["fee"])),
            entry_ts=from_ms_req(row["entry_ts"]),
            exit_ts=from_ms_req(row["exit_ts"]),
            leverage=row["leverage"],
            origin=row["origin"],
            signal_id=row["signal_id"],
            close_reason=row["close_reason"],
        ),
    )
