"""`fetch_key_info` on each venue's local server through the real ccxt client: Bybit's
query-api, OKX's account config and Binance's API restrictions read as one `KeyInfo`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.key_info import KeyInfo
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from tests.exchange_server import ExchangeServer
from tests.exchange_server.binance import BinanceServer
from tests.exchange_server.models import KeyPermissions
from tests.exchange_server.okx import OkxServer

KEY, SECRET, PHRASE = "key", "secret", "phrase"
SERVERS: dict[str, Callable[[], ExchangeServer]] = {
    "bybit": lambda: ExchangeServer(symbols=5, seed=4),
    "okx": lambda: OkxServer(symbols=5, seed=4),
    "binance": lambda: BinanceServer(symbols=5, seed=4),
}
CASES = [
    (KeyPermissions(), KeyInfo(reported=True)),
    (KeyPermissions(withdraw=True), KeyInfo(reported=True, can_withdraw=True)),
    (KeyPermissions(ips=("*",)), KeyInfo(reported=True, ip_restricted=False)),
    (KeyPermissions(read_only=True, trade=False), KeyInfo(reported=True, can_trade=False)),
]


@pytest.fixture(params=sorted(SERVERS))
async def world(request: pytest.FixtureRequest) -> AsyncIterator[tuple[ExchangeServer, CcxtVenue]]:
    name = request.param
    async with SERVERS[name]() as server:
        if isinstance(server, OkxServer):
            server.add_account(KEY, SECRET, Decimal("10000"), passphrase=PHRASE)
        else:
            server.add_account(KEY, SECRET, Decimal("10000"))
        retry = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001)
        venue = CcxtVenue(VENUES[name], base_url=server.base_url, retry=retry)
        try:
            yield server, venue
        finally:
            await venue.aclose()


@pytest.mark.parametrize(("permissions", "expected"), CASES)
async def test_each_venue_reports_the_keys_permissions(
    world: tuple[ExchangeServer, CcxtVenue], permissions: KeyPermissions, expected: KeyInfo
) -> None:
    server, venue = world
    server.engine.accounts[KEY].key = permissions
    client = await venue.client("live", ApiCredentials(KEY, SECRET, PHRASE))
    try:
        assert await client.fetch_key_info() == expected
    finally:
        await client.close()
