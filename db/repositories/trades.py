"""Trade logs: one row per closed (or partly closed) position, the source of /trades and /pnl.

Also reads the paper ledger's fills behind a trigger (take profit, stop loss, liquidation),
so the engine's events can be written down as trades: one batched query per settle run.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_ms
from db.repositories.trade_records import (
    LoggedClose,
    PaperFill,
    PeriodTotals,
    SymbolTotals,
    TradeLog,
    TradeRecord,
)
from db.store import Row, Tx

# The records live in trade_records; importers of this module find them here as before.
__all__ = [
    "HOT_QUERIES",
    "LoggedClose",
    "PaperFill",
    "PeriodTotals",
    "SymbolTotals",
    "TradeLog",
    "TradeRecord",
    "TradeRepository",
]

_MONEY = Decimal("1e-8")  # aggregates come back as REAL; keep 8 decimals like the ledger
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_CHUNK = 500  # ids per IN list, far below SQLite's host-parameter limit


_COLUMNS = (
    "id, user_id, exchange, account_type, symbol, side, qty, entry_price, exit_price, pnl, "
    "fee, leverage, origin, signal_id, close_reason, entry_ts, exit_ts, order_id, estimated"
)
# A trade of a closing order already logged is left as it is here: the fill ledger
# replaces one on purpose (`replace_many`), a second writer of the same close does not.
_INSERT = """
INSERT INTO trade_logs (user_id, exchange, account_type, symbol, side, qty, entry_price,
    exit_price, notional, pnl, fee, leverage, origin, signal_id, close_reason, entry_ts, exit_ts,
    order_id, estimated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, exchange, account_type, order_id) WHERE order_id IS NOT NULL DO NOTHING
"""
_OF_ORDERS = (
    f"SELECT {_COLUMNS} FROM trade_logs WHERE user_id = ? AND exchange = ? "
    "AND account_type = ? AND order_id IN ({})"
)
_ESTIMATES = (
    f"SELECT {_COLUMNS} FROM trade_logs WHERE user_id = ? AND symbol = ? AND estimated = 1 "
    "AND exchange = ? AND account_type = ?"
)
# Through the partial ix_trade_logs_estimated: only estimated rows are ever read.
_ESTIMATED_SINCE = (
    "SELECT COUNT(*) AS n FROM trade_logs WHERE user_id = ? AND estimated = 1 AND exit_ts >= ?"
)
_DELETE = "DELETE FROM trade_logs WHERE id = ?"
_RECENT = (
    f"SELECT {_COLUMNS} FROM trade_logs WHERE user_id = ? "
    "ORDER BY exit_ts DESC, id DESC LIMIT ? OFFSET ?"
)
# A period is its whole UTC days from trade_day_totals (kept by triggers, migration 0009)
# plus the hours before its first whole UTC day (a trader's local midnight) from trade_logs
# through ix_trade_logs_user_exit_totals: at most one day of trades, whatever the history.
# `:first` is the first whole UTC day (or, when that day is the 1st of a month, the month: the
# coarser trade_month_totals, migration 0013), `:since`..`:edge` the leading hours (empty at
# midnight UTC).
# Each half is grouped on its own (a symbol may come twice; the repository adds them up): a
# GROUP BY over a UNION would sort through a co-routine, twice as slow. The sorts are bounded
# by the period's symbols and days, not by the history.
_BY_SYMBOL = """
SELECT symbol, SUM(trades) AS trades, SUM(wins) AS wins, SUM(losses) AS losses,
    TOTAL(pnl) AS pnl, TOTAL(fees) AS fees, TOTAL(gross_win) AS gross_win,
    TOTAL(gross_loss) AS gross_loss
FROM trade_{unit}_totals WHERE user_id = :user AND {unit} >= :first GROUP BY symbol
UNION ALL
SELECT symbol, COUNT(*), SUM(pnl > 0), SUM(pnl < 0), TOTAL(pnl), TOTAL(fee),
    TOTAL(MAX(pnl, 0)), TOTAL(MIN(pnl, 0))
FROM trade_logs WHERE user_id = :user AND exit_ts >= :since AND exit_ts < :edge GROUP BY symbol
"""
# SQLite takes a bare column's value from the row that holds the single MIN or MAX, so each
# candidate (best and worst of the whole days, best and worst of the leading hours) is found
# without a sort; the repository keeps the best and the worst of the (up to four) trades.
_EXTREMES = f"""
SELECT {_COLUMNS} FROM trade_logs WHERE id IN (
    SELECT best_id FROM (SELECT best_id, MAX(best_pnl)
        FROM trade_{{unit}}_totals WHERE user_id = :user AND {{unit}} >= :first)
    UNION ALL SELECT worst_id FROM (SELECT worst_id, MIN(worst_pnl)
        FROM trade_{{unit}}_totals WHERE user_id = :user AND {{unit}} >= :first)
    UNION ALL SELECT id FROM (SELECT id, MAX(pnl)
        FROM trade_logs WHERE user_id = :user AND exit_ts >= :since AND exit_ts < :edge)
    UNION ALL SELECT id FROM (SELECT id, MIN(pnl)
        FROM trade_logs WHERE user_id = :user AND exit_ts >= :since AND exit_ts < :edge)
)
"""
_BY_SYMBOL_IN = {unit: _BY_SYMBOL.format(unit=unit) for unit in ("day", "month")}
_EXTREMES_IN = {unit: _EXTREMES.format(unit=unit) for unit in ("day", "month")}

# One row per period, three ranges each: its whole UTC hours from trade_hour_totals (running
# totals, migration 0010) and the minutes before and after them from trade_logs through the
# covering ix_trade_logs_user_exit_totals (empty in whole-hour timezones). The periods come
# as JSON [start, first whole hour, end of whole hours, end, user] (ms), so any timezone, any
# daylight-saving change and many traders at once (the scheduled reports) are one statement;
# a year of one trader's days reads ~9,000 hour rows.
_PERIOD_EDGE = """(
    SELECT json_array(COUNT(*), SUM(pnl > 0), SUM(pnl < 0), TOTAL(pnl), TOTAL(fee))
    FROM trade_logs WHERE user_id = json_extract(b.value, '$[4]')
        AND exit_ts >= json_extract(b.value, '$[{0}]') AND exit_ts < json_extract(b.value, '$[{1}]')
)"""
_PERIODS = f"""
SELECT b.key AS i, (
    SELECT json_array(TOTAL(trades), TOTAL(wins), TOTAL(losses), TOTAL(pnl), TOTAL(fees))
    FROM trade_hour_totals WHERE user_id = json_extract(b.value, '$[4]')
        AND hour >= json_extract(b.value, '$[1]') / {HOUR_MS}
        AND hour < json_extract(b.value, '$[2]') / {HOUR_MS}
) AS hours, {_PERIOD_EDGE.format(0, 1)} AS head, {_PERIOD_EDGE.format(2, 3)} AS tail
FROM json_each(:bounds) AS b
"""
_FIRST_EXIT = "SELECT MIN(exit_ts) FROM trade_logs WHERE user_id = ?"
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

_PERIOD_SAMPLE = {"user": 1, "first": 20_000, "since": 1_727_990_000_000, "edge": 1_728_000_000_000}

HOT_QUERIES = (
    HotQuery("trades.recent", _RECENT, (1, 10, 0)),
    HotQuery("trades.logged_since", _LOGGED_SINCE, (1, "BTC/USDT:USDT", "paper", "paper", 0)),
    HotQuery("trades.extremes", _EXTREMES_IN["day"], _PERIOD_SAMPLE),
    HotQuery("trades.extremes.month", _EXTREMES_IN["month"], _PERIOD_SAMPLE),
    HotQuery("trades.by_symbol", _BY_SYMBOL_IN["day"], _PERIOD_SAMPLE, sorts="one row per symbol"),
    HotQuery(
        "trades.by_symbol.month", _BY_SYMBOL_IN["month"], _PERIOD_SAMPLE, sorts="one per symbol"
    ),
    HotQuery("trades.periods", _PERIODS, {"bounds": "[[0, 0, 86400000, 86400000, 1]]"}),
    HotQuery("trades.first_exit", _FIRST_EXIT, (1,)),
    HotQuery("trades.of_orders", _OF_ORDERS.format("?, ?"), (1, "bybit", "demo", "a", "b")),
    HotQuery("trades.estimates", _ESTIMATES, (1, "BTC/USDT:USDT", "bybit", "demo")),
    HotQuery("trades.estimated_since", _ESTIMATED_SINCE, (1, 0)),
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

    async def of_orders(
        self, user_id: int, exchange: str, account_type: str, order_ids: Collection[str]
    ) -> dict[str, TradeRecord]:
        """The trades logged for these closing orders of one account, by order id."""
        found: dict[str, TradeRecord] = {}
        ids = list(order_ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            sql = _OF_ORDERS.format(_marks(len(chunk)))
            params = [user_id, exchange, account_type, *chunk]
            for row in await self.store.fetchall("trades.of_orders", sql, params):
                found[row["order_id"]] = _record(row)
        return found

    async def estimates(
        self, user_id: int, exchange: str, account_type: str, symbol: str
    ) -> list[TradeRecord]:
        """The estimated closes of one account's symbol still waiting for their fills."""
        params = (user_id, symbol, exchange, account_type)
        return [
            _record(r) for r in await self.store.fetchall("trades.estimates", _ESTIMATES, params)
        ]

    async def estimated_since(self, user_id: int, since: datetime) -> int:
        """How many of a trader's closes since `since` are still estimates."""
        params = (user_id, to_ms(since))
        row = await self.store.fetchone("trades.estimated_since", _ESTIMATED_SINCE, params)
        return int(row["n"]) if row is not None else 0

    async def replace_many(
        self, stale: Collection[int], trades: Sequence[TradeLog], tx: Tx | None = None
    ) -> int:
        """Delete the trades `stale` names and log `trades`, in one transaction (the running
        totals follow both through their triggers)."""
        async with self._tx(tx) as t:
            if stale:
                await t.executemany("trades.delete", _DELETE, [(i,) for i in stale])
            if not trades:
                return 0
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
        unit, params = _period(user_id, since)
        rows = await self.store.fetchall("trades.extremes", _EXTREMES_IN[unit], params)
        found = [_record(row) for row in rows]
        if not found:
            return None, None
        # Ties go to the earlier trade, as they did when a single scan found them.
        best = max(found, key=lambda r: (r.trade.pnl, -r.trade_id))
        worst = min(found, key=lambda r: (r.trade.pnl, r.trade_id))
        return best, worst

    async def by_symbol(self, user_id: int, since: datetime) -> list[SymbolTotals]:
        """Totals per symbol of the trades that closed since `since`, in symbol order."""
        unit, params = _period(user_id, since)
        rows = await self.store.fetchall("trades.by_symbol", _BY_SYMBOL_IN[unit], params)
        totals: dict[str, list[Any]] = {}
        for row in rows:
            was = totals.get(row["symbol"])
            now = list(row)[1:]
            totals[row["symbol"]] = (
                now if was is None else [a + b for a, b in zip(was, now, strict=True)]
            )
        return [
            SymbolTotals(
                symbol=symbol,
                trades=trades,
                wins=wins,
                losses=losses,
                pnl=_money(pnl),
                fees=_money(fees),
                gross_win=_money(gross_win),
                gross_loss=_money(gross_loss),
            )
            for symbol, (trades, wins, losses, pnl, fees, gross_win, gross_loss) in sorted(
                totals.items()
            )
        ]

    async def first_exit(self, user_id: int) -> datetime | None:
        """When the trader's first trade closed (None without trades)."""
        ms = await self.store.fetchval("trades.first_exit", _FIRST_EXIT, (user_id,))
        return None if ms is None else from_ms_req(ms)

    async def periods(
        self, user_id: int, bounds: Sequence[tuple[datetime, datetime]]
    ) -> list[PeriodTotals]:
        """Totals of the trades that closed in each [start, end), in the order given."""
        return await self.period_totals([(user_id, start, end) for start, end in bounds])

    async def period_totals(
        self, wanted: Sequence[tuple[int, datetime, datetime]]
    ) -> list[PeriodTotals]:
        """Totals of (trader, [start, end)) pairs, in the order given, in one statement."""
        ranges = []
        for user_id, start, end in wanted:
            first, last = to_ms(start), to_ms(end)
            whole_from = -(-first // HOUR_MS) * HOUR_MS
            whole_to = max(whole_from, last // HOUR_MS * HOUR_MS)
            ranges.append([first, whole_from, whole_to, last, user_id])
        rows = await self.store.fetchall("trades.periods", _PERIODS, {"bounds": json.dumps(ranges)})
        found = []
        for row in rows:
            parts = [json.loads(row[name]) for name in ("hours", "head", "tail")]
            trades, wins, losses = (int(sum(p[k] or 0 for p in parts)) for k in range(3))
            pnl, fees = (sum(p[k] or 0.0 for p in parts) for k in (3, 4))
            user_id, start, end = wanted[row["i"]]
            found.append(
                PeriodTotals(start, end, trades, wins, losses, _money(pnl), _money(fees), user_id)
            )
        return found

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


def _period(user_id: int, since: datetime) -> tuple[str, dict[str, int]]:
    """Which totals serve a period from `since`, and the parameters of its statements.

    The whole UTC days come from the month totals when the first of them is the 1st of a
    month (this month, all time), else from the day totals; the hours before the first
    whole day from trade_logs.
    """
    start = to_ms(since)
    day = -(-start // DAY_MS)  # ceiling: a period starting at 00:00 UTC has no leading hours
    first = datetime.fromtimestamp(day * DAY_MS / 1000, UTC)
    edge = {"user": user_id, "since": start, "edge": day * DAY_MS}
    if first.day == 1:
        return "month", {**edge, "first": first.year * 12 + first.month - 1}
    return "day", {**edge, "first": day}


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
        trade.order_id,
        int(trade.estimated),
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
            order_id=row["order_id"],
            estimated=bool(row["estimated"]),
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
