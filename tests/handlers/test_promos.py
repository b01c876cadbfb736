"""/promo_create, /promo_list, /promo_disable and /redeem through the real Application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.offline_api import ApiCall
from services.licenses import LicenseStatus
from tests.fakes.clock import FakeClock
from tests.harness import BotHarness, running_bot

ADMIN, TRADER, OTHER = 99, 42, 43
DAY = 86_400


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, clock=clock) as harness:
        for user in (TRADER, OTHER):
            await harness.send(user, "/start")
        yield harness


def replies(calls: list[ApiCall], chat_id: int) -> list[str]:
    return [
        str(c.result["text"])
        for c in calls
        if isinstance(c.result, dict)
        and "text" in c.result
        and c.result.get("chat", {}).get("id") == chat_id
    ]


async def say(bot: BotHarness, user: int, text: str) -> str:
    (reply,) = replies(await bot.send(user, text), user)
    return reply


async def audited(bot: BotHarness, action: str) -> list[tuple[int | None, str | None]]:
    return [
        (r.actor_id, r.target) for r in await bot.services.audit.recent(100) if r.action == action
    ]


async def test_create_list_and_disable(bot: BotHarness) -> None:
    created = await say(bot, ADMIN, "/promo_create welcome 7 100 30")
    assert created == ("✅ Created WELCOME · 7 d of pro · 0/100 used · until 2026-01-31 · active")
    assert await say(bot, ADMIN, "/promo_create TRY 3 10 trial") == (
        "✅ Created TRY · 3 d of trial · 0/10 used · no expiry · active"
    )
    assert (await say(bot, ADMIN, "/promo_create vip 30 5 60 pro")).startswith(
        "✅ Created VIP · 30 d of pro · 0/5 used · until 2026-03-02"
    )
    listed = await say(bot, ADMIN, "/promo_list")
    assert listed.splitlines()[0] == "Promo codes · 3 · page 1/1"
    assert len(listed.splitlines()) == 4 and "WELCOME · 7 d of pro" in listed
    disabled = await say(bot, ADMIN, "/promo_disable Welcome")
    assert disabled.startswith("🚫 Disabled WELCOME") and disabled.endswith("· disabled")
    assert await audited(bot, "promo_create") == [
        (ADMIN, "promo:VIP"),
        (ADMIN, "promo:TRY"),
        (ADMIN, "promo:WELCOME"),
    ]
    assert await audited(bot, "promo_disable") == [(ADMIN, "promo:WELCOME")]


async def test_promo_list_pages(bot: BotHarness) -> None:
    for n in range(25):
        await bot.services.promos.create(ADMIN, f"CODE{n:02d}", 1, 1)
    calls = await bot.send(ADMIN, "/promo_list")
    message = calls[-1].result
    assert isinstance(message, dict) and message["text"].startswith("Promo codes · 25 · page 1/2")
    (button,) = message["reply_markup"]["inline_keyboard"][0]
    assert button["callback_data"] == "pl:1"
    (second,) = replies(await bot.press(ADMIN, message, "pl:1"), ADMIN)
    assert second.startswith("Promo codes · 25 · page 2/2") and len(second.splitlines()) == 6


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("/promo_create", "Usage: /promo_create CODE DAYS MAX_USES"),
        ("/promo_create CODE 7", "Usage: /promo_create CODE DAYS MAX_USES"),
        ("/promo_create CODE seven 5", "Usage: /promo_create CODE DAYS MAX_USES"),
        ("/promo_create CODE 7 5 pro extra", "Usage: /promo_create CODE DAYS MAX_USES"),
        ("/promo_create CODE 7 5 30 pro extra", "Usage: /promo_create CODE DAYS MAX_USES"),
        ("/promo_create AB 7 5", "A code is 3 to 32 letters, digits, _ or -."),
        ("/promo_create b@d! 7 5", "A code is 3 to 32 letters, digits, _ or -."),
        ("/promo_create CODE 0 5", "Days must be a whole number from 1 to 3,650."),
        ("/promo_create CODE 7 0", "Max uses must be a whole number from 1 to 1,000,000."),
        ("/promo_create CODE 7 5 0", "Valid days must be a whole number from 1 to 3,650."),
        ("/promo_create VAL 7 10 -1", "VALID_DAYS must be positive, e.g. 30. Usage:"),
        ("/promo_create VAL 7 10 -1 pro", "VALID_DAYS must be positive, e.g. 30. Usage:"),
        ("/promo_create VAL -7 10", "DAYS must be positive, e.g. 7. Usage:"),
        ("/promo_create VAL 7 -10", "MAX_USES must be positive, e.g. 100. Usage:"),
        ("/promo_create VAL 7 1.5", "MAX_USES must be a whole number, e.g. 100. Usage:"),
        ("/promo_create CODE 7 5 30 gold", "There is no plan 'gold'; plans: trial, pro."),
        ("/promo_create CODE 7 5 gold", "There is no plan 'gold'; plans: trial, pro."),
    ],
)
async def test_bad_promo_create_says_why_and_creates_nothing(
    bot: BotHarness, text: str, answer: str
) -> None:
    assert (await say(bot, ADMIN, text)).startswith(answer)
    assert (await bot.services.promos.page()).total == 0
    assert await audited(bot, "promo_create") == []


async def test_a_duplicate_code_is_refused_in_any_case(bot: BotHarness) -> None:
    await say(bot, ADMIN, "/promo_create WELCOME 7 100")
    assert await say(bot, ADMIN, "/promo_create welcome 3 1") == (
        "The promo code WELCOME already exists."
    )
    (promo,) = (await bot.services.promos.page()).codes
    assert (promo.days, promo.max_uses) == (7, 100)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("/promo_disable", "Usage: /promo_disable CODE"),
        ("/promo_disable NOPE", "There is no promo code NOPE."),
        ("/promo_disable OLD", "The promo code OLD is already disabled."),
    ],
)
async def test_bad_promo_disable(bot: BotHarness, text: str, answer: str) -> None:
    await bot.services.promos.create(ADMIN, "OLD", 1, 1)
    await bot.services.promos.disable(ADMIN, "OLD")
    assert await say(bot, ADMIN, text) == answer


async def test_redeem_grants_the_days_once_per_trader(bot: BotHarness) -> None:
    await say(bot, ADMIN, "/promo_create welcome 7 100")
    redeemed = await say(bot, TRADER, "/redeem Welcome")
    assert redeemed.startswith("🎉 Promo code WELCOME redeemed: 7 days of pro.\nLicence: pro")
    assert "(7 days left)" in redeemed
    assert await say(bot, TRADER, "/redeem WELCOME") == (
        "You have already redeemed the promo code WELCOME."
    )
    state = await bot.services.licenses.state(TRADER)
    assert (state.status, state.days_left) == (LicenseStatus.ACTIVE, 7)
    (promo,) = (await bot.services.promos.page()).codes
    assert promo.uses == 1


async def test_redeem_stacks_on_a_running_licence(bot: BotHarness) -> None:
    await bot.services.licenses.grant(ADMIN, TRADER, 10)
    await bot.state.wait_for_call("sendMessage", lambda c: "granted" in str(c.params["text"]))
    await bot.services.promos.create(ADMIN, "MORE", 5, 10, None, "trial")
    assert "(15 days left)" in await say(bot, TRADER, "/redeem more")


async def test_redeem_says_exactly_why_not(bot: BotHarness, clock: FakeClock) -> None:
    promos = bot.services.promos
    await promos.create(ADMIN, "ONCE", 7, 1)
    await promos.create(ADMIN, "SHORT", 7, 10, 1)
    await promos.create(ADMIN, "OFF", 7, 10)
    await promos.disable(ADMIN, "OFF")
    await say(bot, OTHER, "/redeem once")
    clock.advance(2 * DAY)
    assert await say(bot, TRADER, "/redeem nope") == (
        "There is no promo code NOPE. Check the spelling and try again."
    )
    assert await say(bot, TRADER, "/redeem short") == "The promo code SHORT has expired."
    assert await say(bot, TRADER, "/redeem off") == "The promo code OFF has been disabled."
    assert await say(bot, TRADER, "/redeem once") == "The promo code ONCE has been used up."
    assert await say(bot, OTHER, "/redeem once") == (
        "You have already redeemed the promo code ONCE."
    )
    assert await say(bot, TRADER, "/redeem") == "Usage: /redeem CODE — e.g. /redeem WELCOME"
    assert await say(bot, TRADER, "/redeem a b") == "Usage: /redeem CODE — e.g. /redeem WELCOME"
    assert (await bot.services.licenses.state(TRADER)).status is LicenseStatus.NONE
    assert [p.uses for p in (await promos.page()).codes] == [0, 0, 1]


@pytest.mark.parametrize(
    "text", ["/promo_create HACK 365 1000", "/promo_list", "/promo_disable WELCOME"]
)
async def test_traders_are_refused_and_audited(bot: BotHarness, text: str) -> None:
    await bot.services.promos.create(ADMIN, "WELCOME", 7, 100)
    assert await say(bot, TRADER, text) == "This command is for admins."
    assert await audited(bot, "refused") == [(TRADER, text.split()[0])]
    (promo,) = (await bot.services.promos.page()).codes
    assert (promo.code, promo.active) == ("WELCOME", True)


async def test_trader_pressing_a_promo_page_is_refused(bot: BotHarness) -> None:
    calls = await bot.send(ADMIN, "/promo_list")
    message = calls[-1].result
    assert isinstance(message, dict)
    calls = await bot.press(TRADER, message, "pl:1")
    answers = [c.params.get("text") for c in calls if c.method == "answerCallbackQuery"]
    assert answers == ["This command is for admins."]
    assert await audited(bot, "refused") == [(TRADER, "button pl")]
