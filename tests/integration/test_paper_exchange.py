"""The paper exchange on real SQLite files: restarts, atomicity, the engine's batching."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.exchange.errors import ExchangeUnavailable, UnknownOutcome
from core.exchange.models import OrderRequest, OrderStatus, OrderType, Side
from core.paper.book import EventKind
from core.paper.engine import PaperEngine
from core.paper.exchange import PaperExchange
from core.paper.ledger import AccountChanges, AccountState, OrderRecord
from core.paper.synthetic import SyntheticMarket
from db.repositories.paper import PaperRepository
from db.store import Store
from tests.fakes.clock import FakeClock
from tests.fakes.market import BTC, ETH, FakeMarketSource

_ids = itertools.count(1)


class StatementLog:
    """A `StatementObserver` that remembers which named statements ran."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def observe_statement(self, name: str, seconds: float) -> None:
        self.names.append(name)


def req(symbol: str, side: Side, qty: str, price: str | None = None, **kw: object) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT if price else OrderType.MARKET,
        qty=D(qty),
        client_order_id=str(kw.get("cid") or f"it-{next(_ids)}"),
        price=D(price) if price else None,
        take_profit=D(str(kw["tp"])) if "tp" in kw else None,
        stop_loss=D(str(kw["sl"])) if "sl" in kw else None,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def source(clock: FakeClock) -> FakeMarketSource:
    market = FakeMarketSource(clock)
    market.set_price(BTC, "50000")
    market.set_price(ETH, "2000")
    return market


async def _snapshot(ex: PaperExchange) -> tuple[object, ...]:
    return (
        await ex.fetch_balance(),
        await ex.fetch_positions(),
        await ex.fetch_open_orders(),
        await ex.recent_fills(),
    )


async def test_restart_loses_nothing(
    tmp_path: Path, clock: FakeClock, source: FakeMarketSource
) -> None:
    path = tmp_path / "paper.db"
    async with Store(path) as store:
        ex = PaperExchange(7, source=source, ledger=PaperRepository(store), clock=clock)
        await ex.set_leverage(ETH, 4)
        await ex.create_order(req(BTC, Side.BUY, "0.1", tp="60000", sl="45000"))
        clock.advance(60)
        await ex.create_order(req(ETH, Side.SELL, "2"))
        await ex.create_order(req(BTC, Side.BUY, "0.05", "48000", cid="resting"))
        source.set_price(BTC, "51000")
        before = await _snapshot(ex)
        await ex.close()
    async with Store(path) as store:
        ledger = PaperRepository(store)
        ex = PaperExchange(7, source=source, ledger=ledger, clock=clock)
        assert await _snapshot(ex) == before
        assert (await ex.fetch_order(BTC, client_order_id="resting")).status is OrderStatus.OPEN
        report = await PaperEngine(ledger, clock).on_prices({BTC: D(47900)})
        assert report.orders_filled == 1  # the resting order survived and still works


async def test_a_failed_write_rolls_back_the_whole_mutation(
    store: Store, clock: FakeClock, source: FakeMarketSource
) -> None:
    ledger = PaperRepository(store)
    ex = PaperExchange(1, source=source, ledger=ledger, clock=clock)
    first = await ex.create_order(req(BTC, Side.BUY, "0.01", cid="dup"))

    def decide(state: AccountState) -> tuple[AccountChanges, None]:
        # A new balance plus an order breaking UNIQUE(account, client id): SQLite refuses
        # the second write, and the first must not survive it.
        clash = OrderRecord(
            "other-id", state.account.account_id, "dup", BTC, Side.BUY, OrderType.MARKET,
            D(1), None, OrderStatus.FILLED, clock.now(), clock.now(),
        )  # fmt: skip
        return AccountChanges(state.account.account_id, balance=D(1), orders=[clash]), None

    with pytest.raises(Exception, match="UNIQUE"):
        await ledger.mutate(1, clock.now(), decide)
    balance = await ex.fetch_balance()
    assert balance.equity == D(10000) - first.fee


async def test_concurrent_orders_with_one_client_id_place_one(
    store: Store, clock: FakeClock, source: FakeMarketSource
) -> None:
    ex = PaperExchange(1, source=source, ledger=PaperRepository(store), clock=clock)
    results = await asyncio.gather(
        *(ex.create_order(req(BTC, Side.BUY, "0.01", cid="once")) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, UnknownOutcome) for r in results if isinstance(r, BaseException))
    assert (await ex.fetch_positions())[0].qty == D("0.01")


async def test_engine_fast_path_and_one_transaction_for_all_accounts(
    tmp_path: Path, clock: FakeClock, source: FakeMarketSource
) -> None:
    log = StatementLog()
    async with Store(tmp_path / "engine.db", observer=log) as store:
        ledger = PaperRepository(store)
        for user in range(1, 21):
            ex = PaperExchange(user, source=source, ledger=ledger, clock=clock)
            await ex.create_order(req(BTC, Side.BUY, "0.01", tp="52000"))
            await ex.create_order(req(ETH, Side.BUY, "0.1", "1900"))
        engine = PaperEngine(ledger, clock)
        log.names.clear()
        assert (await engine.on_prices({BTC: D(51000), ETH: D(1950)})).events == ()
        assert log.names == ["paper.open_orders_on", "paper.positions_on"]
        log.names.clear()
        report = await engine.on_prices({BTC: D(52100), ETH: D(1890)})
        assert (report.tp_hits, report.orders_filled) == (20, 20)
        assert {(u, s, k) for u, s, k in report.affected} == {
            *((u, BTC, EventKind.TAKE_PROFIT) for u in range(1, 21)),
            *((u, ETH, EventKind.ORDER_FILLED) for u in range(1, 21)),
        }
        counts = Counter(log.names)
        assert all(n == 1 for n in counts.values()), counts  # no per-account statements
        assert counts["paper.insert_fill"] == counts["paper.set_balance"] == 1


async def test_paper_trading_on_the_synthetic_market(store: Store, clock: FakeClock) -> None:
    market = SyntheticMarket(seed=3, symbols=40, clock=clock)
    ledger = PaperRepository(store)
    ex = PaperExchange(1, source=market, ledger=ledger, clock=clock)
    btc = (await ex.fetch_ticker(BTC)).last
    order = await ex.create_order(req(BTC, Side.BUY, "0.01"))
    assert order.avg_price == btc == market.price(BTC)
    assert len(await ex.load_markets()) == 40
    candles = await ex.fetch_ohlcv(BTC, "5m", 12)
    assert len(candles) == 12 and candles[-1].close == btc
    engine = PaperEngine(ledger, clock)
    for _ in range(30):  # an hour of scans: a 10x long never gets near liquidation here
        clock.advance(120)
        prices = {s: t.last for s, t in (await ex.fetch_tickers()).items()}
        await engine.on_prices(prices)
    [position] = await ex.fetch_positions()
    assert position.mark_price == market.price(BTC)
    assert position.unrealised_pnl == (position.mark_price - btc) * D("0.01")


async def test_a_closed_store_reads_as_an_unavailable_exchange(
    tmp_path: Path, clock: FakeClock, source: FakeMarketSource
) -> None:
    store = Store(tmp_path / "gone.db")
    await store.open()
    ex = PaperExchange(1, source=source, ledger=PaperRepository(store), clock=clock)
    await store.close()
    with pytest.raises(ExchangeUnavailable, match="ledger"):
        await ex.fetch_balance()
