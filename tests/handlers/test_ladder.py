"""Take-profit ladders through the real Application: /set tp_ladder with right and wrong
input, the parts placed as reduce-only limit orders once the entry fills (paper and the
local Bybit server), the parts filling as the price climbs, and the stop loss moved to the
entry after the first one, with a restart in between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from core.exchange.credentials import ApiCredentials
from core.exchange.models import OrderType
from core.paper.book import EventKind
from tests.exchange_server import ExchangeServer
from tests.handlers.test_manage import _licensed, reply
from tests.handlers.test_manage_venues import KEY, SECRET, _btc
from tests.handlers.test_trading import _open
from tests.harness import BotHarness, running_bot

TRADER = 42
BTC = "BTC/USDT:USDT"


def ladder_parts(qty: Decimal, shares: list[int], lot: Decimal = Decimal("0.001")) -> list[Decimal]:
    """Each part as the trader's shares ask, in whole lots: the running share of the position
    rounded to the nearest lot, part by part (so no lot is left without a take profit)."""
    totals, running = [], 0
    for share in shares:
        running += share
        totals.append((qty * running / 100 / lot).quantize(Decimal(1), ROUND_HALF_UP) * lot)
    return [b - a for a, b in zip([Decimal(0), *totals], totals, strict=False)]


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(TRADER, "/start")
        await harness.services.accounts.connect(TRADER, "paper", "paper")
        await _licensed(harness)
        yield harness


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=10, seed=5) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2%:50,4%:60", "The shares add up to 110 %, over 100."),
        ("1:10,2:10,3:10,4:10", "tp_ladder is up to 3 parts PCT%:SHARE"),
        ("abc", "tp_ladder is up to 3 parts PCT%:SHARE"),
        ("0.01%:50", "Each part is 0.1–500 % from the entry and 1–100 % of the position."),
        ("2%:0", "Each part is 0.1–500 % from the entry"),
        ("2%:50,2%:20", "Two parts at the same distance."),
    ],
)
async def test_wrong_ladders_are_refused(paper: BotHarness, value: str, expected: str) -> None:
    assert expected in await reply(paper, f"/set tp_ladder {value}")
    assert (await paper.services.strategy.settings(TRADER)).tp_ladder is None


async def test_paper_ladder_is_placed_after_the_entry_and_fills_part_by_part(
    paper: BotHarness,
) -> None:
    bot = paper
    text = await reply(bot, "/set tp_ladder 4%:30, 2%:50 ,8%:20")
    assert text.startswith("✅ tp_ladder is now 2%:50, 4%:30, 8%:20.\nPlaced as reduce-only")
    assert "2%:50, 4%:30, 8%:20" in await reply(bot, "/strategy")
    await _open(bot, TRADER, "/long BTC 1000 5")
    client = bot.services.exchanges.account(TRADER, "paper", "paper")
    (held,) = await client.positions(fresh=True)
    assert held.take_profit is None  # the ladder replaces the single take profit
    orders = sorted(await client.open_orders(fresh=True), key=lambda o: o.price or 0)
    assert [o.order_type for o in orders] == [OrderType.LIMIT] * 3
    assert all(o.reduce_only for o in orders)
    entry, qty = held.entry_price, held.qty
    assert [o.qty for o in orders] == ladder_parts(qty, [50, 30, 20])
    assert sum(o.qty for o in orders) == qty  # the shares add up to 100: all of it laddered
    told = await bot.state.wait_for_call(
        "sendMessage", lambda c: "Take-profit ladder placed" in str(c.params.get("text"))
    )
    assert orders[0].price is not None
    # Notices write numbers as exact as they are, without trailing zeros (70452, not 70452.0).
    first = f"{_plain(orders[0].qty)} at {_plain(orders[0].price)} (2 % in profit)"
    assert f"for your LONG {_plain(qty)} {BTC}: {first}" in told.params["text"]
    assert "It replaces the single take profit." in told.params["text"]
    assert [o.price for o in orders] == [
        ((entry * (1 + pct / Decimal(100))) / Decimal("0.1")).quantize(Decimal(1)) * Decimal("0.1")
        for pct in (Decimal(2), Decimal(4), Decimal(8))
    ]
    engine = bot.services.exchanges.paper_engine
    report = await engine.on_prices({BTC: entry * Decimal("1.03")})  # the first part only
    assert report.orders_filled == 1
    (left,) = await client.positions(fresh=True)
    assert left.qty == qty - orders[0].qty
    report = await engine.on_prices({BTC: entry * Decimal("1.09")})
    assert report.orders_filled == 2 and report.count(EventKind.ORDER_CANCELLED) == 0
    assert list(await client.positions(fresh=True)) == []  # the last part closed the rest


async def test_bybit_ladder_moves_the_stop_to_break_even_across_a_restart(
    tmp_path: Path, server: ExchangeServer
) -> None:
    options: dict[str, Any] = {"exchange_urls": {"bybit": server.base_url}}
    async with running_bot(tmp_path, **options) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET))
        await _licensed(bot)
        await reply(bot, "/set tp_ladder 1%:50,3%:50")
        await _open(bot, TRADER, "/long BTC 1000 5")
        position = _btc(server)
        assert position.take_profit == 0 and position.stop_loss == Decimal("59100.0")
        resting = [
            o for o in server.account(KEY).orders.values() if o.is_open and o.order_type == "Limit"
        ]
        assert all(o.reduce_only for o in resting)
        assert sorted(o.price for o in resting) == [Decimal("60600.0"), Decimal("61800.0")]
        assert await bot.services.ladders.check() == 0  # nothing filled yet
        state = bot.state

    server.set_price("BTCUSDT", "60700")  # the first part fills
    assert _btc(server).size == Decimal("0.008")
    async with running_bot(tmp_path, state=state, **options) as bot:
        assert await bot.services.ladders.check() == 1
        assert _btc(server).stop_loss == Decimal("60000")
        assert await bot.services.ladders.check() == 0  # once
        assert "Take-profit ladder: 1%:50, 3%:50 (tp_ladder)" in await reply(bot, "/strategy")
    server.set_price("BTCUSDT", "61900")
    assert _btc(server).size == 0  # the second part took the rest


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"
