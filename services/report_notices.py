"""The scheduled reports' texts: yesterday's and last week's realised results in the
trader's own timezone, with each account's equity change (`services.scheduled_reports`
queues them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta, tzinfo
from decimal import Decimal
from html import escape

from core.exchange.venues import title
from db.repositories.reports import ReportTarget
from db.repositories.trades import PeriodTotals
from services.equity import EquityChange
from services.outbox import Notice, NoticeKind
from services.strategy import zone

MAX_EQUITY_LINES = 5  # accounts in a daily report's equity part
_CENT = Decimal("0.01")


def daily_report(
    target: ReportTarget,
    totals: PeriodTotals,
    open_positions: int,
    equity: Sequence[EquityChange] | None = None,
) -> Notice:
    """Yesterday's realised results (the trader's own day), what is still open, and each
    account's equity at yesterday's close against the close before (None: not asked)."""
    tz = zone(target.timezone)
    day = totals.start.astimezone(tz).date()
    lines = [f"🗓 <b>Daily report</b> · {day:%a %Y-%m-%d} ({escape(target.timezone)})"]
    lines += _period_lines(totals)
    lines.append(f"Open positions: {open_positions}")
    if equity is not None:
        lines += _equity_lines(equity, tz)
    return Notice(
        user_id=target.user_id,
        chat_id=target.chat_id,
        kind=NoticeKind.REPORT,
        text="\n".join(lines),
        dedup_key=f"report:daily:{target.user_id}:{day.isoformat()}",
    )


def weekly_report(target: ReportTarget, totals: PeriodTotals) -> Notice:
    """Last week's realised results (Monday to Sunday in the trader's timezone)."""
    tz = zone(target.timezone)
    first = totals.start.astimezone(tz).date()
    last = (totals.end - timedelta(seconds=1)).astimezone(tz).date()
    lines = [
        f"📅 <b>Weekly report</b> · {first:%a %Y-%m-%d} – {last:%a %Y-%m-%d} "
        f"({escape(target.timezone)})"
    ]
    lines += _period_lines(totals)
    lines.append("Per day: /daily 7 · per symbol: /performance")
    return Notice(
        user_id=target.user_id,
        chat_id=target.chat_id,
        kind=NoticeKind.REPORT,
        text="\n".join(lines),
        dedup_key=f"report:weekly:{target.user_id}:{first.isoformat()}",
    )


def _period_lines(t: PeriodTotals) -> list[str]:
    if not t.trades:
        return ["No trades closed."]
    cent = Decimal("0.01")
    pnl, fees = t.pnl.quantize(cent), t.fees.quantize(cent)
    return [
        f"PnL: <b>{'+' if pnl > 0 else ''}{pnl:,} USDT</b> after {fees:,} USDT fees",
        f"Trades: {t.trades} · win rate {t.wins / t.trades:.0%} "
        f"({t.wins} won, {t.losses} lost, {t.breakeven} breakeven)",
    ]


def _equity_lines(changes: Sequence[EquityChange], tz: tzinfo) -> list[str]:
    if not changes:
        return ["Equity change: no balance recorded yet (/balance records one)."]
    lines = []
    for c in changes[:MAX_EQUITY_LINES]:
        label = "Paper" if c.exchange == "paper" else f"{title(c.exchange)} ({c.account_type})"
        close = f"{c.close.quantize(_CENT):,} USDT"
        if not c.recorded_that_day:
            seen = c.close_at.astimezone(tz)
            lines.append(
                f"Equity {escape(label)}: no balance recorded that day "
                f"(last {close} on {seen:%Y-%m-%d})"
            )
        elif c.before is None or c.change is None:
            lines.append(f"Equity {escape(label)}: {close}; none recorded the day before")
        else:
            change = c.change.quantize(_CENT)
            pct = f" ({change / c.before:+.2%})" if c.before else ""
            sign = "+" if change > 0 else ""
            lines.append(
                f"Equity {escape(label)}: {close}, <b>{sign}{change:,} USDT</b>{pct} on the day"
            )
    if len(changes) > MAX_EQUITY_LINES:
        lines.append(f"… and {len(changes) - MAX_EQUITY_LINES} more accounts")
    return lines
