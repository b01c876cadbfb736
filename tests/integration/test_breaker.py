"""The circuit breaker per venue: the real ccxt client against the local Bybit (and Binance)
server, faults injected on the server's wire, time moved by a FakeClock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal

import aiohttp
import pytest

from core.exchange.breaker import BreakerBoard, BreakerPolicy, BreakerState
from core.exchange.ccxt_client import CcxtClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.errors import (
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    RateLimited,
    UnknownOutcome,
    VenueDown,
)
from core.exchange.models import OrderRequest, OrderType, Side
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES
from core.health import HealthServer
from core.metrics import Metrics
from tests.exchange_server import ExchangeServer, FaultKind
from tests.exchange_server.binance import BinanceServer
from tests.fakes.clock import FakeClock

BTC = "BTC/USDT:USDT"
BALANCE, CREATE = "/v5/account/wallet-balance", "/v5/order/create"
RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.001)
POLICY = BreakerPolicy(failures=3, cooldown_s=30.0)  # one read's 3 attempts open it
DOWN = "Bybit is not answering; trying again in 30 s"


@dataclass(slots=True)
class World:
    server: ExchangeServer
    board: BreakerBoard
    clock: FakeClock
    metrics: Metrics
    venue: CcxtVenue
    live: CcxtClient
    demo: CcxtClient

    def requests(self, path: str = BALANCE) -> int:
        return self.server.stats.requests[path]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with ExchangeServer(symbols=10, seed=17) as server:
        server.add_account("key", "secret", Decimal("10000"))
        server.set_price("BTCUSDT", "60000")
        clock, metrics = FakeClock(), Metrics()
        board = BreakerBoard(POLICY, clock, metrics)
        venue = CcxtVenue(
            VENUES["bybit"], base_url=server.base_url, retry=RETRY, metrics=metrics, breakers=board
        )
        creds = ApiCredentials("key", "secret")
        live = await venue.client("live", creds)
        demo = await venue.client("demo", creds)
        yield World(server, board, clock, metrics, venue, live, demo)
        await live.close()
        await demo.close()
        await venue.aclose()


def _state(world: World, account_type: str = "live") -> BreakerState:
    breaker = world.board.breaker("bybit", account_type)
    assert breaker is not None
    return breaker.state


async def _trip(world: World) -> None:
    """One balance read: three 5xx answers in a row, the breaker's threshold."""
    world.server.faults.add(path=BALANCE, kind=FaultKind.HTTP_5XX, times=3)
    with pytest.raises(ExchangeUnavailable) as caught:
        await world.live.fetch_balance()
    assert not isinstance(caught.value, VenueDown)  # the third real failure, not a fast one
    assert _state(world) is BreakerState.OPEN


async def test_n_failures_open_it_and_calls_then_fail_fast_without_a_request(
    world: World,
) -> None:
    await _trip(world)
    before = world.requests(BALANCE) + world.requests("/v5/position/list")
    for _ in range(5):
        with pytest.raises(VenueDown) as caught:
            await world.live.fetch_balance()
        assert caught.value.message == DOWN
    with pytest.raises(VenueDown):
        await world.live.fetch_positions()
    assert world.requests(BALANCE) + world.requests("/v5/position/list") == before
    world.clock.advance(12)
    with pytest.raises(VenueDown) as caught:
        await world.live.fetch_balance()
    assert caught.value.message == "Bybit is not answering; trying again in 18 s"
    venue = 'venue="bybit/live"'
    assert _sample(world.metrics, "tradewind_exchange_breaker_opened_total", venue) == 1
    assert _sample(world.metrics, "tradewind_exchange_breaker_refused_total", venue) == 7


async def test_an_order_is_refused_before_it_is_sent_not_left_unknown(world: World) -> None:
    await _trip(world)
    request = OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "twbrk001")
    with pytest.raises(VenueDown):
        await world.live.create_order(request)
    assert world.requests(CREATE) == 0  # nothing reached the venue: definitely not placed


async def test_after_the_cooldown_one_probe_closes_it(world: World) -> None:
    await _trip(world)
    world.clock.advance(30)
    before = world.requests()
    assert (await world.live.fetch_balance()).equity == Decimal("10000")
    assert world.requests() == before + 1
    assert _state(world) is BreakerState.CLOSED
    assert (await world.live.fetch_balance()).equity == Decimal("10000")


async def test_a_failed_probe_opens_it_for_another_cooldown(world: World) -> None:
    await _trip(world)
    world.clock.advance(30)
    world.server.faults.add(path=BALANCE, kind=FaultKind.HTTP_5XX, times=None)
    before = world.requests()
    with pytest.raises(ExchangeUnavailable):
        await world.live.fetch_balance()
    assert world.requests() == before + 1  # the probe only: its retries fail fast
    assert _state(world) is BreakerState.OPEN
    with pytest.raises(VenueDown) as caught:
        await world.live.fetch_balance()
    assert caught.value.message == DOWN  # a fresh cooldown from the failed probe


async def test_while_the_probe_is_out_the_others_fail_fast(world: World) -> None:
    await _trip(world)
    world.clock.advance(30)
    world.server.faults.add(path=BALANCE, kind=FaultKind.LATENCY, delay_ms=300)
    before = world.requests()
    probe = asyncio.create_task(world.live.fetch_balance())
    await asyncio.sleep(0.1)
    assert _state(world) is BreakerState.HALF_OPEN
    with pytest.raises(VenueDown):
        await world.live.fetch_balance()
    assert (await probe).equity == Decimal("10000")
    assert world.requests() == before + 1
    assert _state(world) is BreakerState.CLOSED


async def test_a_cancelled_probe_lets_the_next_call_probe(world: World) -> None:
    await _trip(world)
    world.clock.advance(30)
    world.server.faults.add(path=BALANCE, kind=FaultKind.LATENCY, delay_ms=2000, times=1)
    probe = asyncio.create_task(world.live.fetch_balance())
    await asyncio.sleep(0.1)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert (await world.live.fetch_balance()).equity == Decimal("10000")
    assert _state(world) is BreakerState.CLOSED


async def test_another_account_type_of_the_same_exchange_is_unaffected(world: World) -> None:
    await _trip(world)
    assert (await world.demo.fetch_balance()).equity == Decimal("10000")
    assert _state(world, "demo") is BreakerState.CLOSED
    with pytest.raises(VenueDown):
        await world.live.fetch_balance()


async def test_another_exchange_is_unaffected(world: World) -> None:
    await _trip(world)
    async with BinanceServer(symbols=10, seed=17) as binance_server:
        binance_server.add_account("key", "secret", Decimal("700"))
        venue = CcxtVenue(
            VENUES["binance"], base_url=binance_server.base_url, retry=RETRY, breakers=world.board
        )
        client = await venue.client("live", ApiCredentials("key", "secret"))
        try:
            assert (await client.fetch_balance()).equity == Decimal("700")
        finally:
            await client.close()
            await venue.aclose()
    assert world.board.report()["binance/live"] == {
        "state": "closed",
        "failures": 0,
        "opened": 0,
        "retry_in_s": 0.0,
    }


async def test_traders_own_errors_and_rate_limits_do_not_trip_it(world: World) -> None:
    too_big = OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("5"), "twbrk0")
    for n in range(POLICY.failures + 2):
        with pytest.raises(InsufficientFunds):
            await world.live.create_order(replace(too_big, client_order_id=f"twbrkif{n}"))
    for n in range(POLICY.failures + 2):
        with pytest.raises(InvalidOrder):  # more contracts than the venue allows
            await world.live.create_order(
                replace(too_big, qty=Decimal("1000"), client_order_id=f"twbrkio{n}")
            )
    world.server.faults.add(path=BALANCE, kind=FaultKind.RATE_LIMIT, times=2 * RETRY.attempts)
    for _ in range(2):
        with pytest.raises(RateLimited):
            await world.live.fetch_balance()
    assert _state(world) is BreakerState.CLOSED
    assert (await world.live.fetch_balance()).equity == Decimal("10000")


async def test_an_answer_between_failures_resets_the_count(world: World) -> None:
    for _ in range(4):
        world.server.faults.add(path=BALANCE, kind=FaultKind.HTTP_5XX, times=2)
        assert (await world.live.fetch_balance()).equity == Decimal("10000")
    assert _state(world) is BreakerState.CLOSED  # 8 failures, never 3 in a row


async def test_a_dropped_order_answer_counts_and_stays_an_unknown_outcome(world: World) -> None:
    world.server.faults.add(path=CREATE, method="POST", kind=FaultKind.DROP, times=3)
    for n in range(3):
        request = OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), f"twbrkd{n}")
        with pytest.raises(UnknownOutcome):
            await world.live.create_order(request)
    assert _state(world) is BreakerState.OPEN


async def test_health_and_metrics_show_the_state(world: World) -> None:
    await _trip(world)
    world.clock.advance(10)
    async with HealthServer("127.0.0.1", 0, world.metrics, breakers=world.board) as server:
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/health") as response:
                status, health = response.status, json.loads(await response.text())
            async with session.get(f"{base}/metrics") as response:
                metrics = await response.text()
    assert status == 200  # an exchange's outage is not ours
    assert health["breakers"]["bybit/live"] == {
        "state": "open",
        "failures": 3,
        "opened": 1,
        "retry_in_s": 20.0,
    }
    assert 'tradewind_exchange_breaker{key="bybit/live"} 2.0' in metrics
    assert 'tradewind_exchange_breaker_opened_total{venue="bybit/live"} 1.0' in metrics


async def test_no_policy_means_no_breaker(world: World) -> None:
    board = BreakerBoard(None, world.clock)
    venue = CcxtVenue(VENUES["bybit"], base_url=world.server.base_url, retry=RETRY, breakers=board)
    client = await venue.client("live", ApiCredentials("key", "secret"))
    try:
        world.server.faults.add(path=BALANCE, kind=FaultKind.HTTP_5XX, times=6)
        for _ in range(2):
            with pytest.raises(ExchangeUnavailable) as caught:
                await client.fetch_balance()
            assert not isinstance(caught.value, VenueDown)
        assert board.report() == {}
    finally:
        await client.close()
        await venue.aclose()


def _sample(metrics: Metrics, name: str, labels: str) -> float:
    for family in metrics.registry.collect():
        for sample in family.samples:
            rendered = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            if sample.name == name and rendered == labels:
                return sample.value
    return 0.0
