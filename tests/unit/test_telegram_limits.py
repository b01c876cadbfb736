"""The plain-text resend of a message Telegram could not parse: what is sent instead."""

from __future__ import annotations

from telegram.error import BadRequest

from bot.telegram_limits import plain_request, plain_text

CANT_PARSE = BadRequest('Can\'t parse entities: unsupported start tag "x" at byte offset 3')


def test_tags_are_dropped_and_entities_turned_back() -> None:
    html = '<b>BTC &lt;22:00&gt;</b> &amp; <a href="https://x.y">more</a> &quot;ok&quot; &#128200;'
    assert plain_text(html) == 'BTC <22:00> & more "ok" 📈'


def test_a_message_or_caption_is_resent_without_a_parse_mode() -> None:
    data = {"chat_id": 1, "text": "<i>hi</i> &amp; bye", "parse_mode": "HTML"}
    assert plain_request("sendMessage", data, CANT_PARSE) == {"chat_id": 1, "text": "hi & bye"}
    photo = {"chat_id": 1, "photo": "p", "caption": "<b>x</b>", "parse_mode": "HTML"}
    assert plain_request("sendPhoto", photo, CANT_PARSE) == {
        "chat_id": 1,
        "photo": "p",
        "caption": "x",
    }
    assert data["parse_mode"] == "HTML"  # the original call is left as it was


def test_other_refusals_and_calls_are_not_resent() -> None:
    data = {"chat_id": 1, "text": "<b>x</b>", "parse_mode": "HTML"}
    assert plain_request("sendMessage", data, BadRequest("Chat not found")) is None
    assert plain_request("answerCallbackQuery", data, CANT_PARSE) is None
    assert plain_request("sendMessage", {"chat_id": 1, "text": "x"}, CANT_PARSE) is None
