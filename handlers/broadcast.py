"""/broadcast: preview a message, confirm it, and watch it go out to every trader."""

from __future__ import annotations

import logging
from html import escape

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

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
from services.broadcasts import USAGE, BroadcastReport, BroadcastService

log = logging.getLogger(__name__)

COMMANDS = (
    CommandInfo(
        "broadcast", "Send a message to every trader", usage="TEXT (or as a reply)", admin=True
    ),
)

PREFIX = "bc"  # bc:go:<id> confirms, bc:no:<id> cancels
BROADCAST_PROGRESS_S = 3.0  # how often the progress message is edited


async def broadcast(update: Update, context: TradewindContext) -> None:
    """Draft the text (or the replied-to message): show it as sent, then ask to confirm."""
    admin, message = sender(update)
    draft = await context.services.broadcasts.draft(admin.id, _broadcast_text(message))
    await message.reply_html(draft.text)
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "Confirm", callback_data=callback_data(PREFIX, "go", draft.broadcast_id)
                ),
                InlineKeyboardButton(
                    "Cancel", callback_data=callback_data(PREFIX, "no", draft.broadcast_id)
                ),
            ]
        ]
    )
    await message.reply_html(
        f"Send the message above to <b>{draft.recipients:,}</b> users?", reply_markup=keyboard
    )


async def broadcast_button(update: Update, context: TradewindContext) -> None:
    """Confirm (this message becomes the progress report) or cancel a draft."""
    admin, query = presser(update)
    if query.message is None:
        return
    parts = callback_parts(update)
    if len(parts) != 3 or parts[1] not in ("go", "no") or not is_id(parts[2]):
        raise InvalidInput("This button is out of date; send /broadcast again.")
    service, broadcast_id = context.services.broadcasts, int(parts[2])
    if parts[1] == "no":
        await service.cancel(admin.id, broadcast_id)
        await query.answer()
        await edit_in_place(update, "Broadcast cancelled; nothing was sent.")
        return
    report = await service.start(
        admin.id, broadcast_id, query.message.chat.id, query.message.message_id
    )
    await query.answer("Queued.")
    await edit_in_place(update, render_progress(report))


def handlers() -> list[Handler]:
    return [
        command("broadcast", broadcast, admin=True),
        button(PREFIX, broadcast_button, admin=True),
    ]


def render_progress(report: BroadcastReport) -> str:
    head = "finished" if report.done else "sending"
    return (
        f"<b>Broadcast #{report.broadcast_id}</b> {head}: {report.sent:,} / {report.total:,} sent"
        f" · {report.blocked:,} blocked · {report.failed:,} failed"
    )


async def report_progress(bot: Bot, broadcasts: BroadcastService) -> str | None:
    """Edit each running broadcast's progress message; a finished one gets its final report
    and is closed. Run every few seconds by a job; after a restart it picks up where the
    stored progress message left off."""
    finished = 0
    for report in await broadcasts.progress():
        try:
            await bot.edit_message_text(
                render_progress(report),
                chat_id=report.chat_id,
                message_id=report.message_id,
                parse_mode=ParseMode.HTML,
            )
        except BadRequest as err:
            # Unchanged text is fine; a deleted message cannot be shown again.
            if "not modified" not in err.message.lower():
                log.warning("broadcast %d: progress not shown: %s", report.broadcast_id, err)
        except TelegramError as err:
            log.warning("broadcast %d: progress not shown: %s", report.broadcast_id, err)
            continue  # shown on the next run
        broadcasts.shown(report)
        if report.done:
            await broadcasts.complete(report.broadcast_id)
            finished += 1
    return f"{finished} broadcasts finished" if finished else None


def _broadcast_text(message: Message) -> str:
    """HTML to send: the replied-to message with its formatting, or the text after the
    command (escaped)."""
    replied = message.reply_to_message
    if replied is not None and (replied.text or replied.caption):
        return str(replied.text_html if replied.text else replied.caption_html)
    parts = (message.text or "").split(maxsplit=1)
    if len(parts) < 2:
        raise InvalidInput(USAGE)
    return escape(parts[1])
