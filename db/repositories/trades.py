"""Trade logs: one row per closed (or partly closed) position, the source of /trades and /pnl.

Also reads the paper ledger's fills behind a trigger (take profit, stop loss, liquidation),
so the engine's events can be written down as trades: one batched query per settle run.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.lifecycle import Origin
from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.store import Row, Tx

_MONEY = Decimal("1e-8")  # aggregates come back as REAL; keep 8 decimals like the ledger
_CHUNK = 500  # ids per IN list, far below SQLite's host-parameter limit


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
    origin: str = Origin.MANUAL
    signal_id: int | None = None
    close_reason: str | None = None  # manual, take_profit, stop_loss, liquidation, sync

    @property
    def notional(self) -> Decimal:
        return self.qty * self.exit_price


@dataclass(slots=True, frozen=True)
class TradeRecord:
    trade_id: int
    trade: TradeLog


@dataclass(slots=True, frozen=True)
class LoggedClose:
    """How much of a position a logged trade closed, and how."""

    trade_id: int
    qty: Decimal
    exit_price: Decimal
    pnl: Decimal
    close_reason: str | None


@dataclass(slots=True, frozen=True)
class SymbolTotals:
    """One symbol's realised trades over a period; `pnl` is net of `fees`."""

    symbol: str
    trades: int
    wins: int
    losses: int
    pnl: Decimal
    fees: Decimal
    gross_win: Decimal  # sum of the winning trades' PnL
    gross_loss: Decimal  # sum of the losing trades' PnL (negative or zero)


@dataclass(slots=True, frozen=True)
class PaperFill:
    """A paper fill with the account's owner, leverage and the origin of the order behind it."""

    fill_id: int
    account_id: int
    user_id: int
    order_id: str
    symbol: str
    side: str  # buy | sell
    qty: Decimal
    price: Decimal
    fee: Decimal
    at: datetime
    leverage: int | None = None  # the symbol's leverage on the account, if ever set
    origin: str | None = None  # from the order intent, when Tradewind placed the order
    signal_id: int | None = None


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
# SQLite takes a bare column's value from the row that holds the single MIN or MAX, so each
# half returns the whole best (worst) trade through ix_trade_logs_user_exit, without a sort.
_EXTREMES = (
    f"SELECT {_COLUMNS}, MAX(pnl) AS extreme FROM trade_logs WHERE user_id = ? AND exit_ts >= ? "
    f"UNION ALL SELECT {_COLUMNS}, MIN(pnl) AS extreme FROM trade_logs "
    "WHERE user_id = ? AND exit_ts >= ?"
)
# `+exit_ts` keeps the planner on ix_trade_logs_user_symbol, which yields rows already grouped
# by symbol (no temporary B-tree); the period is then a filter on the user's own rows.
_BY_SYMBOL = """
SELECT symbol, COUNT(*) AS trades, SUM(pnl > 0) AS wins, SUM(pnl < 0) AS losses,
    SUM(pnl) AS pnl, SUM(fee) AS fees,
    TOTAL(CASE WHEN pnl > 0 THEN pnl END) AS gross_win,
    TOTAL(CASE WHEN pnl < 0 THEN pnl END) AS gross_loss
FROM trade_logs WHERE user_id = ? AND +exit_ts >= ? GROUP BY symbol
"""
_PAPER_FILL = (
    "f.id, f.account_id, a.user_id, f.order_id, f.symbol, f.side, f.qty, f.price, f.fee, f.at"
)
_PAPER_CLOSES = f"""
SELECT {_PAPER_FILL}, l.leverage, NULL AS origin, NULL AS signal_id
FROM paper_fills f JOIN paper_accounts a ON a.id = f.account_id
LEFT JOIN paper_leverage l ON l.account_id = f.account_id AND l.symbol = f.symbol
WHERE f.order_id IN ({{}})
"""
_PAPER_HISTORY = f"""
SELECT {_PAPER_FILL}, NULL AS leverage, i.origin, i.signal_id
FROM paper_fills f JOIN paper_accounts a ON a.id = f.account_id
LEFT JOIN paper_orders o ON o.id = f.order_id
LEFT JOIN order_intents i ON i.client_order_id = o.client_order_id
WHERE f.account_id IN ({{}}) AND f.symbol IN ({{}}) AND f.at <= ?
"""

_LOGGED_SINCE = (
    "SELECT id, qty, exit_price, pnl, close_reason FROM trade_logs "
    "WHERE user_id = ? AND symbol = ? AND exchange = ? AND account_type = ? AND exit_ts >= ?"
)

HOT_QUERIES = (
    HotQuery("trades.recent", _RECENT, (1, 10, 0)),
    HotQuery("trades.logged_since", _LOGGED_SINCE, (1, "BTC/USDT:USDT", "paper", "paper", 0)),
    HotQuery("trades.extremes", _EXTREMES, (1, 0, 1, 0)),
    HotQuery("trades.by_symbol", _BY_SYMBOL, (1, 0)),
    HotQuery("trades.paper_closes", _PAPER_CLOSES.format("?, ?"), ("o1", "o2")),
    HotQuery("trades.paper_history", _PAPER_HISTORY.format("?, ?", "?, ?"), (1, 2, "A", "B", 0)),
)


class TradeRepository(Repository):
    """SQL for trade_logs."""

    async def record(self, trade: TradeLog, tx: Tx | None = None) -> int:
        async with self._tx(tx) as t:
            return await t.insert("trades.record", _INSERT, _params(trade))

    async def record_many(self, trades: Sequence[TradeLog], tx: Tx | None = None) -> int:
        """Write many trades in one statement (a job closing many positions at once)."""
        async with self._tx(tx) as t:
            return await t.executemany("trades.record_many", _INSERT, [_params(x) for x in trades])

    async def logged_since(
        self, user_id: int, exchange: str, account_type: str, symbol: str, since: datetime
    ) -> list[LoggedClose]:
        """Closes of one account's symbol already logged since `since` (by anyone)."""
        params = (user_id, symbol, exchange, account_type, to_ms(since))
        rows = await self.store.fetchall("trades.logged_since", _LOGGED_SINCE, params)
        return [
            LoggedClose(
                row["id"],
                Decimal(row["qty"]),
                Decimal(row["exit_price"]),
                Decimal(str(row["pnl"])),
                row["close_reason"],
            )
            for row in rows
        ]

    async def recent(self, user_id: int, limit: int = 10, offset: int = 0) -> list[TradeRecord]:
        """A page of the user's trades, newest first."""
        rows = await self.store.fetchall("trades.recent", _RECENT, (user_id, limit, offset))
        return [_record(row) for row in rows]

    async def extremes(
        self, user_id: int, since: datetime
    ) -> tuple[TradeRecord | None, TradeRecord | None]:
        """The best and the worst trade that closed since `since` (None when there are none)."""
        start = to_ms(since)
        best, worst = await self.store.fetchall(
            "trades.extremes", _EXTREMES, (user_id, start, user_id, start)
        )
        return (
            None if best["id"] is None else _record(best),
            None if worst["id"] is None else _record(worst),
        )

    async def by_symbol(self, user_id: int, since: datetime) -> list[SymbolTotals]:
        """Totals per symbol of the trades that closed since `since`, in symbol order."""
        rows = await self.store.fetchall("trades.by_symbol", _BY_SYMBOL, (user_id, to_ms(since)))
        return [
            SymbolTotals(
                symbol=row["symbol"],
                trades=row["trades"],
                wins=row["wins"],
                losses=row["losses"],
                pnl=_money(row["pnl"]),
                fees=_money(row["fees"]),
                gross_win=_money(row["gross_win"]),
                gross_loss=_money(row["gross_loss"]),
            )
            for row in rows
        ]

    async def paper_closes(self, order_ids: Collection[str]) -> list[PaperFill]:
        """The fills of these paper orders, with the owner and the symbol's leverage."""
        found: list[PaperFill] = []
        ids = list(order_ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            sql = _PAPER_CLOSES.format(_marks(len(chunk)))
            found += [_paper_fill(r) for r in await self.store.fetchall(_CLOSES, sql, chunk)]
        return found

    async def paper_history(
        self, account_ids: Collection[int], symbols: Collection[str], until: datetime
    ) -> list[PaperFill]:
        """Every fill of these accounts on these symbols up to `until`, in no set order."""
        found: list[PaperFill] = []
        names = list(symbols)
        accounts = list(account_ids)
        for i in range(0, len(accounts), _CHUNK):
            chunk = accounts[i : i + _CHUNK]
            sql = _PAPER_HISTORY.format(_marks(len(chunk)), _marks(len(names)))
            params = [*chunk, *names, to_ms(until)]
            found += [_paper_fill(r) for r in await self.store.fetchall(_HISTORY, sql, params)]
        return found


_CLOSES, _HISTORY = "trades.paper_closes", "trades.paper_history"


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _money(value: float | None) -> Decimal:
    return Decimal(0) if value is None else Decimal(repr(value)).quantize(_MONEY)


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


def _paper_fill(row: Row) -> PaperFill:
    return PaperFill(
        fill_id=row["id"],
        account_id=row["account_id"],
        user_id=row["user_id"],
        order_id=row["order_id"],
        symbol=row["symbol"],
        side=row["side"],
        qty=Decimal(row["qty"]),
        price=Decimal(row["price"]),
        fee=Decimal(row["fee"]),
        at=from_ms_req(row["at"]),
        leverage=row["leverage"],
        origin=row["origin"],
        signal_id=row["signal_id"],
    )
