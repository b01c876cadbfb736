"""The paper exchange's ledger in SQLite: accounts, orders, positions, leverage and fills.

Implements `core.paper.ledger.PaperLedger`. Every mutation runs in one `BEGIN IMMEDIATE`
transaction: load the state, let the caller decide, write what it decided, commit. The
engine's price sweep reads the levels it watches through the by-symbol indexes and writes the fills
of all accounts in a single transaction. Decimals are stored as exact text.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from core.exchange.models import OrderStatus, OrderType, PositionSide, Side
from core.paper.ledger import (
    INITIAL_BALANCE,
    AccountChanges,
    AccountRecord,
    AccountState,
    FillRecord,
    OrderRecord,
    PositionRecord,
    Watch,
)
from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, from_ms_req, to_dec, to_ms, to_text
from db.store import Row, Tx

R = TypeVar("R")
_MAX_VARIABLES = 30_000  # below SQLite's 32,766 host parameters per statement

_ACCOUNT = "id, user_id, balance, created_at, reset_at"
_ORDER = (
    "id, account_id, client_order_id, symbol, side, order_type, qty, price, reduce_only, "
    "take_profit, stop_loss, status, filled_qty, avg_price, fee, created_at, updated_at"
)
_POSITION = (
    "account_id, symbol, side, qty, entry_price, leverage, margin, liq_price, take_profit, "
    "stop_loss, realised_pnl, opened_at, updated_at, trail_distance, trail_activation, "
    "trail_peak"
)
_FILL = "account_id, order_id, symbol, side, qty, price, fee, realised_pnl, is_maker, at"
_O = ", ".join(f"o.{c.strip()}" for c in _ORDER.split(","))
_F = ", ".join(f"f.{c.strip()}" for c in _FILL.split(","))

_ACCOUNT_BY_USER = f"SELECT {_ACCOUNT} FROM paper_accounts WHERE user_id = ?"
_CREATE_ACCOUNT = (
    "INSERT INTO paper_accounts (user_id, balance, created_at) VALUES (?, ?, ?) "
    "ON CONFLICT (user_id) DO NOTHING"
)
_POSITIONS = f"SELECT {_POSITION} FROM paper_positions WHERE account_id = ?"
_OPEN_ORDERS = f"SELECT {_ORDER} FROM paper_orders WHERE account_id = ? AND status = 'open'"
_LEVERAGE = "SELECT account_id, symbol, leverage FROM paper_leverage WHERE account_id = ?"
_ORDER_BY_ID = (
    f"SELECT {_O} FROM paper_accounts a JOIN paper_orders o ON o.account_id = a.id "
    "WHERE a.user_id = ? AND o.id = ?"
)
_ORDER_BY_CLIENT_ID = (
    f"SELECT {_O} FROM paper_accounts a JOIN paper_orders o ON o.account_id = a.id "
    "WHERE a.user_id = ? AND o.client_order_id = ?"
)
_ACCOUNT_ORDER_BY_CLIENT_ID = (
    f"SELECT {_ORDER} FROM paper_orders WHERE account_id = ? AND client_order_id = ?"
)
_FILLS = (
    f"SELECT {_F} FROM paper_accounts a JOIN paper_fills f ON f.account_id = a.id "
    "WHERE a.user_id = ? ORDER BY f.at DESC, f.id DESC LIMIT ?"
)
_FILLS_SINCE = (
    f"SELECT {_F}, f.id AS fill_id, o.client_order_id, o.reduce_only "
    "FROM paper_accounts a JOIN paper_fills f ON f.account_id = a.id "
    "LEFT JOIN paper_orders o ON o.id = f.order_id "
    "WHERE a.user_id = ? AND f.at >= ? ORDER BY f.at, f.id LIMIT ?"
)
# The engine's queries take variable-length IN lists; `{}` is filled with placeholders.
_OPEN_ORDERS_ON = (
    "SELECT account_id, symbol, side, price FROM paper_orders "
    "WHERE status = 'open' AND symbol IN ({})"
)
_POSITIONS_ON = (
    "SELECT account_id, symbol, side, take_profit, stop_loss, liq_price, trail_distance, "
    "trail_activation, trail_peak FROM paper_positions WHERE symbol IN ({})"
)
_ACCOUNTS_IN = f"SELECT {_ACCOUNT} FROM paper_accounts WHERE id IN ({{}})"
_POSITIONS_IN = f"SELECT {_POSITION} FROM paper_positions WHERE account_id IN ({{}})"
_OPEN_ORDERS_IN = (
    f"SELECT {_ORDER} FROM paper_orders WHERE status = 'open' AND account_id IN ({{}})"
)
_LEVERAGE_IN = "SELECT account_id, symbol, leverage FROM paper_leverage WHERE account_id IN ({})"

_SET_BALANCE = "UPDATE paper_accounts SET balance = ? WHERE id = ?"
_UPSERT_ORDER = f"""
INSERT INTO paper_orders ({_ORDER}) VALUES ({", ".join("?" * 17)})
ON CONFLICT (id) DO UPDATE SET
    qty = excluded.qty, status = excluded.status, filled_qty = excluded.filled_qty,
    avg_price = excluded.avg_price, fee = excluded.fee, updated_at = excluded.updated_at
"""
_UPSERT_POSITION = f"""
INSERT INTO paper_positions ({_POSITION}) VALUES ({", ".join("?" * 16)})
ON CONFLICT (account_id, symbol) DO UPDATE SET
    side = excluded.side, qty = excluded.qty, entry_price = excluded.entry_price,
    leverage = excluded.leverage, margin = excluded.margin, liq_price = excluded.liq_price,
    take_profit = excluded.take_profit, stop_loss = excluded.stop_loss,
    realised_pnl = excluded.realised_pnl, opened_at = excluded.opened_at,
    updated_at = excluded.updated_at, trail_distance = excluded.trail_distance,
    trail_activation = excluded.trail_activation, trail_peak = excluded.trail_peak
"""
_DELETE_POSITION = "DELETE FROM paper_positions WHERE account_id = ? AND symbol = ?"
_UPSERT_LEVERAGE = (
    "INSERT INTO paper_leverage (account_id, symbol, leverage) VALUES (?, ?, ?) "
    "ON CONFLICT (account_id, symbol) DO UPDATE SET leverage = excluded.leverage"
)
_INSERT_FILL = f"INSERT INTO paper_fills ({_FILL}) VALUES ({', '.join('?' * 10)})"
_RESET = (
    ("paper.reset_fills", "DELETE FROM paper_fills WHERE account_id = ?"),
    ("paper.reset_orders", "DELETE FROM paper_orders WHERE account_id = ?"),
    ("paper.reset_positions", "DELETE FROM paper_positions WHERE account_id = ?"),
    ("paper.reset_leverage", "DELETE FROM paper_leverage WHERE account_id = ?"),
)
_RESET_BALANCE = "UPDATE paper_accounts SET balance = ?, reset_at = ? WHERE id = ?"


def _marks(count: int) -> str:
    return ", ".join("?" * count)


HOT_QUERIES = (
    HotQuery("paper.account_by_user", _ACCOUNT_BY_USER, (1,)),
    HotQuery("paper.positions", _POSITIONS, (1,)),
    HotQuery("paper.open_orders", _OPEN_ORDERS, (1,)),
    HotQuery("paper.leverage", _LEVERAGE, (1,)),
    HotQuery("paper.order_by_id", _ORDER_BY_ID, (1, "o1")),
    HotQuery("paper.order_by_client_id", _ORDER_BY_CLIENT_ID, (1, "c1")),
    HotQuery("paper.account_order_by_client_id", _ACCOUNT_ORDER_BY_CLIENT_ID, (1, "c1")),
    HotQuery("paper.fills", _FILLS, (1, 50)),
    HotQuery("paper.fills_since", _FILLS_SINCE, (1, 0, 5000)),
    HotQuery("paper.open_orders_on", _OPEN_ORDERS_ON.format(_marks(2)), ("A", "B")),
    HotQuery("paper.positions_on", _POSITIONS_ON.format(_marks(2)), ("A", "B")),
    HotQuery("paper.accounts_in", _ACCOUNTS_IN.format(_marks(2)), (1, 2)),
    HotQuery("paper.positions_in", _POSITIONS_IN.format(_marks(2)), (1, 2)),
    HotQuery("paper.open_orders_in", _OPEN_ORDERS_IN.format(_marks(2)), (1, 2)),
    HotQuery("paper.leverage_in", _LEVERAGE_IN.format(_marks(2)), (1, 2)),
)


class PaperRepository(Repository):
    """SQL for the paper_* tables; the SQLite `PaperLedger`."""

    async def load(self, user_id: int) -> AccountState | None:
        row = await self.store.fetchone("paper.account_by_user", _ACCOUNT_BY_USER, (user_id,))
        if row is None:
            return None
        account = _account(row)
        key = (account.account_id,)
        state = AccountState(account)
        for r in await self.store.fetchall("paper.positions", _POSITIONS, key):
            state.positions[r["symbol"]] = _position(r)
        for r in await self.store.fetchall("paper.open_orders", _OPEN_ORDERS, key):
            state.open_orders[r["id"]] = _order(r)
        for r in await self.store.fetchall("paper.leverage", _LEVERAGE, key):
            state.leverage[r["symbol"]] = r["leverage"]
        return state

    async def find_order(
        self, user_id: int, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> OrderRecord | None:
        if order_id is not None:
            row = await self.store.fetchone("paper.order_by_id", _ORDER_BY_ID, (user_id, order_id))
        else:
            row = await self.store.fetchone(
                "paper.order_by_client_id", _ORDER_BY_CLIENT_ID, (user_id, client_order_id)
            )
        return None if row is None else _order(row)

    async def fills(self, user_id: int, limit: int = 100) -> list[FillRecord]:
        rows = await self.store.fetchall("paper.fills", _FILLS, (user_id, limit))
        return [_fill(r) for r in rows]

    async def fills_since(self, user_id: int, since: datetime, limit: int) -> list[FillRecord]:
        params = (user_id, to_ms(since), limit)
        rows = await self.store.fetchall("paper.fills_since", _FILLS_SINCE, params)
        return [
            replace(
                _fill(r),
                fill_id=r["fill_id"],
                client_order_id=r["client_order_id"],
                reduce_only=None if r["reduce_only"] is None else bool(r["reduce_only"]),
            )
            for r in rows
        ]

    async def mutate(
        self,
        user_id: int,
        now: datetime,
        decide: Callable[[AccountState], tuple[AccountChanges, R]],
        *,
        client_order_id: str | None = None,
        initial_balance: Decimal = INITIAL_BALANCE,
    ) -> R:
        async with self.store.transaction() as tx:
            account = await self._ensure_account(tx, user_id, now, initial_balance)
            states = await self._states(tx, [account.account_id])
            state = states[account.account_id]
            if client_order_id is not None:
                row = await tx.fetchone(
                    "paper.account_order_by_client_id",
                    _ACCOUNT_ORDER_BY_CLIENT_ID,
                    (account.account_id, client_order_id),
                )
                state.client_order = None if row is None else _order(row)
            changes, result = decide(state)
            await _write(tx, [changes])
        return result

    async def mutate_many(
        self,
        account_ids: Collection[int],
        now: datetime,
        decide: Callable[[Mapping[int, AccountState]], tuple[list[AccountChanges], R]],
    ) -> R:
        async with self.store.transaction() as tx:
            changes, result = decide(await self._states(tx, list(account_ids)))
            await _write(tx, changes)
        return result

    async def reset(self, user_id: int, now: datetime, initial_balance: Decimal) -> AccountRecord:
        async with self.store.transaction() as tx:
            account = await self._ensure_account(tx, user_id, now, initial_balance)
            for name, sql in _RESET:
                await tx.execute(name, sql, (account.account_id,))
            await tx.execute(
                "paper.reset_balance",
                _RESET_BALANCE,
                (str(initial_balance), to_ms(now), account.account_id),
            )
        return AccountRecord(account.account_id, user_id, initial_balance, account.created_at, now)

    async def watches(self, symbols: Collection[str]) -> list[Watch]:
        """Read only the levels, not whole records: this runs after every market scan."""
        found: list[Watch] = []
        for chunk in _chunks(list(symbols)):
            sql = _OPEN_ORDERS_ON.format(_marks(len(chunk)))
            for account_id, symbol, side, price in await self.store.fetchall(
                "paper.open_orders_on", sql, chunk
            ):
                level = (Decimal(price),)
                below = side == Side.BUY.value
                found.append(
                    Watch(account_id, symbol, level if below else (), () if below else level)
                )
            sql = _POSITIONS_ON.format(_marks(len(chunk)))
            for (
                account_id,
                symbol,
                side,
                tp,
                sl,
                liq,
                trail,
                start,
                peak,
            ) in await self.store.fetchall("paper.positions_on", sql, chunk):
                guard = tuple(Decimal(v) for v in (sl, liq) if v is not None)
                # A trailing stop moves when the price passes its best (or its activation).
                ratchet = peak if peak is not None else start
                moving = (ratchet,) if trail is not None and ratchet is not None else ()
                profit = tuple(Decimal(v) for v in (tp, *moving) if v is not None)
                long = side == PositionSide.LONG.value
                found.append(
                    Watch(account_id, symbol, *((guard, profit) if long else (profit, guard)))
                )
        return found

    async def _ensure_account(
        self, tx: Tx, user_id: int, now: datetime, balance: Decimal
    ) -> AccountRecord:
        await tx.execute(
            "paper.create_account", _CREATE_ACCOUNT, (user_id, str(balance), to_ms(now))
        )
        row = await tx.fetchone("paper.account_by_user", _ACCOUNT_BY_USER, (user_id,))
        assert row is not None
        return _account(row)

    async def _states(self, tx: Tx, account_ids: list[int]) -> dict[int, AccountState]:
        """Load many accounts with one query per table (never one per account)."""
        states: dict[int, AccountState] = {}
        for chunk in _chunks(account_ids):
            marks = _marks(len(chunk))
            for r in await tx.fetchall("paper.accounts_in", _ACCOUNTS_IN.format(marks), chunk):
                states[r["id"]] = AccountState(_account(r))
            sql = _POSITIONS_IN.format(marks)
            for r in await tx.fetchall("paper.positions_in", sql, chunk):
                states[r["account_id"]].positions[r["symbol"]] = _position(r)
            sql = _OPEN_ORDERS_IN.format(marks)
            for r in await tx.fetchall("paper.open_orders_in", sql, chunk):
                states[r["account_id"]].open_orders[r["id"]] = _order(r)
            sql = _LEVERAGE_IN.format(marks)
            for r in await tx.fetchall("paper.leverage_in", sql, chunk):
                states[r["account_id"]].leverage[r["symbol"]] = r["leverage"]
        return states


async def _write(tx: Tx, all_changes: Iterable[AccountChanges]) -> None:
    """Persist every account's changes with one batched statement per kind of row."""
    balances: list[tuple[Any, ...]] = []
    orders: list[tuple[Any, ...]] = []
    positions: list[tuple[Any, ...]] = []
    closed: list[tuple[Any, ...]] = []
    leverage: list[tuple[Any, ...]] = []
    fills: list[tuple[Any, ...]] = []
    for c in all_changes:
        if c.balance is not None:
            balances.append((str(c.balance), c.account_id))
        orders.extend(_order_row(o) for o in c.orders)
        positions.extend(_position_row(p) for p in c.positions)
        closed.extend((c.account_id, symbol) for symbol in c.closed)
        leverage.extend((c.account_id, s, lev) for s, lev in c.leverage.items())
        fills.extend(_fill_row(f) for f in c.fills)
    batches = (
        ("paper.set_balance", _SET_BALANCE, balances),
        ("paper.upsert_order", _UPSERT_ORDER, orders),
        ("paper.delete_position", _DELETE_POSITION, closed),
        ("paper.upsert_position", _UPSERT_POSITION, positions),
        ("paper.upsert_leverage", _UPSERT_LEVERAGE, leverage),
        ("paper.insert_fill", _INSERT_FILL, fills),
    )
    for name, sql, rows in batches:
        if rows:
            await tx.executemany(name, sql, rows)


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + _MAX_VARIABLES] for i in range(0, len(values), _MAX_VARIABLES)]


def _account(row: Row) -> AccountRecord:
    return AccountRecord(
        account_id=row["id"],
        user_id=row["user_id"],
        balance=Decimal(row["balance"]),
        created_at=from_ms_req(row["created_at"]),
        reset_at=from_ms(row["reset_at"]),
    )


def _order(row: Row) -> OrderRecord:
    return OrderRecord(
        order_id=row["id"],
        account_id=row["account_id"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        order_type=OrderType(row["order_type"]),
        qty=Decimal(row["qty"]),
        price=to_dec(row["price"]),
        status=OrderStatus(row["status"]),
        created_at=from_ms_req(row["created_at"]),
        updated_at=from_ms_req(row["updated_at"]),
        reduce_only=bool(row["reduce_only"]),
        take_profit=to_dec(row["take_profit"]),
        stop_loss=to_dec(row["stop_loss"]),
        filled_qty=Decimal(row["filled_qty"]),
        avg_price=to_dec(row["avg_price"]),
        fee=Decimal(row["fee"]),
    )


def _order_row(o: OrderRecord) -> tuple[Any, ...]:
    return (
        o.order_id, o.account_id, o.client_order_id, o.symbol, o.side.value,
        o.order_type.value, str(o.qty), to_text(o.price), int(o.reduce_only),
        to_text(o.take_profit), to_text(o.stop_loss), o.status.value, str(o.filled_qty),
        to_text(o.avg_price), str(o.fee), to_ms(o.created_at), to_ms(o.updated_at),
    )  # fmt: skip


def _position(row: Row) -> PositionRecord:
    return PositionRecord(
        account_id=row["account_id"],
        symbol=row["symbol"],
        side=PositionSide(row["side"]),
        qty=Decimal(row["qty"]),
        entry_price=Decimal(row["entry_price"]),
        leverage=row["leverage"],
        margin=Decimal(row["margin"]),
        liq_price=to_dec(row["liq_price"]),
        opened_at=from_ms_req(row["opened_at"]),
        updated_at=from_ms_req(row["updated_at"]),
        take_profit=to_dec(row["take_profit"]),
        stop_loss=to_dec(row["stop_loss"]),
        realised_pnl=Decimal(row["realised_pnl"]),
        trail_distance=to_dec(row["trail_distance"]),
        trail_activation=to_dec(row["trail_activation"]),
        trail_peak=to_dec(row["trail_peak"]),
    )


def _position_row(p: PositionRecord) -> tuple[Any, ...]:
    return (
        p.account_id, p.symbol, p.side.value, str(p.qty), str(p.entry_price), p.leverage,
        str(p.margin), to_text(p.liq_price), to_text(p.take_profit), to_text(p.stop_loss),
        str(p.realised_pnl), to_ms(p.opened_at), to_ms(p.updated_at),
        to_text(p.trail_distance), to_text(p.trail_activation), to_text(p.trail_peak),
    )  # fmt: skip


def _fill(row: Row) -> FillRecord:
    return FillRecord(
        account_id=row["account_id"],
        order_id=row["order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=Decimal(row["qty"]),
        price=Decimal(row["price"]),
        fee=Decimal(row["fee"]),
        realised_pnl=Decimal(row["realised_pnl"]),
        is_maker=bool(row["is_maker"]),
        at=from_ms_req(row["at"]),
    )


def _fill_row(f: FillRecord) -> tuple[Any, ...]:
    return (
        f.account_id, f.order_id, f.symbol, f.side.value, str(f.qty), str(f.price),
        str(f.fee), str(f.realised_pnl), int(f.is_maker), to_ms(f.at),
    )  # fmt: skip
