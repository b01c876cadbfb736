"""The fill ledger: executions once per account and execution id, the venues' closed-PnL
records, and each account's catch-up cursor.

Writing the same execution twice is a no-op (an upsert on the unique key that changes
nothing), so a pushed fill and the same fill read again by a REST catch-up are one row
whatever their order; the later copy only fills in what the first did not say.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal

from core.exchange.models import ClosedPnl, Fill, PositionSide, Side
from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms_req, to_dec, to_ms, to_text
from db.store import Row, Tx

AccountKey = tuple[int, str, str]  # user id, exchange, account type

# A fill already recorded is left as it is, except that a copy knowing more (a REST read
# naming the take profit behind a fill a stream pushed bare) fills in what was missing;
# only such a change counts as one.
_INSERT = """
INSERT INTO fills (user_id, exchange, account_type, fill_id, order_id,
    client_order_id, symbol, side, price, qty, fee, fee_currency, realised_pnl, reduce_only,
    trigger, ts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, exchange, account_type, fill_id) DO UPDATE SET
    trigger = COALESCE(trigger, excluded.trigger),
    realised_pnl = COALESCE(realised_pnl, excluded.realised_pnl),
    reduce_only = COALESCE(reduce_only, excluded.reduce_only),
    client_order_id = COALESCE(client_order_id, excluded.client_order_id)
WHERE (trigger IS NULL AND excluded.trigger IS NOT NULL)
    OR (realised_pnl IS NULL AND excluded.realised_pnl IS NOT NULL)
    OR (reduce_only IS NULL AND excluded.reduce_only IS NOT NULL)
    OR (client_order_id IS NULL AND excluded.client_order_id IS NOT NULL)
"""
_INSERT_CLOSED = """
INSERT OR IGNORE INTO closed_pnl (user_id, exchange, account_type, order_id, ts, symbol, side,
    qty, entry_price, exit_price, closed_pnl, open_fee, close_fee)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_FILL_COLUMNS = (
    "fill_id, order_id, client_order_id, symbol, side, price, qty, fee, fee_currency, "
    "realised_pnl, reduce_only, trigger, ts"
)
# A symbol's whole history on one account, replayed to know each close's entry: served by
# ix_fills_account_symbol_ts, bounded by what one trader did on one symbol.
_OF_SYMBOL = (
    f"SELECT {_FILL_COLUMNS} FROM fills WHERE user_id = ? AND exchange = ? "
    "AND account_type = ? AND symbol = ? ORDER BY ts, id"
)
_CLOSED_OF = (
    "SELECT order_id, ts, symbol, side, qty, entry_price, exit_price, closed_pnl, open_fee, "
    "close_fee FROM closed_pnl WHERE user_id = ? AND exchange = ? AND account_type = ? "
    "AND order_id IN ({})"
)
_CURSOR = "SELECT since FROM fill_cursors WHERE user_id = ? AND exchange = ? AND account_type = ?"
# A cursor only moves forward: a late batch of old fills never rewinds it.
_ADVANCE = """
INSERT INTO fill_cursors (user_id, exchange, account_type, since) VALUES (?, ?, ?, ?)
ON CONFLICT (user_id, exchange, account_type) DO UPDATE SET since = MAX(since, excluded.since)
"""
_START = (
    "INSERT OR IGNORE INTO fill_cursors (user_id, exchange, account_type, since) "
    "VALUES (?, ?, ?, ?)"
)
_CONNECTED = "SELECT DISTINCT user_id, exchange, account_type FROM api_credentials"
# Accounts with a resting limit order of ours, however old: it may fill at any moment.
_RESTING = (
    "SELECT DISTINCT user_id, exchange, account_type FROM pending_limit_orders "
    "WHERE status = 'open' AND expires_at > 0"
)
_CHUNK = 500

HOT_QUERIES = (
    HotQuery("fills.of_symbol", _OF_SYMBOL, (1, "bybit", "demo", "BTC/USDT:USDT")),
    HotQuery("fills.closed_of", _CLOSED_OF.format("?, ?"), (1, "bybit", "demo", "a", "b")),
    HotQuery("fills.cursor", _CURSOR, (1, "bybit", "demo")),
    HotQuery("fills.resting", _RESTING, (), sorts="one row per account with a resting order"),
)


class FillRepository(Repository):
    """SQL for fills, closed_pnl and fill_cursors."""

    async def record(
        self,
        account: AccountKey,
        fills: Sequence[Fill],
        closed: Sequence[ClosedPnl] = (),
        tx: Tx | None = None,
    ) -> tuple[int, int]:
        """Store what is new of `fills` and `closed`; return how many of each were new.

        Each list is one `executemany`; the cursor moves to the latest execution stored.
        """
        async with self._tx(tx) as t:
            added = await t.executemany(
                "fills.record", _INSERT, [(*account, *_fill_params(f)) for f in fills]
            )
            known = await t.executemany(
                "fills.record_closed",
                _INSERT_CLOSED,
                [(*account, *_closed_params(c)) for c in closed],
            )
            if fills:
                latest = max(to_ms(f.ts) for f in fills)
                await t.execute("fills.advance", _ADVANCE, (*account, latest))
            return max(added, 0), max(known, 0)

    async def of_symbol(self, account: AccountKey, symbol: str, tx: Tx | None = None) -> list[Fill]:
        """Every recorded fill of one account's symbol, oldest first (inside `tx`: with what
        it wrote)."""
        params = (*account, symbol)
        if tx is not None:
            rows = await tx.fetchall("fills.of_symbol", _OF_SYMBOL, params)
        else:
            rows = await self.store.fetchall("fills.of_symbol", _OF_SYMBOL, params)
        return [_fill(row) for row in rows]

    async def closed_of(
        self, account: AccountKey, order_ids: Collection[str], tx: Tx | None = None
    ) -> dict[str, list[ClosedPnl]]:
        """The venue's closed-PnL records of these closing orders, by order id."""
        found: dict[str, list[ClosedPnl]] = {}
        ids = list(order_ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            sql = _CLOSED_OF.format(", ".join("?" * len(chunk)))
            params = [*account, *chunk]
            if tx is not None:
                rows = await tx.fetchall("fills.closed_of", sql, params)
            else:
                rows = await self.store.fetchall("fills.closed_of", sql, params)
            for row in rows:
                found.setdefault(row["order_id"], []).append(_closed(row))
        return found

    async def connected_accounts(self) -> list[AccountKey]:
        """Every account with stored keys (read once at start-up, to catch them all up)."""
        rows = await self.store.fetchall("fills.connected", _CONNECTED)
        return [(row[0], row[1], row[2]) for row in rows]

    async def resting_accounts(self) -> list[AccountKey]:
        """Accounts with a resting limit order Tradewind placed."""
        rows = await self.store.fetchall("fills.resting", _RESTING)
        return [(row[0], row[1], row[2]) for row in rows]

    async def cursor(self, account: AccountKey) -> datetime | None:
        """Where the account's catch-up starts; None before the ledger first looked."""
        ms = await self.store.fetchval("fills.cursor", _CURSOR, account)
        return None if ms is None else from_ms_req(ms)

    async def start_cursors(self, accounts: Collection[AccountKey], at: datetime) -> None:
        """Give accounts without a cursor one at `at` (nothing before it is imported)."""
        if accounts:
            rows = [(*a, to_ms(at)) for a in accounts]
            async with self._tx(None) as t:
                await t.executemany("fills.start", _START, rows)


def _fill_params(fill: Fill) -> tuple[object, ...]:
    return (
        fill.fill_id,
        fill.order_id,
        fill.client_order_id,
        fill.symbol,
        fill.side.value,
        str(fill.price),
        str(fill.qty),
        str(fill.fee),
        fill.fee_currency,
        to_text(fill.realised_pnl),
        None if fill.reduce_only is None else int(fill.reduce_only),
        fill.trigger,
        to_ms(fill.ts),
    )


def _closed_params(closed: ClosedPnl) -> tuple[object, ...]:
    return (
        closed.order_id,
        to_ms(closed.ts),
        closed.symbol,
        closed.side.value,
        str(closed.qty),
        str(closed.entry_price),
        str(closed.exit_price),
        str(closed.closed_pnl),
        to_text(closed.open_fee),
        to_text(closed.close_fee),
    )


def _fill(row: Row) -> Fill:
    reduce_only = row["reduce_only"]
    return Fill(
        fill_id=row["fill_id"],
        order_id=row["order_id"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        price=Decimal(row["price"]),
        qty=Decimal(row["qty"]),
        fee=Decimal(row["fee"]),
        fee_currency=row["fee_currency"],
        ts=from_ms_req(row["ts"]),
        realised_pnl=to_dec(row["realised_pnl"]),
        reduce_only=None if reduce_only is None else bool(reduce_only),
        trigger=row["trigger"],
    )


def _closed(row: Row) -> ClosedPnl:
    return ClosedPnl(
        order_id=row["order_id"],
        symbol=row["symbol"],
        side=PositionSide(row["side"]),
        qty=Decimal(row["qty"]),
        entry_price=Decimal(row["entry_price"]),
        exit_price=Decimal(row["exit_price"]),
        closed_pnl=Decimal(row["closed_pnl"]),
        ts=from_ms_req(row["ts"]),
        open_fee=to_dec(row["open_fee"]),
        close_fee=to_dec(row["close_fee"]),
    )
