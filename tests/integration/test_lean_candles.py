"""Bybit's lean candle path against ccxt's own: `BybitClient.fetch_ohlcv` reads
`/v5/market/kline` raw and parses its strings; it must give the very candles that ccxt's
`fetch_ohlcv` + `ccxt_parse.candle` give (the scanner's signals depend on them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.metrics import Metrics
from tests.exchange_server import ExchangeServer

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=40, seed=3) as running:
        yield running


@pytest.fixture
async def public(server: ExchangeServer) -> AsyncIterator[CcxtClient]:
    venue = CcxtVenue(
        VENUES["bybit"], base_url=server.base_url, metrics=Metrics(), retry=FAST_RETRY
    )
    yield await venue.public()
    await venue.aclose()


@pytest.mark.parametrize(("timeframe", "limit"), [("5m", 48), ("1m", 200), ("1h", 30)])
async def test_lean_candles_equal_ccxt_candles(
    server: ExchangeServer, public: CcxtClient, timeframe: str, limit: int
) -> None:
    symbols = list(await public.load_markets())[:8]
    server.set_price("BTCUSDT", "66123.4")  # the live candle follows a moved price
    for symbol in symbols:
        before = server.stats.total
        ours = await public.fetch_ohlcv(symbol, timeframe, limit)
        assert server.stats.total == before + 1  # one raw request, nothing else
        theirs = [
            parse.candle(row)
            for row in await public.api.fetch_ohlcv(symbol, timeframe, limit=limit)
        ]
        assert ours == theirs and len(ours) == limit
        assert all(isinstance(c.close, Decimal) for c in ours)
        assert [c.ts for c in ours] == sorted(c.ts for c in ours)


async def test_two_hour_candles_are_two_hours_apart(public: CcxtClient) -> None:
    candles = await public.fetch_ohlcv("BTC/USDT:USDT", "2h", 5)
    assert len(candles) == 5 and candles[-1].ts - candles[-2].ts == 7_200_000
