"""A payment Telegram delivered is credited even when the bot dies before its handler commits.

PTB confirms a getUpdates batch with its next call, before the handlers run; the crash soak
lost a payment that way. Payments are now written to an inbox before that next call."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.offline_api import FakeTelegramState
from bot.offline_request import OfflineRequest
from bot.offline_updates import make_message_update, make_successful_payment_update
from bot.payment_inbox import PaymentInbox, payments_in
from db.repositories.payments import PaymentRepository, ReceivedPayment
from tests.harness import running_bot, texts

TRADER = 42
PAYLOAD = "lic:pro:30:500:42"
URL = "http://127.0.0.1/bot123:TOKEN/getUpdates"


def _paid(charge: str) -> ReceivedPayment:
    return ReceivedPayment(TRADER, "XTR", 500, PAYLOAD, charge, None)


def test_payments_in_finds_only_successful_payments() -> None:
    paid = make_successful_payment_update(7, TRADER, 500, PAYLOAD, telegram_payment_charge_id="c1")
    text = make_message_update(8, TRADER, "/start")
    odd = {"update_id": 9, "message": {"successful_payment": {"currency": "XTR"}, "from": {}}}
    answer = json.dumps({"ok": True, "result": [paid, text, odd]}).encode()
    assert payments_in(answer) == [_paid("c1")]
    assert payments_in(b"not json") == [] and payments_in(b'{"ok": true, "result": 5}') == []


async def test_the_inbox_keeps_payments_before_get_updates_returns() -> None:
    state = FakeTelegramState()
    state.push_update(
        make_successful_payment_update(1, TRADER, 500, PAYLOAD, telegram_payment_charge_id="c2")
    )
    kept: list[ReceivedPayment] = []

    async def keep(payments: object) -> None:
        assert isinstance(payments, list)
        kept.extend(payments)

    inbox = PaymentInbox(OfflineRequest(state))
    inbox.keep = keep
    code, payload = await inbox.do_request(URL, "POST")
    assert code == 200 and json.loads(payload)["result"][0]["update_id"] == 1
    assert kept == [_paid("c2")]


async def test_a_payment_left_in_the_inbox_is_credited_once_at_the_next_start(
    tmp_path: Path,
) -> None:
    state = FakeTelegramState()
    async with running_bot(tmp_path, state=state) as bot:
        await bot.send(TRADER, "/start")
        # Telegram delivered it, the inbox kept it, then the process died before crediting.
        await bot.services.payments.receive([_paid("c3")])
    async with running_bot(tmp_path, state=state) as bot:
        repo = PaymentRepository(bot.store)
        for _ in range(100):  # the recovery job runs right after the start
            if await repo.by_charge("c3") is not None and not await repo.received(_future()):
                break
            await asyncio.sleep(0.05)
        assert await repo.by_charge("c3") is not None
        assert await repo.received(_future()) == []
        call = await state.wait_for_call(
            "sendMessage", lambda c: "credited after the bot restarted" in str(c.params["text"])
        )
        assert "500 Stars received: 30 days of <b>pro</b>" in str(call.params["text"])
        assert (await bot.services.licenses.state(TRADER)).can_open_positions
        # Should Telegram deliver it again after all, nothing is credited twice.
        again = make_successful_payment_update(
            0, TRADER, 500, PAYLOAD, telegram_payment_charge_id="c3"
        )
        (reply,) = texts(await bot.deliver(again))
        assert reply.startswith("This payment was already credited.")
        assert len(await repo.for_user(TRADER)) == 1


async def test_crediting_takes_the_payment_out_of_the_inbox(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.payments.receive([_paid("c4")])
        paid = make_successful_payment_update(
            0, TRADER, 500, PAYLOAD, telegram_payment_charge_id="c4"
        )
        (reply,) = texts(await bot.deliver(paid))
        assert reply.startswith("⭐ Thank you! 500 Stars received")
        assert await PaymentRepository(bot.store).received(_future()) == []


def _future() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)
