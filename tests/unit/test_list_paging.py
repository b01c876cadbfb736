"""The generic ccxt client follows a venue's own order cursor (OKX: `after` an order id)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.exchange.ccxt_client import CcxtClient
from core.exchange.models import Market
from core.exchange.retry import RetryPolicy
from core.exchange.venues import VENUES

OKX_PAGE = 100


class FakeOkxApi:
    """ccxt's okx as far as open orders go: newest first from the venue, each page sorted
    oldest first by ccxt, `after` an order id gives the older ones."""

    def __init__(self, count: int) -> None:
        # order n was placed at n seconds; ids grow with time as OKX's do
        self.orders = [self._order(n) for n in range(count)]
        self.asked: list[dict[str, Any]] = []

    @staticmethod
    def _order(n: int) -> dict[str, Any]:
        return {
            "id": str(1000 + n),
            "clientOrderId": f"c{n}",
            "symbol": "BTC/USDT:USDT",
            "side": "buy",
            "type": "limit",
            "amount": 1.0,
            "price": 100.0,
            "status": "open",
            "filled": 0.0,
            "timestamp": 1_700_000_000_000 + n * 1000,
        }

    async def fetch_open_orders(
        self, symbol: str | None, since: int | None, limit: int | None, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        self.asked.append({"limit": limit, **params})
        newest = self.orders[::-1]
        if "after" in params:
            newest = [o for o in newest if int(o["id"]) < int(params["after"])]
        page = newest[: limit or OKX_PAGE]
        return sorted(page, key=lambda o: o["timestamp"])  # as ccxt's parse_orders does


class Venue:
    venue = VENUES["okx"]
    metrics = None
    retry = RetryPolicy(attempts=1)
    markets_version = 0
    name = "okx"

    def markets(self) -> Mapping[str, Market]:
        return {}


def _client(api: FakeOkxApi) -> CcxtClient:
    return CcxtClient(Venue(), api, "live")  # type: ignore[arg-type]


async def test_okx_orders_are_followed_by_their_ids_to_the_end() -> None:
    api = FakeOkxApi(250)
    orders = await _client(api).fetch_open_orders()
    assert orders.complete
    assert [o.order_id for o in orders] == [str(1000 + n) for n in range(250)]  # oldest first
    assert [a.get("after") for a in api.asked] == [None, "1150", "1050"]
    assert {a["limit"] for a in api.asked} == {OKX_PAGE}


async def test_okx_orders_past_the_bound_are_marked_incomplete() -> None:
    api = FakeOkxApi(250)
    client = _client(api)
    client.list_pages = 2
    orders = await client.fetch_open_orders()
    assert not orders.complete and len(orders) == 200
    assert orders[0].order_id == "1050"  # the newest 200
