"""/tp, /sl, /trail and the TP/SL buttons under /positions, through the real Application on
the paper exchange: right and wrong input, the confirmation card for a looser stop, and
trailing stops that follow the price and fire, restarts included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from core.exchange.models import Position
from core.paper.book import EventKind
from db.repositories.licenses import LicenseRepository
from tests.handlers.test_trading import _open
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER, ADMIN = 42, 43, 99
BTC = "BTC/USDT:USDT"
TICK = Decimal("0.1")  # the synthetic market's BTC tick


async def _licensed(bot: BotHarness, user: int = TRADER) -> None:
    await LicenseRepository(bot.store).extend(user, 30, "pro", "grant", bot.services.clock.now())


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        for user in (TRADER, OTHER):
            await harness.send(user, "/start")
            await harness.services.accounts.connect(user, "paper", "paper")
        await _licensed(harness)
        yield harness


async def reply(bot: BotHarness, text: str, user: int = TRADER) -> str:
    (answer,) = texts(await bot.send(user, text))
    return answer


def keys(calls: list[ApiCall]) -> list[tuple[str, str]]:
    found = []
    for call in calls:
        markup = call.params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            found += [(b["text"], b["callback_data"]) for b in row]
    return found


def said(calls: list[ApiCall]) -> list[str]:
    """Messages sent or edited, and the texts of answered button presses (refusals)."""
    answers = [
        str(c.params["text"])
        for c in calls
        if c.method == "answerCallbackQuery" and c.params.get("text")
    ]
    return texts(calls) + answers


def sent(calls: list[ApiCall]) -> dict[str, Any]:
    message = [c.result for c in calls if c.method in ("sendMessage", "editMessageText")][-1]
    assert isinstance(message, dict)
    return message


async def position(bot: BotHarness, user: int = TRADER) -> Position:
    client = bot.services.exchanges.account(user, "paper", "paper")
    (held,) = await client.positions(fresh=True)
    return held


async def last(bot: BotHarness) -> Decimal:
    return (await bot.services.market.ticker("paper", BTC)).last


async def test_tp_and_sl_in_every_accepted_form(bot: BotHarness) -> None:
    await _open(bot, TRADER, "/long BTC 100 5")
    price = await last(bot)  # the synthetic market drifts with time: compared within 0.5 %
    text = await reply(bot, "/tp BTC +3%")
    assert text.startswith("✅ Take profit of your LONG BTC set at ") and ", +3.00 %" in text
    tp = (await position(bot)).take_profit
    assert tp is not None and f"set at {tp:,f}," in text
    assert abs(tp / price - Decimal("1.03")) < Decimal("0.005")

    level = int(price * Decimal("1.1"))
    assert "set at" in await reply(bot, f"/tp btcusdt {level}")
    assert (await position(bot)).take_profit == level

    text = await reply(bot, "/sl BTC -1%")
    assert text.startswith("✅ Stop loss of your LONG BTC moved to ")
    first = (await position(bot)).stop_loss
    assert first is not None and first < price

    tighter = first + 10 * TICK  # closer to the price: less risk, no card
    assert "moved to" in await reply(bot, f"/sl BTC {tighter}")
    assert (await position(bot)).stop_loss == tighter

    assert "removed" in await reply(bot, "/tp BTC off")
    assert (await position(bot)).take_profit is None


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/tp BTC", "Usage: /tp SYMBOL PRICE or /tp SYMBOL +PCT%"),
        ("/sl BTC 1 2", "Usage: /sl SYMBOL PRICE or /sl SYMBOL -PCT%"),
        ("/trail", "Usage: /trail SYMBOL DISTANCE"),
        ("/tp BTC abc", "Usage: /tp SYMBOL PRICE"),
        ("/tp BTC 1", "A take profit on your LONG BTC must be above the last price"),
        ("/tp BTC -3%", "A take profit is a gain: +3%."),
        ("/sl BTC +2%", "A stop loss is a loss: -2%."),
        ("/sl BTC -30%", "is beyond your liquidation price"),
        ("/sl BTC 1000000", "on the wrong side of the last price"),
        ("/tp BTC 0.001%", "A distance must be from 0.01 % to 1000 %"),
        ("/tp BTC 2000%", "A distance must be from 0.01 % to 1000 %"),
        ("/trail BTC 0.00001%", "rounds to nothing on its 0.1 tick"),
        ("/trail BTC 50%", "would put the stop beyond your liquidation price: accepted from 0.1"),
        ("/trail BTC -1%", "Usage: /trail SYMBOL DISTANCE"),
        ("/trail BTC", "You have no default trailing distance: /set trail_pct 1.5"),
        ("/tp ETH +3%", "You have no open ETH position on Paper."),
        ("/sl NOPE -1%", "NOPE is not listed on Paper."),
    ],
)
async def test_wrong_input_is_refused_with_the_accepted_range(
    bot: BotHarness, command: str, expected: str
) -> None:
    await _open(bot, TRADER, "/long BTC 100 5")
    before = await position(bot)
    assert expected in await reply(bot, command)
    after = await position(bot)
    assert (after.take_profit, after.stop_loss, after.trailing_distance) == (
        before.take_profit,
        before.stop_loss,
        before.trailing_distance,
    )


async def test_a_looser_stop_asks_first_and_a_tighter_one_does_not(bot: BotHarness) -> None:
    await _open(bot, TRADER, "/long BTC 100 5")
    await reply(bot, "/sl BTC -1%")
    tight = (await position(bot)).stop_loss
    calls = await bot.send(TRADER, "/sl BTC -2%")
    (card,) = texts(calls)
    assert card.startswith("⚠️ This moves the stop loss (") and "further from the price" in card
    assert "more lost" in card
    (confirm, confirm_data), (_, cancel_data) = keys(calls)
    assert confirm == "Confirm" and confirm_data.startswith("mc:")
    assert (await position(bot)).stop_loss == tight  # nothing sent yet

    refused = texts(await bot.press(OTHER, sent(calls), confirm_data))  # not theirs
    assert refused == [] or "no open BTC position" in refused[0]
    assert (await position(bot)).stop_loss == tight
    (undone,) = texts(await bot.press(TRADER, sent(calls), cancel_data))
    assert undone.startswith("Nothing changed")
    assert (await position(bot)).stop_loss == tight

    calls = await bot.send(TRADER, "/sl BTC -2%")
    (done,) = texts(await bot.press(TRADER, sent(calls), keys(calls)[0][1]))
    assert done.startswith("✅ Stop loss of your LONG BTC moved to ")
    loose = (await position(bot)).stop_loss
    assert loose is not None and tight is not None and loose < tight

    calls = await bot.send(TRADER, "/sl BTC off")  # no stop at all: the most risk
    assert texts(calls)[0].startswith("⚠️ This removes the stop loss of your LONG BTC")
    await bot.press(TRADER, sent(calls), keys(calls)[0][1])
    assert (await position(bot)).stop_loss is None


async def test_position_buttons_change_tp_sl_break_even_and_remove(bot: BotHarness) -> None:
    await _open(bot, TRADER, "/long BTC 100 5")
    listing = await bot.send(TRADER, "/positions")
    labels = [label for label, _ in keys(listing)]
    assert labels[1:5] == ["1. TP", "1. SL", "1. SL→BE", "1. ✖ TP/SL"]
    assert labels.count("🔄 Refresh") == 1 and labels[-1] == "🔄 Refresh"
    data = dict(keys(listing))

    menu = await bot.press(TRADER, sent(listing), data["1. TP"])
    assert "Pick a take profit" in texts(menu)[0]
    assert [k for k, _ in keys(menu)] == ["+2%", "+5%", "+10%"]
    done = await bot.press(TRADER, sent(menu), keys(menu)[1][1])
    assert texts(done)[0].startswith("✅ Take profit of your LONG BTC set at ")
    assert ", +5.00 %" in texts(done)[0]

    menu = await bot.press(TRADER, sent(listing), data["1. SL"])
    done = await bot.press(TRADER, sent(menu), keys(menu)[0][1])  # -1 %: tighter than -1.5 %
    assert texts(done)[0].startswith("✅ Stop loss of your LONG BTC moved to ")

    # The synthetic market drifts on its own: in profit the stop goes to the entry, otherwise
    # it is refused (the local Bybit test moves the price on purpose).
    (words,) = said(await bot.press(TRADER, sent(listing), data["1. SL→BE"]))
    held = await position(bot)
    if "(break-even)" in words:
        assert held.stop_loss == (held.entry_price / TICK).quantize(Decimal(1)) * TICK
    else:
        assert "a stop at break-even would close the position at once" in words

    card = await bot.press(TRADER, sent(listing), data["1. ✖ TP/SL"])
    assert texts(card)[0].startswith("⚠️ This removes the stop loss (and any trailing stop)")
    (_, confirm), (_, _cancel) = keys(card)
    assert confirm.endswith(":x")
    await bot.press(TRADER, sent(card), confirm)
    held = await position(bot)
    assert (held.take_profit, held.stop_loss) == (None, None)

    again = await bot.press(TRADER, sent(listing), data["1. ✖ TP/SL"])  # nothing to lose: at once
    assert texts(again)[0].startswith("✅ Take profit, stop loss and trailing stop")


async def test_paper_trailing_stop_follows_the_price_and_fires(bot: BotHarness) -> None:
    await _open(bot, TRADER, "/long BTC 100 5")
    await reply(bot, "/tp BTC off")
    price = await last(bot)
    text = await reply(bot, "/trail BTC 1%")
    assert "trails its stop loss" in text and "the exchange keeps it" in text
    distance = (await position(bot)).trailing_distance
    assert distance is not None and abs(distance / price - Decimal("0.01")) < Decimal("0.0001")
    engine = bot.services.exchanges.paper_engine
    top = price * Decimal("1.05")
    report = await engine.on_prices({BTC: top})
    assert report.events == ()  # a new best moves the stop, fires nothing
    held = await position(bot)
    assert held.stop_loss == top - distance
    report = await engine.on_prices({BTC: top - distance / 2})  # above the stop
    assert report.events == ()
    report = await engine.on_prices({BTC: top - distance * 2})
    assert report.count(EventKind.STOP_LOSS) == 1
    client = bot.services.exchanges.account(TRADER, "paper", "paper")
    assert list(await client.positions(fresh=True)) == []


async def test_paper_trailing_with_activation_survives_a_restart(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "paper", "paper")
        await _licensed(bot)
        await _open(bot, TRADER, "/long BTC 100 5")
        await reply(bot, "/tp BTC off")
        entry = (await position(bot)).entry_price
        await reply(bot, "/set trail_pct 1")
        await reply(bot, "/set trail_activation_pct 2")
        text = await reply(bot, "/trail BTC")
        assert "once the price reaches" in text
        engine = bot.services.exchanges.paper_engine
        stop = (await position(bot)).stop_loss
        assert (await engine.on_prices({BTC: entry * Decimal("1.01")})).events == ()
        assert (await position(bot)).stop_loss == stop  # not active yet
        peak = entry * Decimal("1.04")
        await engine.on_prices({BTC: peak})
        moved = (await position(bot)).stop_loss
        assert moved is not None and stop is not None and moved > stop
        state = bot.state
    async with running_bot(tmp_path, state=state) as bot:
        held = await position(bot)
        assert held.stop_loss == moved and held.trailing_distance is not None
        engine = bot.services.exchanges.paper_engine
        await engine.on_prices({BTC: peak * Decimal("0.999")})  # a dip above the stop
        assert (await position(bot)).stop_loss == moved  # the peak survived the restart
        report = await engine.on_prices({BTC: moved - 1})
        assert report.count(EventKind.STOP_LOSS) == 1


async def test_managing_needs_no_licence(bot: BotHarness) -> None:
    await _open(bot, TRADER, "/long BTC 100 5")
    await bot.send(ADMIN, f"/revoke {TRADER}")
    await bot.state.wait_for_call("sendMessage", lambda c: "revoked" in str(c.params["text"]))
    assert "needs an active licence" in await reply(bot, "/long ETH 100 5")
    assert "set at" in await reply(bot, "/tp BTC +4%")
    assert "moved to" in await reply(bot, "/sl BTC -1%")
    assert "trails its stop loss" in await reply(bot, "/trail BTC 2%")


async def test_set_sl_pct_warns_past_liquidation(bot: BotHarness) -> None:
    text = await reply(bot, "/set sl_pct 25")
    assert "⚠️ At 5× a position is liquidated about 19.50 % from its entry" in text
    assert "⚠️" not in await reply(bot, "/set sl_pct 2")
    text = await reply(bot, "/set leverage 20")
    assert "⚠️" not in text
    text = await reply(bot, "/set sl_pct 5")
    assert "liquidated about 4.50 % from its entry, before your 5 % stop loss" in text
    assert "off" in await reply(bot, "/set trail_pct off")
    assert "trail_pct must be a trailing distance from 0.1 to 50" in await reply(
        bot, "/set trail_pct 90"
    )


async def test_the_strategy_trail_pct_trails_every_new_entry(bot: BotHarness) -> None:
    assert "trail_pct is now 1.5%" in await reply(bot, "/set trail_pct 1.5")
    await _open(bot, TRADER, "/long BTC 100 5")
    held = await position(bot)
    distance = held.trailing_distance
    assert distance is not None
    assert abs(distance / held.mark_price - Decimal("0.015")) < Decimal("0.0001")
    assert "trailing " in await reply(bot, "/positions")


async def test_a_short_mirrors_every_level(bot: BotHarness) -> None:
    await _open(bot, TRADER, "/short BTC 100 5")
    price = await last(bot)
    text = await reply(bot, "/tp BTC +3%")  # a gain for a short is below the price
    assert ", -3.00 %" in text
    tp = (await position(bot)).take_profit
    assert tp is not None and abs(tp / price - Decimal("0.97")) < Decimal("0.005")
    assert "must be below the last price" in await reply(bot, "/tp BTC 1000000")
    text = await reply(bot, "/sl BTC -1%")  # a loss for a short is above the price
    assert ", +1.00 %" in text
    stop = (await position(bot)).stop_loss
    assert stop is not None and stop > price
    assert "is beyond your liquidation price" in await reply(bot, "/sl BTC -30%")
    card = await reply(bot, "/sl BTC -2%")  # higher for a short: further, so asked first
    assert card.startswith("⚠️ This moves the stop loss")
    assert "removed" in await reply(bot, "/tp BTC off")  # it would take the profit first
    assert "trails its stop loss" in await reply(bot, "/trail BTC 1%")
    held = await position(bot)
    assert held.trailing_distance is not None
    engine = bot.services.exchanges.paper_engine
    low = price * Decimal("0.95")
    assert (await engine.on_prices({BTC: low})).events == ()  # a new best for a short
    assert (await position(bot)).stop_loss == low + held.trailing_distance
    report = await engine.on_prices({BTC: low + held.trailing_distance * 2})
    assert report.count(EventKind.STOP_LOSS) == 1
