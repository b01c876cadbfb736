"""/trades and /pnl: what a trader has realised, trade by trade and in sum."""

from __future__ import annotations

from datetime import UTC, tzinfo
from decimal import Decimal
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from core.errors import DomainError
from handlers.args import count_in
from handlers.base import (
    Handler,
    button,
    callback_data,
    callback_parts,
    command,
    edit_in_place,
    presser,
    sender,
)
from handlers.charts import chart_button
from handlers.context import CommandInfo, TradewindContext
from handlers.render import MAX_MESSAGE, base, money, price, quantity, signed
from services.history import MAX_PAGE, PnlReport, TradePage, TradeRecord

COMMANDS = (
    CommandInfo("trades", "Your realised trades, newest first", usage="[N]", keyboard=True),
    CommandInfo("pnl", "Realised PnL, win rate and best symbols", usage="[day|week|month|all]"),
)

DEFAULT_PAGE = 10
TRADES_USAGE = "Usage: /trades [N], N from 1 to 50 (default 10)."
REASONS = {
    "manual": "closed",
    "take_profit": "take profit",
    "stop_loss": "stop loss",
    "liquidation": "liquidated",
    "sync": "closed on the exchange",
}
PERIOD_TITLES = {"day": "today", "week": "this week", "month": "this month", "all": "all time"}


async def trades(update: Update, context: TradewindContext) -> None:
    """Show the caller's latest N trades with Older/Newer buttons."""
    user, message = sender(update)
    args = context.args or []
    limit = count_in(args[0], MAX_PAGE) if args else DEFAULT_PAGE
    if limit is None or len(args) > 1:
        await message.reply_html(escape(TRADES_USAGE))
        return
    page = await context.services.history.trades_page(user.id, limit)
    text, keyboard = render_trades(page, await context.services.strategy.timezone(user.id))
    await message.reply_html(text, reply_markup=keyboard)


async def trades_button(update: Update, context: TradewindContext) -> None:
    """Turn the page (`tr:<offset>[:<size>]`) of the presser's own trade list."""
    user, query = presser(update)
    wanted = _page_wanted(callback_parts(update)[1:])
    if wanted is None:
        await query.answer("This button is out of date; send /trades again.")
        return
    offset, limit = wanted
    try:
        page = await context.services.history.trades_page(user.id, limit, offset)
    except DomainError as err:
        await query.answer(str(err)[:200])
        return
    if not page.trades:
        await query.answer("No trades on that page; send /trades again.")
        return
    text, keyboard = render_trades(page, await context.services.strategy.timezone(user.id))
    await query.answer()
    await edit_in_place(update, text, keyboard)  # pressed twice: already this page


async def pnl(update: Update, context: TradewindContext) -> None:
    """Show realised PnL and its statistics for a period (UTC)."""
    user, message = sender(update)
    args = context.args or []
    period = " ".join(args).lower() if args else "all"
    tz = await context.services.strategy.timezone(user.id)
    report = await context.services.history.pnl_report(
        user.id, period, context.services.clock.now(), tz
    )
    chart = InlineKeyboardMarkup([[chart_button(report.period)]]) if report.trades else None
    await message.reply_html(render_pnl(report, tz), reply_markup=chart)


def handlers() -> list[Handler]:
    return [
        command("trades", trades),
        button("tr", trades_button),
        command("pnl", pnl),
    ]


ESTIMATED_NOTE = (
    "<i>~ estimated: the exchange's fills of that close are not read yet; "
    "they replace the estimate when they are.</i>"
)


def render_trades(page: TradePage, tz: tzinfo = UTC) -> tuple[str, InlineKeyboardMarkup | None]:
    """One line per trade; trades that would overflow the message move to the next page."""
    if not page.trades:
        return "No realised trades yet. Closed positions appear here.", None
    lines: list[str] = []
    size = 200 + len(ESTIMATED_NOTE)  # the header, a note, and some room
    for record in page.trades:
        line = _trade_line(record, tz)
        if size + len(line) + 1 > MAX_MESSAGE:
            break
        lines.append(line)
        size += len(line) + 1
    shown = len(lines)
    first, last = page.offset + 1, page.offset + shown
    span = f"Trades</b> {first}–{last}" if last > first else f"Trade</b> {first}"
    header = f"<b>{span}, newest first ({escape(str(tz))})"
    buttons = []
    if page.has_newer:
        newer = max(0, page.offset - page.limit)
        buttons.append(InlineKeyboardButton("◀ Newer", callback_data=_page_data(newer, page)))
    if page.has_older or shown < len(page.trades):
        older = page.offset + shown
        buttons.append(InlineKeyboardButton("Older ▶", callback_data=_page_data(older, page)))
    keyboard = InlineKeyboardMarkup([buttons]) if buttons else None
    if any(record.trade.estimated for record in page.trades[:shown]):
        lines.append(ESTIMATED_NOTE)
    return "\n".join([header, *lines]), keyboard


def render_pnl(r: PnlReport, tz: tzinfo = UTC) -> str:
    """The period's totals, ratios, extremes and the symbols that mattered most."""
    when = PERIOD_TITLES[r.period]
    local = r.since.astimezone(tz) if r.since else None
    since = f" (since {local:%a %Y-%m-%d %H:%M} {escape(str(tz))})" if local else ""
    if not r.trades:
        return (
            "No realised trades yet." if r.since is None else f"No realised trades {when}{since}."
        )
    rate = f"{r.win_rate:.0%}" if r.win_rate is not None else "—"
    factor = f"{r.profit_factor:.2f}" if r.profit_factor is not None else "∞" if r.wins else "—"
    lines = [
        f"<b>Realised PnL {when}</b>{since}",
        f"PnL: <b>{signed(r.pnl)} USDT</b> after {money(r.fees)} USDT fees",
        f"Trades: {r.trades} · win rate {rate} ({r.wins} won, {r.losses} lost"
        f"{f', {r.breakeven} breakeven' if r.breakeven else ''})",
        *(
            [
                f"<i>{_count(r.estimated, 'close')} estimated (~ in /trades) until the exchange's "
                "fills are read</i>"
            ]
            if r.estimated
            else []
        ),
        f"Profit factor: {factor}",
        f"Average win: {_maybe(r.average_win)} · average loss: {_maybe(r.average_loss)}",
        f"Best: {_extreme(r.best, tz)}",
        f"Worst: {_extreme(r.worst, tz)}",
        "",
        f"<b>By symbol</b> (top {len(r.by_symbol)} of {r.symbols} by |PnL|)",
    ]
    lines += [
        f"{base(t.symbol)}: {signed(t.pnl)} · {_count(t.trades, 'trade')} · "
        f"{t.wins / t.trades:.0%} won · fees {money(t.fees)}"
        for t in r.by_symbol
    ]
    return "\n".join(lines)


def _trade_line(record: TradeRecord, tz: tzinfo) -> str:
    t = record.trade
    reason = REASONS.get(t.close_reason or "", t.close_reason or "closed")
    guess = "~" if t.estimated else ""  # until the close's fills are read from the exchange
    return (
        f"{t.exit_ts.astimezone(tz):%Y-%m-%d %H:%M} <b>{base(t.symbol)}</b> {escape(t.side)} "
        f"{quantity(t.qty)} @ {price(t.entry_price)} → {guess}{price(t.exit_price)} "
        f"<b>{guess}{signed(t.pnl)}</b> fee {guess}{money(t.fee)} · {escape(reason)}"
    )


def _page_data(offset: int, page: TradePage) -> str:
    """`tr:<offset>`, plus the page size when it is not the default."""
    if page.limit == DEFAULT_PAGE:
        return callback_data("tr", offset)
    return callback_data("tr", offset, page.limit)


def _extreme(record: TradeRecord | None, tz: tzinfo) -> str:
    if record is None:
        return "—"
    t = record.trade
    return (
        f"{signed(t.pnl)} {base(t.symbol)} {escape(t.side)} on {t.exit_ts.astimezone(tz):%Y-%m-%d}"
    )


def _maybe(value: Decimal | None) -> str:
    return "—" if value is None else signed(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _page_wanted(parts: list[str]) -> tuple[int, int] | None:
    """(offset, size) from a button's `<offset>[:<size>]`, or None if it is not that."""
    numbers = [n for n in map(_int, parts) if n is not None]
    if len(numbers) != len(parts) or len(numbers) not in (1, 2):
        return None
    return numbers[0], numbers[1] if len(numbers) == 2 else DEFAULT_PAGE


def _int(text: str) -> int | None:
    """A plain decimal integer, or None (no signs, no exponents, no Unicode digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None
