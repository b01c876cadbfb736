"""What every handler shares: measuring, the admin guard, builders, and who is talking."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from html import escape
from typing import Any

from telegram import (
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from core.errors import DomainError
from core.exchange.errors import ExchangeError
from handlers.context import TradewindContext
from services.users import UserProfile

Callback = Callable[[Update, TradewindContext], Coroutine[Any, Any, None]]
Handler = BaseHandler[Update, TradewindContext, Any]

ADMIN_ONLY = "This command is for admins."
MAX_CALLBACK_BYTES = 64
MAX_ANSWER = 200  # Telegram cuts callback answers at 200 characters
SLOW_STEP = 0.3  # seconds a step may take before the chat shows "typing…"
TYPING_LASTS = 4.5  # Telegram shows an action for 5 s; renewed before it fades

# Every prefix registered with `button(..., admin=True)`, so a test can press them all.
ADMIN_BUTTON_PREFIXES: set[str] = set()


class Unanswerable(Exception):
    """An update without the sender or message a handler needs (a channel post, an inline
    query): there is nobody to answer, so the handler stops quietly."""


def sender(update: Update) -> tuple[User, Message]:
    """Who sent a command, and the message to reply to."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        raise Unanswerable
    return user, message


def presser(update: Update) -> tuple[User, CallbackQuery]:
    """Who pressed a button, and the press to answer."""
    user, query = update.effective_user, update.callback_query
    if user is None or query is None:
        raise Unanswerable
    return user, query


def measured(name: str, callback: Callback) -> Callback:
    """Time a handler under `name`; a refusal it lets escape is told to the user.

    Business refusals (`DomainError`) and exchange failures (`ExchangeError`) carry
    user-safe words: they are answered here, once for every handler, not counted as errors.
    """

    @functools.wraps(callback)
    async def run(update: Update, context: TradewindContext) -> None:
        with context.services.metrics.time_command(name):
            try:
                await callback(update, context)
            except (DomainError, ExchangeError) as err:
                await refuse(update, err)
            except Unanswerable:
                pass

    return run


def words(err: DomainError | ExchangeError) -> str:
    """What a refusal says to the user (not escaped)."""
    return err.message if isinstance(err, ExchangeError) else str(err)


async def refuse(update: Update, err: DomainError | ExchangeError) -> None:
    """Answer a refusal: an alert on a pressed button, a reply to a message."""
    if update.callback_query is not None:
        await update.callback_query.answer(words(err)[:MAX_ANSWER], show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_html(escape(words(err)))


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


def command(
    name: str, callback: Callback, *, admin: bool = False, in_groups: bool = False
) -> Handler:
    """A measured CommandHandler; admin commands are guarded and refusals audited.

    A command answers in private chats only unless `in_groups`: what it shows (a licence,
    balances, positions, admin figures) is the sender's, not the group's to read."""
    if admin:
        callback = admin_only(f"/{name}", callback)
    if not in_groups:
        callback = private_only(callback)
    return CommandHandler(name, measured(name, callback))


def private_only(callback: Callback) -> Callback:
    """In a group, answer briefly and point to a private chat instead of running."""

    @functools.wraps(callback)
    async def guarded(update: Update, context: TradewindContext) -> None:
        chat, message = update.effective_chat, update.effective_message
        if chat is None or message is None or chat.type == ChatType.PRIVATE:
            await callback(update, context)
            return
        name = context.bot.username
        where = f"in a private chat with @{escape(name)}" if name else "in a private chat with me"
        keys = None
        if name:
            link = InlineKeyboardButton(
                "Open a private chat", url=f"https://t.me/{name}?start=start"
            )
            keys = InlineKeyboardMarkup([[link]])
        await message.reply_html(f"Tradewind works {where}; send /start there.", reply_markup=keys)

    return guarded


def button(prefix: str, callback: Callback, *, admin: bool = False) -> Handler:
    """A measured handler for inline buttons whose callback_data starts with `prefix:`."""
    if admin:
        ADMIN_BUTTON_PREFIXES.add(prefix)
        callback = admin_only(f"button {prefix}", callback)
    return CallbackQueryHandler(measured(f"button:{prefix}", callback), pattern=f"^{prefix}:")


def callback_data(prefix: str, *parts: object) -> str:
    """Build `prefix:part:part`; refuses anything Telegram would reject (over 64 bytes)."""
    data = ":".join([prefix, *(str(p) for p in parts)])
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data over {MAX_CALLBACK_BYTES} bytes: {data!r}")
    return data


def callback_parts(update: Update) -> list[str]:
    """The `:`-separated parts of a pressed button's data, prefix first."""
    query = update.callback_query
    return (query.data or "").split(":") if query is not None else []


async def edit_in_place(
    update: Update, text: str, markup: InlineKeyboardMarkup | None = None
) -> bool:
    """Edit the message whose button was pressed; False if it already read exactly so.

    An unchanged message (a repeated press) is not an error.
    """
    query = update.callback_query
    if query is None:
        return False
    try:
        await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as err:
        if "not modified" not in err.message.lower():
            raise
        return False
    return True


@contextlib.asynccontextmanager
async def typing_action(
    update: Update, context: TradewindContext, after: float = SLOW_STEP
) -> AsyncIterator[None]:
    """Show "typing…" in the chat while the block runs, once it has run `after` seconds
    (0: at once), renewed until it ends. A fast (cached) step shows nothing."""
    chat = update.effective_chat
    if chat is None:
        yield
        return

    async def tell() -> None:
        with contextlib.suppress(TelegramError):  # a lost action is not worth an error
            await context.bot.send_chat_action(chat.id, ChatAction.TYPING)

    async def keep_telling(first: float) -> None:
        await asyncio.sleep(first)
        while True:
            await tell()
            await asyncio.sleep(TYPING_LASTS)

    if after <= 0:
        await tell()
    task = asyncio.create_task(keep_telling(after if after > 0 else TYPING_LASTS))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def profile_of(user: User, chat: Chat | None) -> UserProfile:
    """The fields of a Telegram user that Tradewind keeps.

    Only a private chat becomes the user's chat: notices sent there (fills, licences) must
    never go to a group the user once wrote in.
    """
    private = chat is not None and chat.type == ChatType.PRIVATE
    return UserProfile(
        user_id=user.id,
        chat_id=chat.id if private and chat is not None else user.id,
        first_name=user.first_name,
        username=user.username,
        last_name=user.last_name,
        language_code=user.language_code,
    )
