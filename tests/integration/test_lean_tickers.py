"""Bybit's lean bulk-ticker path against ccxt's own parser, on the local Bybit server.

`BybitClient.fetch_tickers` reads `/v5/market/tickers` raw and parses it with
`core.exchange.lean_tickers`; these tests pin it to what ccxt's `fetch_tickers` +
`ccxt_parse.ticker` give with the installed ccxt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.lean_tickers import tickers_from_bybit
from core.exchange.models import Ticker
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.metrics import Metrics
from tests.exchange_server import FULL_SYMBOL_COUNT, ExchangeServer, FaultKind

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)
COMPARED = tuple(f.name for f in fields(Ticker) if f.name != "timestamp")


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=FULL_SYMBOL_COUNT, seed=11) as running:
        running.add_account("key-1", "secret-1", balance_usdt=Decimal("1000"))
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


async def ccxt_path(client: CcxtClient, markets: Mapping[str, Any]) -> dict[str, Ticker]:
    """What the generic path produces: ccxt's fetch_tickers + our Decimal conversion."""
    raw = await client.api.fetch_tickers()
    return {s: parse.ticker(t) for s, t in raw.items() if s in markets}


def differences(ours: Mapping[str, Ticker], theirs: Mapping[str, Ticker]) -> list[str]:
    """Every (symbol, field) where the two disagree; Decimals compare by value."""
    found = [f"{s}: only on one side" for s in ours.keys() ^ theirs.keys()]
    for symbol in ours.keys() & theirs.keys():
        a, b = ours[symbol], theirs[symbol]
        found += [
            f"{symbol}.{name}: {getattr(a, name)!r} != {getattr(b, name)!r}"
            for name in COMPARED
            if getattr(a, name) != getattr(b, name)
        ]
    return found


async def test_lean_path_equals_ccxt_path_field_by_field(
    venue: CcxtVenue, public: CcxtClient
) -> None:
    lean = await public.fetch_tickers()
    generic = await ccxt_path(public, venue.markets())
    assert len(lean) == len(generic) == FULL_SYMBOL_COUNT
    assert differences(lean, generic) == []
    btc = lean["BTC/USDT:USDT"]
    assert btc.last > 0 and btc.mark is not None and btc.change_24h_pct is not None
    assert isinstance(btc.quote_volume_24h, Decimal)


async def test_timestamp_is_the_servers_response_time(venue: CcxtVenue, public: CcxtClient) -> None:
    payload = await public.api.publicGetV5MarketTickers({"category": "linear"})
    stamp = datetime.fromtimestamp(payload["time"] / 1000, UTC)
    lean = tickers_from_bybit(payload, venue.symbols_by_id())
    assert {t.timestamp for t in lean.values()} == {stamp}
    before = datetime.now(UTC).replace(microsecond=0)
    fetched = {t.timestamp for t in (await public.fetch_tickers()).values()}
    assert len(fetched) == 1 and before <= fetched.pop() <= datetime.now(UTC)


async def test_edge_rows_parse_like_ccxt(venue: CcxtVenue, public: CcxtClient) -> None:
    """Zeros, blanks and a zero 24 h percentage (derived from the open, as ccxt does)."""
    payload = await public.api.publicGetV5MarketTickers({"category": "linear"})
    rows = payload["result"]["list"] = payload["result"]["list"][:10]
    edits: list[dict[str, str]] = [
        {"price24hPcnt": "0", "lastPrice": "65000.00", "prevPrice24h": "65000.03"},
        {"price24hPcnt": "0.000000", "lastPrice": "3.1415", "prevPrice24h": "3.1416"},
        {"price24hPcnt": "0", "prevPrice24h": "0"},
        {"price24hPcnt": "-0.123456"},
        {"bid1Price": "0", "ask1Price": "", "highPrice24h": "0", "lowPrice24h": ""},
        {"markPrice": "0", "turnover24h": "", "volume24h": "0"},
        {"markPrice": "", "lastPrice": "0", "price24hPcnt": "0"},
        {"bid1Price": "NaN", "ask1Price": "1e-3", "highPrice24h": "-0"},
        {"turnover24h": "123456789.1234", "volume24h": "0.001"},
        {"price24hPcnt": "0", "lastPrice": "0.00001234", "prevPrice24h": "0.00001233"},
    ]
    for row, edit in zip(rows, edits, strict=True):
        row.update(edit)
    markets = venue.markets()
    await public.api.load_markets()  # ccxt's parser needs ccxt's own tables
    parsed = public.api.parse_tickers(rows)
    generic = {
        s: ticker
        for s, t in parsed.items()
        if s in markets and (ticker := parse.ticker(t)).last > 0  # as CcxtClient filters
    }
    lean = tickers_from_bybit(payload, venue.symbols_by_id())
    assert len(lean) == 9  # the row without a last price is no quote at all
    assert differences(lean, generic) == []
    derived = [lean[s].change_24h_pct for s in list(lean)[:2]]
    assert all(pct is not None and pct < 0 for pct in derived)


async def test_delisted_symbol_is_not_returned(
    venue: CcxtVenue, public: CcxtClient, server: ExchangeServer
) -> None:
    server.delist("ETHUSDT")
    tickers = await public.fetch_tickers()
    assert "ETH/USDT:USDT" in venue.markets()  # still in the loaded table …
    assert "ETH/USDT:USDT" not in tickers  # … but the exchange no longer quotes it
    assert len(tickers) == FULL_SYMBOL_COUNT - 1


async def test_symbol_missing_from_loaded_markets_is_not_returned(
    venue: CcxtVenue, public: CcxtClient, server: ExchangeServer
) -> None:
    server.add_symbol("ZZNEWUSDT", "1.2345")
    tickers = await public.fetch_tickers()
    payload = await public.api.publicGetV5MarketTickers({"category": "linear"})
    assert "ZZNEWUSDT" in {row["symbol"] for row in payload["result"]["list"]}  # sent …
    assert len(tickers) == FULL_SYMBOL_COUNT  # … we skip it until markets are reloaded
    assert all("ZZNEW" not in symbol for symbol in tickers)
    await venue.reload_markets()
    assert (await public.fetch_tickers())["ZZNEW/USDT:USDT"].last == Decimal("1.2345")


async def test_one_request_per_call_and_measured(
    venue: CcxtVenue, public: CcxtClient, server: ExchangeServer
) -> None:
    user = await venue.client("live", ApiCredentials("key-1", "secret-1"))
    try:
        for client in (public, user, public):
            before = server.stats.total
            assert len(await client.fetch_tickers()) == FULL_SYMBOL_COUNT
            assert server.stats.total == before + 1
    finally:
        await user.close()
    assert venue.metrics is not None
    count = venue.metrics.registry.get_sample_value(
        "tradewind_exchange_call_seconds_count", {"exchange": "bybit", "method": "fetch_tickers"}
    )
    assert count == 3


async def test_reads_are_retried_through_call(public: CcxtClient, server: ExchangeServer) -> None:
    server.faults.add(path="/v5/market/tickers", kind=FaultKind.HTTP_5XX, times=1)
    before = server.stats.total
    assert len(await public.fetch_tickers()) == FULL_SYMBOL_COUNT
    assert server.stats.total == before + 2
