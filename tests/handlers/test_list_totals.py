"""/orders, /positions and /cancel see every order and position, not only the first page.

Through the real Application: the local Bybit server (paged like Bybit v5) with the real
ccxt client, and the paper exchange (no pages, the same totals).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.offline_api import ApiCall
from core.exchange.credentials import ApiCredentials
from core.exchange.models import OrderRequest, OrderType, Side
from tests.exchange_server import ExchangeServer
from tests.handlers.test_portfolio import _qty
from tests.harness import BotHarness, running_bot, texts
from tests.integration.test_list_pages import open_positions, rest_limits

TRADER = 42
KEY, SECRET = "key-pages", "secret-pages"
BTC = "BTC/USDT:USDT"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=70, seed=12) as running:
        running.add_account(KEY, SECRET, balance_usdt=Decimal("10000000"))
        yield running


@pytest.fixture
async def bybit_bot(tmp_path: Path, server: ExchangeServer) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as harness:
        await harness.send(TRADER, "/start")
        await harness.services.accounts.connect(
            TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET)
        )
        yield harness


@pytest.fixture
async def paper_bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        await harness.send(TRADER, "/start")
        await harness.services.accounts.connect(TRADER, "paper", "paper")
        yield harness


def _buttons(call: ApiCall) -> list[str]:
    rows: list[list[dict[str, Any]]] = call.params["reply_markup"]["inline_keyboard"]
    return [str(b["callback_data"]) for row in rows for b in row]


def _sent(calls: list[ApiCall]) -> dict[str, Any]:
    (sent,) = [c for c in calls if c.method == "sendMessage"]
    assert isinstance(sent.result, dict)
    return sent.result


async def _last_page(bot: BotHarness, calls: list[ApiCall], prefix: str, pages: int) -> str:
    """Turn the list's message to its last page; the page's text."""
    account = (await bot.services.accounts.require_active(TRADER)).credential_id
    turned = await bot.press(TRADER, _sent(calls), f"{prefix}:{account}:{pages - 1}:c")
    (edit,) = [c for c in turned if c.method == "editMessageText"]
    (text,) = texts([edit])
    return text


async def test_sixty_orders_are_all_listed_and_the_oldest_cancels(
    bybit_bot: BotHarness, server: ExchangeServer
) -> None:
    placed = rest_limits(server, 60)  # oldest first
    calls = await bybit_bot.send(TRADER, "/orders")
    (first,) = texts(calls)
    assert first.splitlines()[:2] == ["Open orders · Bybit (demo)", "60 open · page 1/8"]
    assert len(first) <= 4096 and all(len(d.encode()) <= 64 for d in _buttons(calls[-1]))
    view = await bybit_bot.services.portfolio.open_orders(TRADER)
    assert view.complete and sorted(line.order.order_id for line in view.orders) == sorted(placed)
    assert "\n1. BTC/USDT:USDT · BUY LIMIT" in first and "id rest-000" in first  # oldest first
    last = await _last_page(bybit_bot, calls, "or", 8)
    assert "page 8/8" in last and "\n60. BTC/USDT:USDT · BUY LIMIT" in last
    assert "id rest-059" in last  # the newest, from the first of Bybit's pages

    oldest = placed[0]
    (reply,) = texts(await bybit_bot.send(TRADER, f"/cancel {oldest[:8]}"))
    assert reply.startswith("✖️ Order cancelled") and oldest in reply
    assert server.account(KEY).orders[oldest].status == "Cancelled"
    (after,) = texts(await bybit_bot.send(TRADER, "/orders"))
    assert "59 open · page 1/8" in after


async def test_sixty_positions_are_all_listed(
    bybit_bot: BotHarness, server: ExchangeServer
) -> None:
    symbols = open_positions(server, 60)
    calls = await bybit_bot.send(TRADER, "/positions")
    (first,) = texts(calls)
    assert first.splitlines()[1].startswith("60 open · uPnL ")
    assert "page 1/8" in first and len(first) <= 4096
    view = await bybit_bot.services.portfolio.positions(TRADER)
    assert view.complete and sorted(line.market_id for line in view.positions) == symbols
    assert "page 8/8" in await _last_page(bybit_bot, calls, "pr", 8)


async def test_a_list_beyond_the_bound_says_so(
    bybit_bot: BotHarness, server: ExchangeServer
) -> None:
    rest_limits(server, 60)
    async with bybit_bot.services.exchanges.lease(TRADER, "bybit", "demo") as client:
        client.list_pages = 1  # type: ignore[attr-defined]  # the bound, 50 orders here
    calls = await bybit_bot.send(TRADER, "/orders")
    (reply,) = texts(calls)
    assert reply.splitlines()[1:3] == [
        "More than 50 open · page 1/7",
        "⚠️ More than the bot reads at once: these are the newest 50; the exchange's own "
        "site lists the rest.",
    ]
    assert len(reply) <= 4096


async def test_paper_reports_the_same_totals(paper_bot: BotHarness) -> None:
    markets = sorted((await paper_bot.services.market.markets("paper")).values(), key=str)
    async with paper_bot.services.exchanges.lease(TRADER, "paper", "paper") as client:
        last = (await client.fetch_ticker(BTC)).last
        btc = next(m for m in markets if m.symbol == BTC)
        for n in range(60):
            below = btc.round_price(last * Decimal("0.5")) - n * btc.tick_size
            request = OrderRequest(BTC, Side.BUY, OrderType.LIMIT, btc.min_qty, f"twrest{n}", below)
            await client.create_order(request)
        for n, market in enumerate(m for m in markets if m.symbol != BTC):
            if n == 60:
                break
            price = (await client.fetch_ticker(market.symbol)).last
            qty = _qty(market, price, Decimal(20))
            await client.create_order(
                OrderRequest(market.symbol, Side.BUY, OrderType.MARKET, qty, f"twopen{n}")
            )
    (orders,) = texts(await paper_bot.send(TRADER, "/orders"))
    assert orders.splitlines()[1] == "60 open · page 1/8"
    (positions,) = texts(await paper_bot.send(TRADER, "/positions"))
    assert positions.splitlines()[1].startswith("60 open · uPnL ") and "page 1/8" in positions
    view = await paper_bot.services.portfolio.open_orders(TRADER)
    assert view.complete and len(view.orders) == 60
