"""/equity, /chart and the Chart button of /pnl and /daily: the trader's realised PnL and a
symbol's candles as pictures."""

from __future__ import annotations

from datetime import tzinfo
from html import escape

from telegram import InlineKeyboardButton, InputFile, Update

from core.errors import DomainError, InvalidInput
from core.exchange.venues import title
from handlers.base import Handler, button, callback_data, callback_parts, command, presser, sender
from handlers.context import CommandInfo, TradewindContext
from handlers.render import money, price, signed
from services.charts import (
    BAR_PERIODS,
    CHART_USAGE,
    MAX_DAYS,
    SPANS,
    TIMEFRAMES,
    CandleChart,
    Chart,
    DayBars,
)

COMMANDS = (
    CommandInfo("equity", "Your equity curve (realised PnL) as a chart", usage="[30d|90d|all]"),
    CommandInfo(
        "chart", "A symbol's candles with signals and your trades", usage="SYMBOL [5m|1h|4h|1d]"
    ),
)
USAGE = "Usage: /equity [30d|90d|all] (default 30d): cumulative realised PnL as a chart."
TITLES = {"30d": "last 30 days", "90d": "last 90 days", "all": "all time"}


async def equity(update: Update, context: TradewindContext) -> None:
    """Send the caller's equity curve as a PNG with its key figures."""
    user, message = sender(update)
    args = context.args or []
    span = args[0].lower() if args else "30d"
    if len(args) > 1 or span not in SPANS:
        await message.reply_html(escape(USAGE))
        return
    tz = await context.services.strategy.timezone(user.id)
    chart = await context.services.charts.equity(user.id, span, context.services.clock.now(), tz)
    photo = InputFile(chart.png, filename=f"equity-{chart.span}.png")
    await message.reply_photo(photo, caption=caption(chart, str(tz)), parse_mode="HTML")


async def chart(update: Update, context: TradewindContext) -> None:
    """Send a symbol's recent candles with the bot's signals and the caller's trades marked."""
    user, message = sender(update)
    args = context.args or []
    timeframe = args[1].lower() if len(args) == 2 else "1h"
    if not 1 <= len(args) <= 2 or timeframe not in TIMEFRAMES:
        await message.reply_html(escape(CHART_USAGE))
        return
    tz = await context.services.strategy.timezone(user.id)
    try:
        drawn = await context.services.charts.candles(
            user.id, args[0], timeframe, context.services.clock.now(), tz
        )
    except InvalidInput as err:  # an unknown symbol, with the nearest listed ones
        await message.reply_html(escape(f"{err}\n{CHART_USAGE}"))
        return
    photo = InputFile(drawn.png, filename=f"{drawn.symbol.split('/')[0]}-{timeframe}.png")
    await message.reply_photo(photo, caption=candles_caption(drawn, tz), parse_mode="HTML")


async def bars_button(update: Update, context: TradewindContext) -> None:
    """Send the presser's own PnL per day (`cb:<day|week|month|all|N>`) as bars."""
    user, query = presser(update)
    parts = callback_parts(update)[1:]
    days = _bars_span(parts[0]) if len(parts) == 1 else None
    if days is None or query.message is None:
        await query.answer("This button is out of date; send the command again.")
        return
    tz = await context.services.strategy.timezone(user.id)
    try:
        bars = await context.services.charts.day_bars(
            user.id, days, context.services.clock.now(), tz
        )
    except DomainError as err:
        await query.answer(str(err)[:200])
        return
    await query.answer()
    photo = InputFile(bars.png, filename=f"pnl-{bars.days}d.png")
    await context.bot.send_photo(
        query.message.chat.id, photo, caption=bars_caption(bars, str(tz)), parse_mode="HTML"
    )


def chart_button(span: str | int) -> InlineKeyboardButton:
    """The "Chart" button under /pnl (a period name) or /daily (a count of days)."""
    return InlineKeyboardButton("📊 Chart", callback_data=callback_data("cb", span))


def handlers() -> list[Handler]:
    return [command("equity", equity), command("chart", chart), button("cb", bars_button)]


def caption(chart: Chart, zone: str) -> str:
    """The figures the picture shows, in words (well under Telegram's 1,024 characters)."""
    since = f" since {chart.first:%Y-%m-%d}" if chart.first else ""
    head = f"<b>Equity, {TITLES[chart.span]}</b> ({escape(zone)}){since}"
    if not chart.trades:
        return f"{head}\nNo realised trades in this span: the curve is flat.\n{_balance(chart)}"
    rate = f"{chart.wins / chart.trades:.0%}"
    trades = f"{chart.trades} trade" + ("" if chart.trades == 1 else "s")
    return (
        f"{head}\nRealised PnL: <b>{signed(chart.pnl)} USDT</b> · {trades} · "
        f"win rate {rate}\nMax drawdown: {money(chart.max_drawdown)} USDT · "
        f"one point per {chart.unit}\n{_balance(chart)}"
    )


def _balance(chart: Chart) -> str:
    """The recorded balance (blue line) in words: the latest point and its change."""
    if not chart.balances:
        return "Balance: none recorded in this span yet (/balance records one)."
    first, last = chart.balances[0], chart.balances[-1]
    text = f"Balance (blue): <b>{money(last.equity)} USDT</b> on {last.first:%Y-%m-%d}"
    if len(chart.balances) > 1:
        text += f", {signed(last.equity - first.equity)} since {first.first:%Y-%m-%d}"
    points = len(chart.balances)
    return f"{text} · {points} recorded {chart.unit}" + ("" if points == 1 else "s")


def bars_caption(bars: DayBars, zone: str) -> str:
    """The bars' sum and extremes in words."""
    days = f"{bars.days} day" + ("" if bars.days == 1 else "s")
    head = f"<b>PnL per day</b>, {days} from {bars.first:%Y-%m-%d} ({escape(zone)})"
    if not bars.trades:
        return f"{head}\nNo realised trades in these days."
    trades = f"{bars.trades} trade" + ("" if bars.trades == 1 else "s")
    return (
        f"{head}\nRealised PnL: <b>{signed(bars.pnl)} USDT</b> · {trades} · "
        f"win rate {bars.wins / bars.trades:.0%}\n"
        f"Best day: {signed(bars.best)} · worst day: {signed(bars.worst)}"
    )


def candles_caption(drawn: CandleChart, tz: tzinfo) -> str:
    """What the candles and their marks show, in words."""
    since = drawn.first.astimezone(tz)
    return (
        f"<b>{escape(drawn.symbol)}</b> · {drawn.timeframe} · {drawn.candles} candles on "
        f"{escape(title(drawn.source))} since {since:%Y-%m-%d %H:%M} ({escape(str(tz))})\n"
        f"Last {price(drawn.last)} · {signed(drawn.change_pct)} % over the chart\n"
        f"Signals: {drawn.signals} (▲ long, ▼ short) · your entries: {drawn.entries} (●), "
        f"exits: {drawn.exits} (✖)"
    )


def _bars_span(text: str) -> int | str | None:
    """A /pnl period name or a plain count of days within bounds; None for anything else."""
    if text in BAR_PERIODS:
        return text
    if text.isascii() and text.isdigit() and len(text) < 5 and 1 <= int(text) <= MAX_DAYS:
        return int(text)
    return None
