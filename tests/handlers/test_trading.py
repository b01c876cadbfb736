"""/long, /short, /close, /cancel and their buttons through the real Application, on paper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from core.exchange.models import OrderRequest, OrderType, PositionSide, Side
from db.repositories.intents import IntentRecord, IntentRepository
from db.repositories.licenses import LicenseRepository
from services.caching import BALANCE, account_key
from services.trading import LICENCE_NEEDED
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER, LAPSED = 42, 43, 44
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        for user in (TRADER, OTHER, LAPSED):
            await harness.send(user, "/start")
            await harness.services.accounts.connect(user, "paper", "paper")
        for user in (TRADER, OTHER):
            await _licences(harness).extend(user, 30, "pro", "grant", harness.services.clock.now())
        yield harness


def _licences(bot: BotHarness) -> LicenseRepository:
    return LicenseRepository(bot.store)


async def _intents(bot: BotHarness, user: int) -> list[IntentRecord]:
    return await IntentRepository(bot.store).for_user(user, 100)


def _card(calls: list[ApiCall]) -> tuple[dict[str, Any], str]:
    """The message carrying Confirm/Cancel buttons, and its client order id."""
    for call in calls:
        result = call.result
        if isinstance(result, dict) and "reply_markup" in result:
            data = result["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            if data.startswith("ok:"):
                return result, data.removeprefix("ok:")
    raise AssertionError(f"no confirmation card in {texts(calls)}")


def _answers(calls: list[ApiCall]) -> list[str]:
    return [str(c.params.get("text", "")) for c in calls if c.method == "answerCallbackQuery"]


async def _positions(bot: BotHarness, user: int) -> dict[str, Any]:
    async with bot.services.exchanges.lease(user, "paper", "paper") as client:
        return {p.symbol: p for p in await client.fetch_positions()}


async def _fills(bot: BotHarness, user: int) -> int:
    async with bot.services.exchanges.lease(user, "paper", "paper") as client:
        return len(await client.recent_fills())  # type: ignore[attr-defined]  # paper only


async def _price(bot: BotHarness, symbol: str) -> Decimal:
    return (await bot.services.market.ticker("paper", symbol)).last


async def _open(bot: BotHarness, user: int, text: str) -> str:
    """Send an opening command and confirm its card; return the client order id."""
    message, cid = _card(await bot.send(user, text))
    (done,) = texts(await bot.press(user, message, f"ok:{cid}"))
    assert done.startswith("✅ Opened"), done
    return cid


async def test_long_shows_a_card_and_places_nothing_until_confirm(bot: BotHarness) -> None:
    stale = account_key(TRADER, "paper", "paper")
    bot.services.cache.cache(BALANCE.name).set(stale, "cached before the order")
    calls = await bot.send(TRADER, "/long btcusdt 100 10")
    message, cid = _card(calls)
    text = message["text"]
    price = await _price(bot, BTC)
    assert text.startswith("Confirm LONG BTC/USDT:USDT · Paper")
    assert "Quantity: 0.001 BTC" in text and "Leverage: 10×" in text
    assert "taker 0.055 %" in text and "valid for 2 minutes" in text
    (draft,) = await _intents(bot, TRADER)
    assert (draft.client_order_id, draft.status, draft.origin) == (cid, "draft", "manual")
    assert draft.leverage == 10 and draft.qty == Decimal("0.001")
    assert draft.take_profit is not None and draft.stop_loss is not None
    assert draft.stop_loss < price < draft.take_profit  # strategy: +3 % / −1.5 %
    assert await _positions(bot, TRADER) == {}

    pressed = await bot.press(TRADER, message, f"ok:{cid}")
    (result,) = texts(pressed)
    assert result.startswith("✅ Opened: LONG BTC/USDT:USDT · Paper")
    assert "Filled 0.001 BTC at" in result and "Fee:" in result
    position = (await _positions(bot, TRADER))[BTC]
    assert (position.side, position.qty, position.leverage) == (PositionSide.LONG, draft.qty, 10)
    assert (position.take_profit, position.stop_loss) == (draft.take_profit, draft.stop_loss)
    (placed,) = await _intents(bot, TRADER)
    assert placed.status == "filled" and placed.exchange_order_id
    assert bot.services.cache.cache(BALANCE.name).get(stale) is None


async def test_short_mirrors_take_profit_and_stop_loss(bot: BotHarness) -> None:
    await _open(bot, TRADER, "/short ETH/USDT:USDT 100 5")
    position = (await _positions(bot, TRADER))[ETH]
    assert position.side is PositionSide.SHORT and position.leverage == 5
    assert position.take_profit is not None and position.stop_loss is not None
    assert position.take_profit < position.entry_price < position.stop_loss


async def test_leverage_defaults_to_the_strategy(bot: BotHarness) -> None:
    _card(await bot.send(TRADER, "/long ETH 100"))
    (draft,) = await _intents(bot, TRADER)
    assert draft.leverage == 5  # StrategyRecord's default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/long", "/long SYMBOL USDT [LEVERAGE] — e.g. /long BTC 50 10"),
        ("/short BTC", "/short SYMBOL USDT [LEVERAGE]"),
        ("/long BTC 100 10 extra", "/long SYMBOL USDT [LEVERAGE]"),
        ("/long XBTQ 100", "XBTQ is not listed on Paper. Did you mean"),
        ("/long BTC abc", "The amount must be a plain number, not abc (accepted: "),
        ("/long BTC nan", "The amount must be a finite number (accepted: "),
        ("/long BTC -Infinity", "The amount must be a finite number"),
        ("/long BTC -5", "The amount must be positive (accepted: "),
        ("/long BTC 0", "The amount must be positive"),
        ("/long BTC 1e3", "must be a plain number"),
        ("/long BTC 100.123456789", "more than 8 decimals"),
        ("/long BTC 99999999999", "is not a realistic amount"),
        ("/long BTC 1", "1 USDT is below the minimum order (accepted: "),
        ("/long BTC 200000 10", "is more than your available margin allows (accepted: "),
        ("/long BTC 100 0", "Leverage 0× is out of range: a whole number from 1 to 100."),
        ("/long BTC 100 101", "Leverage 101× is out of range"),
        ("/long BTC 100 2.5", "Leverage must be a whole number from 1 to 100"),
        ("/close", "/close SYMBOL [PERCENT] — e.g. /close BTC 50"),
        ("/close BTC 0", "The percentage must be from 1 to 100"),
        ("/close BTC 150", "The percentage must be from 1 to 100"),
        ("/close BTC half", "The percentage must be a plain number"),
        ("/close BTC", "You have no open BTC/USDT:USDT position on Paper."),
        ("/cancel", "/cancel ORDER_ID"),
        ("/cancel 123 456", "/cancel ORDER_ID"),
        ("/cancel nope<b>", "No open order nope<b> on Paper."),
    ],
)
async def test_bad_input_gets_a_reason_and_nothing_is_written(
    bot: BotHarness, text: str, expected: str
) -> None:
    (reply,) = texts(await bot.send(TRADER, text))
    assert expected in reply
    assert await _intents(bot, TRADER) == []


async def test_amount_range_names_the_margin_limit(bot: BotHarness) -> None:
    (reply,) = texts(await bot.send(TRADER, "/long BTC 1 3"))
    price = await _price(bot, BTC)
    smallest = (price * Decimal("0.001")).quantize(Decimal("0.01"), ROUND_CEILING)  # one lot
    assert f"(accepted: {smallest:,.2f} to 30,000.00 USDT)" in reply  # 10,000 margin × 3


async def test_opening_needs_a_licence_closing_and_cancelling_never(bot: BotHarness) -> None:
    (refused,) = texts(await bot.send(LAPSED, "/long BTC 100"))
    assert refused == LICENCE_NEEDED
    assert "Closing positions, cancelling orders and viewing never need one." in refused
    assert await _intents(bot, LAPSED) == []
    # Licensed long enough to open a position and rest an order, then the licence ends.
    await _licences(bot).extend(LAPSED, 30, "pro", "grant", bot.services.clock.now())
    await _open(bot, LAPSED, "/long ETH 100 5")
    order_id = await _rest_limit_order(bot, LAPSED, "lapsed1")
    message, cid = _card(await bot.send(LAPSED, "/long BTC 100"))
    await bot.store.execute(
        "t.expire", "UPDATE user_licenses SET end_at = 0 WHERE user_id = ?", (LAPSED,)
    )
    calls = await bot.press(LAPSED, message, f"ok:{cid}")
    assert _answers(calls) == [LICENCE_NEEDED] and texts(calls) == []
    assert BTC not in await _positions(bot, LAPSED)

    (cancelled,) = texts(await bot.send(LAPSED, f"/cancel {order_id}"))
    assert cancelled.startswith("✖️ Order cancelled")
    message, cid = _card(await bot.send(LAPSED, "/close ETH"))
    (closed,) = texts(await bot.press(LAPSED, message, f"ok:{cid}"))
    assert closed.startswith("✅ Closed: LONG ETH/USDT:USDT")
    assert await _positions(bot, LAPSED) == {}


async def test_a_foreign_press_is_refused_and_changes_nothing(bot: BotHarness) -> None:
    message, cid = _card(await bot.send(TRADER, "/long BTC 100 10"))
    for data in (f"ok:{cid}", f"no:{cid}"):
        calls = await bot.press(OTHER, message, data)
        assert _answers(calls) == ["This card belongs to another trader; only they can use it."]
        assert texts(calls) == []
    (draft,) = await _intents(bot, TRADER)
    assert draft.status == "draft"
    assert await _positions(bot, TRADER) == {} and await _positions(bot, OTHER) == {}


async def test_an_expired_card_is_refused_politely(bot: BotHarness) -> None:
    message, cid = _card(await bot.send(TRADER, "/long BTC 100 10"))
    await bot.store.execute(
        "t.age", "UPDATE order_intents SET expires_at = 0 WHERE client_order_id = ?", (cid,)
    )
    calls = await bot.press(TRADER, message, f"ok:{cid}")
    assert _answers(calls) == ["This card expired; send the command again for a fresh price."]
    (edited,) = texts(calls)
    assert edited.startswith("⌛ This card expired")
    (intent,) = await _intents(bot, TRADER)
    assert intent.status == "expired" and await _positions(bot, TRADER) == {}


async def test_unpressed_cards_are_expired_by_the_job_and_refused_after(bot: BotHarness) -> None:
    message, stale = _card(await bot.send(TRADER, "/long BTC 100 10"))
    _, fresh = _card(await bot.send(TRADER, "/short ETH 100 5"))
    await bot.store.execute(
        "t.age", "UPDATE order_intents SET expires_at = 0 WHERE client_order_id = ?", (stale,)
    )
    assert await bot.services.trading.expire_cards() == 1  # only the card past its expiry
    statuses = {i.client_order_id: i.status for i in await _intents(bot, TRADER)}
    assert statuses == {stale: "expired", fresh: "draft"}
    calls = await bot.press(TRADER, message, f"ok:{stale}")
    assert _answers(calls) == ["This card expired; send the command again for a fresh price."]
    assert await _positions(bot, TRADER) == {}


async def test_an_unknown_card_is_refused(bot: BotHarness) -> None:
    message, _ = _card(await bot.send(TRADER, "/long BTC 100 10"))
    calls = await bot.press(TRADER, message, "ok:tw0000000000000000000000000000")
    assert _answers(calls) == ["This card is no longer valid; send the command again."]
    assert await _positions(bot, TRADER) == {}


async def test_cancel_drops_the_draft(bot: BotHarness) -> None:
    message, cid = _card(await bot.send(TRADER, "/short BTC 100"))
    calls = await bot.press(TRADER, message, f"no:{cid}")
    assert texts(calls) == ["✖️ Cancelled — nothing was sent to the exchange."]
    (intent,) = await _intents(bot, TRADER)
    assert intent.status == "cancelled"
    again = await bot.press(TRADER, message, f"ok:{cid}")
    assert _answers(again) == ["This card was cancelled; send the command again."]
    assert await _positions(bot, TRADER) == {}


async def test_pressing_confirm_twice_places_one_order(bot: BotHarness) -> None:
    message, cid = _card(await bot.send(TRADER, "/long BTC 100 10"))
    await bot.press(TRADER, message, f"ok:{cid}")
    second = await bot.press(TRADER, message, f"ok:{cid}")  # a redelivered or repeated press
    assert _answers(second) == ["Already confirmed: this order is placed once only."]
    assert await _fills(bot, TRADER) == 1
    assert (await _positions(bot, TRADER))[BTC].qty == Decimal("0.001")


async def test_concurrent_presses_place_one_order(bot: BotHarness) -> None:
    message, cid = _card(await bot.send(TRADER, "/long BTC 100 10"))
    before = len(bot.state.calls)
    await asyncio.gather(
        bot.press(TRADER, message, f"ok:{cid}"), bot.press(TRADER, message, f"ok:{cid}")
    )
    answers = sorted(_answers(bot.state.calls[before:]))  # the presses' calls interleave
    assert answers == ["Already confirmed: the order is being placed, once only.", "Done."]
    assert await _fills(bot, TRADER) == 1
    (intent,) = await _intents(bot, TRADER)
    assert intent.status == "filled" and intent.attempts == 1


async def test_a_refused_order_turns_the_card_into_the_reason(bot: BotHarness) -> None:
    first, first_id = _card(await bot.send(TRADER, "/long BTC 9000 1"))
    second, second_id = _card(await bot.send(TRADER, "/long ETH 9000 1"))
    await bot.press(TRADER, first, f"ok:{first_id}")
    (refused,) = texts(await bot.press(TRADER, second, f"ok:{second_id}"))
    assert refused.startswith("❌ Not placed: LONG ETH/USDT:USDT · Paper")
    again = await bot.press(TRADER, second, f"ok:{second_id}")
    assert _answers(again) == ["This order was refused already; send the command again to retry."]
    statuses = {i.symbol: i.status for i in await _intents(bot, TRADER)}
    assert statuses == {BTC: "filled", ETH: "rejected"}
    assert list(await _positions(bot, TRADER)) == [BTC]


async def test_close_half_writes_a_trade_log(bot: BotHarness) -> None:
    amount = (await _price(bot, ETH) * Decimal("0.065")).quantize(Decimal("0.01"))
    await _open(bot, TRADER, f"/long ETH {amount} 10")  # 0.06 ETH after lot rounding
    entry = (await _positions(bot, TRADER))[ETH].entry_price
    message, cid = _card(await bot.send(TRADER, "/close eth 50"))
    assert "Confirm closing 50% of your LONG ETH/USDT:USDT" in message["text"]
    assert "Quantity: 0.03 of 0.06 ETH" in message["text"]
    (closed,) = texts(await bot.press(TRADER, message, f"ok:{cid}"))
    assert closed.startswith("✅ Closed: LONG ETH/USDT:USDT") and "Realised PnL:" in closed
    assert (await _positions(bot, TRADER))[ETH].qty == Decimal("0.03")
    (record,) = await bot.services.history.recent(TRADER)
    trade = record.trade
    assert (trade.symbol, trade.side, trade.qty, trade.close_reason) == (
        ETH,
        "long",
        Decimal("0.03"),
        "manual",
    )
    assert trade.entry_price == entry and trade.leverage == 10 and trade.origin == "manual"
    expected = (trade.exit_price - entry) * trade.qty - trade.fee
    assert abs(trade.pnl - expected) < Decimal("1e-8")
    assert trade.fee > 0 and trade.entry_ts <= trade.exit_ts


async def test_close_button_from_positions_opens_a_full_close_card(bot: BotHarness) -> None:
    await _open(bot, TRADER, "/short BTC 100 10")
    positions_view = _sent(await bot.send(TRADER, "/help"))
    calls = await bot.press(TRADER, positions_view, "cl:BTCUSDT")
    message, cid = _card(calls)
    assert "Confirm closing 100% of your SHORT BTC/USDT:USDT" in message["text"]
    (closed,) = texts(await bot.press(TRADER, message, f"ok:{cid}"))
    assert closed.startswith("✅ Closed: SHORT BTC/USDT:USDT")
    assert await _positions(bot, TRADER) == {}
    (record,) = await bot.services.history.recent(TRADER)
    trade = record.trade
    expected = (trade.entry_price - trade.exit_price) * trade.qty - trade.fee
    assert trade.side == "short" and abs(trade.pnl - expected) < Decimal("1e-8")
    gone = await bot.press(TRADER, positions_view, "cl:BTCUSDT")
    assert _answers(gone) == [
        "You have no open BTC/USDT:USDT position on Paper. /positions lists yours."
    ]


async def test_cancel_command_and_button_cancel_open_orders(bot: BotHarness) -> None:
    first = await _rest_limit_order(bot, TRADER, "rest1")
    second = await _rest_limit_order(bot, TRADER, "rest2")
    (reply,) = texts(await bot.send(TRADER, f"/cancel {first}"))
    assert reply == f"✖️ Order cancelled: buy 0.001 BTC/USDT:USDT (id {first})"
    orders_view = _sent(await bot.send(TRADER, "/help"))
    calls = await bot.press(TRADER, orders_view, f"co:{second}")
    assert _answers(calls) == ["Order cancelled."]
    assert texts(calls) == [f"✖️ Order cancelled: buy 0.001 BTC/USDT:USDT (id {second})"]
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        assert await client.fetch_open_orders() == []
    again = await bot.press(TRADER, orders_view, f"co:{second}")
    assert _answers(again) == [f"No open order {second} on Paper. /orders lists yours."]
    foreign = await bot.press(OTHER, orders_view, f"co:{first}")
    assert _answers(foreign) == [f"No open order {first} on Paper. /orders lists yours."]


async def _rest_limit_order(bot: BotHarness, user: int, key: str) -> str:
    """A buy limit far below the market: it rests until cancelled."""
    price = (await _price(bot, BTC) / 2).quantize(Decimal("0.1"))
    request = OrderRequest(
        BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"), f"twtest{key}", price=price
    )
    async with bot.services.exchanges.lease(user, "paper", "paper") as client:
        return (await client.create_order(request)).order_id


def _sent(calls: list[ApiCall]) -> dict[str, Any]:
    """The bot message a reply created (to press buttons under it)."""
    (message,) = [c.result for c in calls if c.method == "sendMessage"]
    assert isinstance(message, dict)
    return message
