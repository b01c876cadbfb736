"""/grant, /revoke and /licenses through the real Application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.offline_api import ApiCall
from db.repositories.licenses import LicenseRepository
from services.licenses import LicenseStatus
from services.users import UserProfile
from tests.harness import BotHarness, running_bot

ADMIN, TRADER, OTHER = 99, 42, 43


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.services.users.register(UserProfile(TRADER, TRADER, "Alice", "alice"))
        await harness.send(OTHER, "/start", first_name="Bob")
        yield harness


def replies(calls: list[ApiCall], chat_id: int) -> list[str]:
    """Messages the bot sent to one chat (notices to others may interleave)."""
    return [
        str(c.result["text"])
        for c in calls
        if isinstance(c.result, dict)
        and "text" in c.result
        and c.result.get("chat", {}).get("id") == chat_id
    ]


async def admin(bot: BotHarness, text: str) -> str:
    (reply,) = replies(await bot.send(ADMIN, text, first_name="Admin"), ADMIN)
    return reply


async def actions(
    bot: BotHarness, action: str
) -> list[tuple[int | None, str | None, dict[str, object]]]:
    rows = await bot.services.audit.recent(100)
    return [(r.actor_id, r.target, r.details) for r in rows if r.action == action]


async def test_grant_by_id_extends_audits_and_tells_the_trader(bot: BotHarness) -> None:
    reply = await admin(bot, "/grant 42 30")
    assert reply.startswith("✅ Granted 30 days to Alice @alice (42).")
    assert "Licence: pro, active until" in reply and "(30 days left)" in reply
    state = await bot.services.licenses.state(TRADER)
    assert (state.status, state.plan, state.days_left) == (LicenseStatus.ACTIVE, "pro", 30)
    ((actor, target, details),) = await actions(bot, "grant")
    assert (actor, target, details["days"], details["plan"]) == (ADMIN, "user:42", 30, "pro")
    notice = await bot.state.wait_for_call(
        "sendMessage", lambda c: "granted" in str(c.params["text"])
    )
    assert notice.params["chat_id"] == TRADER
    assert isinstance(notice.result, dict)
    assert "You were granted 30 days of pro" in notice.result["text"]


async def test_grant_by_username_with_a_plan_stacks_on_the_running_licence(
    bot: BotHarness,
) -> None:
    await admin(bot, "/grant @Alice 30")
    reply = await admin(bot, "/grant @alice 7 trial")
    assert "Licence: trial, active until" in reply and "(37 days left)" in reply


async def test_trader_sees_the_grant_in_license_and_start(bot: BotHarness) -> None:
    await admin(bot, "/grant 43 10")
    await bot.state.wait_for_call("sendMessage", lambda c: "granted" in str(c.params["text"]))
    (license_reply,) = replies(await bot.send(OTHER, "/license"), OTHER)
    assert "10 days left" in license_reply
    (start,) = replies(await bot.send(OTHER, "/start"), OTHER)
    assert "Licence: pro, active until" in start


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("/grant", "Usage: /grant USER DAYS [PLAN]"),
        ("/grant 42", "Usage: /grant USER DAYS [PLAN]"),
        ("/grant 42 30 pro extra", "Usage: /grant USER DAYS [PLAN]"),
        ("/grant 42 thirty", "DAYS must be a whole number, e.g. 30."),
        ("/grant 42 0", "Days must be a whole number from 1 to 3650."),
        ("/grant 42 -5", "DAYS must be positive, e.g. 30. Usage: /grant USER DAYS"),
        ("/grant 42 2.5", "DAYS must be a whole number, e.g. 30. Usage: /grant USER DAYS"),
        ("/grant 42 5000", "Days must be a whole number from 1 to 3650."),
        ("/grant 42 30 gold", "There is no plan 'gold'; plans: trial, pro."),
        ("/grant 777 30", "No user with id 777 has talked to the bot yet."),
        ("/grant @nobody 30", "No user @nobody has talked to the bot yet."),
        ("/grant alice 30", "'alice' is not a user: give a numeric id or an @username."),
    ],
)
async def test_bad_grants_say_why_and_change_nothing(
    bot: BotHarness, text: str, answer: str
) -> None:
    reply = await admin(bot, text)
    assert reply.startswith(answer)
    assert (await bot.services.licenses.state(TRADER)).status is LicenseStatus.NONE
    assert await actions(bot, "grant") == []


async def test_revoke_ends_the_licence_and_is_audited(bot: BotHarness) -> None:
    await admin(bot, "/grant 42 30")
    reply = await admin(bot, "/revoke @alice chargeback on card")
    assert (
        reply
        == "🚫 Revoked the licence of Alice @alice (42). They can still close, cancel and view."
    )
    assert (await bot.services.licenses.state(TRADER)).status is LicenseStatus.REVOKED
    ((actor, target, details),) = await actions(bot, "revoke")
    assert (actor, target, details) == (ADMIN, "user:42", {"reason": "chargeback on card"})
    notice = await bot.state.wait_for_call(
        "sendMessage", lambda c: "revoked" in str(c.params.get("text"))
    )
    assert notice.params["chat_id"] == TRADER
    assert "Closing positions, cancelling orders, managing TP/SL" in str(notice.params["text"])
    again = await admin(bot, "/revoke 42")
    assert again == "User 42 has no active licence to revoke."
    assert len(await actions(bot, "revoke")) == 1


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("/revoke", "Usage: /revoke USER [REASON]"),
        ("/revoke 42 " + "x" * 201, "The reason can be at most 200 characters."),
        ("/revoke @ghost", "No user @ghost has talked to the bot yet."),
    ],
)
async def test_bad_revokes_say_why(bot: BotHarness, text: str, answer: str) -> None:
    await admin(bot, "/grant 42 30")
    assert (await admin(bot, text)).startswith(answer)
    assert (await bot.services.licenses.state(TRADER)).status is LicenseStatus.ACTIVE


async def test_licenses_lists_pages_and_filters(bot: BotHarness) -> None:
    store = bot.store
    repo = LicenseRepository(store)
    now = bot.services.clock.now()
    for uid in range(1000, 1025):
        await bot.services.users.register(UserProfile(uid, uid, f"T{uid}"))
        await repo.extend(uid, 30, "pro", "grant", now)
    await repo.extend(TRADER, 2, "trial", "grant", now)
    await repo.extend(OTHER, 5, "pro", "grant", now)
    await repo.revoke(OTHER, "test", now)

    first = await admin(bot, "/licenses")
    assert first.startswith("Active licences · 26 · page 1/2")
    assert first.splitlines()[1].startswith("Alice @alice (42) · trial · until")  # soonest first
    calls = await bot.send(ADMIN, "/licenses active")
    message = calls[-1].result
    assert isinstance(message, dict)
    (next_button,) = message["reply_markup"]["inline_keyboard"][0]
    assert next_button == {"text": "Next ▶", "callback_data": "lic:active:1"}
    (second,) = replies(await bot.press(ADMIN, message, "lic:active:1"), ADMIN)
    assert second.startswith("Active licences · 26 · page 2/2") and len(second.splitlines()) == 7

    expiring = await admin(bot, "/licenses EXPIRING")
    assert expiring.startswith("Expiring within 3 days · 1 · page 1/1")
    assert "(42)" in expiring and "(1000)" not in expiring
    ended = await admin(bot, "/licenses expired")
    assert ended.startswith("Ended · 1") and "Bob (43) · pro · revoked, was until" in ended
    assert (await admin(bot, "/licenses soon")).startswith("Usage: /licenses")


async def test_an_empty_list_says_none(bot: BotHarness) -> None:
    assert (await admin(bot, "/licenses expiring")).endswith("\nNone.")


@pytest.mark.parametrize("text", ["/grant 42 30", "/revoke 42", "/licenses", "/licenses expired"])
async def test_traders_are_refused_and_audited(bot: BotHarness, text: str) -> None:
    await LicenseRepository(bot.store).extend(TRADER, 3, "pro", "grant", bot.services.clock.now())
    (reply,) = replies(await bot.send(TRADER, text), TRADER)
    assert reply == "This command is for admins."
    (refusal,) = await actions(bot, "refused")
    assert refusal[:2] == (TRADER, text.split()[0])
    state = await bot.services.licenses.state(TRADER)
    assert (state.status, state.days_left) == (LicenseStatus.ACTIVE, 3)


async def test_trader_pressing_a_licence_page_is_refused(bot: BotHarness) -> None:
    calls = await bot.send(ADMIN, "/licenses")
    message = calls[-1].result
    assert isinstance(message, dict)
    calls = await bot.press(TRADER, message, "lic:active:1")
    answers = [c.params.get("text") for c in calls if c.method == "answerCallbackQuery"]
    assert answers == ["This command is for admins."]
    (refusal,) = await actions(bot, "refused")
    assert refusal[:2] == (TRADER, "button lic")


async def test_an_out_of_date_page_button_is_answered(bot: BotHarness) -> None:
    calls = await bot.send(ADMIN, "/licenses")
    message = calls[-1].result
    assert isinstance(message, dict)
    calls = await bot.press(ADMIN, message, "lic:bogus:x")
    answers = [c.params.get("text") for c in calls if c.method == "answerCallbackQuery"]
    assert answers == ["This button is out of date; send /licenses again."]
