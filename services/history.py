"""Realised trades: recorded when positions close, read back by /trades and /pnl.

Paper positions closed by the engine (take profit, stop loss, liquidation) are written down
from its report: the event's realised PnL is authoritative; the closing fill gives the side,
fee and time, and the account's earlier fills give the entry (replayed the way the ledger
averaged it), the opening fees, the opening time and the origin of the opening order. A
trade's fee is both legs and its PnL is net of both, so it is what the wallet gained.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from core.errors import InvalidInput
from core.lifecycle import CloseReason, Origin
from core.paper.book import EXCHANGE, EventKind
from core.paper.engine import EngineEvent, EngineReport
from core.paper.ledger import DEFAULT_LEVERAGE, fine_price
from db.repositories.trades import PaperFill, SymbolTotals, TradeLog, TradeRecord, TradeRepository
from services import periods
from services.amounts import FEE_PLACES, opening_fee

__all__ = [
    "PERIODS",
    "HistoryService",
    "PnlReport",
    "SymbolTotals",
    "TradeLog",
    "TradePage",
    "TradeRecord",
]

log = logging.getLogger(__name__)

PERIODS = ("day", "week", "month", "all")
MAX_PAGE = 50
TOP_SYMBOLS = 10
_REASONS = {
    EventKind.TAKE_PROFIT: CloseReason.TAKE_PROFIT,
    EventKind.STOP_LOSS: CloseReason.STOP_LOSS,
    EventKind.LIQUIDATION: CloseReason.LIQUIDATION,
}


@dataclass(slots=True, frozen=True)
class TradePage:
    """Up to `limit` trades, newest first, starting `offset` trades back."""

    trades: tuple[TradeRecord, ...]
    offset: int
    limit: int
    has_older: bool

    @property
    def has_newer(self) -> bool:
        return self.offset > 0


@dataclass(slots=True, frozen=True)
class PnlReport:
    """Realised results of the trades that closed in a period; PnL is net of fees."""

    period: str
    since: datetime | None  # None for "all"
    trades: int
    wins: int
    losses: int
    pnl: Decimal
    fees: Decimal
    gross_win: Decimal
    gross_loss: Decimal
    best: TradeRecord | None
    worst: TradeRecord | None
    by_symbol: tuple[SymbolTotals, ...]  # the top symbols by |PnL|
    symbols: int  # how many symbols were traded in all
    estimated: int = 0  # closes still estimated until the exchange's fills are read

    @property
    def breakeven(self) -> int:
        """Trades whose PnL is exactly zero: wins + losses + breakeven = trades."""
        return self.trades - self.wins - self.losses

    @property
    def win_rate(self) -> Decimal | None:
        return Decimal(self.wins) / self.trades if self.trades else None

    @property
    def profit_factor(self) -> Decimal | None:
        """Gross profit / gross loss; None when nothing was lost (infinite or undefined)."""
        return self.gross_win / -self.gross_loss if self.gross_loss else None

    @property
    def average_win(self) -> Decimal | None:
        return self.gross_win / self.wins if self.wins else None

    @property
    def average_loss(self) -> Decimal | None:
        return self.gross_loss / self.losses if self.losses else None


class HistoryService:
    """Writes and reads the trade log."""

    def __init__(
        self, trades: TradeRepository, on_recorded: Callable[[], None] | None = None
    ) -> None:
        self._trades = trades
        # Told after trades are logged (the admin analytics count them).
        self._on_recorded = on_recorded or (lambda: None)

    async def record_close(self, trade: TradeLog) -> int:
        """Log one realised trade; return its id."""
        trade_id = await self._trades.record(trade)
        self._on_recorded()
        return trade_id

    async def logged_qty_since(
        self, user_id: int, exchange: str, account_type: str, symbol: str, since: datetime
    ) -> Decimal:
        """How much of one account's symbol was logged as closed since `since`."""
        closes = await self._trades.logged_since(user_id, exchange, account_type, symbol, since)
        return sum((c.qty for c in closes), Decimal(0))

    async def recent(self, user_id: int, limit: int = 10, offset: int = 0) -> list[TradeRecord]:
        """A page of the user's trades, newest first."""
        return await self._trades.recent(user_id, limit, offset)

    async def trades_page(self, user_id: int, limit: int = 10, offset: int = 0) -> TradePage:
        """The user's trades `offset` back, newest first, and whether older ones exist."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"Show 1 to {MAX_PAGE} trades at a time, e.g. /trades 20.")
        if offset < 0:
            raise InvalidInput("That page does not exist; send /trades again.")
        found = await self._trades.recent(user_id, limit + 1, offset)
        return TradePage(tuple(found[:limit]), offset, limit, len(found) > limit)

    async def pnl_report(
        self, user_id: int, period: str, now: datetime, tz: tzinfo = UTC
    ) -> PnlReport:
        """Realised PnL, fees, win rate, profit factor, extremes and symbols for a period."""
        if period not in PERIODS:
            raise InvalidInput(
                f"Usage: /pnl [{'|'.join(PERIODS)}]: today, this week (from Monday), this "
                "month or all time (the default), in your timezone (/set tz)."
            )
        since = periods.start_of(period, now, tz)
        totals = await self._trades.by_symbol(user_id, since)
        best, worst = await self._trades.extremes(user_id, since)
        estimated = await self._trades.estimated_since(user_id, since) if totals else 0
        ranked = sorted(totals, key=lambda t: (-abs(t.pnl), t.symbol))
        return PnlReport(
            period=period,
            since=None if period == "all" else since,
            trades=sum(t.trades for t in totals),
            wins=sum(t.wins for t in totals),
            losses=sum(t.losses for t in totals),
            pnl=sum((t.pnl for t in totals), Decimal(0)),
            fees=sum((t.fees for t in totals), Decimal(0)),
            gross_win=sum((t.gross_win for t in totals), Decimal(0)),
            gross_loss=sum((t.gross_loss for t in totals), Decimal(0)),
            best=best,
            worst=worst,
            by_symbol=tuple(ranked[:TOP_SYMBOLS]),
            symbols=len(totals),
            estimated=estimated,
        )

    async def record_paper_events(self, report: EngineReport) -> int:
        """Log the paper positions a settle run closed on triggers, in one transaction."""
        events = [e for e in report.events if e.kind in _REASONS and e.qty > 0]
        if not events:
            return 0
        found = await self._trades.paper_closes({e.order_id for e in events})
        closes = {c.order_id: c for c in found}
        history: dict[tuple[int, str], list[PaperFill]] = defaultdict(list)
        if found:
            accounts, symbols = {c.account_id for c in found}, {c.symbol for c in found}
            until = max(c.at for c in found)
            for fill in await self._trades.paper_history(accounts, symbols, until):
                history[(fill.account_id, fill.symbol)].append(fill)
            for fills in history.values():
                fills.sort(key=_fill_order)
        trades: list[TradeLog] = []
        for event in events:
            close = closes.get(event.order_id)
            if close is None:
                log.warning("paper %s %s has no fill: not logged", event.kind, event.order_id)
                continue
            fills = history[(close.account_id, close.symbol)]
            earlier = [f for f in fills if _fill_order(f) < _fill_order(close)]
            trades.append(_paper_trade(event, close, earlier))
        if trades:
            await self._trades.record_many(trades)
            self._on_recorded()
        return len(trades)


def period_start(period: str, now: datetime, tz: tzinfo = UTC) -> datetime:
    """Start of today, this week (Monday), this month in `tz`, or the epoch, in UTC."""
    return periods.start_of(period, now, tz)


def _fill_order(fill: PaperFill) -> tuple[datetime, int]:
    return fill.at, fill.fill_id


def _paper_trade(event: EngineEvent, close: PaperFill, earlier: list[PaperFill]) -> TradeLog:
    """The trade a trigger closed: `close` is its fill, `earlier` the fills before it."""
    long = close.side == "sell"
    opened = _replay(earlier, close)
    if opened is None:  # history gone (never expected): derive the entry from the PnL
        move = event.realised_pnl / event.qty
        entry, first = (close.price - move if long else close.price + move), None
        opening = opening_fee(None, None, event.qty, entry)
    else:
        entry, first, opening = opened
    fee = close.fee + opening  # both legs: the trade's PnL is the wallet's change
    return TradeLog(
        user_id=close.user_id,
        exchange=EXCHANGE,
        account_type=EXCHANGE,
        symbol=close.symbol,
        side="long" if long else "short",
        qty=event.qty,
        entry_price=entry,
        exit_price=event.price if event.price is not None else close.price,
        pnl=event.realised_pnl - fee,
        fee=fee,
        entry_ts=first.at if first else close.at,
        exit_ts=close.at,
        leverage=close.leverage or DEFAULT_LEVERAGE,
        origin=(first.origin if first else None) or Origin.MANUAL,
        signal_id=first.signal_id if first else None,
        close_reason=_REASONS[event.kind],
    )


def _replay(
    earlier: list[PaperFill], close: PaperFill
) -> tuple[Decimal, PaperFill, Decimal] | None:
    """Walk back to the fill that opened the closed position; replay forward for its entry
    and for the opening fees the closed quantity carries (each opening fill's fee joins the
    position's; a partial close before takes its share away)."""
    opening = "buy" if close.side == "sell" else "sell"
    size = close.qty  # the position's size after each fill, walking backwards
    chain: list[PaperFill] = []
    for fill in reversed(earlier):
        chain.append(fill)
        size += -fill.qty if fill.side == opening else fill.qty
        if size <= 0:
            break
    else:
        return None
    first, *rest = reversed(chain)
    qty, entry = first.qty + size, first.price  # a flipping fill opened only part of itself
    fees = first.fee if qty == first.qty else first.fee * qty / first.qty
    for fill in rest:
        if fill.side == opening:
            entry = fine_price((qty * entry + fill.qty * fill.price) / (qty + fill.qty))
            qty += fill.qty
            fees += fill.fee
        else:
            fees -= fees * fill.qty / qty
            qty -= fill.qty
    share = fees if close.qty >= qty else fees * close.qty / qty
    return entry, first, share.quantize(FEE_PLACES)
