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
from core.throttle import FloodLimit, TraderThrottle, Verdict
from handlers import (
    admin,
    backtest,
    broadcast,
    charts,
    connect,
    errors,
    fallback,
    history,
    licensing,
    manage,
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
from handlers.base import Callback, measured, profile_of, refuse
from handlers.context import CommandInfo, TradewindApp, TradewindContext

# Order matters only for conversations, which must see their text before the fallbacks.
FEATURES: tuple[ModuleType, ...] = (
    start,
    connect,
    perf,
    portfolio,
    trading,
    manage,
    paper,
    strategy,
    history,
    reports,
    charts,
    backtest,
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


SLOW_DOWN = (
    "Slow down a little: Tradewind answers up to {limit} per trader. "
    "Try again in {wait} s; messages sent before then are ignored."
)
TOO_FAST = "Too fast: try again in a few seconds."


def flood_guard(limit: FloodLimit) -> Callback:
    """Before anything else: past `limit`, one "slow down", then silence; admins exempt.

    Only what a trader types or presses counts: a payment's confirmation or a member update
    is never dropped. A button pressed too fast gets a toast, since Telegram shows a spinner
    on it until the press is answered.
    """
    throttle = TraderThrottle(limit)

    async def guard(update: Update, context: TradewindContext) -> None:
        user, query, message = update.effective_user, update.callback_query, update.message
        typed = message is not None and message.text is not None
        if user is None or user.is_bot or (query is None and not typed):
            return
        services = context.services
        if services.access.is_admin(user.id):
            return
        now = services.clock.monotonic()
        verdict = throttle.admit(user.id, now)
        if verdict is Verdict.PASS:
            return
        with services.metrics.time_command("flood"):
            if query is not None:
                await query.answer(TOO_FAST)
            elif verdict is Verdict.WARN and message is not None:
                wait = max(1, throttle.wait_s(user.id, now))
                await message.reply_text(SLOW_DOWN.format(limit=limit.describe(), wait=wait))
        raise ApplicationHandlerStop

    return guard


def register_handlers(app: TradewindApp, flood: FloodLimit | None = None) -> list[CommandInfo]:
    """Attach all handlers; return the command list (for /help and the Bot API menu)."""
    if flood is not None:
        app.add_handler(TypeHandler(Update, flood_guard(flood)), group=-2)
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
