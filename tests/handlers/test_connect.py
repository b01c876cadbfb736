"""/connect and /keys through the real Application: paper, the local Bybit server, bad paths."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bot.offline_api import ApiCall, BotApiError
from bot.offline_updates import make_message_update
from core.exchange.credentials import ApiCredentials
from db.repositories.credentials import CredentialRepository
from handlers import connect as connect_module
from handlers.connect import Draft
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
OTHER = 43
KEY, SECRET = "demo-key-a1b2", "demo-secret-9f8e"
_update_ids = itertools.count(100_000)


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=5, seed=4) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        yield running


@pytest.fixture
async def bot(tmp_path: Path, server: ExchangeServer) -> AsyncIterator[BotHarness]:
    urls = {"bybit": server.base_url, "okx": "http://127.0.0.1:9"}
    async with running_bot(tmp_path, exchange_urls=urls) as harness:
        yield harness


async def send_tracked(
    bot: BotHarness,
    user_id: int,
    text: str,
    *,
    vanish: bool = False,
    chat_id: int | None = None,
    photo: bool = False,
) -> tuple[int, list[ApiCall]]:
    """Send a text (or a photo captioned with it) and return its message id with the calls it
    caused; `vanish` deletes the message from the fake Telegram first, so the bot's
    deleteMessage is refused."""
    raw = make_message_update(next(_update_ids), user_id, text, chat_id=chat_id)
    if photo:
        picture = {"file_id": "ph1", "file_unique_id": "u1", "width": 90, "height": 90}
        raw["message"]["photo"] = [picture]
        raw["message"]["caption"] = raw["message"].pop("text")
    update = bot.state.record_incoming(raw)
    message_id = update["message"]["message_id"]
    if vanish:
        del bot.state.messages[update["message"]["chat"]["id"]][message_id]
    before = len(bot.state.calls)
    await bot.app.process_update(Update.de_json(update, bot.app.bot))
    return message_id, bot.state.calls[before:]


def last_message(calls: list[ApiCall]) -> dict[str, Any]:
    message = calls[-1].result
    assert isinstance(message, dict)
    return message


def buttons(message: dict[str, Any]) -> dict[str, str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def answers(calls: list[ApiCall]) -> list[str]:
    return [str(c.params.get("text", "")) for c in calls if c.method == "answerCallbackQuery"]


def deleted(calls: list[ApiCall]) -> list[int]:
    return [c.params["message_id"] for c in calls if c.method == "deleteMessage"]


def drafts(bot: BotHarness, user_id: int) -> list[Draft]:
    data = bot.app.user_data.get(user_id, {})
    return [value for value in data.values() if isinstance(value, Draft)]


async def choose(bot: BotHarness, exchange: str, kind: str | None = None) -> dict[str, Any]:
    """/connect and press the exchange (and account type) buttons; the prompt message."""
    prompt = last_message(await bot.send(TRADER, "/connect"))
    labels = buttons(prompt)
    assert list(labels) == ["Paper", "Bybit", "Binance", "OKX", "Cancel"]
    prompt = last_message(await bot.press(TRADER, prompt, f"connect:ex:{exchange}"))
    if kind is not None:
        assert f"connect:type:{kind}" in buttons(prompt).values()
        prompt = last_message(await bot.press(TRADER, prompt, f"connect:type:{kind}"))
    return prompt


async def test_paper_connects_in_one_tap(bot: BotHarness) -> None:
    prompt = last_message(await bot.send(TRADER, "/connect"))
    calls = await bot.press(TRADER, prompt, "connect:ex:paper")
    (reply,) = texts(calls)
    assert reply.startswith("Connected Paper — balance 10,000 USDT.")
    (account,) = await bot.services.accounts.accounts(TRADER)
    assert account.ref.exchange == "paper" and account.active
    assert drafts(bot, TRADER) == []


async def test_bybit_demo_connects_and_deletes_the_key_messages(bot: BotHarness) -> None:
    prompt = await choose(bot, "bybit", "demo")
    assert prompt["text"].startswith("Bybit (demo): send the API key.")
    assert "never withdrawals" in prompt["text"]
    key_id, calls = await send_tracked(bot, TRADER, KEY)
    assert deleted(calls) == [key_id]
    assert texts(calls) == ["Now send the API secret."]
    secret_id, calls = await send_tracked(bot, TRADER, SECRET)
    assert deleted(calls) == [secret_id]
    (reply,) = texts(calls)
    assert reply.startswith("Connected Bybit (demo) — balance 10,000 USDT.")
    chat = bot.state.chat_messages(TRADER)
    assert not any(KEY in str(m.get("text")) or SECRET in str(m.get("text")) for m in chat)
    (account,) = await bot.services.accounts.accounts(TRADER)
    assert (account.ref.label, account.key_hint, account.active) == ("Bybit (demo)", "a1b2", True)
    (stored,) = await CredentialRepository(bot.store).for_user(TRADER)
    assert KEY not in stored.api_key_enc and SECRET not in stored.api_secret_enc
    assert drafts(bot, TRADER) == []


async def test_wrong_secret_is_refused_and_nothing_is_stored(bot: BotHarness) -> None:
    await choose(bot, "bybit", "demo")
    await send_tracked(bot, TRADER, KEY)
    secret_id, calls = await send_tracked(bot, TRADER, "not-the-secret")
    assert deleted(calls) == [secret_id]
    (reply,) = texts(calls)
    assert reply.startswith("Bybit refused the keys. Check the key, secret")
    assert reply.endswith("Nothing was stored. Send /connect to try again.")
    assert KEY not in reply  # Bybit's own error text echoes the key; it is not passed on
    assert await bot.services.accounts.accounts(TRADER) == []
    assert drafts(bot, TRADER) == []
    (after,) = texts(await bot.send(TRADER, SECRET))  # the conversation has ended
    assert after.startswith("Pick a command")


async def test_failed_deletion_warns_to_revoke_the_key(bot: BotHarness) -> None:
    await choose(bot, "bybit", "demo")
    _, calls = await send_tracked(bot, TRADER, KEY, vanish=True)
    (refused,) = [c for c in bot.state.rejected if c.method == "deleteMessage"]
    assert isinstance(refused.result, BotApiError)
    (reply,) = texts(calls)
    assert "could not delete your message with the API key" in reply
    assert "revoke this key on Bybit" in reply and reply.endswith("Now send the API secret.")
    _, calls = await send_tracked(bot, TRADER, SECRET)
    assert texts(calls)[0].startswith("Connected Bybit (demo)")


async def test_key_with_spaces_is_deleted_and_asked_again(bot: BotHarness) -> None:
    await choose(bot, "bybit", "demo")
    message_id, calls = await send_tracked(bot, TRADER, f"{KEY} {SECRET}")
    assert deleted(calls) == [message_id]
    assert texts(calls) == ["Send only the API key: one word, no spaces."]
    _, calls = await send_tracked(bot, TRADER, KEY)
    assert texts(calls) == ["Now send the API secret."]


async def test_a_photo_instead_of_the_key_is_deleted_and_refused(bot: BotHarness) -> None:
    await choose(bot, "bybit", "demo")
    message_id, calls = await send_tracked(bot, TRADER, KEY, photo=True)
    assert deleted(calls) == [message_id]
    assert texts(calls) == ["Please send it as a plain text message, or /cancel."]
    _, calls = await send_tracked(bot, TRADER, KEY)
    assert texts(calls) == ["Now send the API secret."]


async def test_connect_in_a_group_is_refused(bot: BotHarness) -> None:
    _, calls = await send_tracked(bot, TRADER, "/connect", chat_id=-100123)
    assert texts(calls) == ["For your keys' safety, /connect works only in a private chat."]
    _, calls = await send_tracked(bot, TRADER, KEY, chat_id=-100123)
    assert deleted(calls) == []  # no conversation was started there


async def test_connect_again_mid_way_starts_over(bot: BotHarness) -> None:
    await choose(bot, "bybit", "demo")
    await send_tracked(bot, TRADER, KEY)
    await bot.send(TRADER, "/connect")
    assert [(d.exchange, d.api_key) for d in drafts(bot, TRADER)] == [("", "")]
    _, calls = await send_tracked(bot, TRADER, SECRET)
    assert deleted(calls) == [] and texts(calls)[0].startswith("Pick a command")


async def test_cancel_mid_way_forgets_the_key(bot: BotHarness) -> None:
    await choose(bot, "bybit", "demo")
    await send_tracked(bot, TRADER, KEY)
    assert [d.api_key for d in drafts(bot, TRADER)] == [KEY]
    (reply,) = texts(await bot.send(TRADER, "/cancel"))
    assert reply == "Stopped connecting; nothing was stored."
    assert drafts(bot, TRADER) == []
    _, calls = await send_tracked(bot, TRADER, SECRET)
    assert deleted(calls) == [] and texts(calls)[0].startswith("Pick a command")
    assert await bot.services.accounts.accounts(TRADER) == []


async def test_cancel_button_and_stale_connect_buttons(bot: BotHarness) -> None:
    prompt = last_message(await bot.send(TRADER, "/connect"))
    foreign = await bot.press(OTHER, prompt, "connect:ex:paper")
    assert answers(foreign) == [connect_module.STALE] and texts(foreign) == []
    (stopped,) = texts(await bot.press(TRADER, prompt, "connect:stop:0"))
    assert stopped == "Stopped connecting; nothing was stored."
    late = await bot.press(TRADER, prompt, "connect:ex:paper")
    assert answers(late) == [connect_module.STALE] and texts(late) == []
    assert await bot.services.accounts.accounts(TRADER) == []


async def test_buttons_of_an_earlier_connect_are_refused(bot: BotHarness) -> None:
    old = last_message(await bot.send(TRADER, "/connect"))
    await bot.send(TRADER, "/connect")  # starts over
    calls = await bot.press(TRADER, old, "connect:ex:paper")
    assert answers(calls) == ["That button belongs to an earlier /connect."]
    assert await bot.services.accounts.accounts(TRADER) == []


async def test_okx_asks_for_the_passphrase_then_cannot_reach_okx(bot: BotHarness) -> None:
    await choose(bot, "okx", "demo")
    await send_tracked(bot, TRADER, "okx-key-0001")
    _, calls = await send_tracked(bot, TRADER, "okx-secret")
    assert texts(calls) == ["Now send the API passphrase."]
    phrase_id, calls = await send_tracked(bot, TRADER, "okx-phrase")
    assert deleted(calls) == [phrase_id]
    (reply,) = texts(calls)
    assert reply.startswith("Could not check the keys: OKX ")  # unavailable / cannot reach
    assert reply.endswith("Nothing was stored. Send /connect to try again in a moment.")
    assert await bot.services.accounts.accounts(TRADER) == []
    assert drafts(bot, TRADER) == []


async def test_conversation_times_out_and_forgets_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connect_module, "CONVERSATION_TIMEOUT", 0.3)
    async with running_bot(tmp_path) as bot:
        await choose(bot, "bybit", "demo")
        await send_tracked(bot, TRADER, KEY)
        call = await bot.state.wait_for_call(
            "sendMessage", lambda c: "timed out" in str(c.params.get("text")), timeout=5
        )
        assert call.params["text"].startswith("/connect timed out; nothing was stored.")
        assert drafts(bot, TRADER) == []
        (after,) = texts(await bot.send(TRADER, SECRET))
        assert after.startswith("Pick a command")


# -- /keys ------------------------------------------------------------------------------------


async def two_accounts(bot: BotHarness) -> tuple[int, int, dict[str, Any]]:
    """Paper and Bybit demo (active) connected; the /keys message."""
    accounts = bot.services.accounts
    await bot.send(TRADER, "/start")
    await bot.send(OTHER, "/start")
    paper = await accounts.connect(TRADER, "paper", "paper")
    demo = await accounts.connect(TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET))
    message = last_message(await bot.send(TRADER, "/keys"))
    return paper.account.credential_id, demo.account.credential_id, message


async def test_keys_without_accounts_points_to_connect(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/keys"))
    assert reply.startswith("No exchange accounts yet. Send /connect")


async def test_keys_lists_masked_keys_and_marks_the_active_one(bot: BotHarness) -> None:
    paper_id, demo_id, message = await two_accounts(bot)
    text = message["text"]
    assert "● Bybit (demo) — active" in text and "○ Paper" in text
    assert "key …a1b2" in text and KEY not in text and SECRET not in text
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert f"added {today}" in text and f"verified {today}" in text
    rows = message["reply_markup"]["inline_keyboard"]
    assert [[(b["text"], b["callback_data"]) for b in row] for row in rows] == [
        [
            ("● Bybit (demo)", f"keys:use:{demo_id}"),
            ("Re-check", f"keys:check:{demo_id}"),
            ("Remove", f"keys:rm:{demo_id}"),
        ],
        [
            ("Use Paper", f"keys:use:{paper_id}"),
            ("Re-check", f"keys:check:{paper_id}"),
            ("Remove", f"keys:rm:{paper_id}"),
        ],
    ]


async def test_make_active_edits_the_list(bot: BotHarness) -> None:
    paper_id, _, message = await two_accounts(bot)
    calls = await bot.press(TRADER, message, f"keys:use:{paper_id}")
    assert answers(calls) == ["Paper is now your active account."]
    (edited,) = texts(calls)
    assert edited.startswith("Paper is now your active account.") and "● Paper — active" in edited
    active = await bot.services.accounts.active(TRADER)
    assert active is not None and active.credential_id == paper_id


async def test_recheck_reports_the_balance_and_updates_last_verified(bot: BotHarness) -> None:
    _, demo_id, message = await two_accounts(bot)
    store = bot.store
    await CredentialRepository(store).mark_verified(demo_id, datetime(2026, 1, 2, tzinfo=UTC))
    calls = await bot.press(TRADER, message, f"keys:check:{demo_id}")
    assert answers(calls) == ["Bybit (demo) OK — balance 10,000 USDT"]
    (edited,) = texts(calls)
    assert edited.startswith("Bybit (demo) OK — balance 10,000 USDT")
    view = await bot.services.accounts.account(TRADER, demo_id)
    assert view.verified_at is not None and view.verified_at > datetime(2026, 1, 3, tzinfo=UTC)


async def test_recheck_of_revoked_keys_says_so(bot: BotHarness, server: ExchangeServer) -> None:
    _, demo_id, message = await two_accounts(bot)
    del server.engine.accounts[KEY]  # the trader revoked the key on the exchange
    calls = await bot.press(TRADER, message, f"keys:check:{demo_id}")
    (answer,) = answers(calls)
    assert answer.startswith("Bybit refused the keys.")
    assert answer.endswith("Remove the account and /connect new keys.")
    (edited,) = texts(calls)
    assert edited.startswith(answer) and KEY not in edited


async def test_remove_asks_first_and_no_keeps_the_account(bot: BotHarness) -> None:
    _, demo_id, message = await two_accounts(bot)
    question = last_message(await bot.press(TRADER, message, f"keys:rm:{demo_id}"))
    assert question["text"].startswith("Remove Bybit (demo) (key …a1b2)?")
    assert buttons(question) == {
        "Yes, remove": f"keys:rmyes:{demo_id}",
        "No": f"keys:rmno:{demo_id}",
    }
    back = last_message(await bot.press(TRADER, question, f"keys:rmno:{demo_id}"))
    assert back["text"].startswith("Your accounts")
    assert len(await bot.services.accounts.accounts(TRADER)) == 2


async def test_remove_confirmed_then_stale_buttons_are_refused(bot: BotHarness) -> None:
    paper_id, demo_id, message = await two_accounts(bot)
    question = last_message(await bot.press(TRADER, message, f"keys:rm:{demo_id}"))
    calls = await bot.press(TRADER, question, f"keys:rmyes:{demo_id}")
    assert answers(calls) == ["Removed Bybit (demo)."]
    (edited,) = texts(calls)
    assert edited.startswith("Removed Bybit (demo).") and "● Paper — active" in edited
    (left,) = await bot.services.accounts.accounts(TRADER)
    assert left.ref.credential_id == paper_id
    for data in (f"keys:check:{demo_id}", f"keys:rmyes:{demo_id}", f"keys:use:{demo_id}"):
        stale = await bot.press(TRADER, message, data)
        assert answers(stale) == ["That account is not connected (any more)."]
        assert texts(stale) == []
    question = last_message(await bot.press(TRADER, message, f"keys:rm:{paper_id}"))
    (empty,) = texts(await bot.press(TRADER, question, f"keys:rmyes:{paper_id}"))
    assert "No exchange accounts yet" in empty


async def test_someone_elses_keys_buttons_are_refused(bot: BotHarness) -> None:
    paper_id, demo_id, message = await two_accounts(bot)
    await bot.services.accounts.connect(OTHER, "paper", "paper")
    for action in ("use", "check", "rm", "rmyes", "rmno"):
        credential_id = paper_id if action == "use" else demo_id
        calls = await bot.press(OTHER, message, f"keys:{action}:{credential_id}")
        assert answers(calls) == ["That account is not connected (any more)."]
        assert texts(calls) == []
    assert len(await bot.services.accounts.accounts(TRADER)) == 2
    active = await bot.services.accounts.active(TRADER)
    assert active is not None and active.credential_id == demo_id


async def test_malformed_keys_button_is_refused(bot: BotHarness) -> None:
    _, _, message = await two_accounts(bot)
    for data in ("keys:explode:1", "keys:use:x", "keys:use"):
        calls = await bot.press(TRADER, message, data)
        assert answers(calls) == ["This button is not valid any more. Send /keys again."]


def test_draft_scrubs_what_was_typed_and_never_shows_it_in_repr() -> None:
    draft = Draft(1, "okx", "demo", KEY, SECRET, "phrase-77")
    assert draft.scrub(f"refused {KEY} with {SECRET} and phrase-77") == "refused … with … and …"
    assert KEY not in repr(draft) and SECRET not in repr(draft) and "phrase-77" not in repr(draft)
