"""/connect and /keys: connect an exchange account in a short conversation, then manage it.

/connect walks exchange → account type → API key → secret (→ passphrase), deleting every
message that carried a key. What was typed lives in a `Draft` under `context.user_data`
only while the conversation runs, and is dropped on every way out (done, refused, /cancel,
timeout, a new /connect). Wrong keys end the conversation with nothing stored; the trader
sends /connect again (the message says so). Where the venue reports a key's permissions, a
key that cannot trade is refused with the reason, and one that can withdraw or has no IP
whitelist is connected with a warning.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from core.errors import DomainError
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import AccountSetupRequired, AuthFailed, ExchangeError
from core.exchange.venues import title
from handlers.base import (
    Handler,
    button,
    callback_data,
    callback_parts,
    command,
    edit_in_place,
    typing_action,
)
from handlers.context import CommandInfo, TradewindContext
from handlers.keys import keys, keys_button
from handlers.render import refused_keys, usdt
from services.accounts import PAPER, account_types, needs_passphrase
from services.keys import KeyHealthService

COMMANDS = (
    CommandInfo("connect", "Connect an exchange account (paper needs no keys)", keyboard=True),
    CommandInfo("keys", "Your accounts: choose the active one, re-check, remove", keyboard=True),
)

CONVERSATION_TIMEOUT = 300.0  # seconds; read when the handlers are built
EXCHANGE, ACCOUNT_TYPE, TYPING = range(3)
END = ConversationHandler.END
STALE = "This button is no longer active. Send /connect to start again."
KEY_ADVICE = (
    "Create the key with read and trade permissions only, never withdrawals. I delete "
    "every message with a key as soon as I have read it. /cancel stops."
)

Step = Callable[[Update, TradewindContext], Coroutine[Any, Any, object]]


@dataclass(slots=True)
class Draft:
    """What the trader has chosen and typed so far in one /connect conversation."""

    prompt_id: int  # the message whose buttons belong to this conversation
    exchange: str = ""
    account_type: str = ""
    api_key: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    passphrase: str = field(default="", repr=False)

    @property
    def label(self) -> str:
        kind = f" ({self.account_type})" if self.account_type else ""
        return escape(f"{title(self.exchange)}{kind}")

    def wanted(self) -> str | None:
        """What to ask for next, or None when everything is in."""
        if not self.api_key:
            return "API key"
        if not self.secret:
            return "API secret"
        return "API passphrase" if needs_passphrase(self.exchange) and not self.passphrase else None

    def fill(self, value: str) -> None:
        if not self.api_key:
            self.api_key = value
        elif not self.secret:
            self.secret = value
        else:
            self.passphrase = value

    def scrub(self, text: str) -> str:
        """`text` without anything the trader typed, should an error message echo it."""
        for typed in (self.api_key, self.secret, self.passphrase):
            text = text.replace(typed, "…") if typed else text
        return text

    def credentials(self) -> ApiCredentials | None:
        if self.exchange == PAPER:
            return None
        return ApiCredentials(self.api_key, self.secret, self.passphrase or None)


# -- /connect ---------------------------------------------------------------------------------


async def connect(update: Update, context: TradewindContext) -> object:
    """Start connecting an account: show the offered exchanges."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return END
    _forget(update, context)  # a /connect mid-way starts over without what was typed
    if chat.type != ChatType.PRIVATE:
        await message.reply_html("For your keys' safety, /connect works only in a private chat.")
        return END
    prompt = await message.reply_html(
        "<b>Connect an account</b> — which exchange? Paper trading needs no keys.",
        reply_markup=_choices("ex", [(title(x), x) for x in context.services.accounts.offered]),
    )
    if context.user_data is not None:
        context.user_data[(Draft, chat.id)] = Draft(prompt.message_id)
    return EXCHANGE


async def pick_exchange(update: Update, context: TradewindContext) -> object:
    """Exchange chosen: paper connects at once; a real exchange asks for the account type."""
    pressed = await _pressed(update, context, lambda _: context.services.accounts.offered)
    if pressed is None:
        return None
    draft, exchange = pressed
    draft.exchange = exchange
    if draft.exchange == PAPER:
        return await _finish(update, context, draft)
    kinds = [(kind.capitalize(), kind) for kind in account_types(draft.exchange)]
    await edit_in_place(update, f"<b>{draft.label}</b> — which account?", _choices("type", kinds))
    return ACCOUNT_TYPE


async def pick_type(update: Update, context: TradewindContext) -> object:
    """Account type chosen: ask for the API key."""
    pressed = await _pressed(update, context, lambda draft: account_types(draft.exchange))
    if pressed is None:
        return None
    draft, kind = pressed
    draft.account_type = kind
    await edit_in_place(update, f"<b>{draft.label}</b>: send the API key.\n{KEY_ADVICE}", None)
    return TYPING


async def take_text(update: Update, context: TradewindContext) -> object:
    """Delete the message, keep the key, secret or passphrase in it; ask for the next or connect."""
    message, draft = update.effective_message, _draft(update, context)
    if message is None:
        return None
    deleted = await _delete(context, message)
    what = draft.wanted() if draft else None
    if draft is None or what is None:  # cannot happen while the conversation holds a draft
        await _say(update, context, "That /connect has ended. Send /connect to start again.")
        return END
    warning = "" if deleted else _not_deleted(what, draft.exchange)
    value = (message.text or "").strip()
    if not value or len(value) > 512 or any(c.isspace() for c in value):
        await _say(update, context, f"{warning}Send only the {what}: one word, no spaces.")
        return None
    draft.fill(value)
    after = draft.wanted()
    if after is None:
        return await _finish(update, context, draft, warning)
    await _say(update, context, f"{warning}Now send the {after}.")
    return None


async def not_text(update: Update, context: TradewindContext) -> object:
    """Anything but text while a key is expected (deleted too: a screenshot may show a key)."""
    if update.effective_message is not None:
        await _delete(context, update.effective_message)
    await _say(update, context, "Please send it as a plain text message, or /cancel.")
    return None


async def cancel(update: Update, context: TradewindContext) -> object:
    """Leave the conversation (/cancel or the Cancel button); nothing is stored."""
    query = update.callback_query
    if query is not None and await _pressed(update, context, lambda _: ("0",)) is None:
        return None
    _forget(update, context)
    text = "Stopped connecting; nothing was stored."
    await (edit_in_place(update, text, None) if query else _say(update, context, text))
    return END


async def timed_out(update: Update, context: TradewindContext) -> None:
    """The trader went quiet: forget what was typed and say so."""
    _forget(update, context)
    await _say(update, context, "/connect timed out; nothing was stored. Send /connect again.")


async def stale_button(update: Update, context: TradewindContext) -> None:
    """A /connect button pressed outside its conversation."""
    if update.callback_query is not None:
        await update.callback_query.answer(STALE, show_alert=True)


async def _finish(
    update: Update, context: TradewindContext, draft: Draft, warning: str = ""
) -> object:
    """Validate and store the keys (one balance call), report, and end the conversation."""
    _forget(update, context)  # the keys leave user_data before the exchange is asked
    user_id = update.effective_user.id if update.effective_user else 0
    async with typing_action(update, context, after=0):  # the exchange checks the keys
        text = await _connect_text(context.services.key_health, user_id, draft)
    if update.callback_query is not None:
        await edit_in_place(update, text, None)
    else:
        await _say(update, context, warning + text)
    return END


async def _connect_text(keys: KeyHealthService, user_id: int, draft: Draft) -> str:
    try:
        checked = await keys.connect(
            user_id, draft.exchange, draft.account_type or PAPER, draft.credentials()
        )
    except AuthFailed as err:
        return f"{refused_keys(err.exchange)}\nNothing was stored. Send /connect to try again."
    except AccountSetupRequired as err:
        return f"{escape(err.message)}\nNothing was stored."
    except ExchangeError as err:
        return (
            f"Could not check the keys: {escape(draft.scrub(err.message))}\n"
            "Nothing was stored. Send /connect to try again in a moment."
        )
    except DomainError as err:
        return f"{escape(str(err))}\nNothing was stored. Send /connect to try again."
    done = checked.connection
    warned = checked.health.warnings if checked.health is not None else ()
    return "\n\n".join(
        [
            f"Connected <b>{escape(done.account.label)}</b> — balance "
            f"{usdt(done.balance.equity)} USDT.\n"
            "It is now your active account; /keys lists your accounts.",
            *map(escape, warned),
        ]
    )


async def _pressed(
    update: Update, context: TradewindContext, allowed: Callable[[Draft], Collection[str]]
) -> tuple[Draft, str] | None:
    """The draft and the chosen value if the button is this conversation's; answers the press."""
    query, draft, parts = update.callback_query, _draft(update, context), callback_parts(update)
    if query is None or query.message is None:
        return None
    if draft is None or len(parts) != 3 or parts[2] not in allowed(draft):
        await query.answer(STALE, show_alert=True)
        return None
    if query.message.message_id != draft.prompt_id:
        await query.answer("That button belongs to an earlier /connect.", show_alert=True)
        return None
    await query.answer()
    return draft, parts[2]


async def _delete(context: TradewindContext, message: Message) -> bool:
    """Delete a message that may carry a secret; False if Telegram refused."""
    try:
        return await context.bot.delete_message(message.chat_id, message.message_id)
    except TelegramError:
        return False


def _not_deleted(what: str, exchange: str) -> str:
    return (
        f"⚠️ I could not delete your message with the {what}. Delete it yourself, and to be "
        f"safe revoke this key on {escape(title(exchange))} and create a new one.\n\n"
    )


async def _say(update: Update, context: TradewindContext, text: str) -> None:
    # Sent, not replied: the message we would reply to may have just been deleted.
    if update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, text, parse_mode=ParseMode.HTML)


def _choices(step: str, options: Sequence[tuple[str, str]]) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton(text, callback_data=callback_data("connect", step, value))]
        for text, value in options
    ]
    rows.append([InlineKeyboardButton("Cancel", callback_data=callback_data("connect", "stop", 0))])
    return InlineKeyboardMarkup(rows)


def _draft(update: Update, context: TradewindContext) -> Draft | None:
    chat, data = update.effective_chat, context.user_data
    found = None if chat is None or data is None else data.get((Draft, chat.id))
    return found if isinstance(found, Draft) else None


def _forget(update: Update, context: TradewindContext) -> None:
    if update.effective_chat is not None and context.user_data is not None:
        context.user_data.pop((Draft, update.effective_chat.id), None)


# -- wiring -----------------------------------------------------------------------------------


def _step(name: str, callback: Step) -> Step:
    """Measure a conversation step like `handlers.base.measured`, keeping its next state."""

    @functools.wraps(callback)
    async def run(update: Update, context: TradewindContext) -> object:
        with context.services.metrics.time_command(name):
            return await callback(update, context)

    return run


def handlers() -> list[Handler]:
    with warnings.catch_warnings():
        # PTB warns that buttons are tracked per chat and user, not per message; that is the
        # intent, and `_pressed` checks the message id of this conversation's prompt itself.
        warnings.filterwarnings("ignore", "If 'per_message=False'", PTBUserWarning)
        return _handlers()


def _handlers() -> list[Handler]:
    typed = filters.UpdateType.MESSAGE & ~filters.COMMAND  # new messages only, not edits
    conversation = ConversationHandler[TradewindContext](
        entry_points=[CommandHandler("connect", _step("connect", connect))],
        states={
            EXCHANGE: [
                CallbackQueryHandler(_step("button:connect", pick_exchange), "^connect:ex:")
            ],
            ACCOUNT_TYPE: [
                CallbackQueryHandler(_step("button:connect", pick_type), "^connect:type:")
            ],
            TYPING: [
                MessageHandler(typed & filters.TEXT, _step("connect:text", take_text)),
                MessageHandler(typed & ~filters.TEXT, _step("connect:text", not_text)),
            ],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, timed_out)],
        },
        fallbacks=[
            CommandHandler("cancel", _step("connect:cancel", cancel)),
            CallbackQueryHandler(_step("button:connect", cancel), "^connect:stop:"),
        ],
        allow_reentry=True,
        conversation_timeout=CONVERSATION_TIMEOUT,
    )
    return [
        conversation,
        button("connect", stale_button),
        command("keys", keys),
        button("keys", keys_button),
    ]
