"""A message sender that records what it was asked to send and fails on cue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from services.sender import Buttons, SendError, Unreachable


@dataclass(slots=True, frozen=True)
class SentMessage:
    chat_id: int
    text: str
    silent: bool
    buttons: Buttons
    at: float  # monotonic time the send began


class FakeSender:
    """Implements `services.sender.MessageSender`.

    `failures[chat_id]` lists errors to raise on the next sends to that chat, in order;
    chats in `blocked` always answer 403; a send to a chat in `hang` never returns (a crash
    mid-send), and sets `hung`. `attempts` records every call, `sent` the delivered ones.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or asyncio.get_running_loop().time
        self.failures: dict[int, list[SendError]] = {}
        self.blocked: set[int] = set()
        self.hang: set[int] = set()
        self.hung = asyncio.Event()
        self.attempts: list[SentMessage] = []
        self.sent: list[SentMessage] = []
        self._changed = asyncio.Event()

    async def send(self, chat_id: int, text: str, *, silent: bool, buttons: Buttons) -> None:
        message = SentMessage(chat_id, text, silent, buttons, self._clock())
        self.attempts.append(message)
        self._changed.set()
        if chat_id in self.hang:
            self.hung.set()
            await asyncio.Event().wait()
        if chat_id in self.blocked:
            raise Unreachable("Forbidden: bot was blocked by the user")
        pending = self.failures.get(chat_id)
        if pending:
            raise pending.pop(0)
        self.sent.append(message)

    def to(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    async def wait_for(self, done: Callable[[], bool], seconds: float = 5.0) -> None:
        """Wait until `done()` holds after some send (bounded, for tests)."""
        async with asyncio.timeout(seconds):
            while not done():
                self._changed.clear()
                await self._changed.wait()
