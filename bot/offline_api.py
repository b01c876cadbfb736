"""An offline Telegram Bot API: the console chat when no bot token is set, and the tests' fake.

`FakeTelegramState` answers Bot API methods with the JSON ``result`` Telegram would return and
enforces Telegram's limits (text length, ``callback_data`` size, HTML entities, blocked users,
optional flood control), so bugs show up offline. `bot.offline_request.OfflineRequest` plugs
it into python-telegram-bot as a ``BaseRequest`` without any network;
``tests/botapi_server.py`` serves the same state over HTTP.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bot.offline_faults import REFUSALS, ApiFaults, ConnectionLost, FaultKind
from bot.offline_updates import ApiCall, CallLog, GetUpdatesConflict, UpdateQueue
from bot.telegram_html import TelegramBadRequest, check_commands, check_reply_markup, check_text

__all__ = ["ApiCall", "BotApiError", "FakeTelegramState", "FloodGate"]

JSONDict = dict[str, Any]

BOT_USER: JSONDict = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Tradewind",
    "username": "tradewind_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Parameters that are plain strings on the wire; everything else arrives JSON-encoded.
_STRING_PARAMS = _words(
    "text caption parse_mode callback_query_id pre_checkout_query_id shipping_query_id "
    "inline_message_id url title description payload provider_token provider_data currency "
    "start_parameter error_message language_code action business_connection_id "
    "message_effect_id secret_token ip_address emoji name short_description photo_url"
)
_MESSAGE_METHODS = _words(
    "sendMessage sendInvoice sendPhoto sendDocument sendVideo sendAudio sendVoice sendAnimation "
    "sendSticker sendLocation sendContact sendPoll sendDice sendMediaGroup copyMessage "
    "forwardMessage"
)


class BotApiError(Exception):
    """A Bot API error response: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.error_code}
        body["description"] = self.description
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {description}")


def _raise(kind: FaultKind, retry_after: int) -> None:
    """Answer an armed fault as Telegram would (`ConnectionLost` for a broken connection)."""
    if kind is FaultKind.RETRY_AFTER:
        raise BotApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
    if kind in REFUSALS:
        raise BotApiError(*REFUSALS[kind])
    raise ConnectionLost("connection lost before the request arrived")


def normalize_params(raw: Mapping[str, object]) -> dict[str, Any]:
    """Decode wire parameters: JSON-encoded values (``reply_markup``, ``chat_id``, ``prices``,
    numbers, booleans) become Python values; known string parameters stay as sent."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and key not in _STRING_PARAMS:
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        params[key] = value
    return params


class FloodGate(Protocol):
    """Flood control hook (see ``tests.botapi_server.FloodLimiter``): ``check`` counts one
    sent message to ``chat_key`` or raises a 429 `BotApiError`; ``paid`` is a message sent
    with ``allow_paid_broadcast`` (a higher overall limit)."""

    def check(self, chat_key: str, paid: bool = False) -> None: ...


class FakeTelegramState(CallLog):
    """Chats, messages and the update queue of a fake Telegram, answering Bot API methods.

    ``calls`` holds every accepted call in order (``getUpdates`` polls excepted), ``rejected``
    the refused ones with their `BotApiError`; add chat ids to ``blocked`` to get ``403``;
    ``faults`` (`bot.offline_faults.ApiFaults`) arms 429s, 403s, parse errors and broken
    connections for the next matching calls.
    Unknown chats are created on first use (positive ids are private chats).
    """

    def __init__(
        self,
        *,
        bot_user: JSONDict | None = None,
        clock: Callable[[], float] = time.time,
        flood_limiter: FloodGate | None = None,
        strict_html: bool = True,
    ) -> None:
        self.bot_user: JSONDict = dict(bot_user or BOT_USER)
        self.clock = clock
        self.flood_limiter = flood_limiter
        self.strict_html = strict_html
        super().__init__()
        self.rejected: list[ApiCall] = []
        self.blocked: set[int] = set()
        self.faults = ApiFaults()
        self.chats: dict[int, JSONDict] = {}
        self.messages: dict[int, dict[int, JSONDict]] = {}
        self.updates = UpdateQueue()
        self.commands: dict[str, list[JSONDict]] = {}
        self.menu_buttons: dict[int | None, JSONDict] = {}
        self.webhook_url = ""
        self._last_ids: dict[int, int] = {}
        self._handlers: dict[str, tuple[str, Callable[[dict[str, Any]], object]]] = {
            name.removeprefix("_api_").lower(): (name.removeprefix("_api_"), getattr(self, name))
            for name in dir(self)
            if name.startswith("_api_")
        }

    def chat_messages(self, chat_id: int) -> list[JSONDict]:
        """Messages currently in a chat (both directions), oldest first."""
        return list(self.messages.get(chat_id, {}).values())

    # -- incoming updates ----------------------------------------------------------------------
    def record_incoming(self, update: JSONDict) -> JSONDict:
        """Remember the chat and message of an incoming update so the bot can reply, edit or
        delete it; renumbers ``message_id`` if the id is already taken in that chat."""
        message = update.get("message") or update.get("edited_message")
        if not isinstance(message, dict):
            return update
        chat = message["chat"]
        self.chats[chat["id"]] = {**self.chats.get(chat["id"], {}), **chat}
        chat_messages = self.messages.setdefault(chat["id"], {})
        if "edited_message" in update and message["message_id"] in chat_messages:
            chat_messages[message["message_id"]] = copy.deepcopy(message)
            return update
        if message["message_id"] in chat_messages or message["message_id"] <= 0:
            message["message_id"] = self._last_ids.get(chat["id"], 0) + 1
        last = max(self._last_ids.get(chat["id"], 0), message["message_id"])
        self._last_ids[chat["id"]] = last
        chat_messages[message["message_id"]] = copy.deepcopy(message)
        return update

    def push_update(self, update: JSONDict) -> JSONDict:
        """Queue an incoming update for ``getUpdates`` (assigns ``update_id``)."""
        return self.updates.push(self.record_incoming(update))

    # -- dispatch ------------------------------------------------------------------------------
    def call(self, method: str, raw_params: Mapping[str, object]) -> object:
        """Run one Bot API method (not ``getUpdates``); returns ``result`` or raises
        `BotApiError`. The call is recorded either way."""
        params = normalize_params(raw_params)
        name, handler = self._handlers.get(method.lower(), (method, None))
        try:
            if handler is None:
                raise BotApiError(
                    404, f"Not Found: method {method} not implemented by the offline Bot API"
                )
            fault = self.faults.take(name, params)
            if fault is not None and fault.kind is not FaultKind.ANSWER_LOST:
                _raise(fault.kind, fault.retry_after)
            chat_id = params.get("chat_id")
            if isinstance(chat_id, int) and chat_id in self.blocked:
                raise BotApiError(403, "Forbidden: bot was blocked by the user")
            if self.flood_limiter is not None and name in _MESSAGE_METHODS:
                self.flood_limiter.check(
                    str(chat_id), paid=bool(params.get("allow_paid_broadcast"))
                )
            result = handler(params)
        except TelegramBadRequest as exc:
            error = _bad(str(exc))
            self.rejected.append(ApiCall(name, params, error))
            raise error from None
        except BotApiError as exc:
            self.rejected.append(ApiCall(name, params, exc))
            raise
        self._record(ApiCall(name, params, result))
        if fault is not None:  # ANSWER_LOST: done, but the answer never reaches the bot
            raise ConnectionLost(f"connection lost after {name}")
        return result

    async def handle(self, method: str, raw_params: Mapping[str, object]) -> tuple[int, bytes]:
        """Answer one HTTP-level request: ``(status, JSON body)``; ``getUpdates`` long-polls."""
        try:
            if method.lower() == "getupdates":
                result: object = await self._get_updates(normalize_params(raw_params))
            else:
                result = self.call(method, raw_params)
        except BotApiError as exc:
            return exc.error_code, json.dumps(exc.to_json()).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()

    async def _get_updates(self, params: dict[str, Any]) -> list[JSONDict]:
        if self.webhook_url:
            raise BotApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        try:
            return await self.updates.get(
                offset=params.get("offset"),
                limit=int(params.get("limit", 100)),
                timeout=float(params.get("timeout", 0)),
                allowed=params.get("allowed_updates"),
            )
        except GetUpdatesConflict:
            raise BotApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            ) from None

    # -- messages ------------------------------------------------------------------------------
    def _chat(self, params: Mapping[str, Any]) -> JSONDict:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise _bad("chat_id is empty")
        if not isinstance(chat_id, int):
            raise _bad("chat not found")
        if chat_id not in self.chats:
            kind = "private" if chat_id > 0 else "supergroup"
            self.chats[chat_id] = {"id": chat_id, "type": kind}
        return dict(self.chats[chat_id])

    def _find(self, params: Mapping[str, Any], action: str) -> JSONDict:
        chat = self._chat(params)
        message = self.messages.get(chat["id"], {}).get(params.get("message_id", 0))
        if message is None:
            raise _bad(f"message to {action} not found")
        return message

    def _text(self, params: Mapping[str, Any]) -> tuple[str, list[JSONDict]]:
        text, mode, entities = (params.get(k) for k in ("text", "parse_mode", "entities"))
        return check_text(text, mode, entities, strict_html=self.strict_html)

    def _new_message(self, params: Mapping[str, Any], **content: Any) -> JSONDict:
        chat = self._chat(params)
        message_id = self._last_ids.get(chat["id"], 0) + 1
        self._last_ids[chat["id"]] = message_id
        message: JSONDict = {
            "message_id": message_id,
            "date": int(self.clock()),
            "chat": chat,
            "from": {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
        }
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id") if isinstance(reply, dict) else None
        reply_to = reply_to or params.get("reply_to_message_id")
        original = self.messages.get(chat["id"], {}).get(reply_to or 0)
        if original is not None:
            message["reply_to_message"] = {
                k: v for k, v in original.items() if k != "reply_to_message"
            }
        markup = content.pop("reply_markup", None)
        message.update({key: value for key, value in content.items() if value})
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes only inline keyboards
        self.messages.setdefault(chat["id"], {})[message_id] = message
        return copy.deepcopy(message)

    def _edit(
        self,
        message: JSONDict,
        text: str | None,
        entities: list[JSONDict] | None,
        markup: JSONDict | None,
    ) -> JSONDict:
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise _bad("message can't be edited")
        if text is not None and "text" not in message:
            raise _bad("there is no text in the message to edit")
        old_markup = message.get("reply_markup")
        new_markup = markup if markup and "inline_keyboard" in markup else None
        same_text = text is None or (
            text == message.get("text") and entities == message.get("entities", [])
        )
        if same_text and new_markup == old_markup:
            raise BotApiError(400, NOT_MODIFIED)
        if text is not None:
            message["text"] = text
            message.pop("entities", None)
            if entities:
                message["entities"] = entities
        message.pop("reply_markup", None)
        if new_markup is not None:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(self.clock())
        return copy.deepcopy(message)

    # -- Bot API methods (looked up case-insensitively by name) --------------------------------
    def _api_getMe(self, params: dict[str, Any]) -> JSONDict:
        return dict(self.bot_user)

    def _api_sendMessage(self, params: dict[str, Any]) -> JSONDict:
        text, entities = self._text(params)
        markup = check_reply_markup(params.get("reply_markup"))
        return self._new_message(params, text=text, entities=entities, reply_markup=markup)

    def _api_sendPhoto(self, params: dict[str, Any]) -> JSONDict:
        """A photo is kept as the file the upload was saved to (see `OfflineRequest`)."""
        path = params.get("photo")
        if not isinstance(path, str) or not path:
            raise _bad("there is no photo in the request")
        caption, entities = check_text(
            params.get("caption") or " ", params.get("parse_mode"), params.get("caption_entities"),
            strict_html=self.strict_html,
        )  # fmt: skip
        size = os.path.getsize(path) if os.path.exists(path) else 0
        photo = [{"file_id": path, "file_unique_id": path, "width": 0, "height": 0,
                  "file_size": size}]  # fmt: skip
        markup = check_reply_markup(params.get("reply_markup"))
        return self._new_message(
            params, photo=photo, caption=caption.strip(), caption_entities=entities,
            reply_markup=markup,
        )  # fmt: skip

    def _api_editMessageText(self, params: dict[str, Any]) -> object:
        text, entities = self._text(params)
        markup = check_reply_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        return self._edit(self._find(params, "edit"), text, entities, markup)

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> object:
        markup = check_reply_markup(params.get("reply_markup"))
        if params.get("inline_message_id"):
            return True
        return self._edit(self._find(params, "edit"), None, None, markup)

    def _api_deleteMessage(self, params: dict[str, Any]) -> bool:
        message = self._find(params, "delete")
        del self.messages[message["chat"]["id"]][message["message_id"]]
        return True

    def _api_deleteMessages(self, params: dict[str, Any]) -> bool:
        chat_messages = self.messages.get(self._chat(params)["id"], {})
        for message_id in params.get("message_ids") or []:
            chat_messages.pop(message_id, None)
        return True

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise _bad("callback_query_id is empty")
        if len(str(params.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        return True

    def _api_sendInvoice(self, params: dict[str, Any]) -> JSONDict:
        for required in ("title", "description", "payload", "currency", "prices"):
            if not params.get(required):
                raise _bad(f"{required} is empty")
        prices = params["prices"]
        if not isinstance(prices, list) or not all(isinstance(p, dict) for p in prices):
            raise _bad("can't parse prices JSON object")
        if params["currency"] == "XTR" and len(prices) != 1:
            raise _bad("STARS_INVOICE_INVALID")
        invoice = {
            "title": params["title"],
            "description": params["description"],
            "start_parameter": str(params.get("start_parameter") or ""),
            "currency": params["currency"],
            "total_amount": sum(int(price.get("amount", 0)) for price in prices),
        }
        markup = check_reply_markup(params.get("reply_markup"))
        return self._new_message(params, invoice=invoice, reply_markup=markup)

    def _api_answerPreCheckoutQuery(self, params: dict[str, Any]) -> bool:
        if params.get("ok") is False and not params.get("error_message"):
            raise _bad("error_message is empty")
        return True

    def _api_sendChatAction(self, params: dict[str, Any]) -> bool:
        self._chat(params)
        return True

    def _api_getChat(self, params: dict[str, Any]) -> JSONDict:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int) or chat_id not in self.chats:
            raise _bad("chat not found")
        gifts = dict.fromkeys(
            ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription"), True
        )
        gifts["gifts_from_channels"] = True
        extra = {"accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}
        return {**self.chats[chat_id], **extra}

    def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = check_commands(params.get("commands"))
        self.commands[self._commands_key(params)] = commands
        return True

    def _api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _api_getMyCommands(self, params: dict[str, Any]) -> list[JSONDict]:
        return list(self.commands.get(self._commands_key(params), []))

    @staticmethod
    def _commands_key(params: Mapping[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        return f"{json.dumps(scope, sort_keys=True)}|{params.get('language_code') or ''}"

    def _api_setChatMenuButton(self, params: dict[str, Any]) -> bool:
        self.menu_buttons[params.get("chat_id")] = params.get("menu_button") or {"type": "default"}
        return True

    def _api_getChatMenuButton(self, params: dict[str, Any]) -> JSONDict:
        return self.menu_buttons.get(params.get("chat_id"), {"type": "commands"})

    def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = str(params.get("url") or "")
        if params.get("drop_pending_updates"):
            self.updates.drop_pending()
        return True

    def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return self._api_setWebhook({"drop_pending_updates": params.get("drop_pending_updates")})

    def _api_getWebhookInfo(self, params: dict[str, Any]) -> JSONDict:
        info = {"url": self.webhook_url, "has_custom_certificate": False}
        return {**info, "pending_update_count": self.updates.pending_count}

    def _api_close(self, params: dict[str, Any]) -> bool:
        return True

    _api_logOut = _api_close
