"""Every Bot API call passes here (PTB's rate-limiter seam): pacing, flood control, and a
plain-text resend when Telegram cannot parse our HTML.

Flood control (429, `RetryAfter`) is handled by exactly one layer per call:
- an outbox delivery (`bot.sender.TelegramSender` marks it `OUTBOX`) is never retried here:
  the 429 goes straight to the dispatcher, which pauses all deliveries and reschedules the
  row in SQLite, where it survives a restart;
- any other call (a command's reply, a button's answer, an edit) exists only in memory, so
  it is retried here after the wait, up to `retries` times.
Either way the wait is shared: no call leaves through here before it is over.

PTB's own `AIORateLimiter` still paces calls (30/s overall, 20/min per group) but never
retries (`max_retries=0`): with its default it retried outbox sends itself, so the dispatcher
never learnt of the 429, and PTB reads a per-call `rate_limit_args=0` as "use the default".
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from html import unescape
from typing import Any

from telegram.error import BadRequest, RetryAfter
from telegram.ext import AIORateLimiter, BaseRateLimiter

log = logging.getLogger(__name__)

OUTBOX = "outbox"  # `rate_limit_args` of an outbox delivery: its 429 belongs to the dispatcher
_TEXT_FIELDS = {
    "sendMessage": "text",
    "editMessageText": "text",
    "sendPhoto": "caption",
    "editMessageCaption": "caption",
}
_TAG = re.compile(r"<[^>]*>")

Result = bool | dict[str, Any] | list[dict[str, Any]]
Callback = Callable[..., Coroutine[Any, Any, Result]]


class TelegramLimiter(BaseRateLimiter[str]):
    """Pace with `pacer` (None: no pacing), own 429s of non-outbox calls, resend unparsable
    HTML as plain text."""

    def __init__(
        self,
        pacer: AIORateLimiter | None,
        *,
        retries: int = 3,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pacer = pacer
        self._retries = retries
        self._monotonic = monotonic
        self._resume_at = 0.0
        self.flood_waits = 0  # 429s seen, any call
        self.plain_resends = 0  # replies re-sent as plain text
        # Our pacer never retries, so every 429 would log "Rate limit hit after maximum of 0
        # retries" with a traceback; the 429 is handled (and logged) here instead.
        logging.getLogger("telegram.ext.AIORateLimiter").addFilter(_quiet_final_retry)

    async def initialize(self) -> None:
        if self._pacer is not None:
            await self._pacer.initialize()

    async def shutdown(self) -> None:
        if self._pacer is not None:
            await self._pacer.shutdown()

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> Result:
        retries = 0 if rate_limit_args == OUTBOX else self._retries
        attempt = 0
        while True:
            wait = self._resume_at - self._monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await self._send(callback, args, kwargs, endpoint, data)
            except RetryAfter as err:
                self.flood_waits += 1
                seconds = _seconds(err.retry_after)
                self._resume_at = max(self._resume_at, self._monotonic() + seconds)
                if attempt >= retries:
                    raise
                attempt += 1
                log.warning("Telegram flood control on %s: retrying in %.1f s", endpoint, seconds)

    async def _send(
        self, callback: Callback, args: Any, kwargs: dict[str, Any], endpoint: str, data: Any
    ) -> Result:
        try:
            return await self._paced(callback, args, kwargs, endpoint, data)
        except BadRequest as err:
            plain = plain_request(endpoint, data, err)
            if plain is None:
                raise
            self.plain_resends += 1
            log.warning("Telegram could not parse a %s (%s): sent as plain text", endpoint, err)
            return await self._paced(callback, (endpoint, plain), kwargs, endpoint, plain)

    async def _paced(
        self, callback: Callback, args: Any, kwargs: dict[str, Any], endpoint: str, data: Any
    ) -> Result:
        if self._pacer is None:
            return await callback(*args, **kwargs)
        return await self._pacer.process_request(callback, args, kwargs, endpoint, data, None)


def plain_request(endpoint: str, data: dict[str, Any], err: BadRequest) -> dict[str, Any] | None:
    """The same call as plain text when Telegram refused its HTML; None for any other error."""
    field = _TEXT_FIELDS.get(endpoint)
    if field is None or "can't parse entities" not in err.message.lower():
        return None
    if not data.get("parse_mode") or not isinstance(data.get(field), str):
        return None
    plain = {key: value for key, value in data.items() if key != "parse_mode"}
    plain[field] = plain_text(data[field])
    return plain


def plain_text(html: str) -> str:
    """What a reader would have seen: tags dropped, `&lt;` and friends turned back."""
    return unescape(_TAG.sub("", html))


def _seconds(retry_after: timedelta | float) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after


def _quiet_final_retry(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Rate limit hit after maximum of")
