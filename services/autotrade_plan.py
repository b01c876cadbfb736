"""What auto-trading decides per signal: plans, outcomes, the batch of a signal and its
report, and when a signal is too stale to trade."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.exchange.models import Market, Ticker
from core.lifecycle import Origin
from db.repositories.executions import Candidate, ExecutionRecord
from db.repositories.intents import IntentRecord, NewIntent
from db.repositories.positions import ActivePosition
from db.repositories.signals import SignalRecord
from db.repositories.strategy import StrategyRecord

TOO_OLD = "signal too old"
PRICE_MOVED = "price moved"
STALE = frozenset({TOO_OLD, PRICE_MOVED})  # audited, not told: the trader lost nothing
# Per exchange: its markets and the signal symbol's ticker, None if it cannot be reached.
MarketContext = Mapping[str, tuple[Mapping[str, Market], Ticker | None] | None]
AUDITED_USERS = 100  # traders named in one audit row; the count covers the rest


@dataclass(slots=True, frozen=True)
class Plan:
    """One candidate's order, decided; `intent` is None until the size is known."""

    candidate: Candidate
    exchange: str
    account_type: str
    market: Market
    price: Decimal
    leverage: int
    cid: str
    intent: NewIntent | None


@dataclass(slots=True, frozen=True)
class Outcome:
    record: ExecutionRecord
    candidate: Candidate
    intent: IntentRecord | None = None
    detail: str | None = None  # for the audit of a stale skip: how old, how far


@dataclass(slots=True)
class Batch:
    """One signal's decisions, waiting for its orders to go out."""

    signal: SignalRecord
    candidates: int
    outcomes: list[Outcome]
    plans: list[Plan]


@dataclass(slots=True)
class AutoTradeReport:
    """What one signal did: outcomes by status and reason, and the time it took."""

    signal_id: int
    candidates: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
        return f"signal {self.signal_id}: {self.candidates} candidates ({parts or 'none'})"


def opened_position(outcome: Outcome, signal: SignalRecord) -> ActivePosition | None:
    """The position an order just opened, so max positions counts it before the next sync."""
    intent = outcome.intent
    if intent is None or (intent.order_type == "limit" and not intent.filled_qty):
        return None  # a limit resting unfilled opened nothing yet; position sync sees its fill
    return ActivePosition(
        user_id=intent.user_id,
        exchange=intent.exchange,
        account_type=intent.account_type,
        symbol=intent.symbol,
        side=signal.side,
        qty=intent.filled_qty or intent.qty,
        entry_price=intent.avg_price or signal.price,
        leverage=intent.leverage or 1,
        opened_at=intent.updated_at,
        updated_at=intent.updated_at,
        take_profit=intent.take_profit,
        stop_loss=intent.stop_loss,
        origin=Origin.AUTO,
        signal_id=signal.id,
    )


def too_old(signal: SignalRecord, strategy: StrategyRecord, now: datetime) -> str | None:
    """How old the signal is, if older than the trader accepts."""
    age = (now - signal.created_at).total_seconds()
    return f"{age:.0f} s" if age > strategy.max_signal_age_s else None


def moved(signal: SignalRecord, strategy: StrategyRecord, price: Decimal) -> str | None:
    """How far the price moved from the signal's, if further than the trader accepts."""
    if signal.price <= 0:
        return None
    drift = abs(price - signal.price) / signal.price * 100
    return f"{drift:.2f} %" if drift > strategy.max_drift_pct else None


def stale_audits(
    signal: SignalRecord, outcomes: Sequence[Outcome]
) -> list[tuple[str, dict[str, object]]]:
    """Target and details of one audit row per stale reason, naming the traders skipped."""
    audits: list[tuple[str, dict[str, object]]] = []
    for reason in sorted(STALE):
        skipped = [o for o in outcomes if o.record.reason == reason]
        if not skipped:
            continue
        details: dict[str, object] = {
            "reason": reason,
            "symbol": signal.symbol,
            "signal_price": str(signal.price),
            "count": len(skipped),
            "users": {str(o.candidate.user_id): o.detail for o in skipped[:AUDITED_USERS]},
        }
        audits.append((f"signal {signal.id}", details))
    return audits
