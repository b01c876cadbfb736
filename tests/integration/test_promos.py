"""Promo races: many traders (or one trader many times) redeeming at once, real SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.offline_api import ApiCall
from services.licenses import LicenseStatus
from services.promos import PromoRefused
from services.users import UserProfile
from tests.harness import BotHarness, running_bot

ADMIN = 99
RACERS = 200
REDEEMED = "🎉 Promo code RACE redeemed: 7 days of pro."
USED_UP = "The promo code RACE has been used up."


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, rate_limited=False) as harness:
        yield harness


def _replies_by_chat(calls: list[ApiCall]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for call in calls:
        if call.method == "sendMessage" and isinstance(call.result, dict):
            found.setdefault(call.result["chat"]["id"], []).append(call.result["text"])
    return found


async def test_200_traders_racing_for_one_use_get_exactly_one_success(bot: BotHarness) -> None:
    await bot.services.promos.create(ADMIN, "RACE", 7, 1)
    racers = range(1000, 1000 + RACERS)
    before = len(bot.state.calls)
    await asyncio.gather(*(bot.send(uid, "/redeem race") for uid in racers))

    replies = _replies_by_chat(bot.state.calls[before:])
    assert sorted(replies) == list(racers)  # everyone answered: no SQLITE_BUSY, no silence
    winners = [uid for uid, texts in replies.items() if texts[0].startswith(REDEEMED)]
    assert len(winners) == 1
    assert all(texts == [USED_UP] for uid, texts in replies.items() if uid != winners[0])
    assert bot.state.rejected == []

    (promo,) = (await bot.services.promos.page()).codes
    assert (promo.uses, promo.max_uses) == (1, 1)
    licensed = [await bot.services.licenses.state(uid) for uid in racers]
    active = [s for s in licensed if s.status is LicenseStatus.ACTIVE]
    assert len(active) == 1 and active[0].days_left == 7


async def test_one_trader_racing_themselves_is_extended_once(bot: BotHarness) -> None:
    trader = 42
    await bot.services.users.register(UserProfile(trader, trader, "Alice"))
    await bot.services.promos.create(ADMIN, "MANY", 7, 100)
    outcomes = await asyncio.gather(
        *(bot.services.promos.redeem(trader, "many") for _ in range(RACERS)),
        return_exceptions=True,
    )
    successes = [o for o in outcomes if not isinstance(o, BaseException)]
    refusals = {str(o) for o in outcomes if isinstance(o, PromoRefused)}
    assert len(successes) == 1
    assert refusals == {"You have already redeemed the promo code MANY."}
    assert len(successes) + sum(isinstance(o, PromoRefused) for o in outcomes) == RACERS
    state = await bot.services.licenses.state(trader)
    assert (state.status, state.days_left) == (LicenseStatus.ACTIVE, 7)
    (promo,) = (await bot.services.promos.page()).codes
    assert promo.uses == 1
