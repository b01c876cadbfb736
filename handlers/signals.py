"""/signals, /subscribe and /unsubscribe: what the scanner found, and who hears of it."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.base import (
    Handler,
    button,
    callback_data,
    callback_parts,
    command,
    edit_in_place,
    sender,
)
from handlers.context import CommandInfo, TradewindContext
from handlers.render import base, duration
from services.signals import SCORE_USAGE, SignalPage, SignalRecord

COMMANDS = (
    CommandInfo("signals", "Latest market signals with score and reasons", keyboard=True),
    CommandInfo(
        "subscribe", "Get signals as they happen, scoring MIN_SCORE or more", usage="[MIN_SCORE]"
    ),
    CommandInfo("unsubscribe", "Stop getting signals (/notify signals silent mutes them)"),
)


async def signals(update: Update, context: TradewindContext) -> None:
    """Show the newest page of signals with an Older button."""
    _, message = sender(update)
    page = await context.services.signals.page(0)
    text, keyboard = render_page(page, context.services.clock.now().timestamp())
    await message.reply_html(text, reply_markup=keyboard)


async def signals_button(update: Update, context: TradewindContext) -> None:
    """Turn the page (`sg:<page>`) of the signal list."""
    query = update.callback_query
    if query is None:
        return
    parts = callback_parts(update)[1:]
    if len(parts) != 1 or not parts[0].isascii() or not parts[0].isdigit():
        await query.answer("This button is out of date; send /signals again.")
        return
    page = await context.services.signals.page(int(parts[0][:3]))
    text, keyboard = render_page(page, context.services.clock.now().timestamp())
    await query.answer()
    await edit_in_place(update, text, keyboard)


async def subscribe(update: Update, context: TradewindContext) -> None:
    """Turn signals on, optionally with a new minimum score."""
    user, message = sender(update)
    args = context.args or []
    if len(args) > 1:
        await message.reply_html(escape(SCORE_USAGE))
        return
    score = await context.services.signals.subscribe(user.id, args[0] if args else None)
    await message.reply_html(
        f"Subscribed: you will get signals scoring <b>{score:.2f}</b> or more, within your "
        "/strategy allow and deny lists. /unsubscribe stops them."
    )


async def unsubscribe(update: Update, context: TradewindContext) -> None:
    """Turn signals off."""
    user, message = sender(update)
    if await context.services.signals.unsubscribe(user.id):
        await message.reply_html("Unsubscribed: no more signal messages. /subscribe resumes.")
    else:
        await message.reply_html("You are not subscribed. /subscribe [MIN_SCORE] starts.")


def handlers() -> list[Handler]:
    return [
        command("signals", signals),
        button("sg", signals_button),
        command("subscribe", subscribe),
        command("unsubscribe", unsubscribe),
    ]


def render_page(page: SignalPage, now: float) -> tuple[str, InlineKeyboardMarkup | None]:
    """One block per signal, newest first, with Newer/Older buttons."""
    if not page.signals:
        if page.page:
            return "No older signals.", _keyboard(page)
        return "No signals yet. The scanner looks at the whole market every few seconds.", None
    header = "<b>Latest signals</b>" + (f" · page {page.page + 1}" if page.page else "")
    blocks = [_block(s, now) for s in page.signals]
    return "\n\n".join([header, *blocks]), _keyboard(page)


def _block(signal: SignalRecord, now: float) -> str:
    arrow = "📈" if signal.side == "long" else "📉"
    name = base(signal.symbol)
    ago = duration(now - signal.created_at.timestamp())
    return (
        f"{arrow} <b>{name} {escape(signal.side)}</b> · score {signal.score:.2f} · {ago} ago\n"
        f"at {signal.price.normalize():f} · {signal.leverage}× · "
        f"TP +{signal.tp_pct.normalize():f} % · SL −{signal.sl_pct.normalize():f} %\n"
        f"{escape(' · '.join(signal.reasons))}"
    )


def _keyboard(page: SignalPage) -> InlineKeyboardMarkup | None:
    buttons = []
    if page.page > 0:
        newer = callback_data("sg", page.page - 1)
        buttons.append(InlineKeyboardButton("◀ Newer", callback_data=newer))
    if page.has_older:
        buttons.append(
            InlineKeyboardButton("Older ▶", callback_data=callback_data("sg", page.page + 1))
        )
    return InlineKeyboardMarkup([buttons]) if buttons else None
