"""What the trade repository reads and writes: a realised trade, its stored record, and
the totals of a period or a symbol (`db.repositories.trades` holds the SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.lifecycle import Origin


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
    order_id: str | None = None  # the closing order: one trade per order, from its fills
    estimated: bool = False  # a snapshot's guess before the close's fills were read

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

    @property
    def breakeven(self) -> int:
        """Trades whose PnL is exactly zero: neither won nor lost."""
        return self.trades - self.wins - self.losses


@dataclass(slots=True, frozen=True)
class PeriodTotals:
    """The trades that closed in [start, end); `pnl` is net of `fees`."""

    start: datetime
    end: datetime
    trades: int
    wins: int
    losses: int
    pnl: Decimal
    fees: Decimal
    user_id: int = 0

    @property
    def breakeven(self) -> int:
        return self.trades - self.wins - self.losses


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
