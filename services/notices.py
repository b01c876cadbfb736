"""What the bot tells traders without being asked: every notice's words in one place.

The counterpart of handlers/render.py, for messages that go out through the outbox:
signals, auto-trade outcomes, fills, TP/SL and liquidation closes, expired limit orders,
licence changes and reminders, and admin broadcasts. Every function returns HTML that is
already escaped; the ones returning a `Notice` also fix its kind and dedup key (a repeated
key is never delivered twice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape

from core.exchange.models import ZERO
from core.exchange.venues import title
from core.lifecycle import ExecutionStatus, IntentStatus
from db.repositories.broadcasts import Recipient
from db.repositories.executions import Candidate, ExecutionRecord
from db.repositories.intents import IntentRecord
from db.repositories.licenses import LicenseRecord
from db.repositories.pending_orders import PendingOrder
from db.repositories.positions import ActivePosition
from db.repositories.price_alerts import ABOVE, PriceAlert
from db.repositories.signals import SignalRecord, Subscriber
from db.repositories.trades import TradeLog
from db.repositories.trailing import TrailingRecord
from db.repositories.users import UserRecord
from services.fill_ledger_replay import OrderFill
from services.outbox import Notice, NoticeKind

# Signals


def signal(record: SignalRecord, user: Subscriber) -> Notice:
    """A new signal, for one subscriber."""
    return Notice(
        user_id=user.user_id,
        chat_id=user.chat_id,
        kind=NoticeKind.SIGNAL,
        text=signal_text(record),
        dedup_key=f"signal:{record.id}:{user.user_id}",
        signal_id=record.id,
    )


def signal_text(signal: SignalRecord) -> str:
    """The message a subscriber gets (HTML, escaped)."""
    arrow = "📈" if signal.side == "long" else "📉"
    base = signal.symbol.split("/")[0]
    reasons = " · ".join(signal.reasons)
    return (
        f"{arrow} <b>{escape(base)} {escape(signal.side)}</b> · score {signal.score:.2f}\n"
        f"Price {_plain(signal.price)} · leverage {signal.leverage}× · "
        f"TP +{_plain(signal.tp_pct)} % · SL −{_plain(signal.sl_pct)} %\n"
        f"{escape(reasons)}\n"
        f"/{'long' if signal.side == 'long' else 'short'} {escape(base)} 50 {signal.leverage}"
    )


# Auto-trading

# Why a signal was not traded for someone, keyed by the reason stored in `executions`.
AUTO_SKIPPED = {
    "no licence": "auto-trading needs an active licence (/license).",
    "no account": "no exchange account is connected (/connect).",
    "max positions": "you already hold your /strategy maximum of open positions.",
    "insufficient margin": "not enough free margin for the order.",
    "below minimum notional": "your /strategy size is below the market's minimum order.",
    "symbol not listed": "the symbol is not listed on your exchange.",
    "exchange unavailable": "your exchange could not be reached; nothing was sent.",
}


def auto_trade(
    signal: SignalRecord,
    record: ExecutionRecord,
    candidate: Candidate,
    intent: IntentRecord | None,
) -> Notice:
    """What one signal's auto-trade did for one trader: skipped, failed, placed or filled."""
    what = f"{signal.side.upper()} {escape(signal.symbol)}"
    if record.status == ExecutionStatus.SKIPPED:
        reason = record.reason or ""
        text = f"🤖 Auto-trade skipped {what}: {escape(AUTO_SKIPPED.get(reason, reason))}"
    elif record.status == ExecutionStatus.FAILED:
        text = f"🤖 Auto-trade {what} failed: {escape(record.reason or 'unknown error')}"
    else:
        qty = intent.filled_qty or intent.qty if intent else ZERO
        levels = ""
        if intent is not None and (intent.take_profit or intent.stop_loss):
            levels = f"\nTP {intent.take_profit or '—'} · SL {intent.stop_loss or '—'}"
        if record.status == ExecutionStatus.FILLED and record.fill_price is not None:
            slip = (record.fill_price - signal.price) / signal.price * 100 if signal.price else ZERO
            text = (
                f"🤖 Auto-trade filled: {what} {qty} at {record.fill_price} "
                f"(signal {signal.price}, {slip:+.2f} %){levels}"
            )
        elif intent is not None and intent.order_type == "limit" and intent.price is not None:
            text = (
                f"🤖 Auto-trade limit placed: {what} {qty} at {intent.price} (the signal's "
                f"price), resting until it fills or expires (limit_order_ttl_min){levels}"
            )
        else:
            text = f"🤖 Auto-trade placed: {what} {qty} (signal price {signal.price}){levels}"
    return Notice(
        user_id=candidate.user_id,
        chat_id=candidate.chat_id,
        kind=NoticeKind.FILL,
        text=text,
        dedup_key=f"auto:{signal.id}:{candidate.user_id}",
        signal_id=signal.id,
    )


def auto_trade_filled(
    row: ActivePosition, qty: Decimal, price: Decimal, signal_price: Decimal | None
) -> str:
    """An auto-trade order placed without a known fill, seen filled in the position."""
    text = f"🤖 Auto-trade filled: {_describe(row, qty)} at {price}"
    if signal_price:
        text += f" (signal {signal_price})"
    return escape(text)


# Positions and orders

CLOSED_BY = {
    "take_profit": "Take profit hit",
    "stop_loss": "Stop loss hit",
    "liquidation": "Liquidated",
    "exchange": "Closed on the exchange",
}


def position_closed(
    row: ActivePosition,
    qty: Decimal,
    reason: str,
    price: Decimal,
    pnl: Decimal,
    *,
    estimated: bool = False,
) -> str:
    """A close Tradewind did not make; `estimated`: the price is a guess, shown with ~."""
    at = f"~{price}" if estimated else f"{price}"
    return escape(f"{CLOSED_BY[reason]}: {_describe(row, qty)} at {at}, PnL {pnl:+.2f} USDT")


def trade_closed(trade: TradeLog, chat_id: int) -> Notice:
    """A close as the exchange's fills record it (a TP or SL at its real fill price, a
    liquidation, a close made on the exchange): price, size, both legs' fees and PnL.

    Keyed by the closing order, so a close the fills record twice (pushed, then read again)
    is told once.
    """
    reason = trade.close_reason or "exchange"
    what = f"{trade.side.upper()} {_plain(trade.qty)} {trade.symbol}"
    text = (
        f"{CLOSED_BY.get(reason, CLOSED_BY['exchange'])}: {what} at {_plain(trade.exit_price)} "
        f"(entry {_plain(trade.entry_price)}), fees {trade.fee:.4f}, PnL {trade.pnl:+.2f} USDT"
    )
    return Notice(
        user_id=trade.user_id,
        chat_id=chat_id,
        kind=NoticeKind.STOP if reason in STOP_REASONS else NoticeKind.FILL,
        text=escape(text),
        dedup_key=f"fill-close:{trade.exchange}:{trade.account_type}:{trade.order_id}:{trade.user_id}",
    )


STOP_REASONS = frozenset({"take_profit", "stop_loss", "liquidation"})


def order_filled(account: tuple[int, str, str], order: OrderFill, chat_id: int) -> Notice:
    """An order that opened or added to a position filled (wholly or so far), as the
    exchange's fills say: size, average price and fee."""
    user_id, exchange, account_type = account
    text = (
        f"Order filled: {order.side.value.upper()} {_plain(order.qty)} {order.symbol} at "
        f"{_plain(order.price)}, fee {order.fee:.4f} ({title(exchange)})"
    )
    return Notice(
        user_id=user_id,
        chat_id=chat_id,
        kind=NoticeKind.FILL,
        text=escape(text),
        dedup_key=f"fill-open:{exchange}:{account_type}:{order.order_id}:{_plain(order.qty)}",
    )


def position_opened(row: ActivePosition, qty: Decimal, price: Decimal) -> str:
    """A position that appeared on the exchange (a limit order filled, or opened there)."""
    return escape(f"Position opened: {_describe(row, qty)} at {price}")


def order_expired(
    order: PendingOrder,
    chat_id: int,
    filled: Decimal | None = None,
    avg_price: Decimal | None = None,
) -> Notice:
    """A resting limit order cancelled because it outlived the owner's time-to-live; what
    filled of it before then (None: not known) stays, and is said."""
    what = f"{order.side} {order.qty} {order.symbol} at {order.price}"
    if filled is None:
        outcome = ""
    elif filled <= 0:
        outcome = " Nothing had filled."
    else:
        at = f" at {_num(avg_price)}" if avg_price is not None else ""
        rest = _num(order.qty - filled)
        outcome = f" {_num(filled)} of {order.qty} had filled{at}; the other {rest} is cancelled."
    return Notice(
        user_id=order.user_id,
        chat_id=chat_id,
        kind=NoticeKind.FILL,
        text=escape(
            f"Limit order expired and cancelled: {what}, open since "
            f"{order.created_at:%Y-%m-%d %H:%M} UTC.{outcome}"
        ),
        dedup_key=f"expiry:{order.client_order_id}",
    )


@dataclass(slots=True, frozen=True)
class LadderPart:
    qty: Decimal
    price: Decimal
    pct: Decimal  # from the entry


def ladder_placed(
    entry: IntentRecord, parts: Sequence[LadderPart], qty: Decimal, breakeven: bool
) -> str:
    """What the ladder of a filled entry took over from its take profit."""
    side = _held(entry)
    each = ", ".join(f"{_num(p.qty)} at {_num(p.price)} ({_num(p.pct)} % in profit)" for p in parts)
    rest = qty - sum((p.qty for p in parts), Decimal(0))
    lines = [
        f"Take-profit ladder placed for your {side} {_num(qty)} {entry.symbol}: {each}.",
        "It replaces the single take profit"
        + (f"; the other {_num(rest)} rides on the stop loss." if rest > 0 else "."),
    ]
    if breakeven:
        lines.append("The stop loss moves to the entry once the first part fills.")
    return escape(" ".join(lines))


def ladder_not_placed(entry: IntentRecord, lot: Decimal) -> str:
    side = _held(entry)
    return escape(
        f"Take-profit ladder not placed for your {side} {_num(entry.filled_qty or Decimal(0))} "
        f"{entry.symbol}: no part of it comes to a whole lot ({_num(lot)}). Its take profit "
        "stays as it is."
    )


def _held(entry: IntentRecord) -> str:
    """The position an opening order made: LONG or SHORT."""
    return "LONG" if entry.side == "buy" else "SHORT"


def ladder_notice(entry: IntentRecord, chat_id: int, text: str) -> Notice:
    """Told once per entry, however often its fill is reported."""
    return Notice(
        user_id=entry.user_id,
        chat_id=chat_id,
        kind=NoticeKind.FILL,
        text=text,
        dedup_key=f"ladder:{entry.client_order_id}",
    )


def _num(value: Decimal) -> str:
    """A quantity or price as exact as it is, without trailing zeros or an exponent."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def order_settled(intent: IntentRecord, chat_id: int) -> Notice:
    """How an order whose outcome was unknown (a crash, a lost answer) ended."""
    return Notice(
        user_id=intent.user_id,
        chat_id=chat_id,
        kind=NoticeKind.FILL,
        text=settled_text(intent),
        dedup_key=_order_key(intent),
    )


def _order_key(intent: IntentRecord) -> str:
    """An auto-trade order shares its signal notice's key: after a crash the settlement and
    the resumed auto-trade both know its outcome, and the trader is told once."""
    if intent.signal_id is not None:
        return f"auto:{intent.signal_id}:{intent.user_id}"
    return f"settled:{intent.client_order_id}"


def settled_text(intent: IntentRecord) -> str:
    venue = escape(title(intent.exchange))
    what = escape(f"{intent.side} {intent.qty} {intent.symbol}")
    head = f"Your order {what}, interrupted before {venue} answered,"
    if intent.status == IntentStatus.FILLED:
        filled = escape(f"{intent.filled_qty or intent.qty} at {intent.avg_price}")
        return f"✅ {head} was filled: {filled}. /positions shows it."
    if intent.status == IntentStatus.OPEN:
        return f"✅ {head} was placed and is open. /orders shows it."
    if intent.status == IntentStatus.CANCELLED:
        return f"✖️ {head} was cancelled on {venue}; nothing more will happen to it."
    reasons = {"not sent": "it was never sent", "never reached the exchange": "it never got there"}
    reason = reasons.get(intent.error or "", f"{venue} refused it")
    return f"❌ {head} was not placed: {reason}. Nothing was traded."


# Price alerts


def price_alert(alert: PriceAlert, chat_id: int, price: Decimal) -> Notice:
    """A trader's price alert reached: sent once (its key is the alert's id)."""
    word = "above" if alert.direction == ABOVE else "below"
    base = alert.symbol.split("/")[0]
    text = (
        f"🔔 <b>{escape(base)}</b> is {word} {_plain(_dec(alert.threshold))}: "
        f"last {_plain(price)}\n"
        f"{escape(alert.symbol)} · alert set {_when(alert.created_at)} at "
        f"{_plain(_dec(alert.created_price))}. /alerts lists the others."
    )
    return Notice(
        alert.user_id, chat_id, NoticeKind.SYSTEM, text, dedup_key=f"price_alert:{alert.id}"
    )


def trailing_stop_hit(record: TrailingRecord, chat_id: int, price: float) -> Notice:
    """A trailing stop the bot keeps fired: the position is being closed at market."""
    base = escape(record.symbol.split("/")[0])
    text = (
        f"🛑 Trailing stop hit on your {record.side.upper()} <b>{base}</b> at "
        f"{_plain(_dec(price))} ({_plain(_dec(record.distance))} behind the best price): "
        "closing it at market. /positions shows what is left."
    )
    return Notice(record.user_id, chat_id, NoticeKind.STOP, text, dedup_key=f"trailing:{record.id}")


def _dec(value: float) -> Decimal:
    """A stored float level as the decimal it was typed as (repr is the shortest round trip)."""
    return Decimal(repr(value))


# Licences

WHAT_STILL_WORKS = (
    "You can no longer open new positions and auto-trading is paused. Closing positions, "
    "cancelling orders, managing TP/SL and viewing everything keep working."
)
RENEW = "Renew with /buy or /redeem a promo code."


def licence_granted(user: UserRecord, days: int, plan: str, end_at: datetime) -> Notice:
    text = (
        f"🎉 You were granted {_days(days)} of <b>{escape(plan)}</b>. "
        f"Your licence is active until {_when(end_at)}."
    )
    return _system(user, text, f"licence:grant:{user.user_id}:{_ms(end_at)}")


def licence_revoked(user: UserRecord, reason: str, now: datetime) -> Notice:
    why = f" ({escape(reason)})" if reason else ""
    text = f"Your licence was revoked by an admin{why}. {WHAT_STILL_WORKS} {RENEW}"
    return _system(user, text, f"licence:revoked:{user.user_id}:{_ms(now)}")


def licence_expiry(which: str, user: UserRecord, record: LicenseRecord, now: datetime) -> Notice:
    """`which`: "3d" or "1d" for a reminder, "expired" once it ended."""
    key = f"licence:{which}:{record.user_id}:{_ms(record.end_at)}"
    plan = f"<b>{escape(record.plan)}</b>"
    if which == "expired":
        return _system(user, f"⌛ Your {plan} licence has ended. {WHAT_STILL_WORKS} {RENEW}", key)
    left = record.end_at - now
    if left < timedelta(days=1):
        hours = max(1, math.floor(left.total_seconds() / 3600))
        span = "1 hour" if hours == 1 else f"{hours} hours"
    else:
        span = _days(math.ceil(left.total_seconds() / 86_400))
    text = (
        f"⏳ Your {plan} licence ends {_when(record.end_at)} (in {span}). After that you can't "
        f"open new positions and auto-trading pauses; closing, cancelling, TP/SL and viewing "
        f"keep working. {RENEW}"
    )
    return _system(user, text, key)


# Broadcasts


def broadcast(recipient: Recipient, broadcast_id: int, text: str) -> Notice:
    """An admin's message, as written (the admin previewed it)."""
    return Notice(
        user_id=recipient.user_id,
        chat_id=recipient.chat_id,
        kind=NoticeKind.BROADCAST,
        text=text,
        dedup_key=f"broadcast:{broadcast_id}:{recipient.user_id}",
        broadcast_id=broadcast_id,
    )


def _system(user: UserRecord, text: str, dedup_key: str) -> Notice:
    return Notice(user.user_id, user.chat_id, NoticeKind.SYSTEM, text, dedup_key)


def _describe(row: ActivePosition, qty: Decimal) -> str:
    return f"{row.side.upper()} {qty} {row.symbol}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# Payments


def payment_recovered(user_id: int, plan: str, days: int, amount: int, charge_id: str) -> Notice:
    """A payment that arrived just before a restart, credited after it (private chat)."""
    span = "1 day" if days == 1 else f"{days} days"
    text = (
        f"⭐ Thank you! {amount} Stars received: {span} of <b>{escape(plan)}</b> "
        "(credited after the bot restarted)."
    )
    return Notice(user_id, user_id, NoticeKind.SYSTEM, text, f"payment:{charge_id}")
