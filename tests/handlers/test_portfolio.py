"""/balance, /positions and /orders through the real Application, on paper and local Bybit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from core.exchange.credentials import ApiCredentials
from core.exchange.models import Market, OrderRequest, OrderType, Side
from core.exchange.protocol import ExchangeClient
from handlers.render import money, pct, price, quantity, signed
from services.portfolio import STALE_LIST
from tests.exchange_server import ExchangeServer, FaultKind
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER = 42, 43
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
NO_ACCOUNT = "No exchange account yet. Send /connect (the paper account needs no keys)."


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        yield harness


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=10, seed=5) as running:
        running.add_account("key-42", "secret-42", Decimal("5000"))
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
async def bybit_bot(tmp_path: Path, server: ExchangeServer) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as harness:
        await harness.send(TRADER, "/start")
        creds = ApiCredentials("key-42", "secret-42")
        await harness.services.accounts.connect(TRADER, "bybit", "demo", creds)
        yield harness


async def _paper(bot: BotHarness, user_id: int = TRADER) -> None:
    await bot.send(user_id, "/start")
    await bot.services.accounts.connect(user_id, "paper", "paper")


async def _markets(bot: BotHarness) -> dict[str, Market]:
    return dict(await bot.services.market.markets("paper"))


def _qty(market: Market, last: Decimal, usdt: Decimal) -> Decimal:
    """The smallest valid size worth at least `usdt`."""
    qty = max(market.round_qty(usdt / last), market.min_qty)
    while qty * last < max(usdt, market.min_notional):
        qty += market.lot_size
    return qty


async def _open(
    client: ExchangeClient, market: Market, side: Side, cid: str, **levels: Decimal
) -> None:
    last = (await client.fetch_ticker(market.symbol)).last
    qty = _qty(market, last, Decimal(100))
    await client.create_order(
        OrderRequest(market.symbol, side, OrderType.MARKET, qty, cid, **levels)  # type: ignore[arg-type]
    )


def _buttons(call: ApiCall) -> list[str]:
    rows: list[list[dict[str, Any]]] = call.params["reply_markup"]["inline_keyboard"]
    return [str(b["callback_data"]) for row in rows for b in row]


def _message(calls: list[ApiCall]) -> dict[str, Any]:
    (sent,) = [c for c in calls if c.method == "sendMessage"]
    assert isinstance(sent.result, dict)
    return sent.result


def test_number_formats() -> None:
    assert money(Decimal("10000")) == "10,000.00"
    assert money(Decimal("-0.004")) == "0.00"  # never -0.00
    assert signed(Decimal("12.345")) == "+12.35" and signed(Decimal("-3")) == "-3.00"
    assert signed(Decimal(0)) == "0.00"
    assert pct(Decimal("1.234")) == "+1.23%" and pct(Decimal("-0.5")) == "-0.50%"
    assert price(Decimal("60123.44"), Decimal("0.1")) == "60,123.4"
    assert price(Decimal("0.0045123"), Decimal("0.000001")) == "0.004512"
    assert price(Decimal("62000"), Decimal("0.5")) == "62,000.0"
    assert price(Decimal("0.00001234")) == "0.00001234" and price(Decimal("1.5")) == "1.50"
    assert quantity(Decimal("0.010")) == "0.01"  # one form everywhere: no lot padding
    assert quantity(Decimal("0.0100")) == "0.01" and quantity(Decimal("1E+1")) == "10"


async def test_no_account_points_to_connect(bot: BotHarness) -> None:
    for command in ("/balance", "/positions", "/orders"):
        assert texts(await bot.send(TRADER, command)) == [NO_ACCOUNT]


async def test_balance_of_a_new_paper_account(bot: BotHarness) -> None:
    await _paper(bot)
    (reply,) = texts(await bot.send(TRADER, "/balance"))
    assert reply.splitlines() == [
        "Balance · Paper",
        "Equity: 10,000.00 USDT",
        "Available: 10,000.00 USDT",
        "Used margin: 0.00 USDT",
        "Unrealised PnL: 0.00 USDT",
        "",
        "Assets",
        "USDT: 10,000.00 (free 10,000.00, in use 0.00)",
    ]


async def test_empty_lists_say_so(bot: BotHarness) -> None:
    await _paper(bot)
    calls = await bot.send(TRADER, "/positions")
    assert texts(calls) == ["Positions · Paper\n\nNo open positions."]
    (refresh,) = _buttons(calls[-1])
    assert refresh.startswith("pr:")
    calls = await bot.send(TRADER, "/orders")
    assert texts(calls) == ["Open orders · Paper\n\nNo open orders."]


async def test_positions_show_what_the_exchange_reports(bot: BotHarness) -> None:
    await _paper(bot)
    markets = await _markets(bot)
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        await client.set_leverage(BTC, 5)
        last = (await client.fetch_ticker(BTC)).last
        tp, sl = markets[BTC].round_price(last * 2), markets[BTC].round_price(last / 2)
        await _open(client, markets[BTC], Side.BUY, "twtestbtc1", take_profit=tp, stop_loss=sl)
        await _open(client, markets[ETH], Side.SELL, "twtesteth1")
        calls = await bot.send(TRADER, "/positions")
        reported = {p.symbol: p for p in await client.fetch_positions()}
    (reply,) = texts(calls)
    shown = await bot.services.portfolio.positions(TRADER)  # the cached read the reply used
    assert [line.position.symbol for line in shown.positions] == [BTC, ETH]
    assert reply.startswith(f"Positions · Paper\n2 open · uPnL {signed(shown.unrealised_pnl)} USDT")
    for n, line in enumerate(shown.positions, 1):
        p, market = line.position, markets[line.position.symbol]
        now = reported[p.symbol]
        assert (p.qty, p.entry_price, p.leverage, p.liquidation_price, p.take_profit) == (
            now.qty, now.entry_price, now.leverage, now.liquidation_price, now.take_profit
        )  # fmt: skip
        tick = market.tick_size
        assert (
            f"{n}. {market.symbol} · {p.side.upper()} {quantity(p.qty)}"
            f" · {p.leverage}×\nEntry {price(p.entry_price, tick)}"
            f" · mark {price(p.mark_price, tick)}\n"
            f"uPnL {signed(p.unrealised_pnl)} USDT ({pct(p.pnl_pct)} of margin)"
        ) in reply
    liq = reported[BTC].liquidation_price
    assert liq is not None and reported[BTC].leverage == 5
    assert (
        f"Liq. {price(liq, markets[BTC].tick_size)} · TP {price(tp, markets[BTC].tick_size)}"
        in reply
    )
    assert "TP — · SL —" in reply  # ETH has neither
    buttons = _buttons(calls[-1])
    assert buttons[:2] == ["cl:BTCUSDT", "cl:ETHUSDT"]
    account = shown.account.credential_id
    assert buttons[2:4] == [f"mt:{account}:BTCUSDT", f"ms:{account}:BTCUSDT"]
    # One Refresh, after every position's keys.
    assert [b for b in buttons if b.startswith("pr:")] == [f"pr:{account}:0"]
    assert buttons[-1] == f"pr:{account}:0"


async def test_balance_after_trading_matches_the_exchange(bot: BotHarness) -> None:
    await _paper(bot)
    markets = await _markets(bot)
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        await _open(client, markets[BTC], Side.BUY, "twtestbtc2")
        (reply,) = texts(await bot.send(TRADER, "/balance"))
        used = (await client.fetch_balance()).used_margin
    shown = (await bot.services.portfolio.balance(TRADER)).balance
    assert shown.used_margin == used > 0
    assert f"Equity: {money(shown.equity)} USDT" in reply
    assert f"Used margin: {money(used)} USDT" in reply
    assert f"Unrealised PnL: {signed(shown.unrealised_pnl)} USDT" in reply


async def test_orders_list_a_resting_limit_with_its_cancel_button(bot: BotHarness) -> None:
    await _paper(bot)
    btc = (await _markets(bot))[BTC]
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        limit = btc.round_price((await client.fetch_ticker(BTC)).last * Decimal("0.8"))
        order = await client.create_order(
            OrderRequest(BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "twtestlimit1", limit)
        )
    calls = await bot.send(TRADER, "/orders")
    (reply,) = texts(calls)
    assert reply.splitlines()[:2] == ["Open orders · Paper", "1 open"]
    assert f"1. BTC/USDT:USDT · BUY LIMIT 0.01 @ {price(limit, btc.tick_size)}" in reply
    assert "filled 0 · id twtestlimi" in reply
    assert _buttons(calls[-1])[0] == f"co:{order.order_id}"


async def test_many_positions_are_paged_within_limits(bot: BotHarness) -> None:
    await _paper(bot)
    markets = sorted((await _markets(bot)).values(), key=lambda m: m.symbol)[:11]
    async with bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        for i, market in enumerate(markets):
            await _open(client, market, Side.BUY if i % 2 else Side.SELL, f"twpage{i:04d}")
    calls = await bot.send(TRADER, "/positions")
    (first,) = texts(calls)
    data = _buttons(calls[-1])
    assert "11 open" in first and "page 1/2" in first and len(first) <= 4096
    assert [d for d in data if d.startswith("cl:")] == [f"cl:{m.exchange_id}" for m in markets[:8]]
    assert all(len(d.encode()) <= 64 for d in data)
    account = (await bot.services.accounts.require_active(TRADER)).credential_id
    assert data[-2:] == [f"pr:{account}:0", f"pr:{account}:1:c"]
    turned = await bot.press(TRADER, _message(calls), data[-1])
    (edit,) = [c for c in turned if c.method == "editMessageText"]
    (second,) = texts([edit])
    assert (
        "page 2/2" in second and f"\n9. {markets[8].symbol} · " in second and "\n1. " not in second
    )
    assert [d for d in _buttons(edit) if d.startswith("cl:")] == [
        f"cl:{m.exchange_id}" for m in markets[8:]
    ]
    assert [c.method for c in turned].count("answerCallbackQuery") == 1


async def test_stale_foreign_and_garbled_buttons_are_refused(bot: BotHarness) -> None:
    await _paper(bot)
    await _paper(bot, OTHER)
    calls = await bot.send(TRADER, "/positions")
    message, (refresh,) = _message(calls), _buttons(calls[-1])
    for user_id, data, answer in [
        (OTHER, refresh, STALE_LIST),  # another trader's list: never shows theirs instead
        (TRADER, "pr:1:x", "This button is out of date; send the command again."),
    ]:
        pressed = await bot.press(user_id, message, data)
        assert [c.method for c in pressed] == ["answerCallbackQuery"]
        assert pressed[0].params["text"] == answer
    await bot.services.accounts.remove(TRADER, int(refresh.split(":")[1]))
    pressed = await bot.press(TRADER, message, refresh)
    assert [c.params.get("text") for c in pressed] == [NO_ACCOUNT]


async def test_refresh_bypasses_the_cache_and_edits_in_place(
    bybit_bot: BotHarness, server: ExchangeServer
) -> None:
    async with bybit_bot.services.exchanges.lease(TRADER, "bybit", "demo") as client:
        await client.create_order(
            OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "twtestrefresh1")
        )
    reads = server.stats.requests
    before = reads["/v5/position/list"]
    calls = await bybit_bot.send(TRADER, "/positions")
    (reply,) = texts(calls)
    assert reply.startswith("Positions · Bybit (demo)\n1 open")
    assert "1. BTC/USDT:USDT · LONG 0.01" in reply and "Entry 60,000.0" in reply
    assert reads["/v5/position/list"] == before + 1
    again = await bybit_bot.send(TRADER, "/positions")
    assert reads["/v5/position/list"] == before + 1  # served from the 10 s cache
    server.set_price("BTCUSDT", "61000")
    refresh = _buttons(again[-1])[-1]
    pressed = await bybit_bot.press(TRADER, _message(again), refresh)
    assert reads["/v5/position/list"] == before + 2
    assert [c.method for c in pressed] == ["editMessageText", "answerCallbackQuery"]
    assert pressed[0].params["message_id"] == _message(again)["message_id"]
    (edited,) = texts(pressed)
    assert "mark 61,000.0" in edited and "uPnL +10.00 USDT" in edited


async def test_exchange_failure_is_a_readable_reply(
    bybit_bot: BotHarness, server: ExchangeServer
) -> None:
    fault = server.faults.add(
        path="/v5/account/wallet-balance", kind=FaultKind.HTTP_429, times=None
    )
    (reply,) = texts(await bybit_bot.send(TRADER, "/balance"))
    assert reply.startswith("Bybit is rate limiting us, try again in")
    server.faults.remove(fault)
    (after,) = texts(await bybit_bot.send(TRADER, "/balance"))  # the failure was not cached
    assert after.startswith("Balance · Bybit (demo)\nEquity: 5,000.00 USDT")
