"""Registers every handler on the application, wrapped in metrics and the admin guard."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Update
from telegram.ext import CommandHandler, MessageHandler, TypeHandler, filters

from handlers import errors, fallback, perf, start
from handlers.base import Callback, admin_only, measured, profile_of
from handlers.context import CommandInfo, TradewindApp, TradewindContext

# (command, callback) for every command; the CommandInfo tuples describe them for /help.
_CALLBACKS: dict[str, Callback] = {
    "start": start.start,
    "help": start.help_command,
    "license": start.license_command,
    "perf": perf.perf,
}
_INFOS: Sequence[CommandInfo] = (*start.COMMANDS, *perf.COMMANDS)


async def track_user(update: Update, context: TradewindContext) -> None:
    """Before any handler: make sure the sender exists and note their presence."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    chat_id = update.effective_chat.id if update.effective_chat else None
    await context.services.users.ensure(profile_of(user, chat_id))


def register_handlers(app: TradewindApp) -> list[CommandInfo]:
    """Attach all handlers; return the command list (for /help and the Bot API menu)."""
    app.add_handler(TypeHandler(Update, track_user), group=-1)
    for info in _INFOS:
        callback = _CALLBACKS[info.name]
        if info.admin:
            callback = admin_only(f"/{info.name}", callback)
        app.add_handler(CommandHandler(info.name, measured(info.name, callback)))
    app.add_handler(MessageHandler(filters.COMMAND, measured("unknown", fallback.unknown_command)))
    app.add_handler(
        MessageHandler(filters.TEXT & ~filters.COMMAND, measured("text", fallback.free_text))
    )
    app.add_error_handler(errors.on_error)
    return list(_INFOS)
