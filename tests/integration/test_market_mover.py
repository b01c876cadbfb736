"""The local exchange's moving market: a tick moves prices, breaks symbols out, lists, delists
and changes instruments; a server started without `moving` has no such route."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.exchange_server import ExchangeServer


async def _tick(url: str, **params: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/test/tick", params=params) as response,
    ):
        return response.status, await response.json()


async def test_a_tick_moves_the_market() -> None:
    async with ExchangeServer(symbols=50, seed=2, moving=True) as server:
        before = {s: server.price(s) for s in server.market.instruments}
        leverage = {s: i.max_leverage for s, i in server.market.instruments.items()}
        status, report = await _tick(
            server.base_url, breakouts="4", listings="2", delistings="3", changes="5"
        )
        assert status == 200
        breakouts = report["breakouts"]
        assert isinstance(breakouts, list) and len(breakouts) == 4
        for symbol in breakouts:  # a breakout is a step of 3-6 %
            assert abs(server.price(symbol) / before[symbol] - 1) >= 0.029
        assert report["moved"] == 50  # every price took a step
        assert len(report["listed"]) == 2 and all(
            server.market.tradable(s) for s in report["listed"]
        )
        assert all(server.market.instruments[s].status == "Closed" for s in report["delisted"])
        changed = report["changed"]
        assert isinstance(changed, list) and len(changed) == 5
        assert all(server.market.instruments[s].max_leverage != leverage[s] for s in changed)
        assert server.stats.total == 0  # a tick is not an exchange request


async def test_the_default_server_does_not_move() -> None:
    async with ExchangeServer(symbols=10, seed=2) as server:
        before = {s: server.price(s) for s in server.market.instruments}
        status, _ = await _tick(server.base_url)
        assert status == 404
        assert before == {s: server.price(s) for s in server.market.instruments}
