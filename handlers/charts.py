"""/equity: the trader's realised PnL as a picture."""

from __future__ import annotations

from html import escape

from telegram import InputFile, Update

from handlers.base import Handler, command, sender
from handlers.context import CommandInfo, TradewindContext
from handlers.render import money, signed
from services.charts import SPANS, Chart

COMMANDS = (
    CommandInfo("equity", "Your equity curve (realised PnL) as a chart", usage="[30d|90d|all]"),
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


def handlers() -> list[Handler]:
    return [command("equity", equity)]


def caption(chart: Chart, zone: str) -> str:
    """The figures the picture shows, in words (well under Telegram's 1,024 characters)."""
    since = f" since {chart.first:%Y-%m-%d}" if chart.first else ""
    head = f"<b>Equity, {TITLES[chart.span]}</b> ({escape(zone)}){since}"
    if not chart.trades:
        return f"{head}\nNo realised trades in this span: the curve is flat."
    rate = f"{chart.wins / chart.trades:.0%}"
    trades = f"{chart.trades} trade" + ("" if chart.trades == 1 else "s")
    return (
        f"{head}\nRealised PnL: <b>{signed(chart.pnl)} USDT</b> · {trades} · "
        f"win rate {rate}\nMax drawdown: {money(chart.max_drawdown)} USDT · "
        f"one point per {chart.unit}"
    )
