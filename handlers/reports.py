"""/daily, /weekly, /monthly and /performance: realised results as paged tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, tzinfo
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
from handlers.render import money, signed
from services.reports import DEFAULT_PERIODS, MAX_PERIODS, PeriodTable, SymbolTotals

COMMANDS = (
    CommandInfo("daily", "Realised PnL per day", usage="[N]"),
    CommandInfo("weekly", "Realised PnL per week", usage="[N]"),
    CommandInfo("monthly", "Realised PnL per month", usage="[N]"),
    CommandInfo("performance", "Realised PnL per symbol"),
)

PAGE_ROWS = 30  # a page of the widest table stays far below 4096 characters
UNIT_OF = {"daily": "day", "weekly": "week", "monthly": "month"}
CODES = {"day": "d", "week": "w", "month": "m"}
TITLES = {"day": "Daily", "week": "Weekly", "month": "Monthly"}
HEADS = {"day": "Day", "week": "Week of", "month": "Month"}


async def daily(update: Update, context: TradewindContext) -> None:
    """Show realised results per day, newest first."""
    await _period_command(update, context, "daily")


async def weekly(update: Update, context: TradewindContext) -> None:
    """Show realised results per week (from Monday), newest first."""
    await _period_command(update, context, "weekly")


async def monthly(update: Update, context: TradewindContext) -> None:
    """Show realised results per calendar month, newest first."""
    await _period_command(update, context, "monthly")


async def performance(update: Update, context: TradewindContext) -> None:
    """Show realised results per symbol, best first."""
    user, message = sender(update)
    if context.args:
        await message.reply_html("Usage: /performance (it takes no arguments).")
        return
    totals = await context.services.reports.performance(user.id)
    text, keyboard = render_performance(totals, 0)
    await message.reply_html(text, reply_markup=keyboard)


async def period_button(update: Update, context: TradewindContext) -> None:
    """Turn a page (`rt:<d|w|m>:<count>:<page>`) of the presser's own table."""
    user, query = presser(update)
    parts = callback_parts(update)[1:]
    unit = next((u for u, code in CODES.items() if parts[:1] == [code]), None)
    numbers = [_int(p) for p in parts[1:]]
    if unit is None or len(numbers) != 2 or None in numbers:
        await query.answer("This button is out of date; send the command again.")
        return
    count, page = numbers[0] or 0, numbers[1] or 0
    tz = await _tz(context, user.id)
    try:
        table = await context.services.reports.period_table(
            user.id, unit, count, context.services.clock.now(), tz
        )
    except DomainError as err:
        await query.answer(str(err)[:200])
        return
    text, keyboard = render_periods(table, page, tz)
    await query.answer()
    await edit_in_place(update, text, keyboard)


async def performance_button(update: Update, context: TradewindContext) -> None:
    """Turn a page (`pf:<page>`) of the presser's own symbol table."""
    user, query = presser(update)
    parts = callback_parts(update)[1:]
    page = _int(parts[0]) if len(parts) == 1 else None
    if page is None:
        await query.answer("This button is out of date; send /performance again.")
        return
    totals = await context.services.reports.performance(user.id)
    text, keyboard = render_performance(totals, page)
    await query.answer()
    await edit_in_place(update, text, keyboard)


def handlers() -> list[Handler]:
    return [
        command("daily", daily),
        command("weekly", weekly),
        command("monthly", monthly),
        command("performance", performance),
        button("rt", period_button),
        button("pf", performance_button),
    ]


async def _period_command(update: Update, context: TradewindContext, name: str) -> None:
    user, message = sender(update)
    unit = UNIT_OF[name]
    args = context.args or []
    count = count_in(args[0], MAX_PERIODS[unit]) if args else DEFAULT_PERIODS[unit]
    if count is None or len(args) > 1:
        await message.reply_html(
            escape(
                f"Usage: /{name} [N], N from 1 to {MAX_PERIODS[unit]} "
                f"(default {DEFAULT_PERIODS[unit]}): the last N {unit}s, newest first."
            )
        )
        return
    tz = await _tz(context, user.id)
    table = await context.services.reports.period_table(
        user.id, unit, count, context.services.clock.now(), tz
    )
    text, keyboard = render_periods(table, 0, tz)
    await message.reply_html(text, reply_markup=keyboard)


async def _tz(context: TradewindContext, user_id: int) -> tzinfo:
    return await context.services.strategy.timezone(user_id)


def render_periods(
    table: PeriodTable, page: int, tz: tzinfo
) -> tuple[str, InlineKeyboardMarkup | None]:
    """A page of one row per period, the whole table's sum above it."""
    pages = max(1, -(-len(table.rows) // PAGE_ROWS))
    page = min(max(page, 0), pages - 1)
    shown = table.rows[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
    unit, n = table.unit, len(table.rows)
    title = f"<b>{TITLES[unit]} results</b>, last {_count(n, unit)} ({escape(str(tz))})"
    if pages > 1:
        title += f" · page {page + 1}/{pages}"
    rate = f"{table.wins / table.trades:.0%}" if table.trades else "—"
    summary = (
        f"{_count(table.trades, 'trade')} · <b>{signed(table.pnl)} USDT</b> · win rate {rate} "
        f"({table.wins} won, {table.losses} lost, {table.breakeven} breakeven) · "
        f"fees {money(table.fees)}"
    )
    cells = [
        [
            _label(unit, r.start.astimezone(tz).date()),
            str(r.trades),
            signed(r.pnl) if r.trades else "0.00",
            f"{r.wins / r.trades:.0%}" if r.trades else "—",
            money(r.fees),
        ]
        for r in shown
    ]
    grid = _grid([HEADS[unit], "Trades", "PnL", "Won", "Fees"], cells)
    text = f"{title}\n{summary}\n<pre>{escape(grid)}</pre>"
    code = CODES[unit]
    keyboard = _pager(page, pages, lambda p: callback_data("rt", code, n, p))
    if unit == "day":  # the days shown, as bars
        rows = [*(keyboard.inline_keyboard if keyboard else ()), (chart_button(n),)]
        keyboard = InlineKeyboardMarkup(rows)
    return text, keyboard


def render_performance(
    totals: list[SymbolTotals], page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """A page of one row per symbol, best PnL first."""
    if not totals:
        return "No realised trades yet. Closed positions appear here.", None
    pages = max(1, -(-len(totals) // PAGE_ROWS))
    page = min(max(page, 0), pages - 1)
    shown = totals[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
    title = f"<b>Performance by symbol</b>, all time · {_count(len(totals), 'symbol')}"
    if pages > 1:
        title += f" · page {page + 1}/{pages}"
    cells = [
        [
            t.symbol.split("/")[0],
            str(t.trades),
            signed(t.pnl),
            f"{t.wins / t.trades:.0%}",
            money(t.fees),
        ]
        for t in shown
    ]
    grid = _grid(["Symbol", "Trades", "PnL", "Won", "Fees"], cells)
    return f"{title}\n<pre>{escape(grid)}</pre>", _pager(
        page, pages, lambda p: callback_data("pf", p)
    )


def _label(unit: str, first: date) -> str:
    if unit == "day":
        return f"{first:%Y-%m-%d %a}"
    return f"{first:%Y-%m-%d}" if unit == "week" else f"{first:%Y-%m}"


def _grid(heads: list[str], rows: list[list[str]]) -> str:
    """Fixed-width columns: the first left-aligned, the figures right-aligned."""
    widths = [max(len(row[i]) for row in [heads, *rows]) for i in range(len(heads))]
    return "\n".join(
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [heads, *rows]
    )


def _pager(page: int, pages: int, data: Callable[[int], str]) -> InlineKeyboardMarkup | None:
    buttons = []
    if page > 0:
        buttons.append(InlineKeyboardButton("◀ Newer", callback_data=data(page - 1)))
    if page + 1 < pages:
        buttons.append(InlineKeyboardButton("Older ▶", callback_data=data(page + 1)))
    return InlineKeyboardMarkup([buttons]) if buttons else None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n:,} {noun}s"


def _int(text: str) -> int | None:
    """A plain decimal integer, or None (no signs, no exponents, no Unicode digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None
