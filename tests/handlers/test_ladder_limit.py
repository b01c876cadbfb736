"""Take-profit ladders of limit entries that fill after they were placed, through the real
Application: on paper (the entry fills on a later price move, the ladder and the trail follow,
the stop goes to the entry after the first part) and on the local Bybit server with the real
ccxt client (the fill seen by the catch-up, recorded twice, the ladder placed once; a part
filled before expiry gets a ladder for that part)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.exchange.credentials import ApiCredentials
from core.exchange.ids import client_order_id
from core.exchange.models import OrderType
from db.repositories.intents import IntentRecord, IntentRepository
from db.repositories.licenses import LicenseRepository
from tests.exchange_server import ExchangeServer
from tests.fakes.clock import FakeClock
from tests.handlers.test_ladder import ladder_parts
from tests.handlers.test_trading import _card
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
BTC = "BTC/USDT:USDT"
KEY, SECRET = "ladder-key", "ladder-secret"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TICK, LOT = Decimal("0.1"), Decimal("0.001")  # BTC's on both venues


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(NOW)  # the synthetic market holds still while the clock does


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=10, seed=5) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


async def _ready(bot: BotHarness, *settings: str) -> None:
    await LicenseRepository(bot.store).extend(TRADER, 30, "pro", "grant", NOW)
    for line in ("/set limit_order_ttl_min 5", *settings):
        assert " is now " in texts(await bot.send(TRADER, line))[0], line


async def _place(bot: BotHarness, text: str) -> str:
    """Send a limit command and confirm its card; return the client order id."""
    message, cid = _card(await bot.send(TRADER, text))
    (done,) = texts(await bot.press(TRADER, message, f"ok:{cid}"))
    assert done.startswith("📌 Limit order placed"), done
    return cid


async def _intent(bot: BotHarness, cid: str) -> IntentRecord:
    intent = await IntentRepository(bot.store).get(cid)
    assert intent is not None
    return intent


def _level(entry: Decimal, pct: int) -> Decimal:
    return ((entry * (1 + Decimal(pct) / 100)) / TICK).quantize(Decimal(1)) * TICK


async def test_a_paper_limit_entry_that_fills_later_gets_its_ladder_and_trail_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_bot(tmp_path, clock=clock) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "paper", "paper")
        await _ready(
            bot, "/set tp_ladder 2%:50,4%:50", "/set ladder_breakeven on", "/set trail_pct 10"
        )
        cid = await _place(bot, "/long BTC 1000 5 @-1%")
        client = bot.services.exchanges.account(TRADER, "paper", "paper")
        assert [o.client_order_id for o in await client.open_orders(fresh=True)] == [cid]
        limit = (await _intent(bot, cid)).price
        assert limit is not None

        engine = bot.services.exchanges.paper_engine
        report = await engine.on_prices({BTC: limit - TICK})  # trades through the entry
        assert report.orders_filled == 1
        await bot.services.fill_catchup.record_paper_events(report)

        entry = await _intent(bot, cid)
        assert (entry.status, entry.avg_price) == ("filled", limit)
        assert entry.filled_qty == entry.qty and entry.fee is not None and entry.fee > 0
        rungs = sorted(await client.open_orders(fresh=True), key=lambda o: o.price or 0)
        assert [o.client_order_id for o in rungs] == [
            client_order_id("ladder", cid, n) for n in (0, 1)
        ]
        assert all(o.reduce_only and o.order_type == OrderType.LIMIT for o in rungs)
        assert [o.qty for o in rungs] == ladder_parts(entry.qty, [50, 50])
        assert [o.price for o in rungs] == [_level(limit, 2), _level(limit, 4)]
        (held,) = await client.positions(fresh=True)
        assert held.take_profit is None  # the ladder takes the profit
        distance = held.trailing_distance  # the strategy's trail_pct, trailed by paper itself
        assert distance is not None and abs(distance / limit - Decimal("0.1")) < Decimal("0.002")

        # The same executions read again place nothing more.
        await bot.services.fill_catchup.catch_up_active()
        assert len(await client.open_orders(fresh=True)) == 2

        report = await engine.on_prices({BTC: limit * Decimal("1.03")})  # the first part
        assert report.orders_filled == 1
        await bot.services.fill_catchup.record_paper_events(report)
        assert await bot.services.ladders.check() == 1
        (held,) = await client.positions(fresh=True)
        assert held.qty == entry.qty - rungs[0].qty
        assert held.stop_loss == limit  # break-even after the first part
        assert await bot.services.ladders.check() == 0


def _options(server: ExchangeServer, clock: FakeClock) -> dict[str, Any]:
    return {"exchange_urls": {"bybit": server.base_url}, "clock": clock}


@pytest.fixture
async def bybit(
    tmp_path: Path, server: ExchangeServer, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, **_options(server, clock)) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET))
        await _ready(bot, "/set tp_ladder 1%:50,3%:50")
        yield bot


def _sent_rungs(server: ExchangeServer) -> list[Any]:
    """The reduce-only limit orders the account ever received, resting or not."""
    orders = server.account(KEY).orders.values()
    return sorted(
        (o for o in orders if o.order_type == "Limit" and o.reduce_only), key=lambda o: o.price
    )


def _resting_rungs(server: ExchangeServer) -> list[Any]:
    return [o for o in _sent_rungs(server) if o.is_open]


async def test_a_bybit_limit_entry_filled_later_gets_one_ladder_however_often_recorded(
    bybit: BotHarness, server: ExchangeServer, clock: FakeClock
) -> None:
    bot = bybit
    cid = await _place(bot, "/long BTC 600 5 @ 59k")
    assert server.account(KEY).by_link[cid].status == "New"
    assert (await _intent(bot, cid)).status == "open"

    server.set_price("BTCUSDT", "58950")  # trades through the limit: it fills at 59,000
    assert server.account(KEY).by_link[cid].status == "Filled"
    await bot.services.fill_catchup.catch_up_active()

    entry = await _intent(bot, cid)
    assert (entry.status, entry.filled_qty, entry.avg_price) == (
        "filled",
        Decimal("0.01"),
        Decimal(59000),
    )
    rungs = _resting_rungs(server)
    assert [(o.price, o.qty) for o in rungs] == [
        (Decimal("59590.0"), Decimal("0.005")),
        (Decimal("60770.0"), Decimal("0.005")),
    ]
    assert [o.link_id for o in rungs] == [client_order_id("ladder", cid, n) for n in (0, 1)]

    # The same executions again, as a stream and a catch-up from an earlier moment bring them.
    fills = await bot.store.fetchall("t", "SELECT COUNT(*) AS n FROM fills")
    await bot.services.fill_catchup.catch_up(
        [(TRADER, "bybit", "demo")], since=NOW.replace(year=2025)
    )
    assert (await bot.store.fetchall("t", "SELECT COUNT(*) AS n FROM fills"))[0]["n"] == (
        fills[0]["n"]
    )
    clock.advance(30)
    await bot.services.fill_catchup.catch_up_active()
    assert len(_resting_rungs(server)) == 2
    assert len(_sent_rungs(server)) == 2  # nothing was sent a second time either


async def test_a_bybit_limit_entry_filled_in_part_then_expired_gets_a_ladder_for_that_part(
    bybit: BotHarness, server: ExchangeServer, clock: FakeClock
) -> None:
    bot = bybit
    cid = await _place(bot, "/long BTC 600 5 @ 59400")
    server.set_price("BTCUSDT", "59500")  # near the limit, below where the ladder will rest
    server.fill_part(KEY, cid, "0.004")
    await bot.services.fill_catchup.catch_up_active()  # the part is recorded: not yet a ladder
    part = await _intent(bot, cid)
    assert (part.status, part.filled_qty, part.avg_price) == (
        "open",
        Decimal("0.004"),
        Decimal(59400),
    )
    assert _resting_rungs(server) == []

    clock.advance(6 * 60)
    assert (await bot.services.order_expiry.expire_once()).cancelled == 1

    entry = await _intent(bot, cid)
    assert (entry.status, entry.filled_qty) == ("cancelled", Decimal("0.004"))
    rungs = _resting_rungs(server)
    assert [(o.price, o.qty) for o in rungs] == [
        (Decimal("59994.0"), Decimal("0.002")),
        (Decimal("61182.0"), Decimal("0.002")),
    ]
    clock.advance(30)
    await bot.services.fill_catchup.catch_up_active()  # what is recorded does not fire again
    assert len(_sent_rungs(server)) == 2


async def test_a_bybit_limit_entry_cancelled_with_a_part_filled_gets_a_ladder_for_that_part(
    bybit: BotHarness, server: ExchangeServer
) -> None:
    bot = bybit
    cid = await _place(bot, "/long BTC 600 5 @ 59400")
    server.set_price("BTCUSDT", "59500")
    server.fill_part(KEY, cid, "0.004")

    (answer,) = texts(await bot.send(TRADER, f"/cancel {cid}"))

    assert "0.004" in answer, answer  # the trader is told what had filled
    entry = await _intent(bot, cid)
    assert (entry.status, entry.filled_qty, entry.avg_price) == (
        "cancelled",
        Decimal("0.004"),
        Decimal(59400),
    )
    rungs = _resting_rungs(server)
    assert [(o.price, o.qty) for o in rungs] == [
        (Decimal("59994.0"), Decimal("0.002")),
        (Decimal("61182.0"), Decimal("0.002")),
    ]
    await bot.services.fill_catchup.catch_up_active()  # the part's fills: no second ladder
    assert len(_sent_rungs(server)) == 2
