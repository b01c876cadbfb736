"""The ccxt adapter against the local Bybit server: parsing, errors, retries, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from core.exchange.binance import BinanceClient
from core.exchange.bybit import BybitClient
from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue, client_class, rebase_urls
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import (
    AuthFailed,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
)
from core.exchange.models import OrderRequest, OrderStatus, OrderType, PositionSide, Side
from core.exchange.okx import OkxClient
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.metrics import Metrics
from tests.exchange_server import ExchangeServer, FaultKind

BTC = "BTC/USDT:USDT"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002, max_retry_after=1.5)


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=40, seed=3) as running:
        running.add_account("key-1", "secret-1", balance_usdt=Decimal("10000"))
        yield running


@pytest.fixture
async def venue(server: ExchangeServer) -> AsyncIterator[CcxtVenue]:
    adapter = CcxtVenue(
        VENUES["bybit"], base_url=server.base_url, metrics=Metrics(), retry=FAST_RETRY
    )
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def client(venue: CcxtVenue) -> AsyncIterator[CcxtClient]:
    user = await venue.client("live", ApiCredentials("key-1", "secret-1"))
    yield user
    await user.close()


def _market(symbol: str, qty: str, cid: str, **kw: object) -> OrderRequest:
    return OrderRequest(symbol, Side.BUY, OrderType.MARKET, Decimal(qty), cid, **kw)  # type: ignore[arg-type]


def test_the_venue_table_names_each_venues_client_class() -> None:
    classes = {name: client_class(venue) for name, venue in VENUES.items()}
    assert classes == {"bybit": BybitClient, "binance": BinanceClient, "okx": OkxClient}


async def test_bybit_clients_carry_bybits_quirks_and_others_do_not(
    venue: CcxtVenue, client: CcxtClient
) -> None:
    assert type(client) is BybitClient and type(await venue.feed()) is BybitClient
    assert client.api.has["fetchCurrencies"] is False  # one start-up request less
    okx = CcxtVenue(VENUES["okx"])
    try:
        feed = await okx.feed()  # builds the client, sends nothing
        assert type(feed) is OkxClient and feed.api.has["fetchCurrencies"] is not False
    finally:
        await okx.aclose()


def test_rebase_keeps_paths_and_nesting() -> None:
    urls = {"public": "https://api.{hostname}", "fapi": {"v1": "https://fapi.binance.com/fapi/v1"}}
    rebased = rebase_urls(urls, "http://127.0.0.1:9/")
    assert rebased == {"public": "http://127.0.0.1:9", "fapi": {"v1": "http://127.0.0.1:9/fapi/v1"}}


async def test_markets_are_linear_usdt_perps_with_rules(venue: CcxtVenue) -> None:
    public = await venue.public()
    markets = await public.load_markets()
    btc = markets[BTC]
    assert btc.exchange_id == "BTCUSDT" and btc.settle == "USDT"
    assert btc.tick_size > 0 and btc.lot_size > 0 and btc.max_leverage >= 50
    assert all(m.symbol.endswith(":USDT") for m in markets.values())


async def test_user_client_borrows_markets_instead_of_loading(
    venue: CcxtVenue, server: ExchangeServer
) -> None:
    await venue.public()
    first = await venue.client("live", ApiCredentials("key-1", "secret-1"))  # ccxt's tables
    await first.close()  # are built once, by the public client, on the first user client
    before = server.stats.requests["/v5/market/instruments-info"]
    user = await venue.client("live", ApiCredentials("key-1", "secret-1"))
    try:
        assert user.api.markets is (await venue.public()).api.markets
        await user.fetch_balance()
        assert server.stats.requests["/v5/market/instruments-info"] == before
    finally:
        await user.close()


async def test_registry_reloads_leave_ccxt_tables_alone_until_a_listing(
    venue: CcxtVenue, server: ExchangeServer
) -> None:
    public = await venue.public()
    assert not public.api.markets  # the lean load built no ccxt table
    user = await venue.client("live", ApiCredentials("key-1", "secret-1"))
    try:
        tables, version = public.api.markets, venue.markets_version
        await venue.reload_markets()
        assert public.api.markets is tables and venue.markets_version == version
        server.add_symbol("ZAZUUSDT", "1.25")
        markets = await venue.reload_markets()
        assert "ZAZU/USDT:USDT" in markets  # ours, and ccxt's rebuilt so it can be traded
        assert venue.markets_version == version + 1 and "ZAZU/USDT:USDT" in public.api.markets
        await user.fetch_balance()  # the next call re-borrows the new table
        assert "ZAZU/USDT:USDT" in user.api.markets
    finally:
        await user.close()


async def test_tickers_in_one_request(venue: CcxtVenue, server: ExchangeServer) -> None:
    public = await venue.public()
    before = server.stats.total
    tickers = await public.fetch_tickers()
    assert server.stats.total == before + 1
    assert len(tickers) == 40 and tickers[BTC].last > 0
    assert isinstance(tickers[BTC].quote_volume_24h, Decimal)


async def test_ohlcv_and_balance(client: CcxtClient) -> None:
    candles = await client.fetch_ohlcv(BTC, "1m", limit=50)
    assert len(candles) == 50 and all(c.high >= c.low for c in candles)
    balance = await client.fetch_balance()
    assert balance.equity == Decimal("10000") and balance.available == Decimal("10000")


async def test_market_order_opens_a_position(client: CcxtClient, server: ExchangeServer) -> None:
    server.set_price("BTCUSDT", "60000")
    placed = await client.create_order(_market(BTC, "0.01", "twtest0001"))
    assert placed.client_order_id == "twtest0001"
    found = await client.fetch_order(BTC, client_order_id="twtest0001")
    assert found.status is OrderStatus.FILLED and found.avg_price == Decimal("60000")
    (position,) = await client.fetch_positions()
    assert (position.symbol, position.side, position.qty) == (
        BTC,
        PositionSide.LONG,
        Decimal("0.01"),
    )
    assert position.entry_price == Decimal("60000")


async def test_limit_order_rests_and_cancels(client: CcxtClient, server: ExchangeServer) -> None:
    server.set_price("BTCUSDT", "60000")
    request = OrderRequest(
        BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "twlimit01", Decimal("50000")
    )
    placed = await client.create_order(request)
    (open_order,) = await client.fetch_open_orders()
    assert open_order.order_id == placed.order_id and open_order.price == Decimal("50000")
    cancelled = await client.cancel_order(BTC, placed.order_id)
    assert cancelled.order_id == placed.order_id
    assert await client.fetch_open_orders() == []
    with pytest.raises(OrderNotFound):
        await client.fetch_order(BTC, client_order_id="twnothere")


async def test_set_leverage_is_idempotent(client: CcxtClient) -> None:
    await client.set_leverage(BTC, 7)
    await client.set_leverage(BTC, 7)  # Bybit's "not modified" is success for us


async def test_bad_secret_is_auth_failed_with_a_readable_message(venue: CcxtVenue) -> None:
    wrong = await venue.client("live", ApiCredentials("key-1", "not-the-secret"))
    try:
        with pytest.raises(AuthFailed) as caught:
            await wrong.fetch_balance()
        assert caught.value.message.startswith("Bybit refused the API key")
        assert "not-the-secret" not in caught.value.message
    finally:
        await wrong.close()


async def test_insufficient_funds_and_invalid_order(client: CcxtClient) -> None:
    with pytest.raises(InsufficientFunds):
        await client.create_order(_market(BTC, "2", "twbig0001"))
    with pytest.raises(InvalidOrder):
        await client.create_order(_market(BTC, "0.0000001", "twtiny001"))


async def test_rate_limit_is_retried_then_surfaced(
    client: CcxtClient, server: ExchangeServer
) -> None:
    server.faults.add(path="/v5/account/wallet-balance", kind=FaultKind.HTTP_429, times=None)
    before = server.stats.requests["/v5/account/wallet-balance"]
    with pytest.raises(RateLimited) as caught:
        await client.fetch_balance()
    assert server.stats.requests["/v5/account/wallet-balance"] - before == FAST_RETRY.attempts
    assert "rate limiting us" in caught.value.message


async def test_5xx_on_reads_is_retried_then_succeeds(
    client: CcxtClient, server: ExchangeServer
) -> None:
    server.faults.add(path="/v5/account/wallet-balance", kind=FaultKind.HTTP_5XX, times=2)
    balance = await client.fetch_balance()
    assert balance.equity == Decimal("10000")


async def test_5xx_on_reads_surfaces_after_the_budget(
    client: CcxtClient, server: ExchangeServer
) -> None:
    server.faults.add(path="/v5/position/list", kind=FaultKind.HTTP_5XX, times=None)
    with pytest.raises(ExchangeUnavailable):
        await client.fetch_positions()


async def test_malformed_body_is_temporary(client: CcxtClient, server: ExchangeServer) -> None:
    server.faults.add(path="/v5/account/wallet-balance", kind=FaultKind.MALFORMED, times=None)
    with pytest.raises(ExchangeUnavailable):
        await client.fetch_balance()


async def test_accept_then_drop_on_create_is_an_unknown_outcome(
    client: CcxtClient, server: ExchangeServer
) -> None:
    server.faults.add(path="/v5/order/create", kind=FaultKind.ACCEPT_THEN_DROP)
    with pytest.raises(UnknownOutcome) as caught:
        await client.create_order(_market(BTC, "0.01", "twdrop001"))
    assert caught.value.client_order_id == "twdrop001"
    assert (await client.fetch_order(BTC, client_order_id="twdrop001")).status is OrderStatus.FILLED


async def test_duplicate_client_id_on_create_is_an_unknown_outcome(client: CcxtClient) -> None:
    await client.create_order(_market(BTC, "0.01", "twdup0001"))
    with pytest.raises(UnknownOutcome):
        await client.create_order(_market(BTC, "0.01", "twdup0001"))


async def test_exchange_calls_are_measured(venue: CcxtVenue, client: CcxtClient) -> None:
    await client.fetch_balance()
    assert venue.metrics is not None
    count = venue.metrics.registry.get_sample_value(
        "tradewind_exchange_call_seconds_count", {"exchange": "bybit", "method": "fetch_balance"}
    )
    assert count == 1


async def test_closed_client_refuses_use(venue: CcxtVenue) -> None:
    user = await venue.client("live", ApiCredentials("key-1", "secret-1"))
    await user.close()
    await user.close()
    with pytest.raises(ExchangeUnavailable, match="closed"):
        await user.fetch_balance()


async def test_unknown_account_type_is_refused(venue: CcxtVenue) -> None:
    okx_like = CcxtVenue(VENUES["okx"], base_url="http://127.0.0.1:9")
    with pytest.raises(InvalidOrder, match="no testnet accounts"):
        await okx_like.client("testnet", ApiCredentials("k", "s", "p"))
    await okx_like.aclose()


async def test_truncated_answer_to_create_is_an_unknown_outcome(
    client: CcxtClient, server: ExchangeServer
) -> None:
    server.faults.add(path="/v5/order/create", kind=FaultKind.TRUNCATED)
    with pytest.raises(UnknownOutcome):
        await client.create_order(_market(BTC, "0.01", "twtrunc01"))


async def test_garbled_answer_to_create_is_an_unknown_outcome(
    client: CcxtClient, server: ExchangeServer
) -> None:
    server.faults.add(path="/v5/order/create", kind=FaultKind.MALFORMED)
    with pytest.raises(UnknownOutcome):
        await client.create_order(_market(BTC, "0.01", "twgarb001"))


async def test_clients_are_isolated_clones(venue: CcxtVenue, server: ExchangeServer) -> None:
    server.add_account("key-2", "secret-2", balance_usdt=Decimal("777"))
    first = await venue.client("live", ApiCredentials("key-1", "secret-1"))
    second = await venue.client("live", ApiCredentials("key-2", "secret-2"))
    try:
        first.api.options["recvWindow"] = 1234
        first.api.urls["api"]["private"] = "http://127.0.0.1:1"
        assert "recvWindow" not in second.api.options or second.api.options["recvWindow"] != 1234
        assert second.api.urls["api"]["private"] == server.base_url
        assert first.api.api is second.api.api  # the read-only endpoint table is shared
        assert (await second.fetch_balance()).equity == Decimal("777")
    finally:
        await first.close()
        await second.close()


async def test_refusals_never_echo_signing_material_or_urls(venue: CcxtVenue) -> None:
    wrong = await venue.client("live", ApiCredentials("key-1", "not-the-secret"))
    try:
        with pytest.raises(AuthFailed) as caught:
            await wrong.fetch_balance()
    finally:
        await wrong.close()
    assert "key-1" not in caught.value.message  # Bybit echoes the signed string with the key
    assert "http" not in caught.value.message
