"""Why a Binance position closed, from the local Binance server through the real ccxt
client and the real services over SQLite: a take profit, a stop and a liquidation each end
as one trade with that reason and Binance's own PnL; a close Tradewind sent stays the
trader's; the orders behind the fills cost one request per symbol, not one per fill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.wiring import build_services
from core.cache import CacheLayer
from core.config import Settings
from core.crypto import SecretBox, generate_key
from core.exchange.binance import BinanceClient
from core.exchange.ccxt_venue import CcxtVenue
from core.exchange.credentials import ApiCredentials
from core.exchange.ids import client_order_id
from core.exchange.venues import VENUES
from core.metrics import Metrics
from db.repositories.intents import NewIntent
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.container import Services
from tests.exchange_server.binance import BinanceServer
from tests.fakes.clock import FakeClock

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
USER, KEY, SECRET = 7, "key7", "secret7"
ACCOUNT = (USER, "binance", "live")
ALL_ORDERS = "/fapi/v1/allOrders"


@dataclass(slots=True)
class Venue:
    store: Store
    server: BinanceServer
    services: Services
    clock: FakeClock

    async def open(
        self, symbol: str, side: str, qty: str, name: str, *, reduce_only: bool = False,
        take_profit: str | None = None, stop_loss: str | None = None,
    ) -> None:  # fmt: skip
        """A market order the trader confirmed in Tradewind, with its TP/SL levels."""
        cid = client_order_id("manual", USER, name)
        await self.services.executor.record(
            NewIntent(
                cid, USER, "binance", "live", symbol, side, "market", Decimal(qty), "manual",
                reduce_only=reduce_only,
                take_profit=Decimal(take_profit) if take_profit else None,
                stop_loss=Decimal(stop_loss) if stop_loss else None,
            )
        )  # fmt: skip
        async with self.services.exchanges.lease(*ACCOUNT) as client:
            await self.services.executor.place(client, cid)

    async def trades(self) -> list[tuple[str, str, Decimal, Decimal, Decimal, str]]:
        rows = await self.store.fetchall(
            "test",
            "SELECT symbol, side, CAST(exit_price AS TEXT), CAST(fee AS TEXT), "
            "CAST(pnl AS TEXT), close_reason FROM trade_logs ORDER BY id",
            (),
        )
        return [(r[0], r[1], Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), r[5]) for r in rows]

    def binance_pnl(self, symbol: str) -> Decimal:
        """Binance's closed PnL of the symbol: the realised PnL of its trades (before
        fees, as `realizedPnl` says it) less every fee paid on them."""
        rows = [e for e in self.server.account(KEY).executions if e["symbol"] == symbol]
        realised = sum((Decimal(e.get("execPnl") or 0) for e in rows), Decimal(0))
        return realised - sum((Decimal(e["execFee"]) for e in rows), Decimal(0))

    def requests(self, path: str) -> int:
        return self.server.stats.requests[path]


@pytest.fixture
async def venue(store: Store, tmp_path: Path) -> AsyncIterator[Venue]:
    async with BinanceServer(symbols=["BTCUSDT", "ETHUSDT"], seed=4) as server:
        server.add_account(KEY, SECRET, Decimal(10000))
        server.set_price("BTCUSDT", "60000")
        server.set_price("ETHUSDT", "3000")
        clock = FakeClock(datetime.now(UTC))
        settings = Settings(
            db_path=tmp_path / "tradewind.db",
            master_key_file=tmp_path / "master.key",
            exchange_urls={"binance": server.base_url},
            metrics_addr=None,
            streams=0,
        )
        services = await build_services(
            settings, store, clock, Metrics(), CacheLayer(clock), SecretBox([generate_key()]),
            frozenset(),
        )  # fmt: skip
        try:
            await UserRepository(store).upsert(UserProfile(USER, USER, "T"), clock.now())
            await services.accounts.connect(USER, "binance", "live", ApiCredentials(KEY, SECRET))
            yield Venue(store, server, services, clock)
        finally:
            await services.aclose()


async def test_a_take_profit_is_one_trade_with_its_reason_and_binances_pnl(venue: Venue) -> None:
    await venue.open(BTC, "buy", "0.01", "tp", take_profit="61800", stop_loss="59000")
    venue.server.set_price("BTCUSDT", "62000")  # through the take profit

    await venue.services.fill_catchup.catch_up_active()

    [(_, side, exit_price, fee, pnl, reason)] = await venue.trades()
    assert (side, exit_price, reason) == ("long", Decimal(62000), "take_profit")
    assert pnl == venue.binance_pnl("BTCUSDT") == Decimal(20) - fee
    assert fee == Decimal("0.33") + Decimal("0.341")


async def test_a_stop_loss_is_one_trade_with_its_reason(venue: Venue) -> None:
    await venue.open(BTC, "sell", "0.02", "sl", take_profit="58000", stop_loss="61000")
    venue.server.set_price("BTCUSDT", "61200")  # a short stopped out above its stop

    await venue.services.fill_catchup.catch_up_active()

    [(_, side, exit_price, _, pnl, reason)] = await venue.trades()
    assert (side, exit_price, reason) == ("short", Decimal(61200), "stop_loss")
    assert pnl == venue.binance_pnl("BTCUSDT") < Decimal(-24)


@pytest.mark.parametrize("adl", [False, True], ids=["liquidation", "deleveraging"])
async def test_a_liquidation_is_one_trade_with_its_reason(venue: Venue, adl: bool) -> None:
    await venue.open(ETH, "buy", "1", "liq")
    venue.server.liquidate(KEY, "ETHUSDT", "2700", adl=adl)

    await venue.services.fill_catchup.catch_up_active()

    [(symbol, side, exit_price, _, pnl, reason)] = await venue.trades()
    assert (symbol, side, exit_price, reason) == (ETH, "long", Decimal(2700), "liquidation")
    assert pnl == venue.binance_pnl("ETHUSDT") < Decimal(-300)


async def test_a_close_tradewind_sent_stays_the_traders_own(venue: Venue) -> None:
    await venue.open(BTC, "buy", "0.01", "mine", take_profit="65000", stop_loss="55000")
    venue.server.set_price("BTCUSDT", "60500")
    await venue.open(BTC, "sell", "0.01", "mine-close", reduce_only=True)

    await venue.services.fill_catchup.catch_up_active()

    [(_, _, exit_price, _, pnl, reason)] = await venue.trades()
    assert (exit_price, reason) == (Decimal(60500), "manual")
    assert pnl == venue.binance_pnl("BTCUSDT")


async def test_an_order_placed_in_binances_app_is_the_exchanges(venue: Venue) -> None:
    await venue.open(BTC, "buy", "0.01", "app")
    exchange = venue.server.ccxt(KEY, SECRET)
    try:
        await exchange.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    finally:
        await exchange.close()

    await venue.services.fill_catchup.catch_up_active()

    [(_, _, _, _, _, reason)] = await venue.trades()
    assert reason == "exchange"


async def test_the_orders_of_many_closes_cost_one_request_per_symbol(venue: Venue) -> None:
    for n in range(5):  # five take profits on BTC, five stops on ETH
        await venue.open(BTC, "buy", "0.01", f"b{n}", take_profit="60100")
        venue.server.set_price("BTCUSDT", "60150")
        venue.server.set_price("BTCUSDT", "60000")
        await venue.open(ETH, "sell", "0.1", f"e{n}", stop_loss="3010")
        venue.server.set_price("ETHUSDT", "3020")
        venue.server.set_price("ETHUSDT", "3000")
    async with venue.services.exchanges.lease(*ACCOUNT) as client:
        before = venue.requests(ALL_ORDERS)
        fills = await client.fetch_fills(datetime.now(UTC) - timedelta(minutes=5))
        asked = venue.requests(ALL_ORDERS) - before
        opened_only = await client.fetch_fills(datetime.now(UTC) + timedelta(minutes=1))

    closing = [f for f in fills if f.realised_pnl]
    assert fills.complete and len(fills) == 20 and len(closing) == 10
    assert asked == 2  # one page per symbol, for ten closing fills
    assert sorted(f.trigger or "" for f in closing) == ["stop_loss"] * 5 + ["take_profit"] * 5
    assert all(f.trigger is None for f in fills if not f.realised_pnl)
    assert list(opened_only) == [] and venue.requests(ALL_ORDERS) - before == 2


async def test_a_walk_follows_the_order_cursor_past_a_full_page(venue: Venue) -> None:
    """More orders than one allOrders page between two closes: both are found, following
    the `orderId` cursor, and the walk stops at the last one it needs."""
    await venue.open(BTC, "buy", "0.01", "first", take_profit="60100")
    venue.server.set_price("BTCUSDT", "60150")  # the first close
    venue.server.set_price("BTCUSDT", "60000")
    raw = venue.server.ccxt(KEY, SECRET)
    try:
        for n in range(4):  # resting orders far from the price, between the two closes
            await raw.create_order(BTC, "limit", "buy", 0.01, 40000 + n, {})
    finally:
        await raw.close()
    await venue.open(BTC, "buy", "0.01", "second", stop_loss="59900")
    venue.server.set_price("BTCUSDT", "59800")
    await venue.open(BTC, "buy", "0.01", "after")  # orders after the last close: not read
    adapter = CcxtVenue(VENUES["binance"], base_url=venue.server.base_url)
    client = await adapter.client("live", ApiCredentials(KEY, SECRET))
    try:
        assert isinstance(client, BinanceClient)
        client.order_page = 3
        before = venue.requests(ALL_ORDERS)
        fills = await client.fetch_fills(datetime.now(UTC) - timedelta(minutes=5))
    finally:
        await client.close()
        await adapter.aclose()

    closing = [f for f in fills if f.realised_pnl]
    assert [f.trigger for f in closing] == ["take_profit", "stop_loss"]
    # orders 2..4, 5..7, then 8 (the stop's) of 9: the walk ends at the last close
    assert fills.complete and venue.requests(ALL_ORDERS) - before == 3
