"""/buy, pre-checkout and successful payments in Stars, through the real Application."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import CONSOLE_USER_ID
from bot.console import ConsoleChat
from bot.offline_api import ApiCall
from bot.offline_updates import make_pre_checkout_update, make_successful_payment_update
from core.config import Plan
from db.repositories.payments import PaymentRepository
from services.licenses import LicenseStatus
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER = 42, 43
PAYLOAD = "lic:pro:30:500:42"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(TRADER, "/start")
        yield harness


def _payments(bot: BotHarness) -> PaymentRepository:
    return PaymentRepository(bot.store)


def _checkout_answers(calls: list[ApiCall]) -> list[dict[str, Any]]:
    return [c.params for c in calls if c.method == "answerPreCheckoutQuery"]


async def _checkout(
    bot: BotHarness, amount: int, payload: str, user: int = TRADER, currency: str = "XTR"
) -> dict[str, Any]:
    update = make_pre_checkout_update(0, user, amount, payload, currency=currency)
    (answer,) = _checkout_answers(await bot.deliver(update))
    return answer


async def _pay(
    bot: BotHarness, charge: str, payload: str = PAYLOAD, amount: int = 500
) -> list[str]:
    update = make_successful_payment_update(
        0, TRADER, amount, payload, telegram_payment_charge_id=charge
    )
    return texts(await bot.deliver(update))


async def test_buy_lists_the_plans_for_sale_and_sends_an_invoice(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/buy")
    (menu,) = texts(calls)
    assert menu.startswith("Buy a licence with Telegram Stars")
    message = calls[-1].result
    assert isinstance(message, dict)
    buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == [{"text": "pro · 30 days · 500 ⭐", "callback_data": "buy:pro"}]

    calls = await bot.press(TRADER, message, "buy:pro")
    (invoice,) = [c for c in calls if c.method == "sendInvoice"]
    params = invoice.params
    assert (params["chat_id"], params["currency"], params["payload"]) == (TRADER, "XTR", PAYLOAD)
    assert [p["amount"] for p in params["prices"]] == [500]
    assert params["title"] == "Tradewind pro — 30 days"


async def test_checkout_is_accepted_when_it_matches_the_offer(bot: BotHarness) -> None:
    assert (await _checkout(bot, 500, PAYLOAD))["ok"] is True


@pytest.mark.parametrize(
    ("amount", "payload", "user", "currency", "reason"),
    [
        (400, PAYLOAD, TRADER, "XTR", "The price has changed; send /buy for a new invoice."),
        (400, "lic:pro:30:400:42", TRADER, "XTR", "The price has changed"),
        (500, "lic:pro:7:500:42", TRADER, "XTR", "The price has changed"),
        (500, PAYLOAD, TRADER, "USD", "Only Telegram Stars are accepted."),
        (500, "lic:gold:30:500:42", TRADER, "XTR", "That plan is not for sale any more"),
        (0, "lic:trial:7:0:42", TRADER, "XTR", "That plan is not for sale any more"),
        (500, PAYLOAD, OTHER, "XTR", "This invoice is not valid; send /buy for a new one."),
        (500, "hello", TRADER, "XTR", "This invoice is not valid"),
    ],
)
async def test_checkout_is_refused_with_a_reason(
    bot: BotHarness, amount: int, payload: str, user: int, currency: str, reason: str
) -> None:
    answer = await _checkout(bot, amount, payload, user, currency)
    assert answer["ok"] is False and answer["error_message"].startswith(reason)


async def test_a_payment_extends_the_licence_and_is_recorded(bot: BotHarness) -> None:
    (reply,) = await _pay(bot, "stx-1")
    assert reply.startswith("⭐ Thank you! 500 Stars received: 30 days of pro.\nLicence: pro")
    assert "(30 days left)" in reply
    payment = await _payments(bot).by_charge("stx-1")
    assert payment is not None
    assert (payment.user_id, payment.plan, payment.days, payment.amount) == (TRADER, "pro", 30, 500)
    (audit,) = [r for r in await bot.services.audit.recent() if r.action == "payment"]
    assert (audit.actor_id, audit.target) == (TRADER, "charge:stx-1")


async def test_a_redelivered_payment_extends_once(bot: BotHarness) -> None:
    await _pay(bot, "stx-same")
    (again,) = await _pay(bot, "stx-same")
    assert again.startswith("This payment was already credited.\nLicence: pro")
    state = await bot.services.licenses.state(TRADER)
    assert (state.status, state.days_left) == (LicenseStatus.ACTIVE, 30)
    assert len(await _payments(bot).for_user(TRADER)) == 1
    await _pay(bot, "stx-other")  # a second purchase does stack
    assert (await bot.services.licenses.state(TRADER)).days_left == 60


async def test_a_payment_without_a_valid_payload_changes_nothing(bot: BotHarness) -> None:
    (reply,) = await _pay(bot, "stx-bad", payload="something else")
    assert reply == "This payment does not match any invoice; contact an admin."
    assert await _payments(bot).for_user(TRADER) == []
    assert (await bot.services.licenses.state(TRADER)).status is LicenseStatus.NONE


async def test_pressing_a_plan_no_longer_sold_is_answered(bot: BotHarness) -> None:
    calls = await bot.send(TRADER, "/buy")
    message = calls[-1].result
    assert isinstance(message, dict)
    calls = await bot.press(TRADER, message, "buy:gold")
    answers = [c.params.get("text") for c in calls if c.method == "answerCallbackQuery"]
    assert answers == ["That plan is not for sale any more; send /buy to see the plans."]
    assert not [c for c in calls if c.method == "sendInvoice"]


async def test_nothing_for_sale(tmp_path: Path) -> None:
    async with running_bot(tmp_path, plans=(Plan("trial", 7, 0),)) as bot:
        (reply,) = texts(await bot.send(TRADER, "/buy"))
    assert reply == "Nothing is for sale right now. /redeem a promo code or ask an admin."


async def test_configured_plans_and_prices_are_offered(tmp_path: Path) -> None:
    plans = (Plan("week", 7, 150), Plan("year", 365, 4000))
    async with running_bot(tmp_path, plans=plans) as bot:
        message = (await bot.send(TRADER, "/buy"))[-1].result
        assert isinstance(message, dict)
        labels = [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]
        assert labels == ["week · 7 days · 150 ⭐", "year · 365 days · 4000 ⭐"]
        update = make_pre_checkout_update(0, TRADER, 4000, "lic:year:365:4000:42")
        (answer,) = _checkout_answers(await bot.deliver(update))
        assert answer["ok"] is True


async def test_the_console_pays_an_invoice_with_its_pay_button(bot: BotHarness) -> None:
    out = io.StringIO()
    # Its own range of update ids: the harness's are taken (a repeat would be dropped).
    chat = ConsoleChat(bot.app, bot.state, out, first_update_id=1_000_000)
    for line in ("/buy", ":1", ":1"):
        await chat.handle_line(line)
    shown = out.getvalue()
    assert "Invoice: Tradewind pro — 30 days — 500 XTR" in shown and "[1] Pay 500 XTR" in shown
    assert "(you paid 500 XTR)" in shown
    assert "⭐ Thank you! 500 Stars received: 30 days of pro." in shown
    assert (await bot.services.licenses.state(CONSOLE_USER_ID)).days_left == 30
