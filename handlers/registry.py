"""Registers every feature's handlers on the application, in order, plus the fallbacks.

A feature module exposes `COMMANDS` (what /help and the command menu show) and
`handlers()` (its command, button and conversation handlers, built with `handlers.base`).
"""

from __future__ import annotations

from types import ModuleType

from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from core.errors import Forbidden
from handlers import (
    admin,
    broadcast,
    charts,
    connect,
    errors,
    fallback,
    history,
    licensing,
    notify,
    paper,
    payments,
    perf,
    portfolio,
    price_alerts,
    promos,
    reports,
    signals,
    start,
    strategy,
    trading,
)
from handlers.base import measured, profile_of, refuse
from handlers.context import CommandInfo, TradewindApp, TradewindContext

# Order matters only for conversations, which must see their text before the fallbacks.
FEATURES: tuple[ModuleType, ...] = (
    start,
    connect,
    perf,
    portfolio,
    trading,
    paper,
    strategy,
    history,
    reports,
    charts,
    signals,
    price_alerts,
    notify,
    licensing,
    promos,
    payments,
    admin,
    broadcast,
)

BLOCKED = (
    "Sorry, your access to this bot has been suspended. "
    "Contact the bot's admins if you think this is a mistake."
)


async def track_user(update: Update, context: TradewindContext) -> None:
    """Before any handler: make sure the sender exists and note their presence."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    await context.services.users.ensure(profile_of(user, update.effective_chat))
    services = context.services
    if await services.user_admin.is_blocked(user.id) and not services.access.is_admin(user.id):
        await refuse(update, Forbidden(BLOCKED))
        raise ApplicationHandlerStop


def register_handlers(app: TradewindApp) -> list[CommandInfo]:
    """Attach all handlers; return the command list (for /help and the Bot API menu)."""
    app.add_handler(TypeHandler(Update, track_user), group=-1)
    infos: list[CommandInfo] = []
    for feature in FEATURES:
        infos.extend(feature.COMMANDS)
        app.add_handlers(feature.handlers())
    app.add_handler(MessageHandler(filters.COMMAND, measured("unknown", fallback.unknown_command)))
    app.add_handler(
        MessageHandler(filters.TEXT & ~filters.COMMAND, measured("text", fallback.free_text))
    )
    app.add_handler(CallbackQueryHandler(measured("button:unknown", fallback.unknown_button)))
    app.add_error_handler(errors.on_error)
    return infos
