"""The order lifecycle in one place: what an intent, an auto-trade execution and a closed
trade can be, spelled once for the services that decide and the repositories that store.

An intent moves

    draft ──Confirm──▶ pending ──▶ sent ──▶ open | filled | cancelled | rejected
      └──▶ expired | cancelled         └──▶ unknown (outcome being resolved) ──▶ …

The values are the strings stored in SQLite, so a member compares equal to its column value.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from core.exchange.models import OrderStatus


class IntentStatus(StrEnum):
    DRAFT = "draft"  # a confirmation card nobody pressed yet
    PENDING = "pending"  # recorded, not sent yet
    SENT = "sent"  # the request left; committed before it did
    UNKNOWN = "unknown"  # no clear answer, and the lookup failed too
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"  # a card that ran out of time

    @classmethod
    def of_order(cls, status: OrderStatus) -> IntentStatus:
        """The intent status an exchange's order status settles it in."""
        return _OF_ORDER[status]


_OF_ORDER = {
    OrderStatus.OPEN: IntentStatus.OPEN,
    OrderStatus.FILLED: IntentStatus.FILLED,
    OrderStatus.CANCELLED: IntentStatus.CANCELLED,
    OrderStatus.REJECTED: IntentStatus.REJECTED,
}

# Sent or about to be, outcome not known yet.
UNRESOLVED = frozenset({IntentStatus.PENDING, IntentStatus.SENT, IntentStatus.UNKNOWN})
# Settled: nothing will be sent for it again.
FINAL = frozenset(
    {
        IntentStatus.OPEN,
        IntentStatus.FILLED,
        IntentStatus.CANCELLED,
        IntentStatus.REJECTED,
        IntentStatus.EXPIRED,
    }
)
# Never left Tradewind: no exchange account saw it.
NEVER_SENT = frozenset({IntentStatus.DRAFT, IntentStatus.EXPIRED})
# What may have opened a position: filled, resting, or sent with its answer still to come.
MAY_HAVE_OPENED = frozenset({IntentStatus.FILLED, IntentStatus.OPEN, IntentStatus.SENT})


class Origin(StrEnum):
    """Who asked for an order, and so who opened a position."""

    MANUAL = "manual"  # a trader's confirmed card
    AUTO = "auto"  # auto-trading a signal
    CLOSE = "close"  # a trader's reduce-only close
    EXCHANGE = "exchange"  # found on the exchange, no order of ours behind it


class CloseReason(StrEnum):
    """Why a position (or part of it) was closed."""

    MANUAL = "manual"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    LIQUIDATION = "liquidation"
    EXCHANGE = "exchange"  # closed on the exchange itself, outside Tradewind


STOPS = frozenset({CloseReason.TAKE_PROFIT, CloseReason.STOP_LOSS, CloseReason.LIQUIDATION})


class LimitStatus(StrEnum):
    """A resting limit order Tradewind watches for its time-to-live."""

    OPEN = "open"
    EXPIRED = "expired"  # cancelled by Tradewind when its time ran out
    CLOSED = "closed"  # filled or cancelled elsewhere


class ExecutionStatus(StrEnum):
    """One trader's outcome of one auto-traded signal."""

    FILLED = "filled"
    PLACED = "placed"  # accepted; the fill price is learnt later
    SKIPPED = "skipped"
    FAILED = "failed"


def sql_list(values: Iterable[StrEnum]) -> str:
    """`('a','b')` for a SQL `IN`: partial indexes are matched on literal text, so statuses
    are written into the statement (from the enum) rather than bound."""
    return "(" + ",".join(f"'{v.value}'" for v in sorted(values)) + ")"
