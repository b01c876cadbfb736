"""The fill ledger against the local Bybit server through the real ccxt client: executions
recorded once, trades derived from them with the exchange's own PnL, and the REST catch-up
after downtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.ids import client_order_id
from core.exchange.models import OrderRequest, OrderType, Side
from core.paper.engine import PaperEngine
from core.paper.exchange import PaperExchange
from db.repositories.fills import FillRepository
from db.repositories.intents import IntentRepository, NewIntent
from db.repositories.paper import PaperRepository
from db.repositories.positions import PositionRepository
from db.store import Store
from services.fill_ledger_catchup import FillCatchUp
from tests.fakes.market import FakeMarketSource
from tests.integration.autotrade_world import BTC, World, world

USER = 2
KEY = f"key{USER}"


@pytest.fixture
async def w(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    async with world(store, tmp_path) as running:
        await running.trader(USER, "bybit")
        yield running


async def _open_with_take_profit(w: World, take_profit: str) -> str:
    """A trader's market long of 0.01 BTC at 60,000 through Tradewind, TP on the order."""
    cid = client_order_id("manual", USER, "tp-long")
    await w.services.executor.record(
        NewIntent(cid, USER, "bybit", "demo", BTC, "buy", "market", Decimal("0.01"), "manual",
                  take_profit=Decimal(take_profit))
    )  # fmt: skip
    async with w.services.exchanges.lease(USER, "bybit", "demo") as client:
        await w.services.executor.place(client, cid)
    return cid


async def _on_the_exchange(w: World, side: str, qty: float, **params: object) -> None:
    """An order the trader sends in the exchange's own app."""
    exchange = w.server.ccxt(KEY, f"secret{USER}")
    try:
        await exchange.create_order(BTC, "market", side, qty, None, params)
    finally:
        await exchange.close()


def _exchange_closed_pnl(w: World) -> list[Decimal]:
    return [Decimal(r["closedPnl"]) for r in w.server.account(KEY).closed_pnl]


def _exchange_fees(w: World) -> Decimal:
    return sum((Decimal(e["execFee"]) for e in w.server.account(KEY).executions), Decimal(0))


async def _trades(w: World) -> list[tuple[object, ...]]:
    return await w.rows(
        "SELECT side, qty, entry_price, exit_price, CAST(fee AS TEXT), CAST(pnl AS TEXT), "
        "close_reason, estimated FROM trade_logs ORDER BY id"
    )


async def test_open_and_close_between_two_polls_is_one_trade_with_the_exchanges_pnl(
    w: World,
) -> None:
    await _open_with_take_profit(w, "61800")
    w.server.set_price("BTCUSDT", "61900")  # the take profit fires before any poll saw it

    sync = await w.services.position_sync.sync_once()  # the position is gone: nothing to diff
    done = await w.services.fill_catchup.catch_up_active()

    assert sync.closed == 0 and done.fills == 2 and done.trades == 1
    [closed_pnl] = _exchange_closed_pnl(w)
    [(side, qty, entry, exit_price, fee, pnl, reason, estimated)] = await _trades(w)
    assert Decimal(fee) == _exchange_fees(w)
    assert (side, Decimal(qty), Decimal(entry), Decimal(exit_price)) == (
        "long", Decimal("0.01"), Decimal(60000), Decimal(61900),
    )  # fmt: skip
    assert Decimal(pnl) == closed_pnl == Decimal(19) - Decimal("0.33") - Decimal("0.340450")
    assert (reason, estimated) == ("take_profit", 0)
    told = await w.rows("SELECT kind, payload FROM notifications WHERE dedup_key LIKE 'fill-%'")
    assert len(told) == 1 and told[0][0] == "stop"
    assert "at 61900" in str(told[0][1]) and "+18.33" in str(told[0][1])


async def test_a_gap_through_the_take_profit_is_logged_at_the_real_fill_price(w: World) -> None:
    await _open_with_take_profit(w, "61000")
    w.server.set_price("BTCUSDT", "63500")  # gapped 2,500 past the level

    await w.services.fill_catchup.catch_up_active()

    [(_, _, _, exit_price, _, pnl, reason, _)] = await _trades(w)
    assert Decimal(exit_price) == Decimal(63500) and reason == "take_profit"
    assert Decimal(pnl) == _exchange_closed_pnl(w)[0] > Decimal(34)


async def test_fees_of_both_legs_are_the_trades_fee(w: World) -> None:
    await _open_with_take_profit(w, "61800")
    w.server.set_price("BTCUSDT", "62000")

    await w.services.fill_catchup.catch_up_active()

    [(_, _, _, _, fee, pnl, _, _)] = await _trades(w)
    # 0.01 × 60,000 × 0.055 % to open, 0.01 × 62,000 × 0.055 % to close
    assert Decimal(fee) == _exchange_fees(w) == Decimal("0.33") + Decimal("0.341")
    assert Decimal(pnl) == Decimal(20) - Decimal("0.671")


async def test_fills_while_the_bot_was_down_are_recorded_once_after_start(w: World) -> None:
    await _open_with_take_profit(w, "70000")
    await w.services.fill_catchup.catch_up_everyone()  # running: the opening fill is known
    # Tradewind is down; the trader adds to the position and closes it on the exchange.
    await _on_the_exchange(w, "buy", 0.01)
    w.server.set_price("BTCUSDT", "61000")
    await _on_the_exchange(w, "sell", 0.02, reduceOnly=True)

    started = await w.services.fill_catchup.catch_up_everyone()  # start-up
    again = await w.services.fill_catchup.catch_up_everyone()

    assert (started.fills, again.fills, again.trades) == (2, 0, 0)
    assert await w.rows("SELECT COUNT(*), COUNT(DISTINCT fill_id) FROM fills") == [(3, 3)]
    [(side, qty, entry, exit_price, _, pnl, reason, _)] = await _trades(w)
    assert (side, Decimal(qty), Decimal(entry), Decimal(exit_price), reason) == (
        "long", Decimal("0.02"), Decimal(60000), Decimal(61000), "exchange",
    )  # fmt: skip
    assert Decimal(pnl) == _exchange_closed_pnl(w)[0]


async def test_recording_the_same_fills_twice_changes_nothing(w: World) -> None:
    await _open_with_take_profit(w, "61800")
    w.server.set_price("BTCUSDT", "62000")
    async with w.services.exchanges.lease(USER, "bybit", "demo") as client:
        fills = await client.fetch_fills(None)
        closed = await client.fetch_closed_pnl(None)
    ledger = w.services.fill_ledger

    first = await ledger.record(USER, "bybit", "demo", fills, closed)
    before = (await _trades(w), await w.rows("SELECT dedup_key FROM notifications"))
    second = await ledger.record(USER, "bybit", "demo", fills, closed)
    pushed_again = await ledger.record(USER, "bybit", "demo", list(reversed(fills)))

    assert (first.fills, first.closed, len(first.trades)) == (2, 1, 1)
    assert (second.fills, second.closed, second.trades) == (0, 0, [])
    assert (pushed_again.fills, pushed_again.trades) == (0, [])
    assert (await _trades(w), await w.rows("SELECT dedup_key FROM notifications")) == before


async def test_a_close_the_bot_made_is_one_trade_with_the_fills_figures(w: World) -> None:
    await _open_with_take_profit(w, "70000")
    await w.services.position_sync.sync_once()
    card = await w.services.trading.close_card(USER, "BTC", None)
    await w.services.trading.confirm(USER, card.client_order_id)
    w.clock.advance(11)

    await w.services.position_sync.sync_once()
    await w.services.fill_catchup.catch_up_active()

    [(_, _, _, _, fee, pnl, reason, estimated)] = await _trades(w)
    assert (reason, estimated) == ("manual", 0)
    assert Decimal(fee) == _exchange_fees(w) and Decimal(pnl) == _exchange_closed_pnl(w)[0]
    told = await w.rows("SELECT dedup_key FROM notifications WHERE dedup_key LIKE 'fill-%'")
    assert told == []  # the trader saw the close in the chat already


async def test_an_estimate_is_replaced_when_the_fills_arrive(w: World) -> None:
    await _open_with_take_profit(w, "61800")
    await w.services.position_sync.sync_once()
    w.server.set_price("BTCUSDT", "62000")
    w.clock.advance(11)
    outage = w.server.faults.add("/v5/execution/list", times=None)  # no fills to be read

    await w.services.position_sync.sync_once()
    estimate = await _trades(w)
    w.server.faults.remove(outage)
    await w.services.fill_catchup.catch_up_active()

    # the level the price went through, marked as a guess
    assert [(Decimal(str(r[3])), r[7]) for r in estimate] == [(Decimal(61800), 1)]
    [(_, _, _, exit_price, _, pnl, _, estimated)] = await _trades(w)
    assert (Decimal(exit_price), estimated) == (Decimal(62000), 0)
    assert Decimal(pnl) == _exchange_closed_pnl(w)[0]


async def test_the_paper_exchange_gives_the_same_ledger(w: World) -> None:
    """The same trade on Bybit and on the paper exchange: a long of 0.01 BTC at 60,000
    whose take profit at 61,800 fills at 62,000 after a gap."""
    await _open_with_take_profit(w, "61800")
    w.server.set_price("BTCUSDT", "62000")
    await w.services.fill_catchup.catch_up_active()
    paper_user = 3
    await w.trader(paper_user, "paper")
    source = FakeMarketSource(w.clock)
    source.set_price(BTC, "60000")
    ledger = PaperRepository(w.store)
    async with PaperExchange(paper_user, source=source, ledger=ledger, clock=w.clock) as paper:
        await paper.create_order(
            OrderRequest(BTC, Side.BUY, OrderType.MARKET, Decimal("0.01"), "paper-tp",
                         take_profit=Decimal(61800))
        )  # fmt: skip
        await PaperEngine(ledger, w.clock).on_prices({BTC: Decimal(62000)})
        fills = await paper.fetch_fills(None)
    await w.services.fill_ledger.record(paper_user, "paper", "paper", fills)
    await w.services.fill_ledger.record(paper_user, "paper", "paper", fills)

    trades = await w.rows(
        "SELECT user_id, side, CAST(qty AS REAL), CAST(entry_price AS REAL), "
        "CAST(exit_price AS REAL), ROUND(fee, 8), ROUND(pnl, 8), close_reason FROM trade_logs "
        "ORDER BY user_id"
    )
    bybit, on_paper = trades
    assert (
        bybit[1:] == on_paper[1:] == ("long", 0.01, 60000.0, 62000.0, 0.671, 19.329, "take_profit")
    )
    assert await w.rows("SELECT COUNT(*) FROM fills WHERE user_id = ?", paper_user) == [(2,)]


async def test_a_resting_limit_order_that_fills_is_told_once_with_its_fee(w: World) -> None:
    cid = client_order_id("manual", USER, "resting")
    await w.services.executor.record(
        NewIntent(cid, USER, "bybit", "demo", BTC, "buy", "limit", Decimal("0.01"), "manual",
                  price=Decimal(59000))
    )  # fmt: skip
    async with w.services.exchanges.lease(USER, "bybit", "demo") as client:
        await w.services.executor.place(client, cid)
    w.server.set_price("BTCUSDT", "58900")  # crosses: fills at its limit as a maker

    await w.services.fill_catchup.catch_up_active()
    await w.services.position_sync.sync_once()
    w.clock.advance(31)
    await w.services.fill_catchup.catch_up_active()

    told = await w.rows("SELECT dedup_key, payload FROM notifications WHERE kind = 'fill'")
    [(key, payload)] = told
    assert str(key).startswith("fill-open:bybit:demo:") and str(key).endswith(":0.01")
    assert "Order filled: BUY 0.01 BTC/USDT:USDT at 59000, fee 0.1180" in str(payload)


async def test_a_fill_missed_before_a_newer_pushed_one_is_read_from_the_gap(w: World) -> None:
    await _open_with_take_profit(w, "70000")  # the stream dropped before this fill
    gap = w.clock.now() - timedelta(minutes=1)
    await _on_the_exchange(w, "buy", 0.01)
    async with w.services.exchanges.lease(USER, "bybit", "demo") as client:
        newest = (await client.fetch_fills(None))[-1]
    ledger, account = w.services.fill_ledger, (USER, "bybit", "demo")
    await ledger.record(*account, [newest])  # pushed after the drop: the cursor passed the gap
    w.server.set_price("BTCUSDT", "61000")
    await _on_the_exchange(w, "sell", 0.02, reduceOnly=True)
    catch_up = FillCatchUp(
        ledger=ledger, fills=FillRepository(w.store), positions=PositionRepository(w.store),
        intents=IntentRepository(w.store), gateway=w.services.exchanges, clock=w.clock,
        overlap=timedelta(0),
    )  # fmt: skip

    from_cursor = await catch_up.catch_up([account])
    from_gap = await catch_up.catch_up([account], since=gap)

    assert (from_cursor.fills, from_gap.fills) == (1, 1)  # the close, then the missed opening
    [(_, qty, entry, _, fee, pnl, _, _)] = await _trades(w)
    assert (Decimal(qty), Decimal(entry)) == (Decimal("0.02"), Decimal(60000))
    assert Decimal(fee) == _exchange_fees(w) and Decimal(pnl) == _exchange_closed_pnl(w)[0]


async def test_a_bare_pushed_fill_learns_its_take_profit_from_the_rest_read(w: World) -> None:
    await _open_with_take_profit(w, "61800")
    w.server.set_price("BTCUSDT", "62000")
    async with w.services.exchanges.lease(USER, "bybit", "demo") as client:
        fills = await client.fetch_fills(None)
    bare = [replace(f, trigger=None) for f in fills]  # a stream that did not say
    ledger = w.services.fill_ledger

    pushed = await ledger.record(USER, "bybit", "demo", bare)
    read = await ledger.record(USER, "bybit", "demo", fills)
    again = await ledger.record(USER, "bybit", "demo", fills)

    assert (pushed.fills, read.fills, again.fills) == (2, 1, 0)  # only the close learnt more
    assert [t.close_reason for t in pushed.trades] == ["exchange"]
    assert [t.close_reason for t in read.trades] == ["take_profit"]
    assert await w.rows("SELECT close_reason FROM trade_logs") == [("take_profit",)]
