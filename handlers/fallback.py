"""What the bot says to input it does not understand."""

from __future__ import annotations

import difflib
from html import escape

from telegram import Update

from handlers.context import TradewindContext
from handlers.start import main_keyboard

STALE_BUTTON = "This button is no longer valid."


async def unknown_command(update: Update, context: TradewindContext) -> None:
    """Point an unknown /command at /help, suggesting the nearest real one."""
    message = update.effective_message
    if message is None or not message.text:
        return
    word = message.text.split()[0].lstrip("/").split("@")[0].lower()
    is_admin = context.services.access.is_admin(
        update.effective_user.id if update.effective_user else None
    )
    names = [c.name for c in context.bot_data.commands if is_admin or not c.admin]
    nearest = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    hint = f" Did you mean /{nearest[0]}?" if nearest else ""
    await message.reply_html(
        f"I don't know /{escape(word[:40])}.{hint} Send /help to see what I can do."
    )


async def unknown_button(update: Update, context: TradewindContext) -> None:
    """Answer a button no handler knows (an older version's, or forged data), so the
    client stops spinning."""
    if update.callback_query is not None:
        await update.callback_query.answer(STALE_BUTTON, show_alert=True)


async def free_text(update: Update, context: TradewindContext) -> None:
    """Text outside a conversation: show the main keyboard."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_html(
        "Pick a command below, or send /help for the full list.",
        reply_markup=main_keyboard(context),
    )
