"""The event side of the offline Bot API: update builders, the long-poll queue, the call log.

The builders return plain JSON dicts exactly as Telegram would deliver them, so they can be fed
to ``telegram.Update.de_json(data, bot)``, pushed into `UpdateQueue` (served by ``getUpdates``)
or posted to a webhook. Nothing here depends on python-telegram-bot.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_ALLOWED_UPDATES",
    "ApiCall",
    "CallLog",
    "GetUpdatesConflict",
    "UpdateQueue",
    "make_callback_update",
    "make_message_update",
    "make_pre_checkout_update",
    "make_successful_payment_update",
    "update_type",
]

JSONDict = dict[str, Any]
_LOG = logging.getLogger(__name__)

#: What Telegram delivers when ``allowed_updates`` is empty/never set.
DEFAULT_ALLOWED_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)

_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@/])")
_query_ids = itertools.count(1)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _user(user_id: int, first_name: str, username: str | None) -> JSONDict:
    user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username:
        user["username"] = username
    return user


def _chat(chat_id: int, user: JSONDict) -> JSONDict:
    if chat_id == user["id"]:
        chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return chat
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}


def _now(date: int | None) -> int:
    return int(time.time()) if date is None else date


def make_message_update(
    update_id: int,
    user_id: int,
    text: str,
    first_name: str = "Console",
    username: str | None = None,
    chat_id: int | None = None,
    *,
    message_id: int | None = None,
    date: int | None = None,
) -> JSONDict:
    """A text message from a user. A leading ``/cmd`` or ``/cmd@bot`` gets a ``bot_command``
    entity at offset 0, as Telegram adds, so PTB's ``CommandHandler`` matches it.
    ``message_id`` defaults to ``update_id``; `FakeTelegramState.record_incoming` renumbers it
    if that id is already taken in the chat."""
    user = _user(user_id, first_name, username)
    message: JSONDict = {
        "message_id": update_id if message_id is None else message_id,
        "date": _now(date),
        "chat": _chat(user_id if chat_id is None else chat_id, user),
        "from": user,
        "text": text,
    }
    command = _COMMAND.match(text)
    if command:
        length = _utf16_len(command.group())
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return {"update_id": update_id, "message": message}


def make_callback_update(
    update_id: int,
    user_id: int,
    message: JSONDict,
    data: str,
    first_name: str = "Console",
    username: str | None = None,
    *,
    query_id: str | None = None,
) -> JSONDict:
    """A press on an inline button with ``callback_data=data`` under ``message`` (a Message dict,
    e.g. ``ApiCall.result`` of the ``sendMessage`` that carried the keyboard)."""
    chat_id = message.get("chat", {}).get("id", user_id)
    query: JSONDict = {
        "id": query_id or f"{user_id}{next(_query_ids):08d}",
        "from": _user(user_id, first_name, username),
        "message": message,
        "chat_instance": str(abs(int(chat_id)) * 7919 % 10**12),
        "data": data,
    }
    return {"update_id": update_id, "callback_query": query}


def make_pre_checkout_update(
    update_id: int,
    user_id: int,
    total_amount: int,
    invoice_payload: str,
    first_name: str = "Console",
    username: str | None = None,
    *,
    currency: str = "XTR",
    query_id: str | None = None,
) -> JSONDict:
    """The pre-checkout query Telegram sends after the user confirms a (Stars) invoice."""
    query: JSONDict = {
        "id": query_id or f"pcq{user_id}{next(_query_ids):08d}",
        "from": _user(user_id, first_name, username),
        "currency": currency,
        "total_amount": total_amount,
        "invoice_payload": invoice_payload,
    }
    return {"update_id": update_id, "pre_checkout_query": query}


def make_successful_payment_update(
    update_id: int,
    user_id: int,
    total_amount: int,
    invoice_payload: str,
    first_name: str = "Console",
    username: str | None = None,
    *,
    currency: str = "XTR",
    telegram_payment_charge_id: str | None = None,
    provider_payment_charge_id: str = "",
    message_id: int | None = None,
    date: int | None = None,
) -> JSONDict:
    """The service message that confirms a payment (for Stars: currency ``XTR`` and an empty
    ``provider_payment_charge_id``)."""
    user = _user(user_id, first_name, username)
    payment: JSONDict = {
        "currency": currency,
        "total_amount": total_amount,
        "invoice_payload": invoice_payload,
        "telegram_payment_charge_id": telegram_payment_charge_id
        or f"stxOFFLINE{user_id}x{next(_query_ids):08d}",
        "provider_payment_charge_id": provider_payment_charge_id,
    }
    message: JSONDict = {
        "message_id": update_id if message_id is None else message_id,
        "date": _now(date),
        "chat": _chat(user_id, user),
        "from": user,
        "successful_payment": payment,
    }
    return {"update_id": update_id, "message": message}


def update_type(update: JSONDict) -> str:
    """The kind of an update dict (``"message"``, ``"callback_query"`` ...)."""
    return next((key for key in update if key != "update_id"), "")


class GetUpdatesConflict(Exception):
    """Raised in a waiting ``getUpdates`` when a newer ``getUpdates`` request replaced it."""


class UpdateQueue:
    """Telegram's server-side update queue with ``getUpdates`` semantics.

    Updates stay queued until confirmed by a later call with ``offset`` greater than their id.
    Waiting is event-driven (one future per waiting poll). Use it from one event loop thread;
    from other threads schedule `push` with ``loop.call_soon_threadsafe``.
    """

    def __init__(self) -> None:
        self._pending: list[JSONDict] = []
        self._next_id = 1
        self._allowed: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self._waiters: list[asyncio.Future[None]] = []
        self._generation = 0
        self._interrupts = 0

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def push(self, update: JSONDict) -> JSONDict:
        """Enqueue ``update`` after giving it the next ``update_id``; returns it."""
        update["update_id"] = self._next_id
        self._next_id += 1
        self._pending.append(update)
        self._wake()
        return update

    def drop_pending(self) -> None:
        self._pending.clear()

    def interrupt(self) -> None:
        """Make every waiting poll return now (with whatever is pending), e.g. on shutdown."""
        self._interrupts += 1
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def take(
        self, offset: int | None = None, limit: int = 100, allowed: Iterable[str] | None = None
    ) -> list[JSONDict]:
        """Confirm updates below ``offset`` and return up to ``limit`` pending ones, without
        waiting. ``allowed`` is sticky like Telegram's ``allowed_updates``."""
        if allowed is not None:
            self._allowed = frozenset(allowed) or DEFAULT_ALLOWED_UPDATES
        if offset is not None and offset < 0:
            self._pending = self._pending[offset:]
        elif offset:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        self._pending = [u for u in self._pending if update_type(u) in self._allowed]
        return self._pending[: limit if 1 <= limit <= 100 else 100]

    async def get(
        self,
        offset: int | None = None,
        limit: int = 100,
        timeout: float = 0,  # noqa: ASYNC109 - getUpdates' own parameter
        allowed: Iterable[str] | None = None,
    ) -> list[JSONDict]:
        """``getUpdates``: return at once if updates are pending, else wait up to ``timeout``
        seconds for one. A newer `get` supersedes this one (`GetUpdatesConflict`)."""
        self._generation += 1
        self._wake()  # an older poll still waiting is superseded by this one
        generation, interrupts = self._generation, self._interrupts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        allowed_list = None if allowed is None else list(allowed)
        while True:
            updates = self.take(offset, limit, allowed_list)
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or interrupts != self._interrupts:
                return updates
            if generation != self._generation:
                raise GetUpdatesConflict
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if generation != self._generation:
                raise GetUpdatesConflict


@dataclass(slots=True)
class ApiCall:
    """One Bot API call: its ``result``, or for rejected calls the ``BotApiError``."""

    method: str
    params: dict[str, Any]
    result: object


Predicate = Callable[[ApiCall], bool]


class CallLog:
    """Accepted calls in order, with listeners and an event-driven `wait_for_call`."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self._listeners: list[Callable[[ApiCall], None]] = []
        self._waiters: list[tuple[str, Predicate | None, asyncio.Future[ApiCall]]] = []
        self._consumed: set[int] = set()

    def subscribe(self, listener: Callable[[ApiCall], None]) -> Callable[[], None]:
        """Call ``listener(call)`` for every accepted call; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    async def wait_for_call(
        self,
        method: str,
        predicate: Predicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented test-helper signature
    ) -> ApiCall:
        """The earliest ``method`` call (matching ``predicate``) not yet returned by an earlier
        `wait_for_call`, waiting up to ``timeout`` seconds for it to happen."""
        for call in self.calls:
            if id(call) not in self._consumed and self._matches(call, method, predicate):
                self._consumed.add(id(call))
                return call
        future: asyncio.Future[ApiCall] = asyncio.get_running_loop().create_future()
        waiter = (method, predicate, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            recent = ", ".join(call.method for call in self.calls[-10:]) or "none"
            raise TimeoutError(f"no {method} call within {timeout}s (recent: {recent})") from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    @staticmethod
    def _matches(call: ApiCall, method: str, predicate: Predicate | None) -> bool:
        return call.method == method and (predicate is None or predicate(call))

    def _record(self, call: ApiCall) -> None:
        self.calls.append(call)
        for method, predicate, future in list(self._waiters):
            if future.done():
                continue
            try:
                matched = self._matches(call, method, predicate)
            except Exception as exc:  # a broken predicate fails its own waiter only
                future.set_exception(exc)
                continue
            if matched:
                self._consumed.add(id(call))
                future.set_result(call)
                break
        for listener in list(self._listeners):
            try:
                listener(call)
            except Exception:
                _LOG.exception("offline Bot API listener %r failed", listener)
