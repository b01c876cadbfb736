"""The role that delivers one message to one chat, and the failures the dispatcher tells apart.

    SendError                any failed delivery: retried with backoff, dead after N tries
    ├── RetryLater           flood control: pause all sending for `retry_after` seconds
    └── Unreachable          the user blocked the bot (403): stop sending to them

The Telegram implementation lives in `bot.sender`; tests use `tests.fakes.sender`.
"""

from __future__ import annotations

from typing import Protocol

Buttons = tuple[tuple[tuple[str, str], ...], ...]


class SendError(Exception):
    """A message was not delivered; `str(err)` is kept as the row's last error."""


class RetryLater(SendError):
    """Flood control asked us to wait before sending anything else."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"flood control: retry after {retry_after:g} s")
        self.retry_after = retry_after


class Unreachable(SendError):
    """The chat will never accept messages again (the user blocked the bot)."""


class MessageSender(Protocol):
    """Sends one HTML message; raises a `SendError` when it was not delivered."""

    async def send(self, chat_id: int, text: str, *, silent: bool, buttons: Buttons) -> None: ...
