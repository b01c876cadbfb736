"""Tampered buttons: a press naming another trader's card, order, position or account, a
made-up id or an expired one is refused and changes nothing.

The table must name every prefix the running bot registers, so a new button is covered or
this test fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from core.exchange.models import OrderRequest, OrderType, Side
from db.repositories.licenses import LicenseRepository
from tests.handlers.hostile import business_state, problems, registered_prefixes
from tests.harness import BotHarness, running_bot

ATTACKER, VICTIM, ADMIN = 42, 43, 99
BTC = "BTC/USDT:USDT"
MADE_UP = "987654321"
# Prefixes whose buttons page through the presser's own lists (or admin-wide ones) and
# carry no id that could belong to someone else: a made-up page must still change nothing.
PAGING = {"sg", "tr", "lic", "pl", "rt", "pf"}


@dataclass(slots=True)
class World:
    bot: BotHarness
    victim_card: str  # a draft awaiting the victim's Confirm
    expired_card: str  # the attacker's own card, expired by the job
    victim_order: str  # a resting limit order of the victim
    victim_account: int  # the victim's paper credential id
    attacker_account: int
    cancelled_broadcast: int
    victim_alert: int  # the victim's price alert
    message: dict[str, Any]  # a message of the attacker's chat to press buttons under
    victim_backtest: int  # a backtest run reserved by the victim


def _card(calls: list[ApiCall]) -> str:
    for call in calls:
        result = call.result
        if isinstance(result, dict) and "reply_markup" in result:
            data = result["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            if data.startswith("ok:"):
                return str(data).removeprefix("ok:")
    raise AssertionError("no confirmation card")


def _sent(calls: list[ApiCall]) -> dict[str, Any]:
    (message,) = [c.result for c in calls if c.method == "sendMessage"]
    assert isinstance(message, dict)
    return message


async def _build(bot: BotHarness) -> World:
    now = bot.services.clock.now()
    ids = {}
    for user in (ATTACKER, VICTIM, ADMIN):
        await bot.send(user, "/start")
        connected = await bot.services.accounts.connect(user, "paper", "paper")
        ids[user] = connected.account.credential_id
        await LicenseRepository(bot.store).extend(user, 30, "pro", "grant", now)
    victim_card = _card(await bot.send(VICTIM, "/long BTC 100 5"))
    opened = _card(await bot.send(VICTIM, "/long ETH 100 5"))
    await bot.press(VICTIM, _sent(await bot.send(VICTIM, "/help")), f"ok:{opened}")
    expired = _card(await bot.send(ATTACKER, "/short BTC 100 5"))
    await bot.store.execute(
        "t.age", "UPDATE order_intents SET expires_at = 0 WHERE client_order_id = ?", (expired,)
    )
    assert await bot.services.trading.expire_cards() == 1
    price = (await bot.services.market.ticker("paper", BTC)).last / 2
    request = OrderRequest(
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        Decimal("0.001"),
        "twtamper1",
        price=price.quantize(Decimal("0.1")),
    )
    async with bot.services.exchanges.lease(VICTIM, "paper", "paper") as client:
        order = (await client.create_order(request)).order_id
    (draft,) = [
        c.result for c in await bot.send(ADMIN, "/broadcast hello") if "bc:" in str(c.params)
    ]
    assert isinstance(draft, dict)
    go = draft["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    broadcast_id = int(go.rsplit(":", 1)[1])
    await bot.press(ADMIN, draft, f"bc:no:{broadcast_id}")
    await bot.send(VICTIM, "/alert BTC > 50%")
    alert = await bot.store.fetchval(
        "t.alert", "SELECT id FROM price_alerts WHERE user_id = ?", (VICTIM,)
    )
    message = _sent(await bot.send(ATTACKER, "/help"))
    return World(
        bot, victim_card, expired, order, ids[VICTIM], ids[ATTACKER], broadcast_id,
        int(alert), message, bot.services.backtests.begin(VICTIM),
    )  # fmt: skip


def _table(w: World) -> list[tuple[int, str]]:
    """(presser, callback_data) for every registered prefix."""
    v, a = w.victim_account, w.attacker_account
    return [
        (ATTACKER, f"ok:{w.victim_card}"),  # another trader's card
        (ATTACKER, f"no:{w.victim_card}"),
        (ATTACKER, "ok:twmadeup0000000001"),
        (ATTACKER, "no:twmadeup0000000001"),
        (ATTACKER, f"ok:{w.expired_card}"),  # expired
        (ATTACKER, f"no:{w.expired_card}"),
        (ATTACKER, "cl:ETHUSDT"),  # the victim's position, not the attacker's
        (ATTACKER, "cl:NOSUCHUSDT"),
        *[(ATTACKER, f"{p}:{v}:ETHUSDT") for p in ("mt", "ms", "mb", "mx")],  # victim's account
        *[(ATTACKER, f"{p}:{a}:ETHUSDT") for p in ("mt", "ms", "mb", "mx")],  # victim's position
        (ATTACKER, f"mx:{MADE_UP}:NOSUCHUSDT"),
        (ATTACKER, f"mp:s:{v}:ETHUSDT:1"),
        (ATTACKER, f"mp:t:{a}:ETHUSDT:2"),
        (ATTACKER, f"mp:t:{a}:ETHUSDT:{MADE_UP}"),  # a pick no menu offers
        (ATTACKER, f"mc:{v}:ETHUSDT:x"),  # confirm removing the victim's stop loss
        (ATTACKER, f"mc:{a}:ETHUSDT:s:100"),
        (ATTACKER, f"mc:{a}:ETHUSDT:b"),
        (ATTACKER, f"mc:{v}:ETHUSDT:n"),
        (ATTACKER, f"mc:{MADE_UP}:ETHUSDT:s"),
        (ATTACKER, f"co:{w.victim_order}"),  # the victim's order
        (ATTACKER, f"co:{MADE_UP}"),
        *[(ATTACKER, f"keys:{act}:{v}") for act in ("use", "check", "rm", "rmyes", "rmno")],
        (ATTACKER, f"keys:use:{MADE_UP}"),
        (ATTACKER, f"keys:rmyes:{MADE_UP}"),
        (ATTACKER, f"pr:{v}:0"),  # the victim's account
        (ATTACKER, f"or:{v}:0"),
        (ATTACKER, f"pr:{MADE_UP}:0:c"),
        (ATTACKER, f"or:{MADE_UP}:1:c"),
        (ATTACKER, f"pz:ok:{v}:1"),  # reset the victim's paper account
        (ATTACKER, f"pz:ok:{MADE_UP}:1"),
        (ATTACKER, f"pz:ok:{a}:{MADE_UP}"),  # own account, a made-up reset count
        (ATTACKER, "buy:nosuchplan"),
        (ATTACKER, "connect:ex:nosuchexchange"),
        (ATTACKER, f"connect:type:{MADE_UP}"),
        (ATTACKER, f"sg:{MADE_UP}"),
        (ATTACKER, f"tr:{MADE_UP}"),
        (ATTACKER, f"pa:rm:{w.victim_alert}:0"),  # remove the victim's price alert
        (ATTACKER, f"pa:rm:{MADE_UP}:0"),
        (ATTACKER, f"cb:{MADE_UP}"),  # a chart span no command offers
        (ATTACKER, "cb:nosuchspan"),
        (ATTACKER, f"rt:d:{MADE_UP}:0"),  # pages of the presser's own tables only
        (ATTACKER, f"rt:x:7:{MADE_UP}"),
        (ATTACKER, f"pf:{MADE_UP}"),
        (ATTACKER, f"bt:{w.victim_backtest}"),  # cancel the victim's running backtest
        (ATTACKER, f"bt:{MADE_UP}"),
        (ATTACKER, "bt:notarun"),
        *[(ADMIN, f"adm:{act}:{MADE_UP}") for act in ("card", "grant", "revoke", "block")],
        (ADMIN, f"adm:granted:{MADE_UP}:0"),
        (ADMIN, f"adm:granted:{VICTIM}:{MADE_UP}"),  # a confirmation no card asked for
        (ADMIN, f"bc:go:{MADE_UP}"),
        (ADMIN, f"bc:no:{MADE_UP}"),
        (ADMIN, f"bc:go:{w.cancelled_broadcast}"),  # cancelled
        (ADMIN, f"lic:active:{MADE_UP}"),
        (ADMIN, f"pl:{MADE_UP}"),
    ]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_bot(tmp_path) as bot:
        yield await _build(bot)


async def test_every_tampered_press_is_refused_and_changes_nothing(world: World) -> None:
    bot = world.bot
    table = _table(world)
    assert {data.split(":")[0] for _, data in table} == set(registered_prefixes(bot))
    failures = []
    for presser, data in table:
        before = await business_state(bot.store)
        rejected = len(bot.state.rejected)
        calls = await bot.press(presser, world.message, data)
        after = await business_state(bot.store)
        answers = [c.params for c in calls if c.method == "answerCallbackQuery"]
        to_victim = [c for c in calls if c.params.get("chat_id") == VICTIM]
        wrong = problems(calls, bot.state.rejected[rejected:])
        if after != before:
            changed = [t for t in after if after[t] != before[t]]
            wrong.append(f"changed {changed}")
        if len(answers) != 1:
            wrong.append(f"{len(answers)} answers")
        elif data.split(":")[0] not in PAGING and not answers[0].get("text"):
            wrong.append("answered without a word of refusal")
        if to_victim:
            wrong.append("told the victim")
        if wrong:
            failures.append(f"{data}: {wrong} {[a.get('text') for a in answers]}")
    assert failures == []
    # The control: the same press by its owner does act, so the comparison can see a change.
    before = await business_state(bot.store)
    await bot.press(VICTIM, world.message, f"ok:{world.victim_card}")
    assert await business_state(bot.store) != before
