"""Positions, orders and cards read the same: one symbol form, one quantity form, — for none."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from core.exchange.models import OrderRequest, OrderType, Side
from handlers.render import level, quantity
from tests.harness import running_bot, texts

TRADER = 42
BTC = "BTC/USDT:USDT"


async def test_a_position_opened_elsewhere_shows_no_levels_as_a_dash(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "paper", "paper")
        market = (await bot.services.market.markets("paper"))[BTC]
        async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
            await client.create_order(
                OrderRequest(BTC, Side.BUY, OrderType.MARKET, market.min_qty * 10, "twtestout1")
            )
        # What Bybit reports for a position without TP/SL set from its own app: zeros.
        store = bot.services.users._users.store
        await store.execute(
            "t.levels", "UPDATE paper_positions SET take_profit = '0', stop_loss = '0'", ()
        )
        bot.services.cache.clear()  # the position as the exchange reports it now
        calls = await bot.send(TRADER, "/positions")
        (listing,) = texts(calls)
        assert "TP — · SL —" in listing and "0.0" not in listing.split("TP")[1]
        assert f"1. {BTC} · LONG " in listing
        (close,) = [
            b
            for row in calls[-1].params["reply_markup"]["inline_keyboard"]
            for b in row
            if b["callback_data"].startswith("cl:")
        ]
        assert close["text"] == f"Close {BTC} long"
        card_calls = await bot.press(TRADER, calls[-1].result, close["callback_data"])
        (card,) = texts(card_calls)
        assert f"your LONG {BTC} · Paper" in card
        qty = listing.split("LONG ")[1].split(" ·")[0]
        assert f"Quantity: {qty} of {qty} BTC" in card  # the same digits in list and card


async def test_zero_quantities_and_levels_print_one_way() -> None:
    assert level(None) == level(Decimal(0)) == level(Decimal("0.00")) == "—"
    assert quantity(Decimal("0.0")) == quantity(Decimal(0)) == "0"
    assert quantity(Decimal("0.010")) == "0.01"
