"""Bybit's lean markets path against ccxt's own `load_markets`, with the installed ccxt.

`BybitClient.fetch_markets_lean` pages `/v5/market/instruments-info` raw and parses
it with `core.exchange.lean_markets`; these tests pin it to what ccxt's `load_markets` +
`ccxt_parse.market` give: equal `Market` objects, down to each Decimal's digits.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.lean_markets import COMMON_CURRENCIES, combine, page_rows, parse_page
from core.exchange.models import Market
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.metrics import Metrics
from tests.exchange_server import FULL_SYMBOL_COUNT, ExchangeServer, FaultKind

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)
PATH = "/v5/market/instruments-info"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=FULL_SYMBOL_COUNT, seed=5) as running:
        yield running


@pytest.fixture
async def venue(server: ExchangeServer) -> AsyncIterator[CcxtVenue]:
    adapter = CcxtVenue(
        VENUES["bybit"], base_url=server.base_url, metrics=Metrics(), retry=FAST_RETRY
    )
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def public(venue: CcxtVenue) -> CcxtClient:
    return await venue.public()


async def ccxt_path(client: CcxtClient) -> dict[str, Market]:
    """What the generic path produces: ccxt's load_markets + our Decimal conversion."""
    raw = await client.api.load_markets(reload=True)
    return {s: parse.market(m) for s, m in raw.items() if parse.is_linear_usdt_perp(m)}


def same(ours: Mapping[str, Market], theirs: Mapping[str, Market]) -> None:
    """Equal objects, in the same order, with the same digits (repr shows Decimal exponents)."""
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert [repr(m) for m in ours.values()] == [repr(m) for m in theirs.values()]


async def test_lean_markets_equal_ccxt_markets(venue: CcxtVenue, public: CcxtClient) -> None:
    lean = await public.fetch_markets_lean()
    generic = await ccxt_path(public)
    assert len(lean) == FULL_SYMBOL_COUNT
    same(lean, generic)
    same(await public.fetch_markets_lean(), generic)  # the second time from remembered rows
    assert venue.markets() == lean  # the venue's own table came from the same path
    btc = lean["BTC/USDT:USDT"]
    assert btc.exchange_id == "BTCUSDT" and btc.active and btc.listed_at is not None


async def test_a_reload_reuses_unchanged_markets_and_sees_every_change(
    public: CcxtClient, server: ExchangeServer
) -> None:
    before = await public.fetch_markets_lean()
    server.add_symbol("ZAZUUSDT", "0.00001234")
    server.delist("SOLUSDT")  # gone from the list
    server.market.instruments["ETHUSDT"].tick_size = Decimal("0.05")
    server.market.instruments["XRPUSDT"].max_leverage = Decimal("12.5")
    lean = await public.fetch_markets_lean()
    same(lean, await ccxt_path(public))
    assert "SOL/USDT:USDT" not in lean and len(lean) == FULL_SYMBOL_COUNT
    assert lean["ZAZU/USDT:USDT"].tick_size > 0
    assert lean["BTC/USDT:USDT"] is before["BTC/USDT:USDT"]  # unchanged: the same object
    assert lean["ETH/USDT:USDT"].tick_size == Decimal("0.05")
    assert lean["XRP/USDT:USDT"].max_leverage == 12 != before["XRP/USDT:USDT"].max_leverage


async def test_requests_are_ccxts_and_go_through_call(
    venue: CcxtVenue, public: CcxtClient, server: ExchangeServer
) -> None:
    """One page and the pre-launch list (as ccxt asks), retried through `call`, measured."""
    before = server.stats.requests[PATH]
    server.faults.add(path=PATH, kind=FaultKind.HTTP_5XX, times=1)
    await public.fetch_markets_lean()
    assert server.stats.requests[PATH] == before + 3  # one retried
    assert venue.metrics is not None
    count = venue.metrics.registry.get_sample_value(
        "tradewind_exchange_call_seconds_count", {"exchange": "bybit", "method": "load_markets"}
    )
    assert count is not None and count >= 3


def _row(symbol: str, **edits: Any) -> dict[str, Any]:
    base = symbol.removesuffix("USDT").removesuffix("USDC").removesuffix("USD")
    row: dict[str, Any] = {
        "symbol": symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": base,
        "quoteCoin": "USDT",
        "settleCoin": "USDT",
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "199999.80", "tickSize": "0.10"},
        "lotSizeFilter": {
            "maxOrderQty": "1190.000",
            "minOrderQty": "0.001",
            "qtyStep": "0.001",
            "postOnlyMaxOrderQty": "1190.000",
            "minNotionalValue": "5",
        },
    }
    for key, value in edits.items():
        if isinstance(value, dict) and isinstance(row.get(key), dict):
            row[key] = {**row[key], **value}
        else:
            row[key] = value
    return row


EDGE_ROWS = [
    _row("BTCUSDT"),
    _row("XBTUSDT", baseCoin="XBT"),  # ccxt renames XBT → BTC: a second BTC/USDT:USDT
    _row("SHIB1000USDT", baseCoin="shib1000", launchTime="0"),  # lower case; epoch launch
    _row("ETHUSDC", quoteCoin="USDC", settleCoin="USDC"),  # not USDT-settled
    _row("ETHUSD", contractType="InversePerpetual", quoteCoin="USD", settleCoin="USD"),
    _row("BTCUSDT-26JUN26", contractType="LinearFutures", deliveryTime="1782460800000"),
    _row("TINYUSDT", priceFilter={"tickSize": "0.0000001"}, lotSizeFilter={"qtyStep": "1e-8"}),
    _row(
        "ZEROUSDT", priceFilter={"tickSize": "0"}, lotSizeFilter={"qtyStep": "", "minOrderQty": "0"}
    ),
    _row("MINUSDT", lotSizeFilter={"minTradingQty": "7", "minNotionalValue": ""}),
    _row("BLANKUSDT", lotSizeFilter={"minTradingQty": "", "minNotionalValue": "0"}),
    _row("NANUSDT", leverageFilter={"maxLeverage": "NaN"}, lotSizeFilter={"minNotionalValue": "x"}),
    _row("HALFUSDT", leverageFilter={"maxLeverage": "12.50"}, status="Settling", launchTime=""),
    _row("NOSETTLEUSDT", settleCoin=""),  # settle defaults to the quote coin
    _row("NOBASEUSDT", baseCoin=""),  # skipped by ccxt
    _row("BIGUSDT", priceFilter={"tickSize": "12345678901234567.89"}),  # beyond float digits
    _row("INTUSDT", leverageFilter={"maxLeverage": 50}, launchTime=1585526400000),  # numbers
    _row("BOOLUSDT", leverageFilter={"maxLeverage": True}, lotSizeFilter={"qtyStep": 1.0}),
    _row("BTCUSDT", priceFilter={"tickSize": "0.5"}),  # a later page loses to page 1 in ccxt
    _row("ETHUSDT", status="PreLaunch"),
]
PRE_LAUNCH = [_row("ETHUSDT", status="PreLaunch", launchTime="1800000000000")]


class CannedInstruments:
    """Bybit's instruments-info over fixed rows, `size` per page, whatever `limit` says."""

    def __init__(self, rows: list[dict[str, Any]], size: int) -> None:
        self.rows, self.size, self.calls = rows, size, 0

    async def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if params.get("status") == "PreLaunch":
            return {"result": {"category": "linear", "list": copy.deepcopy(PRE_LAUNCH)}}
        cursor = str(params.get("cursor") or "0")
        start = int(cursor)
        end = start + self.size
        following = str(end) if end < len(self.rows) else ""
        page = copy.deepcopy(self.rows[start:end])
        return {"result": {"category": "linear", "list": page, "nextPageCursor": following}}


async def test_edge_rows_and_pages_parse_like_ccxt(public: CcxtClient) -> None:
    """Currency renames, duplicates across pages and pre-launch, blanks, zeros, garbage."""
    canned = CannedInstruments(EDGE_ROWS, size=3)
    public.api.publicGetV5MarketInstrumentsInfo = canned  # the raw endpoint, both paths
    lean = await public.fetch_markets_lean()
    lean_calls = canned.calls
    generic = await ccxt_path(public)
    assert lean_calls == canned.calls - lean_calls == 8  # 7 pages + the pre-launch list
    same(lean, generic)
    same(await public.fetch_markets_lean(), generic)  # the second time from remembered rows
    btc = lean["BTC/USDT:USDT"]  # the later row of page 1 wins; page 7's copy loses
    assert btc.exchange_id == "XBTUSDT" and btc.tick_size == Decimal("0.1")
    assert lean["ETH/USDT:USDT"].listed_at is not None and not lean["ETH/USDT:USDT"].active
    assert lean["SHIB1000/USDT:USDT"].min_qty == Decimal("0.001")
    assert "ETH/USDC:USDC" not in lean and "NOBASE/USDT:USDT" not in lean


def test_pages_combine_like_ccxt_and_currency_table_is_ccxts() -> None:
    first = {"result": {"category": "linear", "list": [_row("AUSDT")], "nextPageCursor": "p2"}}
    category, rows, cursor = page_rows(first)
    assert (category, cursor) == ("linear", "p2")
    older, newer = parse_page(rows, category), parse_page([_row("BUSDT"), _row("AUSDT")], "x")
    assert newer == []  # only a linear response holds linear contracts
    assert list(combine([older, parse_page([_row("BUSDT")], "linear")])) == [
        "B/USDT:USDT",
        "A/USDT:USDT",
    ]
    assert page_rows({"result": None}) == (None, [], None)
    assert ccxt.bybit().commonCurrencies == COMMON_CURRENCIES
