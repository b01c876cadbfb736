"""/alert and /alerts through the real Application, and alerts firing once, restarts included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from core.exchange.models import Ticker
from tests.exchange_server.server import ExchangeServer
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER, ADMIN = 42, 43, 99
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
USAGE = "Usage: /alert SYMBOL > PRICE"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(TRADER, "/start")
        yield harness


def buttons(call: ApiCall) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {}
    return [
        (b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
    ]


def message(call: ApiCall) -> dict[str, Any]:
    assert isinstance(call.result, dict)
    return call.result


async def reply(bot: BotHarness, text: str, user: int = TRADER) -> str:
    (answer,) = texts(await bot.send(user, text))
    return answer


async def granted(bot: BotHarness) -> None:
    """Give the trader a licence and wait for its notice, which would cross later replies."""
    await bot.send(ADMIN, f"/grant {TRADER} 30")
    await bot.state.wait_for_call("sendMessage", lambda c: "granted" in str(c.params["text"]))


async def last(bot: BotHarness, symbol: str) -> Decimal:
    return (await bot.services.market.ticker("paper", symbol)).last


def moved(ticker: Ticker, price: Decimal) -> Ticker:
    return replace(ticker, last=price)


async def test_set_alerts_in_every_accepted_form(bot: BotHarness) -> None:
    price = await last(bot, BTC)
    above = int(price * Decimal("1.1"))
    text = await reply(bot, f"/alert BTC > {above}")
    assert text.startswith(f"🔔 Alert set: BTC above {above:,}")
    assert "Paper prices" in text and "1 of 5 alerts in use" in text

    text = await reply(bot, "/alert btcusdt < 3%")
    assert text.startswith("🔔 Alert set: BTC below ")
    assert "-3.00% away" in text and "2 of 5" in text

    text = await reply(bot, "/alert ETH/USDT:USDT>2.5%")  # no spaces, the unified symbol
    assert text.startswith("🔔 Alert set: ETH above ") and "+2.50% away" in text

    stored = await bot.store.fetchall(
        "t", "SELECT symbol, direction, threshold FROM price_alerts ORDER BY id"
    )
    assert [(r[0], r[1]) for r in stored] == [(BTC, "above"), (BTC, "below"), (ETH, "above")]
    assert stored[0][2] == above
    tick = Decimal("0.1")  # the synthetic market's BTC tick
    assert Decimal(repr(stored[1][2])) == (price * Decimal("0.97") / tick).quantize(1) * tick


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/alert", USAGE),
        ("/alert BTC", USAGE),
        ("/alert BTC 70000", USAGE),
        ("/alert BTC >> 5", USAGE),
        ("/alert BTC > -5", USAGE),
        ("/alert BTC > abc", USAGE),
        ("/alert XYZQ > 5", "XYZQ is not listed on Paper."),
        ("/alert BTC < 150%", "A move must be from 0.01 % to 99 % below the price."),
        ("/alert BTC > 0%", "A move must be from 0.01 % to 1000 % above the price."),
        ("/alert BTC > 1", "BTC is already above 1.0 (last "),
        ("/alert BTC < 99999999", "BTC is already below 99,999,999.0 (last "),
        ("/alert BTC > 999999999", "is over 100× BTC's price"),
    ],
)
async def test_wrong_input_is_refused_and_nothing_is_stored(
    bot: BotHarness, command: str, expected: str
) -> None:
    assert expected in await reply(bot, command)
    assert await bot.store.fetchval("t", "SELECT COUNT(*) FROM price_alerts") == 0


async def test_the_cap_without_and_with_a_licence(bot: BotHarness) -> None:
    for _ in range(5):
        assert "Alert set" in await reply(bot, "/alert BTC > 1%")
    text = await reply(bot, "/alert BTC > 1%")
    assert text.startswith("You already have 5 active alerts, the most you can keep.")
    assert "With a licence you can keep 50" in text
    await bot.send(ADMIN, "/start")
    await granted(bot)
    assert "6 of 50 alerts in use" in await reply(bot, "/alert BTC > 1%")


async def test_alerts_lists_pages_and_removes_only_your_own(bot: BotHarness) -> None:
    assert (await reply(bot, "/alerts")).startswith("You have no price alerts.")
    await bot.send(ADMIN, "/start")
    await granted(bot)
    for n in range(1, 13):
        await bot.send(TRADER, f"/alert ETH > {n}%")
    (listing,) = [c for c in await bot.send(TRADER, "/alerts") if c.method == "sendMessage"]
    text = message(listing)["text"]
    assert text.startswith("Your price alerts · 12 of 50 · Paper prices · page 1 of 2")
    assert text.count("ETH above") == 10 and len(text) <= 4096
    keys = buttons(listing)
    assert [k for k, _ in keys][:2] == ["✖ Remove 1", "✖ Remove 2"]
    assert keys[-1] == ("Next ▶", "pa:pg:1")
    assert all(len(data.encode()) <= 64 for _, data in keys)

    calls = await bot.press(TRADER, message(listing), "pa:pg:1")
    (page2,) = texts(calls)
    assert "page 2 of 2" in page2 and page2.count("ETH above") == 2
    assert page2.splitlines()[1].startswith("11. ETH above")

    _, remove_first = keys[0]
    await bot.send(OTHER, "/start")
    refused = await bot.press(OTHER, message(listing), remove_first)
    assert [c.params.get("text") for c in refused if c.method == "answerCallbackQuery"] == [
        "That alert is no longer active (it fired or was removed)."
    ]
    calls = await bot.press(TRADER, message(listing), remove_first)
    (answer,) = [c for c in calls if c.method == "answerCallbackQuery"]
    assert str(answer.params["text"]).startswith("Removed: ETH above ")
    (edited,) = texts(calls)
    assert "11 of 50" in edited
    assert await bot.store.fetchval("t", "SELECT COUNT(*) FROM price_alerts") == 11

    again = await bot.press(TRADER, message(listing), remove_first)
    assert "no longer active" in str(again[0].params.get("text"))
    stale = await bot.press(TRADER, message(listing), "pa:rm:x")
    assert "out of date" in str(stale[0].params.get("text"))


async def test_an_alert_fires_once_through_the_outbox(bot: BotHarness) -> None:
    await reply(bot, "/alert BTC > 2%")
    await reply(bot, "/alert BTC < 2%")
    await reply(bot, "/alert ETH > 2%")
    tickers = dict(await bot.services.market.tickers("paper"))
    price = tickers[BTC].last
    tickers[BTC] = moved(tickers[BTC], price * Decimal("1.05"))
    report = await bot.services.price_alerts.evaluate(tickers)
    assert (report.fired, report.active) == (1, 2)
    assert (await bot.services.price_alerts.evaluate(tickers)).fired == 0

    call = await bot.state.wait_for_call(
        "sendMessage", lambda c: "is above" in str(c.params.get("text"))
    )
    assert call.params["chat_id"] == TRADER
    assert str(call.params["text"]).startswith("🔔 <b>BTC</b> is above ")
    rows = await bot.store.fetchall(
        "t", "SELECT dedup_key, kind FROM notifications WHERE dedup_key LIKE 'price_alert:%'"
    )
    assert [tuple(r) for r in rows] == [("price_alert:1", "system")]
    listing = await reply(bot, "/alerts")
    assert "2 of 5" in listing and "BTC below" in listing and "BTC above" not in listing


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=10, seed=5) as running:
        running.set_price("BTCUSDT", "60000")
        yield running


async def test_alerts_survive_a_restart_and_fire_once_across_restarts(
    tmp_path: Path, server: ExchangeServer
) -> None:
    """On an exchange market source: the job's own path, prices from the local Bybit."""
    options: dict[str, Any] = {
        "market_source": "bybit",
        "exchange_urls": {"bybit": server.base_url},
    }
    async with running_bot(tmp_path, **options) as bot:
        await bot.send(TRADER, "/start")
        text = await reply(bot, "/alert BTC > 61000")
        assert text.startswith("🔔 Alert set: BTC above 61,000") and "Bybit prices" in text
        assert (await bot.services.price_alerts.check()).fired == 0
        state = bot.state

    server.set_price("BTCUSDT", "61500")
    async with running_bot(tmp_path, state=state, **options) as bot:
        assert bot.app.job_queue is not None
        (job,) = bot.app.job_queue.get_jobs_by_name("price_alerts")  # every scan interval
        await job.run(bot.app)
        report = await bot.services.price_alerts.check()
        assert (report.fired, report.active) == (0, 0)  # the job fired it
        call = await bot.state.wait_for_call(
            "sendMessage", lambda c: "is above" in str(c.params.get("text"))
        )
        assert "is above 61000: last 61500" in str(call.params["text"])

    async with running_bot(tmp_path, state=state, **options) as bot:
        report = await bot.services.price_alerts.check()
        assert (report.fired, report.active) == (0, 0)
        assert (await reply(bot, "/alerts")).startswith("You have no price alerts.")
        sent = await bot.store.fetchval(
            "t", "SELECT COUNT(*) FROM notifications WHERE dedup_key LIKE 'price_alert:%'"
        )
        assert sent == 1
    fired = [c for c in state.calls if "is above" in str(c.params.get("text"))]
    assert len(fired) == 1


async def test_a_move_that_rounds_to_nothing_is_refused(
    tmp_path: Path, server: ExchangeServer
) -> None:
    server.set_price("BTCUSDT", "100")  # 0.01 % of it is 0.01: a tenth of the 0.1 tick
    options: dict[str, Any] = {
        "market_source": "bybit",
        "exchange_urls": {"bybit": server.base_url},
    }
    async with running_bot(tmp_path, **options) as bot:
        await bot.send(TRADER, "/start")
        text = await reply(bot, "/alert BTC > 0.01%")
        assert text == (
            "0.01 % of BTC's price (100.0) rounds to nothing on its 0.1 tick; "
            "ask for a bigger move."
        )
        assert "Alert set: BTC above 100.1" in await reply(bot, "/alert BTC > 0.1%")


async def test_alerts_are_listed_while_the_market_cannot_be_read(
    tmp_path: Path, server: ExchangeServer
) -> None:
    options: dict[str, Any] = {
        "market_source": "bybit",
        "exchange_urls": {"bybit": server.base_url},
    }
    async with running_bot(tmp_path, **options) as bot:
        await bot.send(TRADER, "/start")
        assert "Alert set" in await reply(bot, "/alert BTC < 59000")
        state = bot.state
    server.faults.add("/v5/market/tickers", "http_5xx", times=None)
    async with running_bot(tmp_path, state=state, **options) as bot:
        text = await reply(bot, "/alerts")
        assert text.splitlines()[1] == "1. BTC below 59,000.00"  # no price, no tick: plain
