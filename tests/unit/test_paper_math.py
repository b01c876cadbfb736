"""Paper exchange arithmetic against hand-computed cases, on a real SQLite ledger.

Fees: taker 0.055 %, maker 0.02 %. Maintenance margin 0.5 %. Start: 10,000 USDT.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest

from core.exchange.errors import (
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    UnknownOutcome,
)
from core.exchange.models import OrderRequest, OrderStatus, OrderType, PositionSide, Side
from core.paper.book import EventKind
from core.paper.engine import PaperEngine
from core.paper.exchange import PaperExchange
from core.paper.ledger import liquidation_price
from db.repositories.paper import PaperRepository
from db.store import Store
from tests.fakes.clock import FakeClock
from tests.fakes.market import BTC, ETH, TINY, FakeMarketSource

_ids = itertools.count(1)


def req(
    symbol: str,
    side: Side,
    qty: str,
    price: str | None = None,
    *,
    cid: str | None = None,
    reduce_only: bool = False,
    tp: str | None = None,
    sl: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        qty=D(qty),
        client_order_id=cid or f"cid-{next(_ids)}",
        price=D(price) if price else None,
        reduce_only=reduce_only,
        take_profit=D(tp) if tp else None,
        stop_loss=D(sl) if sl else None,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def source(clock: FakeClock) -> FakeMarketSource:
    market = FakeMarketSource(clock)
    market.set_price(BTC, "50000")
    market.set_price(ETH, "2000")
    market.set_price(TINY, "0.01")
    return market


@pytest.fixture
def ledger(store: Store) -> PaperRepository:
    return PaperRepository(store)


@pytest.fixture
async def ex(
    source: FakeMarketSource, ledger: PaperRepository, clock: FakeClock
) -> AsyncIterator[PaperExchange]:
    async with PaperExchange(1, source=source, ledger=ledger, clock=clock) as client:
        yield client


@pytest.fixture
def engine(ledger: PaperRepository, clock: FakeClock) -> PaperEngine:
    return PaperEngine(ledger, clock)


async def test_fresh_account_has_ten_thousand_usdt(ex: PaperExchange) -> None:
    balance = await ex.fetch_balance()
    assert (balance.equity, balance.available, balance.used_margin) == (D(10000), D(10000), 0)
    assert ex.exchange == "paper" and ex.account_type == "paper"


async def test_market_long_fills_at_price_with_taker_fee(ex: PaperExchange) -> None:
    order = await ex.create_order(req(BTC, Side.BUY, "0.1"))
    assert order.status is OrderStatus.FILLED
    assert (order.avg_price, order.filled_qty, order.fee) == (D(50000), D("0.1"), D("2.75"))
    [position] = await ex.fetch_positions()
    assert position.side is PositionSide.LONG and position.entry_price == D(50000)
    assert position.margin == D(500) and position.leverage == 10
    assert position.liquidation_price == D(45250)  # 50000 × (1 − 1/10 + 0.005)
    balance = await ex.fetch_balance()
    assert balance.equity == D("9997.25") and balance.available == D("9497.25")
    assert balance.assets[0].total == D("9997.25") and balance.assets[0].used == D(500)


async def test_unrealised_pnl_moves_equity_not_available(
    ex: PaperExchange, source: FakeMarketSource
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    source.set_price(BTC, "51000")
    [position] = await ex.fetch_positions()
    assert position.unrealised_pnl == D(100) and position.mark_price == D(51000)
    assert position.pnl_pct == D(20)
    balance = await ex.fetch_balance()
    assert balance.unrealised_pnl == D(100)
    assert balance.equity == D("10097.25") and balance.available == D("9497.25")


async def test_closing_a_long_realises_pnl_minus_fees(
    ex: PaperExchange, source: FakeMarketSource
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    source.set_price(BTC, "51000")
    close = await ex.create_order(req(BTC, Side.SELL, "0.1", reduce_only=True))
    assert close.fee == D("2.805")
    assert await ex.fetch_positions() == []
    balance = await ex.fetch_balance()
    assert balance.equity == balance.available == D("10094.445")  # 10000 − 2.75 + 100 − 2.805
    fills = await ex.recent_fills()
    assert [f.realised_pnl for f in fills] == [D(100), D(0)]  # newest first


async def test_short_with_leverage_and_fees(ex: PaperExchange, source: FakeMarketSource) -> None:
    await ex.set_leverage(ETH, 5)
    await ex.create_order(req(ETH, Side.SELL, "1"))
    [position] = await ex.fetch_positions()
    assert position.side is PositionSide.SHORT and position.margin == D(400)
    assert position.liquidation_price == D(2390)  # 2000 × (1 + 1/5 − 0.005)
    source.set_price(ETH, "1900")
    assert (await ex.fetch_positions())[0].unrealised_pnl == D(100)
    await ex.create_order(req(ETH, Side.BUY, "1"))
    balance = await ex.fetch_balance()
    assert balance.equity == D("10097.855")  # 10000 − 1.1 + 100 − 1.045


def test_liquidation_prices() -> None:
    assert liquidation_price(PositionSide.LONG, D(100), 10) == D("90.5")
    assert liquidation_price(PositionSide.SHORT, D(100), 10) == D("109.5")
    assert liquidation_price(PositionSide.LONG, D(100), 20) == D("95.5")
    assert liquidation_price(PositionSide.SHORT, D(100), 1) == D("199.5")


async def test_limit_rests_then_fills_as_maker_when_price_crosses(
    ex: PaperExchange, engine: PaperEngine
) -> None:
    order = await ex.create_order(req(BTC, Side.BUY, "0.1", "49000"))
    assert order.status is OrderStatus.OPEN
    balance = await ex.fetch_balance()
    assert balance.used_margin == D(490) and balance.available == D(9510)
    assert (await engine.on_prices({BTC: D(49500)})).events == ()
    report = await engine.on_prices({BTC: D(48900)})
    assert report.orders_filled == 1 and report.affected == [(1, BTC, EventKind.ORDER_FILLED)]
    filled = await ex.fetch_order(BTC, order_id=order.order_id)
    assert filled.status is OrderStatus.FILLED and filled.avg_price == D(49000)
    assert filled.fee == D("0.98")  # maker: 0.1 × 49000 × 0.0002
    assert await ex.fetch_open_orders() == []
    [position] = await ex.fetch_positions()
    assert position.entry_price == D(49000) and position.margin == D(490)
    assert (await ex.fetch_balance()).available == D("9509.02")


async def test_limit_crossing_on_arrival_fills_at_once_as_taker(ex: PaperExchange) -> None:
    order = await ex.create_order(req(BTC, Side.BUY, "0.1", "50100"))
    assert order.status is OrderStatus.FILLED
    assert order.avg_price == D(50000) and order.fee == D("2.75")


async def test_reduce_only_is_refused_or_clipped(ex: PaperExchange) -> None:
    with pytest.raises(InvalidOrder, match="no open"):
        await ex.create_order(req(BTC, Side.SELL, "0.1", reduce_only=True))
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    with pytest.raises(InvalidOrder, match="increase"):
        await ex.create_order(req(BTC, Side.BUY, "0.1", reduce_only=True))
    clipped = await ex.create_order(req(BTC, Side.SELL, "0.5", reduce_only=True))
    assert clipped.qty == clipped.filled_qty == D("0.1")
    assert await ex.fetch_positions() == []


async def test_partial_close_keeps_entry_and_halves_margin(
    ex: PaperExchange, source: FakeMarketSource
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.2"))
    source.set_price(BTC, "52000")
    await ex.create_order(req(BTC, Side.SELL, "0.1"))
    [position] = await ex.fetch_positions()
    assert position.qty == D("0.1") and position.entry_price == D(50000)
    assert position.margin == D(500) and position.unrealised_pnl == D(200)


async def test_opposite_order_flips_long_to_short(
    ex: PaperExchange, source: FakeMarketSource
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    source.set_price(BTC, "52000")
    await ex.create_order(req(BTC, Side.SELL, "0.3"))
    [position] = await ex.fetch_positions()
    assert position.side is PositionSide.SHORT and position.qty == D("0.2")
    assert position.entry_price == D(52000) and position.margin == D(1040)
    balance = await ex.fetch_balance()
    assert balance.equity == D("10188.67")  # 10000 − 2.75 + 200 − 8.58


async def test_adding_to_a_position_averages_the_entry(
    ex: PaperExchange, source: FakeMarketSource
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    source.set_price(BTC, "53000")
    await ex.create_order(req(BTC, Side.BUY, "0.2"))
    [position] = await ex.fetch_positions()
    assert position.qty == D("0.3") and position.entry_price == D(52000)
    assert position.margin == D(1560) and position.liquidation_price == D(47060)


async def test_take_profit_fires_as_market_close(
    ex: PaperExchange, source: FakeMarketSource, engine: PaperEngine
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1", tp="55000", sl="48000"))
    [position] = await ex.fetch_positions()
    assert (position.take_profit, position.stop_loss) == (D(55000), D(48000))
    assert (await engine.on_prices({BTC: D(54000)})).events == ()
    report = await engine.on_prices({BTC: D(55500)})
    assert (report.tp_hits, report.sl_hits, report.liquidations) == (1, 0, 0)
    assert report.affected == [(1, BTC, EventKind.TAKE_PROFIT)]
    assert report.events[0].realised_pnl == D(550)
    assert await ex.fetch_positions() == []
    assert (await ex.fetch_balance()).equity == D("10544.1975")  # − 2.75 + 550 − 3.0525


async def test_stop_loss_fires_on_a_short(ex: PaperExchange, engine: PaperEngine) -> None:
    await ex.create_order(req(ETH, Side.SELL, "1", sl="2100"))
    report = await engine.on_prices({ETH: D(2150)})
    assert report.sl_hits == 1 and report.events[0].realised_pnl == D(-150)
    assert (await ex.fetch_balance()).equity == D("9847.7175")  # − 1.1 − 150 − 1.1825


async def test_liquidation_loses_exactly_the_margin(ex: PaperExchange, engine: PaperEngine) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    report = await engine.on_prices({BTC: D(45000)})
    assert report.liquidations == 1
    [event] = report.events
    assert event.price == D(45250) and event.realised_pnl == D(-475)
    assert await ex.fetch_positions() == []
    assert (await ex.fetch_balance()).equity == D("9497.25")  # 10000 − 2.75 − 500
    fill = (await ex.recent_fills())[0]
    assert fill.fee == D(25)  # what is left of the margin goes as the liquidation fee


async def test_stop_loss_above_liquidation_fires_first_on_a_gap(
    ex: PaperExchange, engine: PaperEngine
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1", sl="49000"))
    report = await engine.on_prices({BTC: D(40000)})
    assert [e.kind for e in report.events] == [EventKind.STOP_LOSS]
    assert report.events[0].realised_pnl == D(-500)  # capped at the isolated margin


async def test_insufficient_funds_writes_nothing(ex: PaperExchange) -> None:
    with pytest.raises(InsufficientFunds, match="available"):
        await ex.create_order(req(BTC, Side.BUY, "2.1", cid="too-big"))
    with pytest.raises(OrderNotFound):
        await ex.fetch_order(BTC, client_order_id="too-big")
    assert (await ex.fetch_balance()).equity == D(10000)
    await ex.create_order(req(BTC, Side.BUY, "1.9", "49000"))  # reserves 9310
    with pytest.raises(InsufficientFunds):
        await ex.create_order(req(BTC, Side.BUY, "0.2", "49000"))
    assert len(await ex.fetch_open_orders()) == 1


async def test_duplicate_client_order_id_is_refused(
    ex: PaperExchange, source: FakeMarketSource, ledger: PaperRepository, clock: FakeClock
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.01", cid="same"))
    with pytest.raises(UnknownOutcome, match="duplicate client order id"):
        await ex.create_order(req(BTC, Side.BUY, "0.01", cid="same"))
    other = PaperExchange(2, source=source, ledger=ledger, clock=clock)
    assert (await other.create_order(req(BTC, Side.BUY, "0.01", cid="same"))).filled_qty


async def test_sizes_and_symbols_a_venue_would_refuse(ex: PaperExchange) -> None:
    with pytest.raises(InvalidOrder, match="lot size"):
        await ex.create_order(req(BTC, Side.BUY, "0.0015"))
    with pytest.raises(InvalidOrder, match="minimum 5 USDT"):
        await ex.create_order(req(TINY, Side.BUY, "100"))
    with pytest.raises(InvalidOrder, match="unknown symbol"):
        await ex.create_order(req("NOPE/USDT:USDT", Side.BUY, "1"))
    with pytest.raises(InvalidOrder, match="take profit"):
        await ex.create_order(req(BTC, Side.BUY, "0.01", tp="49000"))
    with pytest.raises(InvalidOrder, match="stop loss"):
        await ex.create_order(req(BTC, Side.SELL, "0.01", sl="49000"))
    assert (await ex.fetch_balance()).equity == D(10000)


async def test_limit_price_is_rounded_to_the_tick(ex: PaperExchange) -> None:
    order = await ex.create_order(req(BTC, Side.BUY, "0.01", "49000.04"))
    assert order.price == D("49000.0")


async def test_leverage_bounds_and_effect(ex: PaperExchange) -> None:
    for bad in (0, 101):
        with pytest.raises(InvalidOrder, match="between 1 and 100"):
            await ex.set_leverage(BTC, bad)
    with pytest.raises(InvalidOrder, match="between 1 and 50"):
        await ex.set_leverage(ETH, 51)
    await ex.set_leverage(BTC, 20)
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    [position] = await ex.fetch_positions()
    assert position.leverage == 20 and position.margin == D(250)
    assert position.liquidation_price == D(47750)  # 50000 × (1 − 0.05 + 0.005)
    await ex.set_leverage(BTC, 5)  # re-margins the open position
    [position] = await ex.fetch_positions()
    assert position.margin == D(1000) and position.liquidation_price == D(40250)


async def test_leverage_that_would_liquidate_now_is_refused(
    ex: PaperExchange, source: FakeMarketSource
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    source.set_price(BTC, "47000")
    with pytest.raises(InvalidOrder, match="liquidate"):
        await ex.set_leverage(BTC, 20)  # liq 47750 is above the price


async def test_fetch_and_cancel_orders(ex: PaperExchange) -> None:
    order = await ex.create_order(req(BTC, Side.BUY, "0.1", "40000", cid="rest"))
    assert (await ex.fetch_order(BTC, client_order_id="rest")).order_id == order.order_id
    with pytest.raises(OrderNotFound):
        await ex.fetch_order(BTC, order_id="nope")
    with pytest.raises(OrderNotFound):
        await ex.fetch_order(ETH, order_id=order.order_id)
    cancelled = await ex.cancel_order(BTC, order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(OrderNotFound):
        await ex.cancel_order(BTC, order.order_id)
    assert (await ex.fetch_balance()).available == D(10000)


async def test_resting_reduce_only_is_cancelled_when_nothing_to_reduce(
    ex: PaperExchange, engine: PaperEngine
) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    await ex.create_order(req(BTC, Side.SELL, "0.1", "52000", reduce_only=True))
    await ex.create_order(req(BTC, Side.SELL, "0.1"))  # the position is closed by hand
    report = await engine.on_prices({BTC: D(52500)})
    assert [e.kind for e in report.events] == [EventKind.ORDER_CANCELLED]


async def test_closed_client_refuses_use(ex: PaperExchange) -> None:
    assert ex.healthy()
    await ex.close()
    assert not ex.healthy()
    with pytest.raises(ExchangeUnavailable, match="closed"):
        await ex.fetch_balance()
    await ex.close()  # idempotent


async def test_reset_account_starts_over(ex: PaperExchange) -> None:
    await ex.create_order(req(BTC, Side.BUY, "0.1"))
    await ex.create_order(req(BTC, Side.BUY, "0.1", "40000"))
    await ex.set_leverage(ETH, 3)
    balance = await ex.reset_account()
    assert balance.equity == D(10000) and balance.used_margin == 0
    assert await ex.fetch_positions() == [] and await ex.fetch_open_orders() == []
    assert await ex.recent_fills() == []
