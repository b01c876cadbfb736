"""/paper_reset: start the paper account over, after a confirmation card."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from core.errors import InvalidInput
from handlers.args import is_id
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
from handlers.render import usdt
from services.paper_reset import ResetDone, ResetPreview

COMMANDS = (
    CommandInfo("paper_reset", "Start your paper account over: no positions, the starting balance"),
)

RESET = "pz"  # pz:<ok|no>:<credential id>:<last reset, ms>
OUT_OF_DATE = "This button is out of date; send /paper_reset again."
ACCOUNT_CHANGED = "Your active account changed since this card; send /paper_reset again."


async def paper_reset(update: Update, context: TradewindContext) -> None:
    """Show what a reset would do, with Reset and Keep buttons."""
    user, message = sender(update)
    accounts = context.services.accounts
    account = await accounts.require_active(user.id)
    preview = await accounts.paper.preview(
        user.id, account.exchange, account.label, account.credential_id
    )
    await message.reply_html(render_preview(preview), reply_markup=reset_keys(preview))


async def reset_button(update: Update, context: TradewindContext) -> None:
    """Reset (once per card) or keep the paper account."""
    user, query = presser(update)
    parts = callback_parts(update)
    if len(parts) != 4 or parts[1] not in ("ok", "no") or not all(map(is_id, parts[2:])):
        raise InvalidInput(OUT_OF_DATE)
    if parts[1] == "no":
        await query.answer("Nothing was reset.")
        await edit_in_place(update, "✖️ Kept as it was — nothing was reset.")
        return
    accounts = context.services.accounts
    account = await accounts.require_active(user.id)
    if account.credential_id != int(parts[2]):
        raise InvalidInput(ACCOUNT_CHANGED)
    done = await accounts.paper.reset(user.id, account.exchange, int(parts[2]), int(parts[3]))
    await query.answer("Reset.")
    await edit_in_place(update, render_done(done))


def handlers() -> list[Handler]:
    return [command("paper_reset", paper_reset), button(RESET, reset_button)]


def render_preview(preview: ResetPreview) -> str:
    return (
        "<b>Reset your paper account?</b>\n"
        f"This closes {_count(preview.positions, 'position')} and cancels "
        f"{_count(preview.orders, 'open order')} without trading them, and sets the balance "
        f"back to {usdt(preview.starting_balance)} USDT. Your trade history stays.\n\n"
        "Nothing changes before you press Reset."
    )


def reset_keys(preview: ResetPreview) -> InlineKeyboardMarkup:
    ids = (preview.credential_id, preview.mark)
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("♻️ Reset", callback_data=callback_data(RESET, "ok", *ids)),
                InlineKeyboardButton("✖️ Keep", callback_data=callback_data(RESET, "no", *ids)),
            ]
        ]
    )


def render_done(done: ResetDone) -> str:
    return escape(
        f"♻️ Paper account reset: {_count(done.positions, 'position')} closed, "
        f"{_count(done.orders, 'open order')} cancelled, balance {usdt(done.balance)} USDT."
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"
