"""TP/SL and trailing stops on the local exchange servers, through the real Application and
real ccxt: Bybit's own trading-stop (TP, break-even after a move, a trailing stop with an
activation price that follows and fires), and on Binance, which has no position-level
levels, TP/SL as whole-position conditional orders and a trailing stop the bot keeps,
across a restart; on OKX, TP/SL as algo orders, and a close by one logged as a take profit
or stop loss with OKX's own PnL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.wiring.streams import LedgerFills
from core.exchange.credentials import ApiCredentials
from services.notices import CLOSED_BY
from tests.exchange_server import ExchangeServer
from tests.exchange_server.binance import BinanceServer
from tests.exchange_server.okx import OkxServer
from tests.handlers.test_fees_both_legs import _close
from tests.handlers.test_manage import _licensed, keys, reply, said, sent
from tests.handlers.test_trading import _open
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
KEY, SECRET = "manage-key", "manage-secret"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=10, seed=5) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


def _btc(server: ExchangeServer) -> Any:
    return server.account(KEY).positions["BTCUSDT"]


async def test_bybit_tp_break_even_and_a_trailing_stop_that_fires(
    tmp_path: Path, server: ExchangeServer
) -> None:
    options: dict[str, Any] = {"exchange_urls": {"bybit": server.base_url}}
    async with running_bot(tmp_path, **options) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET))
        await _licensed(bot)
        await _open(bot, TRADER, "/long BTC 100 5")
        assert _btc(server).avg == Decimal(60000)

        assert "set at 61,800.0" in await reply(bot, "/tp BTC +3%")
        assert _btc(server).take_profit == Decimal("61800.0")
        assert "set at 61,800.0" in await reply(bot, "/tp BTC 61800")  # Bybit: "not modified"
        assert "on the wrong side" in await reply(bot, "/sl BTC 60500")
        assert "moved to 59,400.0" in await reply(bot, "/sl BTC 59400")
        assert _btc(server).stop_loss == Decimal("59400.0")

        server.set_price("BTCUSDT", "60900")  # in profit: break-even is allowed now
        listing = await bot.send(TRADER, "/positions")
        done = await bot.press(TRADER, sent(listing), dict(keys(listing))["1. SL→BE"])
        assert "(break-even)" in said(done)[0]
        assert _btc(server).stop_loss == Decimal(60000)

        text = await reply(bot, "/trail BTC 300 +2.5%")  # from 61,500
        assert "once the price reaches 61,500.0" in text and "the exchange keeps it" in text
        assert _btc(server).trailing_stop == Decimal(300)
        state = bot.state

    server.set_price("BTCUSDT", "61400")  # below the activation: nothing trails yet
    server.set_price("BTCUSDT", "61000")
    assert _btc(server).size == Decimal("0.001")
    async with running_bot(tmp_path, state=state, **options) as bot:
        positions = await bot.send(TRADER, "/positions")
        assert "trailing 300.0" in said(positions)[0]  # the exchange's own, after a restart
        await reply(bot, "/tp BTC off")
        server.set_price("BTCUSDT", "61600")  # activated: the stop is at 61,300
        server.set_price("BTCUSDT", "61700")  # a new best: the stop follows to 61,400
        server.set_price("BTCUSDT", "61450")  # above it: still open
        assert _btc(server).size == Decimal("0.001")
        server.set_price("BTCUSDT", "61390")
        assert _btc(server).size == 0  # the trailing stop closed it at market


async def test_bybit_percent_rounding_to_nothing_is_refused(
    tmp_path: Path, server: ExchangeServer
) -> None:
    server.set_price("BTCUSDT", "100")  # 0.05 % of it is 0.05: half the 0.1 tick
    options: dict[str, Any] = {"exchange_urls": {"bybit": server.base_url}}
    async with running_bot(tmp_path, **options) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET))
        await _licensed(bot)
        await _open(bot, TRADER, "/long BTC 100 5")
        text = await reply(bot, "/tp BTC +0.04%")
        assert text.startswith("0.04 % of BTC's price (100.0) rounds to nothing on its 0.1 tick")
        assert "rounds to nothing" in await reply(bot, "/trail BTC 0.04%")
        assert "set at 100.5" in await reply(bot, "/tp BTC +0.5%")


@pytest.fixture
async def binance() -> AsyncIterator[BinanceServer]:
    async with BinanceServer(symbols=10, seed=3) as running:
        running.add_account(KEY, SECRET, Decimal("10000"))
        running.set_price("BTCUSDT", "60000")
        yield running


def _levels(server: BinanceServer) -> dict[str, str]:
    algos = server.algos(server.account(KEY))
    return {
        a["orderType"]: f"{Decimal(str(a['triggerPrice'])).normalize():f}"
        for a in algos
        if a["algoStatus"] == "NEW"
    }


async def test_binance_tp_sl_as_conditional_orders_and_the_bot_keeps_its_trailing_stop(
    tmp_path: Path, binance: BinanceServer
) -> None:
    options: dict[str, Any] = {"exchange_urls": {"binance": binance.base_url}}
    async with running_bot(tmp_path, **options) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "binance", "live", ApiCredentials(KEY, SECRET))
        await _licensed(bot)
        await _open(bot, TRADER, "/long BTC 100 5")
        assert "set at 61,800.0" in await reply(bot, "/tp BTC +3%")
        assert _levels(binance) == {"TAKE_PROFIT_MARKET": "61800", "STOP_MARKET": "59100"}
        assert "moved to 59,400.0" in await reply(bot, "/sl BTC 59400")  # tighter: at once
        card = await reply(bot, "/sl BTC 59000")  # the stop read back from Binance: looser
        assert card.startswith("⚠️ This moves the stop loss (59,400.0) to 59,000.0")
        assert _levels(binance) == {"TAKE_PROFIT_MARKET": "61800", "STOP_MARKET": "59400"}
        text = await reply(bot, "/trail BTC 400")
        assert "the bot keeps it on every scan" in text
        report = await bot.services.trailing.check()
        assert (report.stops, report.fired) == (1, 0)
        binance.set_price("BTCUSDT", "60800")  # a new best: the stop is at 60,400 now
        bot.services.cache.cache("tickers").invalidate("binance")
        report = await bot.services.trailing.check()
        assert (report.moved, report.fired) == (1, 0)
        peak = await bot.store.fetchval("t", "SELECT peak FROM trailing_stops")
        assert peak == 60800
        state = bot.state

    binance.set_price("BTCUSDT", "60500")  # above the stop
    async with running_bot(tmp_path, state=state, **options) as bot:
        assert (await bot.services.trailing.check()).fired == 0  # the peak survived
        binance.set_price("BTCUSDT", "60350")
        bot.services.cache.cache("tickers").invalidate("binance")
        report = await bot.services.trailing.check()
        assert (report.fired, report.stops) == (1, 0)
        client = bot.services.exchanges.account(TRADER, "binance", "live")
        assert list(await client.positions(fresh=True)) == []
        call = await bot.state.wait_for_call(
            "sendMessage", lambda c: "Trailing stop hit" in str(c.params.get("text"))
        )
        assert "LONG <b>BTC</b> at 60350" in str(call.params["text"])
        assert await bot.store.fetchval("t", "SELECT COUNT(*) FROM trailing_stops") == 0


async def test_a_bot_kept_stop_never_closes_a_later_position(
    tmp_path: Path, binance: BinanceServer
) -> None:
    options: dict[str, Any] = {"exchange_urls": {"binance": binance.base_url}}
    async with running_bot(tmp_path, **options) as bot:
        await bot.send(TRADER, "/start")
        await bot.services.accounts.connect(TRADER, "binance", "live", ApiCredentials(KEY, SECRET))
        await _licensed(bot)
        await _open(bot, TRADER, "/long BTC 100 5")
        assert "the bot keeps it" in await reply(bot, "/trail BTC 400")  # stop at 59,600
        await _close(bot, "/close BTC")
        binance.set_price("BTCUSDT", "59900")
        await _open(bot, TRADER, "/long BTC 100 5")  # another position, entered at 59,900
        binance.set_price("BTCUSDT", "59500")  # under the old stop, above the new SL
        bot.services.cache.cache("tickers").invalidate("binance")
        report = await bot.services.trailing.check()
        assert (report.fired, report.stops) == (1, 0)  # the old stop is gone...
        client = bot.services.exchanges.account(TRADER, "binance", "live")
        (held,) = await client.positions(fresh=True)  # ...and the new position stays open
        assert held.entry_price == Decimal(59900)
        assert await bot.store.fetchval("t", "SELECT COUNT(*) FROM trailing_stops") == 0


@pytest.fixture
async def okx() -> AsyncIterator[OkxServer]:
    async with OkxServer(symbols=10, seed=6) as running:
        running.add_account(KEY, SECRET, Decimal("10000"), passphrase="phrase")
        running.set_price("BTCUSDT", "60000")
        yield running


def _algos(okx: OkxServer) -> list[tuple[bool, str, str]]:
    """The account's pending TP/SL algos: (whole position?, TP, SL), "0" for no leg."""
    return [
        (a.close_fraction, f"{a.tp.normalize():f}", f"{a.sl.normalize():f}")
        for a in okx.algos.live(okx.account(KEY))
    ]


async def _okx_trader(bot: BotHarness) -> None:
    await bot.send(TRADER, "/start")
    credentials = ApiCredentials(KEY, SECRET, "phrase")
    await bot.services.accounts.connect(TRADER, "okx", "live", credentials)
    await _licensed(bot)
    await _open(bot, TRADER, "/long BTC 100 5")


async def test_okx_tp_sl_are_algo_orders_changed_moved_and_removed(
    tmp_path: Path, okx: OkxServer
) -> None:
    async with running_bot(tmp_path, exchange_urls={"okx": okx.base_url}) as bot:
        await _okx_trader(bot)
        assert _algos(okx) == [(False, "61800", "59100")]  # the strategy's, on the entry
        assert "set at 62,400.0" in await reply(bot, "/tp BTC +4%")
        assert _algos(okx) == [(True, "62400", "59100")]  # one algo for the whole position
        assert "moved to 59,400.0" in await reply(bot, "/sl BTC 59400")  # tighter: at once
        card = await reply(bot, "/sl BTC 59000")  # the stop read back from OKX: looser
        assert card.startswith("⚠️ This moves the stop loss (59,400.0) to 59,000.0")
        assert _algos(okx) == [(True, "62400", "59400")]

        okx.set_price("BTCUSDT", "60900")  # in profit: break-even is allowed now
        listing = await bot.send(TRADER, "/positions")
        assert "62,400" in said(listing)[0] and "59,400" in said(listing)[0]
        done = await bot.press(TRADER, sent(listing), dict(keys(listing))["1. SL→BE"])
        assert "(break-even)" in said(done)[0]
        assert _algos(okx) == [(True, "62400", "60000")]

        assert "removed" in await reply(bot, "/tp BTC off")
        assert _algos(okx) == [(True, "0", "60000")]
        listing = await bot.send(TRADER, "/positions")
        card = await bot.press(TRADER, sent(listing), dict(keys(listing))["1. ✖ TP/SL"])
        assert said(card)[0].startswith("⚠️ This removes the stop loss")
        (_, confirm), _cancel = keys(card)
        await bot.press(TRADER, sent(card), confirm)
        assert _algos(okx) == []
        assert okx.account(KEY).position("BTCUSDT").size == Decimal("0.001")  # still open

        assert "the bot keeps it on every scan" in await reply(bot, "/trail BTC 1%")
        bot.services.cache.cache("tickers").invalidate("okx")  # the tape read at 60,000
        report = await bot.services.trailing.check()
        assert (report.stops, report.fired) == (1, 0)


@pytest.mark.parametrize(
    ("change", "answer", "price", "reason", "words"),
    [
        ("/tp BTC 62400", "set at 62,400.0", "62500", "take_profit", "take profit"),
        ("/sl BTC 59400", "moved to 59,400.0", "59300", "stop_loss", "stop loss"),
    ],
)
async def test_an_okx_tp_or_sl_that_fires_is_logged_as_such_with_the_exchange_pnl(
    tmp_path: Path, okx: OkxServer, change: str, answer: str, price: str, reason: str, words: str
) -> None:
    async with running_bot(tmp_path, exchange_urls={"okx": okx.base_url}) as bot:
        await _okx_trader(bot)
        assert answer in await reply(bot, change)
        okx.set_price("BTCUSDT", price)  # through the level: the algo closes at market
        account = okx.account(KEY)
        assert account.position("BTCUSDT").size == 0 and _algos(okx) == []
        okx.stats.reset()
        await bot.services.fill_catchup.catch_up_active()
        assert okx.stats.requests["/api/v5/trade/orders-algo-history"] == 1

        (record,) = await bot.services.history.recent(TRADER)
        opening, closing = account.executions
        fees = Decimal(opening["execFee"]) + Decimal(closing["execFee"])
        assert record.trade.close_reason == reason
        assert record.trade.exit_price == Decimal(price)
        assert record.trade.pnl == Decimal(closing["execPnl"]) - fees  # OKX's fillPnl, net
        listed = texts(await bot.send(TRADER, "/trades"))
        assert any("BTC long 0.001" in text and words in text for text in listed)
        told = await bot.state.wait_for_call(
            "sendMessage", lambda c: "LONG 0.001 BTC" in str(c.params.get("text"))
        )
        assert str(told.params["text"]).startswith(CLOSED_BY[reason])  # not "on the exchange"


async def test_a_pushed_okx_close_learns_its_take_profit_from_the_algo_history(
    tmp_path: Path, okx: OkxServer
) -> None:
    async with running_bot(tmp_path, exchange_urls={"okx": okx.base_url}) as bot:
        await _okx_trader(bot)
        assert "set at 62,400.0" in await reply(bot, "/tp BTC 62400")
        okx.set_price("BTCUSDT", "62500")  # the algo closes at market
        async with bot.services.exchanges.lease(TRADER, "okx", "live") as client:
            read = await client.fetch_fills()
        # As a push hands them over: OKX's order channel names no algo behind a close.
        pushed = [replace(f, trigger=None) for f in read]
        assert [f.trigger for f in read][-1] == "take_profit"
        s = bot.services
        sink = LedgerFills(s.fill_ledger, s.fill_catchup, s.exchanges)
        okx.stats.reset()

        await sink.record(TRADER, "okx", "live", pushed)

        assert okx.stats.requests["/api/v5/trade/orders-algo-history"] == 1
        (record,) = await s.history.recent(TRADER)
        assert (record.trade.close_reason, record.trade.exit_price) == ("take_profit", 62500)
        await sink.record(TRADER, "okx", "live", pushed[:1])  # an opening fill: nothing to name
        assert okx.stats.requests["/api/v5/trade/orders-algo-history"] == 1
