"""An open circuit breaker as traders meet it: through the real Application, the local Bybit
server failing, one trader on Bybit and one on paper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.breaker import BreakerPolicy
from core.exchange.credentials import ApiCredentials
from tests.exchange_server import ExchangeServer, FaultKind
from tests.fakes.clock import FakeClock
from tests.harness import BotHarness, running_bot, texts

TRADER, PAPER = 42, 43
BALANCE = "/v5/account/wallet-balance"
DOWN = "Bybit is not answering; trying again in 30 s"


@pytest.fixture
async def server() -> AsyncIterator[ExchangeServer]:
    async with ExchangeServer(symbols=10, seed=5) as running:
        running.add_account("key-42", "secret-42", Decimal("5000"))
        running.set_price("BTCUSDT", "60000")
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(
    tmp_path: Path, server: ExchangeServer, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    async with running_bot(
        tmp_path,
        clock=clock,
        exchange_urls={"bybit": server.base_url},
        breaker=BreakerPolicy(failures=3, cooldown_s=30),
    ) as harness:
        await harness.send(TRADER, "/start")
        creds = ApiCredentials("key-42", "secret-42")
        await harness.services.accounts.connect(TRADER, "bybit", "demo", creds)
        await harness.send(PAPER, "/start")
        await harness.services.accounts.connect(PAPER, "paper", "paper")
        yield harness


async def test_a_trader_is_told_when_bybit_stops_answering(
    bot: BotHarness, server: ExchangeServer, clock: FakeClock
) -> None:
    server.faults.add(path=BALANCE, kind=FaultKind.HTTP_5XX, times=None)
    first = texts(await bot.send(TRADER, "/balance"))
    assert len(first) == 1 and first[0].startswith("Bybit is unavailable right now")
    before = server.stats.requests[BALANCE]
    for _ in range(3):
        assert texts(await bot.send(TRADER, "/balance")) == [DOWN]
    assert server.stats.requests[BALANCE] == before  # failed fast: nothing sent
    paper = texts(await bot.send(PAPER, "/balance"))
    assert paper[0].startswith("Balance · Paper\nEquity: 10,000.00 USDT")
    report = bot.services.exchanges.breakers.report()
    assert report["bybit/demo"] == {"state": "open", "failures": 3, "opened": 1, "retry_in_s": 30.0}
    server.faults.clear()
    clock.advance(30)
    again = texts(await bot.send(TRADER, "/balance"))
    assert again[0].startswith("Balance · Bybit (demo)\nEquity: 5,000.00 USDT")
    assert bot.services.exchanges.breakers.report()["bybit/demo"]["state"] == "closed"
