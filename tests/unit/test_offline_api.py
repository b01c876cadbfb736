"""The offline Bot API driven by a real python-telegram-bot `Bot` and `Application`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Update
from telegram.error import BadRequest, EndPointNotFound, Forbidden
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    PreCheckoutQueryHandler,
    filters,
)

from bot.offline_api import ApiCall, BotApiError, FakeTelegramState
from bot.offline_request import OfflineRequest
from bot.offline_updates import (
    make_callback_update,
    make_message_update,
    make_pre_checkout_update,
    make_successful_payment_update,
)
from bot.telegram_html import HtmlParseError, parse_html

USER = 42


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


@pytest.fixture
def state() -> FakeTelegramState:
    return FakeTelegramState()


@pytest.fixture
async def bot(state: FakeTelegramState) -> AsyncIterator[telegram.Bot]:
    bot = telegram.Bot(
        token="123:ABC", request=OfflineRequest(state), get_updates_request=OfflineRequest(state)
    )
    async with bot:
        yield bot


@pytest.fixture
async def app(state: FakeTelegramState) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    application = (
        ApplicationBuilder()
        .token("123:ABC")
        .request(OfflineRequest(state))
        .get_updates_request(OfflineRequest(state))
        .build()
    )
    async with application:
        yield application


# -- sending and recording ---------------------------------------------------------------------
async def test_get_me_is_the_tradewind_bot(bot: telegram.Bot, state: FakeTelegramState) -> None:
    assert (bot.id, bot.username, bot.first_name) == (7000000001, "tradewind_bot", "Tradewind")
    assert bot.can_join_groups is True
    assert state.calls[0].method == "getMe"


async def test_send_message_returns_full_message_and_records_call(
    bot: telegram.Bot, state: FakeTelegramState
) -> None:
    seen: list[ApiCall] = []
    state.subscribe(seen.append)

    message = await bot.send_message(USER, "Hello", reply_markup=keyboard("buy", "sell"))

    assert message.message_id == 1
    assert message.chat.id == USER
    assert message.chat.type == "private"
    assert message.from_user is not None
    assert message.from_user.id == bot.id
    assert message.text == "Hello"
    assert message.reply_markup == keyboard("buy", "sell")
    call = state.calls[-1]
    assert call.method == "sendMessage"
    assert call.params["chat_id"] == USER  # JSON-decoded from the wire
    assert call.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"] == "sell"
    assert isinstance(call.result, dict)
    assert call.result["text"] == "Hello"
    assert seen == [call]


async def test_message_ids_count_per_chat(bot: telegram.Bot) -> None:
    ids = [(await bot.send_message(chat, "x")).message_id for chat in (1, 1, 2, 1)]
    assert ids == [1, 2, 1, 3]


async def test_html_is_parsed_into_entities(bot: telegram.Bot) -> None:
    html = '<b>PnL</b> &lt;5% <a href="https://x.io/?a=1&amp;b=2">chart</a> 🚀<i>go</i>'
    message = await bot.send_message(USER, html, parse_mode="HTML")

    assert message.text == "PnL <5% chart 🚀go"
    kinds = [(e.type, e.offset, e.length) for e in message.entities]
    assert kinds == [("bold", 0, 3), ("text_link", 8, 5), ("italic", 16, 2)]  # UTF-16 offsets
    assert message.entities[1].url == "https://x.io/?a=1&b=2"
    assert message.text_html.startswith("<b>PnL</b> &lt;5% <a href=")


async def test_edit_message_text_and_reply_markup(
    bot: telegram.Bot, state: FakeTelegramState
) -> None:
    sent = await bot.send_message(USER, "Price: 1", reply_markup=keyboard("refresh"))

    edited = await bot.edit_message_text(
        "Price: 2", USER, sent.message_id, reply_markup=keyboard("refresh")
    )
    assert isinstance(edited, telegram.Message)
    assert (edited.message_id, edited.text) == (sent.message_id, "Price: 2")
    assert edited.edit_date is not None

    cleared = await bot.edit_message_reply_markup(USER, sent.message_id)
    assert isinstance(cleared, telegram.Message)
    assert cleared.reply_markup is None
    assert state.chat_messages(USER)[0]["text"] == "Price: 2"
    assert [c.method for c in state.calls[-2:]] == ["editMessageText", "editMessageReplyMarkup"]


async def test_edit_without_reply_markup_removes_the_keyboard(bot: telegram.Bot) -> None:
    sent = await bot.send_message(USER, "Confirm?", reply_markup=keyboard("yes"))
    edited = await bot.edit_message_text("Confirm?", USER, sent.message_id)
    assert isinstance(edited, telegram.Message)
    assert edited.reply_markup is None


async def test_unchanged_edit_is_not_modified(bot: telegram.Bot, state: FakeTelegramState) -> None:
    sent = await bot.send_message(
        USER, "<b>same</b>", parse_mode="HTML", reply_markup=keyboard("a")
    )

    with pytest.raises(BadRequest, match=r"(?i)^message is not modified: specified new message"):
        await bot.edit_message_text(
            "<b>same</b>", USER, sent.message_id, parse_mode="HTML", reply_markup=keyboard("a")
        )
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard("a"))
    assert [c.method for c in state.rejected] == ["editMessageText", "editMessageReplyMarkup"]
    assert state.calls[-1].method == "sendMessage"  # rejected calls are not in `calls`


async def test_edit_or_delete_unknown_message(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)^message to edit not found$"):
        await bot.edit_message_text("x", USER, 99)
    with pytest.raises(BadRequest, match=r"(?i)^message to edit not found$"):
        await bot.edit_message_reply_markup(USER, 99, reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match=r"(?i)^message to delete not found$"):
        await bot.delete_message(USER, 99)


async def test_delete_bot_and_user_messages(bot: telegram.Bot, state: FakeTelegramState) -> None:
    update = state.record_incoming(make_message_update(1, USER, "/setkey abc:SECRET"))
    user_message_id = update["message"]["message_id"]
    reply = await bot.send_message(USER, "Key saved")
    assert reply.message_id == user_message_id + 1  # one id sequence per chat

    assert await bot.delete_message(USER, user_message_id) is True
    assert [m["text"] for m in state.chat_messages(USER)] == ["Key saved"]
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, user_message_id)
    state.record_incoming(make_message_update(2, USER, "hi"))
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await bot.edit_message_text("hacked", USER, state.chat_messages(USER)[-1]["message_id"])


async def test_answer_callback_query(bot: telegram.Bot, state: FakeTelegramState) -> None:
    assert await bot.answer_callback_query("cbq-1", text="Done", show_alert=True) is True
    assert state.calls[-1].params == {
        "callback_query_id": "cbq-1",
        "text": "Done",
        "show_alert": True,
    }
    with pytest.raises(BadRequest, match=r"(?i)message_too_long"):
        await bot.answer_callback_query("cbq-2", text="x" * 201)


async def test_send_invoice_in_telegram_stars(bot: telegram.Bot, state: FakeTelegramState) -> None:
    message = await bot.send_invoice(
        chat_id=USER,
        title="Tradewind Pro",
        description="30 days of Pro",
        payload="pro:30:42",
        currency="XTR",
        prices=[LabeledPrice("Pro 30 days", 250)],
        provider_token="",
    )

    assert message.invoice is not None
    assert message.invoice.currency == "XTR"
    assert message.invoice.total_amount == 250
    assert message.invoice.title == "Tradewind Pro"
    assert message.invoice.start_parameter == ""
    call = state.calls[-1]
    assert call.method == "sendInvoice"
    assert call.params["prices"] == [{"label": "Pro 30 days", "amount": 250}]
    assert call.params["payload"] == "pro:30:42"
    assert await bot.answer_pre_checkout_query("pcq-1", ok=True) is True


async def test_commands_menu_and_webhook_methods(bot: telegram.Bot) -> None:
    assert await bot.set_my_commands([("start", "Start"), ("pnl", "Show PnL")]) is True
    assert [c.command for c in await bot.get_my_commands()] == ["start", "pnl"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([("PnL", "upper case is not allowed")])
    assert await bot.delete_my_commands() is True
    assert await bot.get_my_commands() == ()
    assert await bot.set_chat_menu_button() is True
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.send_chat_action(USER, "typing") is True


async def test_get_chat_knows_chats_from_incoming_updates(
    bot: telegram.Bot, state: FakeTelegramState
) -> None:
    state.record_incoming(make_message_update(1, USER, "hi", first_name="Ann", username="ann"))
    chat = await bot.get_chat(USER)
    assert (chat.id, chat.type, chat.first_name, chat.username) == (USER, "private", "Ann", "ann")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat(777)


# -- Telegram's limits -------------------------------------------------------------------------
async def test_text_limits(bot: telegram.Bot, state: FakeTelegramState) -> None:
    assert (await bot.send_message(USER, "x" * 4096)).text == "x" * 4096
    with pytest.raises(BadRequest, match=r"(?i)^message is too long$"):
        await bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)^message text is empty$"):
        await bot.send_message(USER, "   ")
    with pytest.raises(BadRequest, match=r"(?i)^message text is empty$"):
        await bot.send_message(USER, "<b></b>", parse_mode="HTML")
    assert [c.result.description for c in state.rejected] == [  # type: ignore[attr-defined]
        "Bad Request: message is too long",
        "Bad Request: message text is empty",
        "Bad Request: message text is empty",
    ]


@pytest.mark.parametrize("data", ["x" * 65, "é" * 33, ""])
async def test_callback_data_over_64_bytes_is_invalid(bot: telegram.Bot, data: str) -> None:
    ok, bad = ("ok", "ok"), ("b", data)
    markup = InlineKeyboardMarkup(
        [[InlineKeyboardButton(t, callback_data=d) for t, d in (ok, bad)]]
    )
    with pytest.raises(BadRequest, match=r"(?i)^button_data_invalid$"):
        await bot.send_message(USER, "pick", reply_markup=markup)
    assert (await bot.send_message(USER, "pick", reply_markup=keyboard("y" * 64))).text == "pick"


async def test_blocked_user_is_forbidden(bot: telegram.Bot, state: FakeTelegramState) -> None:
    state.blocked.add(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "Your order filled")
    assert state.rejected[-1].result.error_code == 403  # type: ignore[attr-defined]
    assert (await bot.send_message(USER + 1, "others still work")).chat.id == USER + 1


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("price < 5", 'Unsupported start tag "" at byte offset 6'),
        ("AT&T", 'Unescaped "&" at byte offset 2'),
        ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler"'),
    ],
)
async def test_bad_html_cannot_parse_entities(bot: telegram.Bot, html: str, error: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)^can't parse entities: ") as caught:
        await bot.send_message(USER, html, parse_mode="HTML")
    assert error.lower() in str(caught.value).lower()


def test_parse_html_supports_telegrams_subset() -> None:
    html = (
        "<strong>b</strong><em>i</em><ins>u</ins><del>s</del><tg-spoiler>p</tg-spoiler>"
        '<span class="tg-spoiler">q</span><code>c</code><pre><code class="language-py">x=1'
        "</code></pre><blockquote expandable>z</blockquote>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>&#36;&#x41;&quot;'
    )
    text, entities = parse_html(html)
    assert text == 'biuspqcx=1z👍$A"'
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "spoiler",
        "code",
        "pre",
        "expandable_blockquote",
        "custom_emoji",
    ]
    assert entities[7]["language"] == "py"
    assert parse_html("AT&T", strict_entities=False)[0] == "AT&T"  # what Telegram itself does
    with pytest.raises(HtmlParseError, match="Unclosed start tag at byte offset 0"):
        parse_html("<b")


@pytest.mark.parametrize(
    ("html", "error"),
    [  # tdlib's own test vectors: byte offsets count UTF-8 bytes (🏟 is 4)
        ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
        ("🏟 🏟&lt;<abac aba>", 'Unsupported start tag "abac" at byte offset 13'),
        ("🏟 🏟&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
        ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
        ("🏟 🏟&lt;</", "Unexpected end tag at byte offset 13"),
        ("🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"),
        ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
        (
            "🏟 🏟&lt;<i>a</em   >",
            'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"',
        ),
    ],
)
def test_parse_html_error_messages_match_tdlib(html: str, error: str) -> None:
    with pytest.raises(HtmlParseError) as caught:
        parse_html(html)
    assert str(caught.value) == error


def test_parse_html_entities_match_tdlib() -> None:
    text, entities = parse_html("🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>")
    assert text == "🏟 🏟🏟 ><🏟"
    assert entities == [
        {"type": "italic", "offset": 5, "length": 7},
        {"type": "bold", "offset": 9, "length": 3},
    ]
    assert parse_html("<i>a</>")[1] == [{"type": "italic", "offset": 0, "length": 1}]


async def test_unknown_method_is_a_clear_404(bot: telegram.Bot, state: FakeTelegramState) -> None:
    with pytest.raises(EndPointNotFound, match="sendHologram"):  # PTB rewrites 404 messages
        await bot.do_api_request("sendHologram", {"chat_id": USER})
    error = state.rejected[-1].result
    assert isinstance(error, BotApiError)
    assert error.error_code == 404
    assert (
        error.description == "Not Found: method sendHologram not implemented by the offline Bot API"
    )
    status, body = await state.handle("sendHologram", {})
    assert status == 404
    assert json.loads(body)["ok"] is False


# -- incoming updates --------------------------------------------------------------------------
async def test_get_updates_long_poll_returns_when_an_update_arrives(
    bot: telegram.Bot, state: FakeTelegramState
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0)  # let the poll start waiting
    pushed = state.push_update(make_message_update(0, USER, "hello"))

    updates = await asyncio.wait_for(poll, 1)
    assert [u.update_id for u in updates] == [pushed["update_id"]]
    assert updates[0].message is not None
    assert updates[0].message.text == "hello"
    # confirming with offset drops it; an empty poll with timeout=0 returns at once
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()
    assert state.updates.pending_count == 0


async def test_wait_for_call_is_event_driven(bot: telegram.Bot, state: FakeTelegramState) -> None:
    waiter = asyncio.create_task(
        state.wait_for_call("sendMessage", lambda c: "2" in c.params["text"])
    )
    await bot.send_message(USER, "reply 1")
    await bot.send_message(USER, "reply 2")
    assert (await asyncio.wait_for(waiter, 1)).params["text"] == "reply 2"
    assert (await state.wait_for_call("sendMessage")).params["text"] == "reply 1"
    with pytest.raises(TimeoutError, match="no sendMessage call"):
        await state.wait_for_call("sendMessage", timeout=0.01)


async def test_builders_fire_ptb_handlers(
    app: Application[Any, Any, Any, Any, Any, Any], state: FakeTelegramState
) -> None:
    seen: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append(f"start {context.args}")
        await update.effective_message.reply_text("Welcome", reply_markup=keyboard("menu:pnl"))

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        assert query.message is not None
        seen.append(f"button {query.data} on {query.message.message_id}")
        await query.answer()
        await query.edit_message_text("PnL: +3%")

    async def checkout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.pre_checkout_query is not None
        seen.append(f"checkout {update.pre_checkout_query.invoice_payload}")
        await update.pre_checkout_query.answer(ok=True)

    async def paid(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        assert update.message.successful_payment is not None
        payment = update.message.successful_payment
        seen.append(f"paid {payment.total_amount} {payment.currency}")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(button))
    app.add_handler(PreCheckoutQueryHandler(checkout))
    app.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, paid))

    async def feed(data: dict[str, Any]) -> None:
        await app.process_update(Update.de_json(state.record_incoming(data), app.bot))

    await feed(make_message_update(1, USER, "/start ref_7"))
    await feed(make_message_update(2, USER, "/start@tradewind_bot"))
    welcome = state.calls_to("sendMessage")[0].result
    assert isinstance(welcome, dict)
    await feed(make_callback_update(3, USER, welcome, "menu:pnl"))
    await feed(make_pre_checkout_update(4, USER, 250, "pro:30:42"))
    await feed(make_successful_payment_update(5, USER, 250, "pro:30:42"))

    assert seen == [
        "start ['ref_7']",
        "start []",
        f"button menu:pnl on {welcome['message_id']}",
        "checkout pro:30:42",
        "paid 250 XTR",
    ]
    assert [c.method for c in state.calls[-4:]] == [
        "sendMessage",
        "answerCallbackQuery",
        "editMessageText",
        "answerPreCheckoutQuery",
    ]
    assert state.messages[USER][welcome["message_id"]]["text"] == "PnL: +3%"


async def test_application_polls_the_offline_api(
    app: Application[Any, Any, Any, Any, Any, Any], state: FakeTelegramState
) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome to Tradewind")

    app.add_handler(CommandHandler("start", start))
    assert app.updater is not None
    await app.updater.start_polling(timeout=10, drop_pending_updates=True)
    await app.start()
    try:
        state.push_update(make_message_update(0, USER, "/start"))
        reply = await state.wait_for_call("sendMessage", timeout=2)
    finally:
        await asyncio.wait_for(app.updater.stop(), 1)  # the pending long poll is cancelled
        await app.stop()
    assert reply.params == {"chat_id": USER, "text": "Welcome to Tradewind"}
    assert state.calls_to("deleteWebhook")[0].params == {"drop_pending_updates": True}
    assert state.updates.pending_count == 0  # confirmed by PTB's final getUpdates


def test_successful_payment_update_round_trips() -> None:
    data = make_successful_payment_update(
        9, USER, 250, "pro:30:42", telegram_payment_charge_id="c1"
    )
    update = Update.de_json(data, None)
    assert update.message is not None
    assert update.message.successful_payment is not None
    payment = update.message.successful_payment
    assert (payment.telegram_payment_charge_id, payment.provider_payment_charge_id) == ("c1", "")
