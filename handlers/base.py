"""What every handler shares: measuring, the admin guard, and reading who is talking."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update, User

from handlers.context import TradewindContext
from services.users import UserProfile

Callback = Callable[[Update, TradewindContext], Coroutine[Any, Any, None]]

ADMIN_ONLY = "This command is for admins."


def measured(name: str, callback: Callback) -> Callback:
    """Time a handler under `name` in the command latency metric."""

    @functools.wraps(callback)
    async def run(update: Update, context: TradewindContext) -> None:
        with context.services.metrics.time_command(name):
            await callback(update, context)

    return run


def admin_only(what: str, callback: Callback) -> Callback:
    """Refuse non-admins politely and audit the attempt; admins pass through."""

    @functools.wraps(callback)
    async def guarded(update: Update, context: TradewindContext) -> None:
        user = update.effective_user
        if context.services.access.is_admin(user.id if user else None):
            await callback(update, context)
            return
        await context.services.audit.refused(user.id if user else None, what)
        if update.callback_query is not None:
            await update.callback_query.answer(ADMIN_ONLY, show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(ADMIN_ONLY)

    return guarded


def profile_of(user: User, chat_id: int | None) -> UserProfile:
    """The fields of a Telegram user that Tradewind keeps."""
    return UserProfile(
        user_id=user.id,
        chat_id=chat_id if chat_id is not None else user.id,
        first_name=user.first_name,
        username=user.username,
        last_name=user.last_name,
        language_code=user.language_code,
    )
