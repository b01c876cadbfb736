"""Position sync: `active_positions` follows what the exchanges hold, and closes get logged.

Every run reads the accounts with open positions, orders in the last hour or a tracked limit
order still resting: their positions and open orders through the client pool and the shared
cache (a trader who just looked costs no request). Then, per account:
- a position that shrank or vanished was closed: the account's executions are read into
  the fill ledger at once (`FillCatchUp`), which logs the close from its fills with the
  venue's PnL and tells the trader. Only when they cannot be read is the close estimated
  (a TP/SL level the price went through, or the last price), logged as an estimate and
  shown with "~"; the ledger replaces it when the fills arrive.
- a position Tradewind did not know is stored with the origin of the order that opened it;
  an auto-trade order whose fill was not known yet is marked filled at the entry price.
- resting limit orders Tradewind placed are tracked with the owner's time-to-live.
All writes of a run and its notices commit in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from core.clock import Clock
from core.exchange.errors import ExchangeError
from core.exchange.ids import PREFIX
from core.exchange.models import ZERO, Listing, Order, OrderType, Position, PositionSide
from core.lifecycle import STOPS, CloseReason, ExecutionStatus, LimitStatus, Origin
from db.repositories.base import to_ms
from db.repositories.executions import ExecutionRepository
from db.repositories.intents import IntentRecord, IntentRepository
from db.repositories.pending_orders import PendingOrder, PendingOrderRepository
from db.repositories.positions import AccountKey, ActivePosition, PositionRepository
from db.repositories.trades import TradeLog, TradeRepository
from db.repositories.users import UserRepository
from services import notices
from services.amounts import opening_fee, realised_pnl, taker_fee
from services.caching import account_key
from services.exchanges import ExchangeGateway
from services.fill_ledger_catchup import FillCatchUp
from services.market import MarketService
from services.outbox import Notice, NoticeKind
from services.strategy import StrategyService
from services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

RECENT = timedelta(hours=1)


@dataclass(slots=True, frozen=True)
class _Snapshot:
    positions: Listing[Position]
    orders: Listing[Order]


@dataclass(slots=True)
class SyncReport:
    """One run: accounts read, positions opened/changed/closed, trades logged, failures."""

    accounts: int = 0
    opened: int = 0
    changed: int = 0
    closed: int = 0
    logged: int = 0
    tracked_orders: int = 0
    failures: int = 0
    read_ms: float = 0.0
    reconcile_ms: float = 0.0
    write_ms: float = 0.0

    def __str__(self) -> str:
        return (
            f"read {self.read_ms:.0f} ms, reconcile {self.reconcile_ms:.0f} ms, "
            f"write {self.write_ms:.0f} ms — "
            f"{self.accounts} accounts: +{self.opened} opened, {self.changed} changed, "
            f"-{self.closed} closed, {self.logged} trades logged, "
            f"{self.tracked_orders} limit orders tracked, {self.failures} unreachable"
        )


@dataclass(slots=True)
class _Changes:
    upserts: list[ActivePosition] = field(default_factory=list)
    deletes: list[ActivePosition] = field(default_factory=list)
    trades: list[TradeLog] = field(default_factory=list)
    fills: list[tuple[int, int, Decimal]] = field(default_factory=list)
    track: list[PendingOrder] = field(default_factory=list)
    finished: list[tuple[int, str]] = field(default_factory=list)
    notes: list[tuple[int, NoticeKind, str, str]] = field(default_factory=list)  # user, kind, HTML
    caught_up: bool = False  # the account being reconciled had its fills read just now


class PositionSync:
    """Reconciles stored positions with the exchanges; run by a job every 30 s."""

    def __init__(
        self,
        *,
        work: UnitOfWork,
        positions: PositionRepository,
        pending: PendingOrderRepository,
        trades: TradeRepository,
        executions: ExecutionRepository,
        intents: IntentRepository,
        users: UserRepository,
        strategy: StrategyService,
        market: MarketService,
        gateway: ExchangeGateway,
        clock: Clock,
        catch_up: FillCatchUp | None = None,
        concurrency: int = 50,
    ) -> None:
        self._work = work
        self._positions = positions
        self._pending = pending
        self._trades = trades
        self._executions = executions
        self._intents = intents
        self._users = users
        self._strategy = strategy
        self._market = market
        self._gateway = gateway
        self._clock = clock
        self._catch_up = catch_up
        self._slots = asyncio.Semaphore(concurrency)

    async def sync_once(self) -> SyncReport:
        now = self._clock.now()
        stored: dict[AccountKey, list[ActivePosition]] = defaultdict(list)
        for row in await self._positions.all():
            stored[row.account].append(row)
        recent = await self._positions.recent_accounts(now - RECENT)
        resting = await self._pending.open_accounts(now)  # a limit may fill hours later
        accounts = sorted(set(stored) | recent | resting)
        started = time.perf_counter()
        snapshots = await asyncio.gather(*(self._read(account) for account in accounts))
        report, changes = SyncReport(accounts=len(accounts)), _Changes()
        read = time.perf_counter()
        closing = [
            account
            for account, snapshot in zip(accounts, snapshots, strict=True)
            if snapshot is not None and _closes(stored[account], snapshot)
        ]
        caught: set[AccountKey] = set()
        if closing and self._catch_up is not None:  # the closes' fills, before any guess
            done = await self._catch_up.catch_up(closing)
            caught, report.logged = done.ok, done.trades
        read = time.perf_counter()
        report.read_ms = (read - started) * 1000
        for account, snapshot in zip(accounts, snapshots, strict=True):
            if snapshot is None:
                report.failures += 1
                continue
            changes.caught_up = account in caught
            await self._reconcile(account, stored[account], snapshot, changes, report, now)
        reconciled = time.perf_counter()
        report.reconcile_ms = (reconciled - read) * 1000
        await self._commit(changes)
        report.write_ms = (time.perf_counter() - reconciled) * 1000
        report.logged += len(changes.trades)
        report.tracked_orders = len(changes.track)
        return report

    async def _read(self, account: AccountKey) -> _Snapshot | None:
        client = self._gateway.account(*account)
        try:
            async with self._slots:
                positions = await client.positions()
                orders = await client.open_orders()
        except ExchangeError as error:
            log.warning("position sync: %s unreachable: %s", client.key, error.message)
            return None
        return _Snapshot(positions, orders)

    async def _reconcile(
        self,
        account: AccountKey,
        rows: Sequence[ActivePosition],
        snapshot: _Snapshot,
        changes: _Changes,
        report: SyncReport,
        now: datetime,
    ) -> None:
        current = {p.symbol: p for p in snapshot.positions if p.qty > 0}
        known: set[str] = set()
        for row in rows:
            position = current.get(row.symbol)
            if position is None and not snapshot.positions.complete:
                known.add(row.symbol)  # beyond the pages read: unseen is not closed
                continue
            same = position is not None and position.side.value == row.side
            remaining = position.qty if position is not None and same else ZERO
            if row.qty > remaining and not await self._closed(row, row.qty - remaining, changes):
                known.add(row.symbol)  # a paper close its engine has not logged yet
                continue
            if position is None or not same:
                changes.deletes.append(row)
                report.closed += 1
                continue
            known.add(row.symbol)
            seen = _seen(row, position, now)
            if seen != replace(row, updated_at=seen.updated_at):
                changes.upserts.append(seen)
                report.changed += 1
            if row.origin == Origin.AUTO and row.signal_id and row.updated_at == row.opened_at:
                await self._auto_filled(row.signal_id, position, row, changes)
        for symbol, position in current.items():
            if symbol not in known:
                await self._opened(account, position, changes, now)
                report.opened += 1
        await self._track_orders(account, snapshot.orders, changes, now)

    async def _closed(self, row: ActivePosition, qty: Decimal, changes: _Changes) -> bool:
        """Log what of `qty` nobody logged; False to keep the row for a later run.

        An account whose fills were just read needs nothing here: the fill ledger logged
        and announced the close (a close with no fills yet is not a close). Otherwise the
        close is estimated, unless something logged it already.
        """
        if changes.caught_up:
            return True
        logged = await self._trades.logged_since(
            row.user_id, row.exchange, row.account_type, row.symbol, row.updated_at
        )
        unlogged = qty - sum((c.qty for c in logged), ZERO)
        if unlogged <= 0:
            return True
        if row.exchange == "paper":
            return False  # the paper engine logs its closes from its own fills
        ticker = (await self._market.tickers(row.exchange)).get(row.symbol)
        exit_price, reason = _exit(row, ticker.last if ticker else row.entry_price)
        side = PositionSide(row.side)
        opened = await self._intents.latest_opening(
            row.user_id,
            row.exchange,
            row.account_type,
            row.symbol,
            side.opening_side.value,
            filled_only=True,
        )
        fee = taker_fee(unlogged * exit_price) + opening_fee(  # both legs
            opened.fee if opened else None,
            opened.filled_qty if opened else None,
            unlogged,
            row.entry_price,
        )
        changes.trades.append(
            TradeLog(
                user_id=row.user_id,
                exchange=row.exchange,
                account_type=row.account_type,
                symbol=row.symbol,
                side=row.side,
                qty=unlogged,
                entry_price=row.entry_price,
                exit_price=exit_price,
                pnl=realised_pnl(side, row.entry_price, exit_price, unlogged, fee),
                fee=fee,
                entry_ts=row.opened_at,
                exit_ts=self._clock.now(),
                leverage=row.leverage,
                origin=row.origin,
                signal_id=row.signal_id,
                close_reason=reason,
                estimated=True,  # replaced by the fill ledger when the fills are read
            )
        )
        pnl = changes.trades[-1].pnl
        kind = NoticeKind.STOP if reason in STOPS else NoticeKind.FILL
        text = notices.position_closed(row, unlogged, reason, exit_price, pnl, estimated=True)
        key = f"sync-close:{row.position_id}:{to_ms(row.updated_at)}"
        changes.notes.append((row.user_id, kind, text, key))
        return True

    async def _opened(
        self, account: AccountKey, position: Position, changes: _Changes, now: datetime
    ) -> None:
        intent = await self._opening(account, position)
        origin = intent.origin if intent is not None else Origin.EXCHANGE
        row = _seen(
            ActivePosition(
                *account, position.symbol, position.side.value, position.qty,
                position.entry_price, position.leverage, now, now,
                origin=origin if origin in (Origin.AUTO, Origin.MANUAL) else Origin.MANUAL,
                signal_id=intent.signal_id if intent is not None else None,
            ),
            position,
            now,
        )  # fmt: skip
        changes.upserts.append(row)
        if intent is not None and intent.origin == Origin.AUTO and intent.signal_id:
            await self._auto_filled(intent.signal_id, position, row, changes)
        elif self._catch_up is None and (
            intent is None or intent.order_type == OrderType.LIMIT.value
        ):  # with the fill ledger, the fills themselves are told (`notices.order_filled`)
            text = notices.position_opened(row, position.qty, position.entry_price)
            key = f"sync-open:{account_key(*account)}:{position.symbol}:{to_ms(now)}"
            changes.notes.append((row.user_id, NoticeKind.FILL, text, key))

    async def _auto_filled(
        self, signal_id: int, position: Position, row: ActivePosition, changes: _Changes
    ) -> None:
        """An auto-trade order placed without a known fill: the position says where it filled."""
        execution = await self._executions.get(signal_id, row.user_id)
        if execution is None or execution.status != ExecutionStatus.PLACED:
            return
        changes.fills.append((signal_id, row.user_id, position.entry_price))
        text = notices.auto_trade_filled(
            row, position.qty, position.entry_price, execution.signal_price
        )
        key = f"auto-fill:{signal_id}:{row.user_id}"
        changes.notes.append((row.user_id, NoticeKind.FILL, text, key))

    async def _opening(self, account: AccountKey, position: Position) -> IntentRecord | None:
        """The latest order of ours that opened a position on this symbol, if any."""
        side = position.side.opening_side.value
        return await self._intents.latest_opening(*account, position.symbol, side)

    async def _track_orders(
        self, account: AccountKey, orders: Listing[Order], changes: _Changes, now: datetime
    ) -> None:
        ours = [
            o
            for o in orders
            if o.order_type is OrderType.LIMIT
            and not o.reduce_only
            and (o.client_order_id or "").startswith(PREFIX)
            and o.price is not None
        ]
        tracked = [
            p
            for p in await self._pending.open_for_user(account[0])
            if (p.exchange, p.account_type) == account[1:]
        ]
        resting = {o.order_id for o in orders}
        gone = [p for p in tracked if orders.complete and p.exchange_order_id not in resting]
        changes.finished += [(p.order_row_id, LimitStatus.CLOSED) for p in gone]
        if not ours:
            return
        ttl = timedelta(minutes=(await self._strategy.settings(account[0])).limit_order_ttl_min)
        for order in ours:
            created = order.created_at or now
            changes.track.append(
                PendingOrder(
                    *account, order.symbol, order.side.value, order.client_order_id or "",
                    order.order_id, order.price or ZERO, order.qty, created, created + ttl,
                )
            )  # fmt: skip

    async def _commit(self, changes: _Changes) -> None:
        users = await self._users.get_many(sorted({user for user, *_ in changes.notes}))
        told = [
            Notice(user, users[user].chat_id, kind, text, key)
            for user, kind, text, key in changes.notes
            if user in users
        ]
        async with self._work.begin() as work:
            tx = work.tx
            await self._positions.delete_many(changes.deletes, tx)
            await self._positions.upsert_many(changes.upserts, tx)
            await self._trades.record_many(changes.trades, tx)
            await self._executions.mark_filled(changes.fills, tx)
            await self._pending.finish_many(changes.finished, tx)
            await self._pending.track_many(changes.track, tx)
            await work.notify(told)
            work.changed()  # the admin analytics count trades and fills


def _closes(rows: Sequence[ActivePosition], snapshot: _Snapshot) -> bool:
    """Whether a stored position shrank, flipped or vanished in the snapshot."""
    current = {p.symbol: p for p in snapshot.positions if p.qty > 0}
    for row in rows:
        position = current.get(row.symbol)
        if position is None and not snapshot.positions.complete:
            continue
        if position is None or position.side.value != row.side or position.qty < row.qty:
            return True
    return False


def _seen(row: ActivePosition, position: Position, now: datetime) -> ActivePosition:
    """The row as the exchange reports the position now."""
    return replace(
        row,
        side=position.side.value,
        qty=position.qty,
        entry_price=position.entry_price,
        leverage=position.leverage,
        take_profit=position.take_profit,
        stop_loss=position.stop_loss,
        liq_price=position.liquidation_price,
        updated_at=now,
    )


def _exit(row: ActivePosition, last: Decimal) -> tuple[Decimal, CloseReason]:
    """Where a position closed outside Tradewind: at a level the price went through, else
    at the current price."""
    long = row.side == PositionSide.LONG.value
    levels = (
        (row.take_profit, CloseReason.TAKE_PROFIT, not long),
        (row.stop_loss, CloseReason.STOP_LOSS, long),
        (row.liq_price, CloseReason.LIQUIDATION, long),
    )
    for level, reason, below in levels:
        if level is not None and level > 0 and (last <= level if below else last >= level):
            return level, reason
    return last, CloseReason.EXCHANGE
