"""The local console chat: Tradewind without Telegram.

Each line typed (or piped) becomes a real `Update` processed by the same Application that
serves Telegram; the bot's Bot API calls are answered by the offline Bot API and printed as
they happen, including messages that jobs send on their own. Inline keyboards are shown as
numbered buttons; `:N` presses one with a real callback query. An invoice shows a Pay
button: pressing it pays in Stars the way Telegram does, with a pre-checkout query and, if
the bot accepts it, a successful-payment message.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, TextIO

from telegram import Update

from bot.app import CONSOLE_USER_ID, build_application
from bot.offline_api import ApiCall, FakeTelegramState
from bot.offline_request import OfflineRequest
from bot.offline_updates import (
    make_callback_update,
    make_message_update,
    make_pre_checkout_update,
    make_successful_payment_update,
)
from bot.updates import UpdateGuard
from core.config import Settings
from handlers.context import TradewindApp
from services.users import UserProfile

JSONDict = dict[str, Any]
log = logging.getLogger(__name__)

ANSWER_WAIT_S = 5.0  # how long a line waits for its answer before the next one is read
HELP = (
    "Console commands: :N presses button N of the last keyboard (an invoice's Pay button "
    "pays in Stars) · :user ID [NAME] acts as "
    "another user · :whoami · :quit (or end of input) leaves."
)


@dataclass(slots=True)
class Button:
    label: str
    chat_id: int
    message_id: int
    data: str | None
    url: str | None
    invoice: Invoice | None = None


@dataclass(slots=True, frozen=True)
class Invoice:
    """What the Pay button of an invoice pays."""

    payload: str
    currency: str
    amount: int


class ConsolePrinter:
    """Turns the bot's outgoing Bot API calls into lines of text."""

    def __init__(self, out: TextIO, state: FakeTelegramState) -> None:
        self._out = out
        self._state = state
        self.user_id = CONSOLE_USER_ID
        self.buttons: list[Button] = []
        self.gone = False  # the output was closed; nothing more to show

    def on_call(self, call: ApiCall) -> None:
        result = call.result
        if isinstance(result, Exception):
            self._say(f"[Bot API refused {call.method}: {result}]")
            return
        if call.method in ("sendMessage", "sendInvoice", "sendPhoto") and isinstance(result, dict):
            self._message(result, call.params, edited=False)
        elif call.method.startswith("editMessage") and isinstance(result, dict):
            self._message(result, call.params, edited=True)
        elif call.method in ("deleteMessage", "deleteMessages"):
            self._say("(a message was deleted)")
        elif call.method == "answerCallbackQuery" and call.params.get("text"):
            self._say(f"ⓘ {call.params['text']}")

    def _message(self, message: JSONDict, params: JSONDict, edited: bool) -> None:
        chat_id = message.get("chat", {}).get("id")
        prefix = "bot" if chat_id == self.user_id else f"bot → {chat_id}"
        if edited:
            prefix += " (edited)"
        if "invoice" in message:
            invoice = message["invoice"]
            body = (
                f"Invoice: {invoice.get('title')} — {invoice.get('total_amount')} "
                f"{invoice.get('currency')}\n{invoice.get('description', '')}"
            )
        elif "photo" in message:  # shown as the file it was saved to, and its caption
            (photo,) = message["photo"]
            body = f"[photo {photo['file_id']}, {photo['file_size']:,} bytes]\n"
            body += str(message.get("caption", ""))
        else:
            body = str(message.get("text", ""))
        lines = body.split("\n")
        self._say(f"{prefix}> {lines[0]}", *(f"     {line}" for line in lines[1:]))
        if "invoice" in message and chat_id == self.user_id:
            self._pay_button(message, params)
        else:
            self._keyboards(message, params, chat_id)

    def _pay_button(self, message: JSONDict, params: JSONDict) -> None:
        """Telegram shows a Pay button under every invoice; so does the console."""
        invoice = message["invoice"]
        amount, currency = int(invoice.get("total_amount", 0)), str(invoice.get("currency"))
        pay = Invoice(str(params.get("payload", "")), currency, amount)
        chat_id = message["chat"]["id"]
        self.buttons = [
            Button(f"Pay {amount} {currency}", chat_id, message["message_id"], None, None, pay)
        ]
        self._say(f"     [1] Pay {amount} {currency}")

    def _keyboards(self, message: JSONDict, params: JSONDict, chat_id: int | None) -> None:
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "keyboard" in markup:
            labels = [_label(b) for row in markup["keyboard"] for b in row]
            self._say("     ⌨ " + " · ".join(labels))
        inline = message.get("reply_markup", {}).get("inline_keyboard")
        if not inline or chat_id != self.user_id:
            return
        message_id = message["message_id"]
        self.buttons = [
            Button(_label(b), chat_id, message_id, b.get("callback_data"), b.get("url"))
            for row in inline
            for b in row
        ]
        shown, number = [], 1
        for row in inline:
            cells = []
            for _ in row:
                button = self.buttons[number - 1]
                link = f" ({button.url})" if button.url else ""
                cells.append(f"[{number}] {button.label}{link}")
                number += 1
            shown.append("   ".join(cells))
        self._say(*(f"     {line}" for line in shown))

    def _say(self, *lines: str) -> None:
        if self.gone:
            return
        try:
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()
        except (BrokenPipeError, ValueError):  # the reader went away (`| head`): stop quietly
            self.gone = True
            # Point the descriptor at /dev/null so the interpreter's final flush stays quiet.
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._out.fileno())


def _label(button: object) -> str:
    return str(button.get("text", "?")) if isinstance(button, dict) else str(button)


class ConsoleChat:
    """Feeds console lines to the Application as updates from the acting user."""

    def __init__(
        self, app: TradewindApp, state: FakeTelegramState, out: TextIO, first_update_id: int = 1
    ) -> None:
        self.app = app
        self.state = state
        self.printer = ConsolePrinter(out, state)
        self.first_name = "Console"
        self._update_ids = itertools.count(first_update_id)
        self._running: set[asyncio.Task[None]] = set()
        state.subscribe(self.printer.on_call)

    async def handle_line(self, line: str) -> bool:
        """Process one line; return False when the user asked to leave."""
        text = line.strip()
        if not text:
            return True
        if text.startswith(":"):
            return await self._console_command(text[1:].strip())
        update = make_message_update(
            next(self._update_ids), self.printer.user_id, text, first_name=self.first_name
        )
        await self._process(self.state.record_incoming(update))
        return True

    async def _console_command(self, command: str) -> bool:
        word, _, rest = command.partition(" ")
        if word in ("q", "quit", "exit"):
            return False
        if word.isdigit():
            await self._press(int(word))
        elif word == "user":
            self._switch_user(rest)
        elif word == "whoami":
            self.printer._say(f"(acting as user {self.printer.user_id}, {self.first_name})")
        else:
            self.printer._say(HELP)
        return True

    async def _press(self, number: int) -> None:
        buttons = self.printer.buttons
        if not 1 <= number <= len(buttons):
            self.printer._say(f"(no button {number}; the last keyboard has {len(buttons)})")
            return
        button = buttons[number - 1]
        if button.invoice is not None:
            await self._pay(button.invoice)
            return
        if button.data is None:
            self.printer._say(f"(button {number} opens {button.url}; nothing to press here)")
            return
        message = self.state.messages.get(button.chat_id, {}).get(button.message_id)
        if message is None:
            self.printer._say("(that message is gone)")
            return
        update = make_callback_update(
            next(self._update_ids),
            self.printer.user_id,
            message,
            button.data,
            first_name=self.first_name,
        )
        await self._process(update)

    async def _pay(self, invoice: Invoice) -> None:
        """Pay an invoice: pre-checkout query first, the payment only if the bot said ok."""
        user_id, name = self.printer.user_id, self.first_name
        query = make_pre_checkout_update(
            next(self._update_ids),
            user_id,
            invoice.amount,
            invoice.payload,
            first_name=name,
            currency=invoice.currency,
        )
        query_id = query["pre_checkout_query"]["id"]
        await self._process(query)
        answer = next(
            (
                call.params
                for call in reversed(self.state.calls)
                if call.method == "answerPreCheckoutQuery"
                and call.params.get("pre_checkout_query_id") == query_id
            ),
            None,
        )
        if answer is None or answer.get("ok") is not True:
            reason = answer.get("error_message") if answer else "the bot did not answer"
            self.printer._say(f"(payment declined: {reason})")
            return
        self.printer._say(f"(you paid {invoice.amount} {invoice.currency})")
        paid = make_successful_payment_update(
            next(self._update_ids),
            user_id,
            invoice.amount,
            invoice.payload,
            first_name=name,
            currency=invoice.currency,
        )
        await self._process(self.state.record_incoming(paid))

    def _switch_user(self, rest: str) -> None:
        user_id, _, name = rest.partition(" ")
        if not user_id.isdigit() or int(user_id) <= 0:
            self.printer._say("(usage: :user ID [NAME], e.g. :user 42 Alice)")
            return
        self.printer.user_id = int(user_id)
        self.first_name = name.strip() or f"User{user_id}"
        self.printer.buttons = []
        self.printer._say(f"(now acting as user {user_id}, {self.first_name})")

    async def _process(self, data: JSONDict) -> None:
        """Hand the update over as Telegram's updates are, each on its own; wait for its
        answer up to `ANSWER_WAIT_S`, so lines keep their order, but a handler that runs
        on (a /backtest) never holds up the next line (its Cancel button included)."""
        task = asyncio.ensure_future(self.app.process_update(Update.de_json(data, self.app.bot)))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        await asyncio.wait({task}, timeout=ANSWER_WAIT_S)
        if task.done():
            task.result()

    async def finish(self) -> None:
        """Wait for the updates still being handled (the input ended before they did)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


async def run_console(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    """Run the console chat until end of input or :quit."""
    state = FakeTelegramState()
    guard = UpdateGuard()
    app = build_application(
        settings,
        request=OfflineRequest(state),
        get_updates_request=OfflineRequest(state),
        update_guard=guard,
    )
    interactive = stdin.isatty()
    lines = _line_reader(stdin)
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        # The console's update ids go on from the last session's: they are checked like
        # Telegram's, and an id handled before would be dropped as a redelivery.
        chat = ConsoleChat(app, state, stdout, guard.latest + 1)
        await app.start()
        subscribed = await subscribe_newcomer(app)
        if interactive:
            signals = (
                " Scanner signals are on for you (/unsubscribe stops them)." if subscribed else ""
            )
            stdout.write(
                f"Tradewind console — database {settings.db_path}, logs in "
                f"{settings.db_path.parent / 'tradewind.log'}.\nType /start.{signals} {HELP}\n"
            )
        while True:
            if interactive:
                stdout.write("you> ")
                stdout.flush()
            line = await lines.get()
            if line is None:
                await chat.finish()  # piped input: what it asked for is answered in full
                break
            if not interactive and line.strip():
                chat.printer._say(f"you> {line.strip()}")
            if not await chat.handle_line(line) or chat.printer.gone:
                break
    finally:
        if app.running:
            await app.stop()
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
    return 0


async def subscribe_newcomer(app: TradewindApp) -> bool:
    """On a fresh database, subscribe the console user to the scanner's signals.

    The console is where a newcomer sees what Tradewind does, signals included; a console
    user who already exists keeps their own choice (an /unsubscribe stays in force).
    """
    services = app.bot_data.services
    if services is None or await services.users.get(CONSOLE_USER_ID) is not None:
        return False
    await services.users.ensure(UserProfile(CONSOLE_USER_ID, CONSOLE_USER_ID, "Console"))
    await services.signals.subscribe(CONSOLE_USER_ID)
    return True


def _line_reader(stdin: TextIO) -> asyncio.Queue[str | None]:
    """Read stdin on a daemon thread so Ctrl-C never waits for a blocked read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(line: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        except RuntimeError:  # the loop has closed: the console is gone
            return False
        return True

    def pump() -> None:
        try:
            for line in stdin:
                if not deliver(line):
                    return
        except (OSError, ValueError) as exc:  # stdin closed under us: end of input
            log.debug("console input ended: %s", exc)
        deliver(None)

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    return queue
