"""The one error handler of the application: log, apologise, tell the admins (throttled)."""

from __future__ import annotations

import logging
import traceback
from html import escape

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError

from core.errors import DomainError
from core.exchange.errors import ExchangeError
from handlers.context import TradewindContext

log = logging.getLogger(__name__)

APOLOGY = "Something went wrong — the team has been told. Please try again in a moment."


async def on_error(update: object, context: TradewindContext) -> None:
    """Handle any exception a handler or job let escape."""
    error = context.error
    if error is None:
        return
    update_id = update.update_id if isinstance(update, Update) else None
    chat_id = _chat_id(update)
    if isinstance(error, DomainError) and chat_id is not None:
        # A business refusal that a handler forgot to word: its text is user-safe.
        await _tell(context, chat_id, escape(str(error)))
        return
    if isinstance(error, ExchangeError) and chat_id is not None:
        # An exchange failure a handler did not catch ("Bybit is not answering; trying again
        # in 30 s" from an open breaker): its words are user-safe and say more than sorry.
        log.warning("update %s: %s", update_id, error.message)
        await _tell(context, chat_id, escape(error.message))
        return
    log.error("update %s failed", update_id, exc_info=error)
    if chat_id is not None:
        await _tell(context, chat_id, APOLOGY)
    if context.bot_data.services is not None:
        await _alert_admins(context, error, update_id)


def _chat_id(update: object) -> int | None:
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


async def _tell(context: TradewindContext, chat_id: int, text: str) -> None:
    try:
        await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
    except TelegramError:
        log.warning("could not tell chat %s about an error", chat_id, exc_info=True)


async def _alert_admins(
    context: TradewindContext, error: BaseException, update_id: int | None
) -> None:
    services = context.services
    key = f"{type(error).__name__}:{error}"[:200]
    held_back = services.alerts.admit(key)
    if held_back is None:
        return
    where = "".join(traceback.format_exception(error)[-3:])[-1500:]
    more = f"\n(+{held_back} similar in the last minute)" if held_back else ""
    text = (
        f"⚠️ <b>Error</b> in update {update_id}: {escape(type(error).__name__)}: "
        f"{escape(str(error)[:300])}{more}\n<pre>{escape(where)}</pre>"
    )
    for admin_id in services.access.admin_ids:
        try:
            await context.bot.send_message(admin_id, text, parse_mode=ParseMode.HTML)
        except Forbidden:
            log.warning("admin %s has blocked the bot", admin_id)
        except TelegramError:
            log.warning("could not alert admin %s", admin_id, exc_info=True)
