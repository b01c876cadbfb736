"""/alert and /alerts: be told once when a price crosses a level; list and remove alerts."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from core.exchange.venues import title
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
from handlers.context import CommandInfo, TradewindContext
from handlers.render import base, pct, price
from services.price_alerts import (
    ABOVE,
    LICENSED_CAP,
    UNLICENSED_CAP,
    USAGE,
    AlertPage,
    AlertSet,
    PriceAlert,
)

COMMANDS = (
    CommandInfo(
        "alert",
        "Be told once when a price crosses a level, on the scanner's market (paper by default)",
        usage="SYMBOL > PRICE | SYMBOL < PRICE | SYMBOL < 3%",
    ),
    CommandInfo("alerts", "Your price alerts, with Remove buttons"),
)
PREFIX = "pa"


async def alert(update: Update, context: TradewindContext) -> None:
    """Set a price alert: `/alert BTC > 70000`, `/alert ETH < 3%`."""
    user, message = sender(update)
    if not context.args:
        await message.reply_html(escape(_usage()))
        return
    made = await context.services.price_alerts.create(user.id, " ".join(context.args))
    await message.reply_html(render_set(made, context.services.price_alerts.source))


async def alerts(update: Update, context: TradewindContext) -> None:
    """List the sender's active alerts, a page at a time, with a Remove button each."""
    user, message = sender(update)
    page = await context.services.price_alerts.page(user.id)
    text, keyboard = render_page(page, context.services.price_alerts.source)
    await message.reply_html(text, reply_markup=keyboard)


async def alerts_button(update: Update, context: TradewindContext) -> None:
    """`pa:rm:<id>:<page>` removes one alert; `pa:pg:<page>` turns the page."""
    user, query = presser(update)
    parts = callback_parts(update)[1:]
    numbers = [int(p) for p in parts[1:] if p.isascii() and p.isdigit() and len(p) < 19]
    service = context.services.price_alerts
    if parts[:1] == ["rm"] and len(numbers) == 2 == len(parts) - 1:
        removed = await service.remove(user.id, numbers[0])
        await query.answer(f"Removed: {_what(removed)}")
        page = await service.page(user.id, numbers[1])
    elif parts[:1] == ["pg"] and len(numbers) == 1 == len(parts) - 1:
        await query.answer()
        page = await service.page(user.id, numbers[0])
    else:
        await query.answer("This button is out of date; send /alerts again.")
        return
    await edit_in_place(update, *render_page(page, service.source))


def handlers() -> list[Handler]:
    return [command("alert", alert), command("alerts", alerts), button(PREFIX, alerts_button)]


def render_set(made: AlertSet, source: str) -> str:
    level = Decimal(repr(made.alert.threshold))
    tick = made.market.tick_size
    away = (level - made.price) / made.price * 100
    return (
        f"🔔 Alert set: <b>{base(made.alert.symbol)}</b> {made.alert.direction} "
        f"{price(level, tick)} (last {price(made.price, tick)}, {pct(away)} away, "
        f"{title(source)} prices). You will be told once when it gets there.\n"
        f"{made.active} of {made.cap} alerts in use · /alerts lists and removes them."
    )


def render_page(page: AlertPage, source: str) -> tuple[str, InlineKeyboardMarkup | None]:
    if not page.total:
        return (
            "You have no price alerts. /alert BTC &gt; 70000 sets one, "
            "/alert ETH &lt; 3% one for a 3 % fall from now"
            f" (up to {UNLICENSED_CAP} alerts, {LICENSED_CAP} with a licence).",
            None,
        )
    head = f"<b>Your price alerts</b> · {page.total} of {page.cap} · {title(source)} prices"
    if page.pages > 1:
        head += f" · page {page.page + 1} of {page.pages}"
    lines = [
        _line(page.first + k, a, page.prices.get(a.symbol), page.ticks.get(a.symbol))
        for k, a in enumerate(page.alerts)
    ]
    rows = [
        [
            InlineKeyboardButton(
                f"✖ Remove {page.first + k}",
                callback_data=callback_data(PREFIX, "rm", a.id, page.page),
            )
            for k, a in list(enumerate(page.alerts))[i : i + 2]
        ]
        for i in range(0, len(page.alerts), 2)
    ]
    turn = []
    if page.page > 0:
        turn.append(
            InlineKeyboardButton(
                "◀ Previous", callback_data=callback_data(PREFIX, "pg", page.page - 1)
            )
        )
    if page.page + 1 < page.pages:
        turn.append(
            InlineKeyboardButton("Next ▶", callback_data=callback_data(PREFIX, "pg", page.page + 1))
        )
    return "\n".join([head, *lines]), InlineKeyboardMarkup([*rows, *([turn] if turn else [])])


def _line(number: int, alert: PriceAlert, last: Decimal | None, tick: Decimal | None) -> str:
    level = Decimal(repr(alert.threshold))
    away = f"{pct((level - last) / last * 100)} away" if last else ""
    now = f" · last {price(last, tick)}, {away}" if last else ""
    return f"{number}. <b>{base(alert.symbol)}</b> {alert.direction} {price(level, tick)}{now}"


def _what(alert: PriceAlert) -> str:
    word = "above" if alert.direction == ABOVE else "below"
    return f"{alert.symbol.split('/')[0]} {word} {price(Decimal(repr(alert.threshold)))}"


def _usage() -> str:
    return (
        f"{USAGE}\nAlerts watch the scanner's market prices and fire once. "
        f"You can keep {UNLICENSED_CAP}, or {LICENSED_CAP} with a licence; /alerts lists them."
    )
