"""Every list read is complete: open orders and positions follow Bybit's cursor to the end.

The real ccxt client against the local Bybit server, which pages `/v5/order/realtime` and
`/v5/position/list` the way Bybit v5 does (`limit`, a percent-encoded `nextPageCursor` on
every page with rows, an empty page with an empty cursor after the last).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_UP, Decimal
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from core.exchange.bybit import BybitClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.models import LIST_PAGES, PagedList
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from tests.exchange_server import ExchangeServer

KEY, SECRET = "key-pages", "secret-pages"
ORDERS, POSITIONS = "/v5/order/realtime", "/v5/position/list"
FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.002)


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=70, seed=12) as running:
        running.add_account(KEY, SECRET, balance_usdt=Decimal("10000000"))
        yield running


@pytest.fixture
async def client(server: ExchangeServer) -> AsyncIterator[BybitClient]:
    venue = CcxtVenue(VENUES["bybit"], base_url=server.base_url, retry=FAST_RETRY)
    user = await venue.client("live", ApiCredentials(KEY, SECRET))
    assert isinstance(user, BybitClient)
    yield user
    await user.close()
    await venue.aclose()


def rest_limits(server: ExchangeServer, count: int, symbol: str = "BTCUSDT") -> list[str]:
    """`count` resting buys far below the price, oldest first; their order ids."""
    inst = server.engine.market.instruments[symbol]
    low = (server.price(symbol) / 2).quantize(inst.tick_size)
    acct = server.account(KEY)
    return [
        server.engine.create_order(
            acct,
            {
                "category": "linear",
                "symbol": symbol,
                "side": "Buy",
                "orderType": "Limit",
                "qty": str(inst.min_qty),
                "price": str(low - n * inst.tick_size),
                "orderLinkId": f"rest-{n:03d}",
            },
        ).order_id
        for n in range(count)
    ]


def open_positions(server: ExchangeServer, count: int) -> list[str]:
    """One small long on each of `count` symbols; their venue ids."""
    symbols = sorted(server.engine.market.instruments)[:count]
    acct = server.account(KEY)
    for symbol in symbols:
        inst = server.engine.market.instruments[symbol]
        steps = (Decimal(10) / server.price(symbol) / inst.qty_step).to_integral_value(ROUND_UP)
        qty = max(inst.min_qty, steps * inst.qty_step)  # worth at least 10 USDT
        order = {"category": "linear", "symbol": symbol, "side": "Buy", "orderType": "Market"}
        server.engine.create_order(acct, {**order, "qty": str(qty)})
    return symbols


async def test_sixty_open_orders_are_all_read_in_two_pages(
    server: ExchangeServer, client: BybitClient
) -> None:
    placed = rest_limits(server, 60)
    before = server.stats.requests[ORDERS]
    orders = await client.fetch_open_orders()
    assert isinstance(orders, PagedList) and orders.complete
    assert [o.order_id for o in orders] == placed  # oldest first, as one page came
    # 50, then 10: a page shorter than asked is the last, so no third request
    assert server.stats.requests[ORDERS] - before == 2


async def test_a_full_last_page_ends_at_the_empty_page_after_it(
    server: ExchangeServer, client: BybitClient
) -> None:
    placed = rest_limits(server, 50)
    before = server.stats.requests[ORDERS]
    orders = await client.fetch_open_orders()
    assert orders.complete and sorted(o.order_id for o in orders) == sorted(placed)
    assert server.stats.requests[ORDERS] - before == 2  # 50, then the empty page


async def test_sixty_positions_are_all_read_across_pages(
    server: ExchangeServer, client: BybitClient
) -> None:
    symbols = open_positions(server, 60)
    before = server.stats.requests[POSITIONS]
    positions = await client.fetch_positions()  # Bybit's largest page: 200, one request
    assert positions.complete and len(positions) == 60
    assert server.stats.requests[POSITIONS] - before == 1
    client.position_page = 25  # smaller pages: the cursor is followed 25, 25, 10
    paged = await client.fetch_positions()
    assert paged.complete
    assert sorted(p.symbol.split("/")[0] + "USDT" for p in paged) == symbols
    assert sorted(p.symbol for p in paged) == sorted(p.symbol for p in positions)
    assert server.stats.requests[POSITIONS] - before == 1 + 3


async def test_a_read_stopped_at_its_bound_says_it_is_incomplete(
    server: ExchangeServer, client: BybitClient
) -> None:
    assert LIST_PAGES == 50  # 2,500 open orders on Bybit before a list says "more"
    placed = rest_limits(server, 60)
    client.list_pages = 1
    orders = await client.fetch_open_orders()
    assert not orders.complete and len(orders) == 50
    newest = set(placed[10:])  # Bybit lists newest first
    assert {o.order_id for o in orders} == newest
    client.list_pages = 2
    assert (await client.fetch_open_orders()).complete


async def _raw(exchange: ccxt_async.bybit, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await exchange.privateGetV5OrderRealtime(
        {"category": "linear", "settleCoin": "USDT", **params}
    )
    return answer


async def test_the_server_pages_as_bybit_does(server: ExchangeServer) -> None:
    placed = rest_limits(server, 60)
    exchange = server.ccxt(KEY, SECRET)
    try:
        first = (await _raw(exchange, limit=50))["result"]
        cursor = first["nextPageCursor"]
        assert "%3A" in cursor and "%2C" in cursor  # sent percent-encoded, passed back raw
        assert [o["orderId"] for o in first["list"]] == placed[::-1][:50]  # newest first
        second = (await _raw(exchange, limit=50, cursor=cursor))["result"]
        assert [o["orderId"] for o in second["list"]] == placed[::-1][50:]
        assert second["nextPageCursor"]  # the last page with rows still names a cursor
        third = (await _raw(exchange, limit=50, cursor=second["nextPageCursor"]))["result"]
        assert (third["list"], third["nextPageCursor"]) == ([], "")
        # a cursor encoded twice decodes to garbage: refused
        with pytest.raises(ccxt.BadRequest, match="cursor invalid"):
            await _raw(exchange, cursor=cursor.replace("%", "%25"))
    finally:
        await exchange.close()


async def test_orders_cancelled_between_pages_move_nothing(
    server: ExchangeServer, client: BybitClient
) -> None:
    placed = rest_limits(server, 60)
    exchange = server.ccxt(KEY, SECRET)
    try:
        page = await _raw(exchange, limit=20)
        for order_id in placed[50:60]:  # ten already read go before the next page is read
            server.engine.cancel_order(
                server.account(KEY),
                {"category": "linear", "symbol": "BTCUSDT", "orderId": order_id},
            )
        cursor = page["result"]["nextPageCursor"]
        following = await _raw(exchange, limit=20, cursor=cursor)
        # an offset would now skip ten (placed[30:40]); the cursor names where it stopped
        assert [o["orderId"] for o in following["result"]["list"]] == placed[20:40][::-1]
    finally:
        await exchange.close()
