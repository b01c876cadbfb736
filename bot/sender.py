"""The Telegram side of `services.sender.MessageSender`: PTB's bot, errors mapped once.

Sends go through `application.bot`, hence through the app's `TelegramLimiter`, marked as
outbox deliveries: a 429 is not retried there but raised as `RetryLater` for the dispatcher,
which pauses every delivery and reschedules the row. HTML Telegram cannot parse is re-sent
as plain text by the limiter, so a delivery is not lost to it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.telegram_limits import OUTBOX
from services.sender import Buttons, RetryLater, SendError, Unreachable

# Bad requests that mean the chat is gone for good, not that the message was wrong.
_GONE = ("chat not found", "user is deactivated", "bot was kicked")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class TelegramSender:
    """Sends one HTML message with `bot.send_message`."""

    def __init__(self, bot: Bot, *, paid_broadcast: bool = False) -> None:
        self._bot = bot
        # Paid broadcasts lift the overall limit to 1,000 msg/s for Stars per message.
        self._paid = paid_broadcast

    async def send(self, chat_id: int, text: str, *, silent: bool, buttons: Buttons) -> None:
        markup = (
            InlineKeyboardMarkup(
                [[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                 for row in buttons]
            )
            if buttons
            else None
        )  # fmt: skip
        extra: dict[str, Any] = {"allow_paid_broadcast": True} if self._paid else {}
        if getattr(self._bot, "rate_limiter", None) is not None:
            extra["rate_limit_args"] = OUTBOX  # the dispatcher owns this delivery's 429s
        try:
            await self._bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                disable_notification=silent,
                reply_markup=markup,
                link_preview_options=_NO_PREVIEW,
                **extra,
            )
        except RetryAfter as err:
            raise RetryLater(_seconds(err.retry_after), err.message) from err
        except Forbidden as err:
            raise Unreachable(err.message) from err
        except BadRequest as err:
            if any(gone in err.message.lower() for gone in _GONE):
                raise Unreachable(err.message) from err
            raise SendError(f"rejected: {err.message}") from err
        except NetworkError as err:
            raise SendError(f"network: {err.message}") from err
        except TelegramError as err:
            raise SendError(err.message) from err


def _seconds(retry_after: timedelta | int | float) -> float:
    if isinstance(retry_after, timedelta):
        return retry_after.total_seconds()
    return float(retry_after)
