"""The fill ledger: every execution recorded once, and the trade logs derived from them.

`FillLedger.record` is the one way in, for fills pushed by a stream and fills read by the
REST catch-up alike. In one transaction it stores what is new (a fill already recorded is a
no-op: unique per account and execution id), replays the touched symbols' fills
(`services.fill_ledger_replay`) and logs one trade per closing order: entry and exit are
volume-weighted fill prices, the fee is both legs', and the PnL is the venue's closed PnL
where it gives one, else its realised PnL on the fills less the fees, else computed.

Idempotence rests on keys, not timing: a trade names its closing order (unique per
account), so deriving it again replaces it only when its figures changed (more fills of
the order, the venue's closed PnL arriving later, the truth after a snapshot's estimate),
and the close's notice is keyed by that order too, so it goes out once.

Tradewind's own opening orders among the new fills (a resting limit that filled minutes
later) are handed to `when_orders_fill` once the transaction has committed and the account
is free again: the executor settles their intents and places what follows an entry. The
ledger itself never calls an exchange, and a failure there never undoes a recording.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from core.exchange.ids import PREFIX
from core.exchange.models import ZERO, ClosedPnl, Fill, OrderType
from core.lifecycle import CloseReason, Origin
from db.repositories.fills import AccountKey, FillRepository
from db.repositories.intents import IntentRecord, IntentRepository
from db.repositories.positions import PositionRepository
from db.repositories.trades import TradeLog, TradeRecord, TradeRepository
from db.repositories.users import UserRepository
from db.store import Tx
from services import notices
from services.execution import FilledSoFar
from services.fill_ledger_replay import Close, OrderFill, opening_orders, replay
from services.outbox import Notice
from services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

_TRIGGERS = {
    "take_profit": CloseReason.TAKE_PROFIT,
    "stop_loss": CloseReason.STOP_LOSS,
    "liquidation": CloseReason.LIQUIDATION,
}


@dataclass(slots=True)
class Recorded:
    """What one `record` call changed."""

    fills: int = 0  # new executions stored
    closed: int = 0  # new closed-PnL records stored
    trades: list[TradeLog] = field(default_factory=list)  # trades logged or replaced


class FillLedger:
    """Records executions and derives the trade logs from them."""

    def __init__(
        self,
        *,
        work: UnitOfWork,
        fills: FillRepository,
        trades: TradeRepository,
        intents: IntentRepository,
        positions: PositionRepository,
        users: UserRepository,
        on_fills: Callable[[AccountKey], None] | None = None,
        when_orders_fill: Callable[[Sequence[FilledSoFar]], Awaitable[object]] | None = None,
    ) -> None:
        self._work = work
        self._fills = fills
        self._trades = trades
        self._intents = intents
        self._positions = positions
        self._users = users
        # Told when an account got new fills (its cached positions and balance are stale).
        self._on_fills = on_fills or (lambda account: None)
        self._when_orders_fill = when_orders_fill
        self._locks: dict[AccountKey, asyncio.Lock] = {}

    async def record(
        self,
        user_id: int,
        exchange: str,
        account_type: str,
        fills: Sequence[Fill],
        closed: Sequence[ClosedPnl] = (),
    ) -> Recorded:
        """Store `fills` (and the venue's closed-PnL records) and derive their trades.

        Recording what is already recorded changes nothing and tells nobody.
        """
        account = (user_id, exchange, account_type)
        # A stream and a catch-up of one account take turns. A lock per account ever
        # recorded: a few thousand small objects, never dropped while someone may wait.
        async with self._locks.setdefault(account, asyncio.Lock()):
            done, opened = await self._record(account, fills, closed)
        await self._settle(opened)
        return done

    async def _settle(self, opened: Sequence[OrderFill]) -> None:
        """Hand our opening orders' fills so far to the executor (outside the transaction
        and the account's turn: what follows an entry calls the exchange)."""
        ours = [
            FilledSoFar(o.client_order_id, o.order_id, o.qty, o.price, o.fee)
            for o in opened
            if o.client_order_id and o.client_order_id.startswith(PREFIX)
        ]
        if not ours or self._when_orders_fill is None:
            return
        try:
            await self._when_orders_fill(ours)
        except Exception:  # the fills are recorded whatever follows them
            log.exception("after the fills of %s", [o.client_order_id for o in ours])

    async def _record(
        self, account: AccountKey, fills: Sequence[Fill], closed: Sequence[ClosedPnl]
    ) -> tuple[Recorded, list[OrderFill]]:
        ordered = sorted(fills, key=lambda f: f.ts)  # stable: a venue's order within a ms
        done = Recorded()
        opened: list[OrderFill] = []
        async with self._work.begin() as work:
            done.fills, done.closed = await self._fills.record(account, ordered, closed, work.tx)
            if not done.fills and not done.closed:
                return done, opened
            symbols = {f.symbol for f in ordered} | {c.symbol for c in closed}
            since = min((f.ts for f in ordered), default=None)
            stale: list[int] = []
            orders = {f.order_id for f in ordered}
            for symbol in sorted(symbols):
                history = await self._fills.of_symbol(account, symbol, work.tx)
                closes = replay(history)
                found, old = await self._derive(account, symbol, closes, since, closed, work.tx)
                done.trades += found
                stale += old
                opened += opening_orders(history, orders, closes)
            await self._trades.replace_many(stale, done.trades, work.tx)
            told = await self._notices(done.trades) + await self._fill_notices(account, opened)
            await work.notify(told)
            work.changed()  # the admin analytics count trades
        if done.fills:
            self._on_fills(account)
        return done, opened

    async def _derive(
        self,
        account: AccountKey,
        symbol: str,
        closes: Sequence[Close],
        since: datetime | None,
        closed: Sequence[ClosedPnl],
        tx: Tx,
    ) -> tuple[list[TradeLog], list[int]]:
        """The trades of one symbol's closes that the new records touch, and the ids of the
        logged trades (or estimates) they replace."""
        named = {c.order_id for c in closed if c.symbol == symbol}
        touched = [
            c
            for c in closes
            if c.order_id in named or (since is not None and c.exit_ts and c.exit_ts >= since)
        ]
        if not touched:
            return [], []
        records = await self._fills.closed_of(account, [c.order_id for c in touched], tx)
        logged = await self._trades.of_orders(*account, [c.order_id for c in touched])
        leverage = await self._leverage(account, symbol)
        trades: list[TradeLog] = []
        stale = [t.trade_id for t in await self._trades.estimates(*account, symbol)]
        for close in touched:
            before = logged.get(close.order_id)
            trade = await self._trade(account, close, records.get(close.order_id, []), before)
            if trade is None:
                continue
            if trade.leverage is None:
                trade = replace(trade, leverage=leverage)
            if before is not None and _same(before.trade, trade):
                continue
            if before is not None:
                stale.append(before.trade_id)
            trades.append(trade)
        return trades, stale

    async def _leverage(self, account: AccountKey, symbol: str) -> int | None:
        """The stored position's leverage (the fills do not say it)."""
        for row in await self._positions.for_user(account[0]):
            if row.account == account and row.symbol == symbol:
                return row.leverage
        return None

    async def _trade(
        self,
        account: AccountKey,
        close: Close,
        records: list[ClosedPnl],
        before: TradeRecord | None,
    ) -> TradeLog | None:
        """The trade of one close, or None when its entry cannot be known."""
        entry: Decimal | None = close.entry_price
        entry_ts = close.entry_ts
        if not close.known_entry:
            entry = _record_entry(records) or await self._stored_entry(account, close)
        if entry is None:
            log.warning("fill ledger: close %s of unknown entry not logged", close.order_id)
            return None
        fee = close.fee
        if records:
            pnl = sum((r.closed_pnl for r in records), ZERO)
        elif close.realised is not None and close.known_entry:
            pnl = close.realised - fee
        else:
            move = (
                close.exit_price - entry if close.side.value == "long" else entry - close.exit_price
            )
            pnl = move * close.qty - fee
        origin, signal_id = Origin.MANUAL.value, None
        opening = close.opening_client_id
        if opening and opening.startswith(PREFIX):
            intent = await self._intents.get(opening)
            if intent is not None:
                origin, signal_id = intent.origin, intent.signal_id
        exit_ts = close.exit_ts
        assert exit_ts is not None  # every close has at least one fill
        trade = TradeLog(
            user_id=account[0],
            exchange=account[1],
            account_type=account[2],
            symbol=close.symbol,
            side=close.side.value,
            qty=close.qty.normalize(),
            entry_price=entry,
            exit_price=close.exit_price,
            pnl=pnl.quantize(Decimal("1e-8")),
            fee=fee.quantize(Decimal("1e-8")),
            entry_ts=entry_ts or (before.trade.entry_ts if before else exit_ts),
            exit_ts=exit_ts,
            origin=origin,
            signal_id=signal_id,
            close_reason=_reason(close),
            order_id=close.order_id,
        )
        if before is not None:
            trade = _keep_origin(trade, before.trade)
        return trade

    async def _stored_entry(self, account: AccountKey, close: Close) -> Decimal | None:
        for row in await self._positions.for_user(account[0]):
            if row.account == account and row.symbol == close.symbol and row.side == close.side:
                return row.entry_price
        return None

    async def _fill_notices(self, account: AccountKey, opened: Sequence[OrderFill]) -> list[Notice]:
        """Fills nobody saw happen: a resting limit order, an order placed on the exchange.
        A market order confirmed in the chat (or auto-traded) was told by its own reply.
        Keyed by the order and the size filled so far: each partial fill is told once."""
        told: list[OrderFill] = []
        for order in opened:
            cid = order.client_order_id or ""
            intent = await self._intents.get(cid) if cid.startswith(PREFIX) else None
            if cid.startswith(PREFIX) and (intent is None or _placed_in_chat(intent)):
                continue
            told.append(order)
        if not told:
            return []
        users = await self._users.get_many([account[0]])
        if account[0] not in users:
            return []
        chat = users[account[0]].chat_id
        return [notices.order_filled(account, order, chat) for order in told]

    async def _notices(self, trades: Sequence[TradeLog]) -> list[Notice]:
        """Closes the trader did not make in the chat: TP, SL, liquidation, the exchange."""
        told = [t for t in trades if t.close_reason != CloseReason.MANUAL]
        if not told:
            return []
        users = await self._users.get_many(sorted({t.user_id for t in told}))
        return [
            notices.trade_closed(t, users[t.user_id].chat_id) for t in told if t.user_id in users
        ]


def _placed_in_chat(intent: IntentRecord | None) -> bool:
    """A market order a trader confirmed in the chat: its reply told the fill already."""
    return intent is not None and intent.order_type == OrderType.MARKET.value


def _reason(close: Close) -> str:
    if close.trigger in _TRIGGERS:
        return _TRIGGERS[close.trigger].value
    if (close.client_order_id or "").startswith(PREFIX):
        return CloseReason.MANUAL.value
    return CloseReason.EXCHANGE.value


def _record_entry(records: list[ClosedPnl]) -> Decimal | None:
    qty = sum((r.qty for r in records), ZERO)
    if not qty:
        return None
    return sum((r.entry_price * r.qty for r in records), ZERO) / qty


def _same(logged: TradeLog, derived: TradeLog) -> bool:
    """Whether a logged trade already says what the fills say (then it is left alone)."""
    return not logged.estimated and (
        logged.qty, logged.entry_price, logged.exit_price, logged.close_reason, logged.exit_ts,
    ) == (
        derived.qty, derived.entry_price, derived.exit_price, derived.close_reason,
        derived.exit_ts,
    ) and abs(logged.pnl - derived.pnl) < Decimal("1e-6") and abs(
        logged.fee - derived.fee
    ) < Decimal("1e-6")  # fmt: skip


def _keep_origin(trade: TradeLog, logged: TradeLog) -> TradeLog:
    """What the trade logged first knew and the fills may not: who opened the position
    (unless the fills found the opening order themselves), its leverage, its opening."""
    found = trade.signal_id is not None or trade.origin != Origin.MANUAL
    return replace(
        trade,
        origin=trade.origin if found else logged.origin,
        signal_id=trade.signal_id if found else logged.signal_id,
        leverage=logged.leverage or trade.leverage,
        entry_ts=min(trade.entry_ts, logged.entry_ts),
    )
