"""/pnl's SQL aggregates against hand-computed numbers, and paper triggers in the trade log."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.exchange.models import OrderRequest, OrderType, Side
from core.paper.book import EventKind
from core.paper.engine import PaperEngine
from core.paper.exchange import PaperExchange
from db.repositories.intents import IntentRepository, NewIntent
from db.repositories.paper import PaperRepository
from db.repositories.trades import TradeLog, TradeRepository
from db.repositories.users import UserProfile, UserRepository
from db.store import Store
from services.history import HistoryService, PnlReport
from tests.fakes.clock import FakeClock
from tests.fakes.market import BTC, ETH, FakeMarketSource

NOW = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)  # a Wednesday
_cids = itertools.count(1)


def _at(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def trade(user_id: int, symbol: str, pnl: str, fee: str, exit_ts: datetime) -> TradeLog:
    return TradeLog(
        user_id=user_id, exchange="paper", account_type="paper", symbol=f"{symbol}/USDT:USDT",
        side="long", qty=D("1"), entry_price=D("100"), exit_price=D("100") + D(pnl),
        pnl=D(pnl), fee=D(fee), entry_ts=exit_ts - timedelta(hours=1), exit_ts=exit_ts,
    )  # fmt: skip


SEEDED = [
    # today (since Wed 00:00, the boundary itself included)
    trade(1, "BTC", "30", "1.0", _at(2026, 1, 14, 0, 0)),
    trade(1, "ETH", "-10", "0.5", _at(2026, 1, 14, 10, 0)),
    trade(1, "BTC", "5", "0.25", _at(2026, 1, 14, 14, 0)),
    # this week (since Monday 00:00)
    trade(1, "SOL", "-20", "0.75", _at(2026, 1, 12, 0, 0)),
    trade(1, "ETH", "15", "0.5", _at(2026, 1, 13, 9, 0)),
    trade(1, "BTC", "-5", "0.25", _at(2026, 1, 13, 23, 59, 59)),
    # this month (since the 1st)
    trade(1, "BTC", "50", "2", _at(2026, 1, 1, 0, 0)),
    trade(1, "SOL", "-25", "1", _at(2026, 1, 5, 12, 0)),
    # before
    trade(1, "ETH", "100", "3", _at(2025, 12, 31, 23, 59, 59)),
    trade(1, "XRP", "-40", "1.5", _at(2025, 11, 20, 8, 0)),
    # somebody else's, never counted
    trade(2, "BTC", "1000", "9", _at(2026, 1, 14, 12, 0)),
]

# period: trades, wins, losses, pnl, fees, gross win, gross loss, best, worst, by symbol
EXPECTED = {
    "day": (3, 2, 1, "25", "1.75", "35", "-10", "30", "-10", [("BTC", "35", 2), ("ETH", "-10", 1)]),
    "week": (6, 3, 3, "15", "3.25", "50", "-35", "30", "-20",
             [("BTC", "30", 3), ("SOL", "-20", 1), ("ETH", "5", 2)]),
    "month": (8, 4, 4, "40", "6.25", "100", "-60", "50", "-25",
              [("BTC", "80", 4), ("SOL", "-45", 2), ("ETH", "5", 2)]),
    "all": (10, 5, 5, "100", "10.75", "200", "-100", "100", "-40",
            [("ETH", "105", 3), ("BTC", "80", 4), ("SOL", "-45", 2), ("XRP", "-40", 1)]),
}  # fmt: skip


class StatementLog:
    def __init__(self) -> None:
        self.names: list[str] = []

    def observe_statement(self, name: str, seconds: float) -> None:
        self.names.append(name)


async def _users(store: Store, *ids: int) -> None:
    for uid in ids:
        await UserRepository(store).upsert(UserProfile(uid, uid, f"U{uid}"), NOW)


@pytest.mark.parametrize("period", list(EXPECTED))
async def test_pnl_report_matches_hand_computed_numbers(store: Store, period: str) -> None:
    await _users(store, 1, 2)
    await TradeRepository(store).record_many(SEEDED)
    report = await HistoryService(TradeRepository(store)).pnl_report(1, period, NOW)
    trades, wins, losses, pnl, fees, gross_win, gross_loss, best, worst, symbols = EXPECTED[period]
    assert (report.trades, report.wins, report.losses) == (trades, wins, losses)
    assert (report.pnl, report.fees) == (D(pnl), D(fees))
    assert (report.gross_win, report.gross_loss) == (D(gross_win), D(gross_loss))
    assert report.win_rate == D(wins) / trades
    assert report.profit_factor == D(gross_win) / -D(gross_loss)
    assert report.average_win == D(gross_win) / wins
    assert report.average_loss == D(gross_loss) / losses
    assert report.best is not None and report.best.trade.pnl == D(best)
    assert report.worst is not None and report.worst.trade.pnl == D(worst)
    assert [(s.symbol.split("/")[0], s.pnl, s.trades) for s in report.by_symbol] == [
        (name, D(total), count) for name, total, count in symbols
    ]


async def test_period_boundaries_are_utc_midnights(store: Store) -> None:
    service = HistoryService(TradeRepository(store))
    await _users(store, 1)
    sunday_late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # Sunday the 1st
    reports: dict[str, PnlReport] = {
        p: await service.pnl_report(1, p, sunday_late) for p in ("day", "week", "month")
    }
    assert reports["day"].since == datetime(2026, 3, 1, tzinfo=UTC)
    assert reports["week"].since == datetime(2026, 2, 23, tzinfo=UTC)  # the Monday before
    assert reports["month"].since == datetime(2026, 3, 1, tzinfo=UTC)
    assert (await service.pnl_report(1, "all", sunday_late)).since is None


async def test_no_trades_and_bad_period(store: Store) -> None:
    service = HistoryService(TradeRepository(store))
    empty = await service.pnl_report(5, "all", NOW)
    assert (empty.trades, empty.pnl, empty.best, empty.worst, empty.by_symbol) == (
        0, D(0), None, None, (),
    )  # fmt: skip
    assert empty.win_rate is None and empty.profit_factor is None
    with pytest.raises(InvalidInput, match=r"Usage: /pnl \[day\|week\|month\|all\]"):
        await service.pnl_report(5, "year", NOW)


async def test_by_symbol_keeps_the_ten_largest_by_absolute_pnl(store: Store) -> None:
    await _users(store, 3)
    names = [f"S{i:02d}" for i in range(12)]
    pnls = ["1", "-2", "3", "-4", "5", "-6", "7", "-8", "9", "-10", "11", "-12"]
    await TradeRepository(store).record_many(
        [trade(3, n, p, "0", NOW - timedelta(minutes=5)) for n, p in zip(names, pnls, strict=True)]
    )
    report = await HistoryService(TradeRepository(store)).pnl_report(3, "day", NOW)
    assert report.symbols == 12 and len(report.by_symbol) == 10
    assert [s.pnl for s in report.by_symbol] == [D(p) for p in reversed(pnls)][:10]


async def test_report_reads_two_indexed_aggregates_and_counts_estimates(tmp_path: Path) -> None:
    log = StatementLog()
    async with Store(tmp_path / "log.db", observer=log) as store:
        await _users(store, 1, 2)
        await TradeRepository(store).record_many(SEEDED)
        log.names.clear()
        await HistoryService(TradeRepository(store)).pnl_report(1, "week", NOW)
    # The estimates are counted through their partial index: no estimated row, nothing read.
    assert sorted(log.names) == ["trades.by_symbol", "trades.estimated_since", "trades.extremes"]


# --- paper triggers → trade log ------------------------------------------------------------


def order(symbol: str, side: Side, qty: str, **levels: str) -> OrderRequest:
    return OrderRequest(
        symbol=symbol, side=side, order_type=OrderType.MARKET, qty=D(qty),
        client_order_id=str(levels.pop("cid", f"pnl{next(_cids)}")),
        take_profit=D(levels["tp"]) if "tp" in levels else None,
        stop_loss=D(levels["sl"]) if "sl" in levels else None,
    )  # fmt: skip


async def test_paper_triggers_become_trades_in_one_transaction(tmp_path: Path) -> None:
    log = StatementLog()
    clock = FakeClock(NOW)
    source = FakeMarketSource(clock)
    source.set_price(BTC, "50000")
    source.set_price(ETH, "2000")
    async with Store(tmp_path / "paper.db", observer=log) as store:
        await _users(store, 7, 8, 9)
        ledger = PaperRepository(store)
        history = HistoryService(TradeRepository(store))
        engine = PaperEngine(ledger, clock)

        def account(user_id: int) -> PaperExchange:
            return PaperExchange(user_id, source=source, ledger=ledger, clock=clock)

        # 7: an auto-trade long at 20×, added to, partly closed, then its take profit hits
        await IntentRepository(store).create(
            NewIntent("auto7", 7, "paper", "paper", BTC, "buy", "market", D("0.1"), "auto",
                      signal_id=None), NOW,
        )  # fmt: skip
        opened_at = clock.now()
        await account(7).set_leverage(BTC, 20)
        await account(7).create_order(
            order(BTC, Side.BUY, "0.1", tp="55000", sl="45000", cid="auto7")
        )
        clock.advance(60)
        source.set_price(BTC, "52000")
        await account(7).create_order(order(BTC, Side.BUY, "0.1"))  # entry → 51,000
        clock.advance(60)
        source.set_price(BTC, "53000")
        await account(7).create_order(order(BTC, Side.SELL, "0.05"))  # a manual partial close
        clock.advance(60)
        report = await engine.on_prices({BTC: D("56000")})
        assert [e.kind for e in report.events] == [EventKind.TAKE_PROFIT]
        log.names.clear()
        assert await history.record_paper_events(report) == 1
        assert log.names.count("trades.record_many") == 1
        (tp,) = await history.recent(7)
        # fee, both legs: closing 4.62; opening 2.75 + 2.86 for 0.2, less the quarter the
        # partial close of 0.05 took: 4.2075
        assert tp.trade == TradeLog(
            user_id=7, exchange="paper", account_type="paper", symbol=BTC, side="long",
            qty=D("0.15"), entry_price=D("51000"), exit_price=D("56000"),
            pnl=D("750") - D("8.8275"), fee=D("8.8275"), entry_ts=opened_at,
            exit_ts=clock.now(),
            leverage=20, origin="auto", close_reason="take_profit",
        )  # fmt: skip

        # 8: a long flipped short by one order, stopped out; 9: a long liquidated
        source.set_price(ETH, "2000")
        await account(8).create_order(order(ETH, Side.BUY, "1"))
        clock.advance(60)
        source.set_price(ETH, "2100")
        flipped_at = clock.now()
        await account(8).create_order(order(ETH, Side.SELL, "3", sl="2200"))  # short 2 at 2100
        source.set_price(BTC, "50000")
        await account(9).create_order(order(BTC, Side.BUY, "0.1"))  # 10×: liquidated at 45,250
        clock.advance(60)
        report = await engine.on_prices({ETH: D("2250"), BTC: D("45000")})
        assert sorted(e.kind for e in report.events) == [EventKind.LIQUIDATION, EventKind.STOP_LOSS]
        log.names.clear()
        assert await history.record_paper_events(report) == 2
        assert log.names.count("trades.record_many") == 1
        (sl,) = await history.recent(8)
        assert (sl.trade.side, sl.trade.qty, sl.trade.entry_price, sl.trade.exit_price) == (
            "short", D("2"), D("2100"), D("2250"),
        )  # fmt: skip
        # closing 2.475; opening: the 2 of the flipping fill's 3 that opened the short, 2.31
        assert (sl.trade.fee, sl.trade.pnl) == (D("4.785"), D("-300") - D("4.785"))
        assert (sl.trade.entry_ts, sl.trade.close_reason, sl.trade.leverage) == (
            flipped_at, "stop_loss", 10,
        )  # fmt: skip
        assert sl.trade.origin == "manual"
        (liq,) = await history.recent(9)
        assert (liq.trade.entry_price, liq.trade.exit_price, liq.trade.close_reason) == (
            D("50000"), D("45250"), "liquidation",
        )  # fmt: skip
        assert liq.trade.pnl == D("-502.75")  # the whole margin and the opening fee


async def test_fills_of_plain_orders_are_not_trades(store: Store) -> None:
    clock = FakeClock(NOW)
    source = FakeMarketSource(clock)
    source.set_price(BTC, "50000")
    await _users(store, 7)
    ledger = PaperRepository(store)
    ex = PaperExchange(7, source=source, ledger=ledger, clock=clock)
    await ex.create_order(
        OrderRequest(BTC, Side.BUY, OrderType.LIMIT, D("0.1"), "lim1", price=D("49000"))
    )
    report = await PaperEngine(ledger, clock).on_prices({BTC: D("48000")})
    assert [e.kind for e in report.events] == [EventKind.ORDER_FILLED]
    history = HistoryService(TradeRepository(store))
    assert await history.record_paper_events(report) == 0
    assert await history.recent(7) == []
