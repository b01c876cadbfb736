"""OKX's traps, on its local v5 server through the real ccxt client.

Each test shows the venue's behaviour with raw ccxt where that is the trap, then that
Tradewind's OKX client handles it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ccxt.base.errors import AuthenticationError, BadRequest, InvalidOrder

from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import AccountSetupRequired, AuthFailed, RateLimited, UnknownOutcome
from core.exchange.errors import InvalidOrder as DomainInvalidOrder
from core.exchange.ids import client_order_id
from core.exchange.models import OrderRequest, OrderType, Side
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from tests.exchange_server import FaultKind
from tests.exchange_server.okx import OkxServer

BTC = "BTC/USDT:USDT"
KEY, SECRET, PHRASE = "key", "secret", "phrase"


@pytest.fixture
async def server() -> AsyncIterator[OkxServer]:
    async with OkxServer(symbols=10, seed=4) as running:
        running.add_account(KEY, SECRET, Decimal("10000"), passphrase=PHRASE)
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
async def venue(server: OkxServer) -> AsyncIterator[CcxtVenue]:
    retry = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001)
    adapter = CcxtVenue(VENUES["okx"], base_url=server.base_url, retry=retry)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def client(venue: CcxtVenue) -> AsyncIterator[CcxtClient]:
    opened = await venue.client("live", ApiCredentials(KEY, SECRET, PHRASE))
    yield opened
    await opened.close()


@pytest.fixture
async def raw(server: OkxServer) -> AsyncIterator[Any]:
    exchange = server.ccxt(KEY, SECRET, PHRASE, options={"fetchMarkets": {"types": ["swap"]}})
    await exchange.load_markets()
    yield exchange
    await exchange.close()


def buy(cid: str, qty: str = "0.01", **kw: Any) -> OrderRequest:
    return OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal(qty), cid, **kw)


async def test_sizes_are_contracts_and_tradewind_speaks_base_units(
    raw: Any, client: CcxtClient, server: OkxServer
) -> None:
    await raw.create_order(BTC, "market", "buy", 0.1, None)  # 0.1 contract = 0.001 BTC
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.001")
    market = (await client.load_markets())[BTC]
    assert (market.lot_size, market.min_qty) == (Decimal("0.001"), Decimal("0.001"))
    await client.create_order(buy("twsize1", "0.02"))
    placed = await client.fetch_order(BTC, client_order_id="twsize1")
    assert placed.qty == Decimal("0.02") and placed.filled_qty == Decimal("0.02")
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.021")
    (position,) = await client.fetch_positions()
    assert position.qty == Decimal("0.021")


async def test_the_passphrase_is_required_and_checked(venue: CcxtVenue, server: OkxServer) -> None:
    for phrase in ("", "wrong"):
        exchange = server.ccxt(KEY, SECRET, phrase)
        exchange.check_required_credentials = lambda *a, **k: True  # send it anyway
        with pytest.raises(AuthenticationError, match=r"5010[35]"):
            await exchange.privateGetAccountBalance()
        await exchange.close()
    bad = await venue.client("live", ApiCredentials(KEY, SECRET, "wrong"))
    with pytest.raises(AuthFailed):
        await bad.fetch_balance()
    await bad.close()


async def test_client_ids_are_letters_and_digits_up_to_32(raw: Any) -> None:
    for cid in ("tw-with-dash", "x" * 33):
        with pytest.raises(BadRequest, match="clOrdId"):
            await raw.create_order(BTC, "market", "buy", 1, None, {"clientOrderId": cid})
    ours = client_order_id("open", 42, "BTC/USDT:USDT", "2026-12-04T17:00:00+00:00")
    order = await raw.create_order(BTC, "market", "buy", 1, None, {"clientOrderId": ours})
    assert order["clientOrderId"] == ours and len(ours) == 32


async def test_a_pending_id_is_refused_and_a_finished_one_reused(
    raw: Any, client: CcxtClient, server: OkxServer
) -> None:
    params = {"clientOrderId": "twpending1"}
    await raw.create_order(BTC, "limit", "buy", 1, 50000, params)
    with pytest.raises(InvalidOrder, match="51016"):
        await raw.create_order(BTC, "limit", "buy", 1, 50000, params)
    await raw.create_order(BTC, "market", "buy", 1, None, {"clientOrderId": "twdone1"})
    await raw.create_order(BTC, "market", "buy", 1, None, {"clientOrderId": "twdone1"})
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.02")  # two orders
    await client.create_order(buy("twdone2"))
    with pytest.raises(UnknownOutcome):
        await client.create_order(buy("twdone2"))
    assert server.account(KEY).position("BTCUSDT").size == Decimal("0.03")


async def test_long_short_mode_wants_a_position_side(
    raw: Any, client: CcxtClient, server: OkxServer
) -> None:
    server.long_short.add(KEY)
    assert (await raw.fetch_position_mode(BTC))["hedged"] is True
    with pytest.raises(DomainInvalidOrder, match="posSide"):
        await client.create_order(buy("twls1"))
    order = await raw.create_order(BTC, "market", "buy", 1, None, {"posSide": "long"})
    assert order["id"]
    server.long_short.discard(KEY)
    with pytest.raises(BadRequest, match="posSide"):  # net mode refuses a side
        await raw.create_order(BTC, "market", "buy", 1, None, {"posSide": "long"})


async def test_tp_sl_ride_on_the_order(client: CcxtClient, server: OkxServer) -> None:
    tp, sl = Decimal("61800"), Decimal("59100")
    placed = await client.create_order(buy("twtpsl1", take_profit=tp, stop_loss=sl))
    (algo,) = server.algos.live(server.account(KEY))  # OKX: an algo of its own once filled
    assert (algo.ord_type, algo.side, algo.tp, algo.sl) == ("oco", "sell", tp, sl)
    assert not algo.close_fraction and algo.contracts == 1  # sized to the entry's fill
    (held,) = await client.fetch_positions()
    assert (held.take_profit, held.stop_loss) == (tp, sl)
    found = await client.fetch_order(BTC, client_order_id="twtpsl1")
    assert found.order_id == placed.order_id and found.take_profit == tp
    assert found.fee == Decimal("0.33")  # OKX's negative fee, as a cost


async def test_leverage_above_the_maximum_is_a_refusal(client: CcxtClient) -> None:
    with pytest.raises(DomainInvalidOrder):
        await client.set_leverage("ETH/USDT:USDT", 120)  # OKX 59102, not a venue failure


async def test_open_orders_page_by_order_id(raw: Any) -> None:
    for n in range(5):
        await raw.create_order(BTC, "limit", "buy", 1, 50000 - n, {"clientOrderId": f"twp{n}"})
    first = await raw.fetch_open_orders(BTC, None, 2)
    after = next(o["id"] for o in first if o["clientOrderId"] == "twp3")  # the page's oldest
    rest = await raw.fetch_open_orders(BTC, None, 100, {"after": after})
    assert {o["clientOrderId"] for o in first} == {"twp4", "twp3"}  # newest first
    assert sorted(o["clientOrderId"] for o in rest) == ["twp0", "twp1", "twp2"]


async def test_rate_limit_is_50011(client: CcxtClient, server: OkxServer) -> None:
    server.faults.add(path="/api/v5/account/balance", kind=FaultKind.RATE_LIMIT, times=None)
    with pytest.raises(RateLimited):
        await client.fetch_balance()


@pytest.mark.parametrize(
    ("setting", "told"),
    [("long_short", "Long/short position mode"), ("simple_mode", "Simple mode")],
)
async def test_the_account_check_says_what_to_change(
    venue: CcxtVenue, server: OkxServer, setting: str, told: str
) -> None:
    credentials = ApiCredentials(KEY, SECRET, PHRASE)
    await venue.check_account("demo", credentials)  # net mode, level 2: nothing to say
    getattr(server, setting).add(KEY)
    with pytest.raises(AccountSetupRequired, match=told):
        await venue.check_account("demo", credentials)


async def test_open_orders_beyond_okxs_page_of_100_are_all_listed(client: CcxtClient) -> None:
    for n in range(105):
        price = Decimal(50000 - n)
        await client.create_order(
            OrderRequest(BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"), f"twmany{n}", price)
        )
    assert len(await client.fetch_open_orders()) == 105


async def test_post_only_is_an_order_type_and_one_that_would_take_is_cancelled(
    client: CcxtClient, server: OkxServer
) -> None:
    def limit(cid: str, price: str) -> OrderRequest:
        return OrderRequest(
            BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"), cid, price=Decimal(price),
            post_only=True,
        )  # fmt: skip

    await client.create_order(limit("twpo1", "59000"))
    assert server.account(KEY).by_link["twpo1"].time_in_force == "PostOnly"
    await client.create_order(limit("twpo2", "60500"))  # above the last price: it would take
    taken = await client.fetch_order(BTC, client_order_id="twpo2")
    assert (taken.status.value, taken.filled_qty) == ("cancelled", 0)
