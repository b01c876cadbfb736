"""The live scanner and the backtest over the same candles publish the same signals.

The scanner scans a replayed market once per 5-minute bar (each scan sees the bar it falls
in as the forming one, with its final values), asking for every symbol's candles; the
backtest reads the same candles from the candle store. Both go through `features.judge`,
the scanner's cooldown and its per-scan cap.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from core.paper.market_source import MarketSource
from db.repositories.candles import CandleRepository
from db.repositories.markets import MarketRepository
from db.repositories.notifications import NotificationRepository
from db.repositories.signals import SignalRepository
from db.store import Store
from services.backtest import scan_rules
from services.backtest_engine import Strategy
from services.backtest_worker import BacktestJob, replay_job
from services.market_registry import MarketRegistry
from services.outbox import Outbox
from services.scanner import BARS, Scanner
from services.signals import SignalService
from services.unit_of_work import UnitOfWork
from tests.fakes.candles import ReplayMarket
from tests.fakes.clock import FakeClock
from tests.fakes.gateways import local_gateway
from tests.fakes.market import make_market

START = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp())
SYMBOLS, BARS_TOTAL, STEP = 12, BARS + 240, 300
FIRST_BURST = BARS + 20  # quiet until the scanner's ring buffers span their 5 minutes


def market_data(seed: int = 3) -> npt.NDArray[np.float64]:
    """(open, high, low, close, volume) × symbols × bars: random walks with bursts of volume
    and a three-bar move, each symbol's bursts apart, at most two symbols per bar."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.002, (SYMBOLS, BARS_TOTAL))
    volume = rng.lognormal(5, 0.3, (SYMBOLS, BARS_TOTAL))
    for i in range(SYMBOLS):
        for at in range(FIRST_BURST + 7 * i % 23, BARS_TOTAL - 3, 41 + 3 * i):
            sign = 1 if rng.random() < 0.5 else -1
            steps[i, at : at + 3] += sign * 0.006
            volume[i, at - 1 : at + 3] *= 6
    close = 10.0 * (1 + np.arange(SYMBOLS))[:, None] * np.exp(np.cumsum(steps, axis=1))
    opens = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    wick = np.abs(rng.normal(0, 0.001, (2, SYMBOLS, BARS_TOTAL))) * close
    high = np.maximum(opens, close) + wick[0]
    low = np.minimum(opens, close) - wick[1]
    return np.round(np.stack([opens, high, low, close, volume]), 6)


def scanner_over(store: Store, clock: FakeClock, source: MarketSource) -> Scanner:
    gateway = local_gateway(store, clock, market=source)
    registry = MarketRegistry(gateway, MarketRepository(store), clock)
    signals = SignalService(
        SignalRepository(store),
        UnitOfWork(store, Outbox(NotificationRepository(store), clock)),
        clock,
    )
    return Scanner(gateway, registry, signals, clock, top=SYMBOLS, interval_s=STEP)


async def test_the_live_scanner_and_the_backtest_give_the_same_signals(store: Store) -> None:
    values = market_data()
    listed = datetime(2025, 1, 1, tzinfo=UTC)
    markets = [
        dataclasses.replace(make_market(f"S{i:02d}", "0.000001", "0.001", 50), listed_at=listed)
        for i in range(SYMBOLS)
    ]
    names = [m.symbol for m in markets]
    clock = FakeClock(datetime.fromtimestamp(START + BARS * STEP, UTC))  # bar BARS - 1 forms
    scanner = scanner_over(store, clock, ReplayMarket(clock, markets, START, values, STEP))
    await scanner._registry.sync()
    live: list[tuple[int, str, str, float]] = []
    for bar in range(BARS - 1, BARS_TOTAL):
        report = await scanner.scan()
        live += [(bar, s.symbol, s.side, s.score) for s in report.signals]
        clock.advance(STEP)

    repo = CandleRepository(store)
    series = await repo.series("paper", "5m", names)
    ts = [(START + b * STEP) * 1000 for b in range(BARS_TOTAL)]
    await repo.insert(
        [(series[n], list(zip(ts, *(values[k, i].tolist() for k in range(5)), strict=True)))
         for i, n in enumerate(names)]
    )  # fmt: skip
    job = BacktestJob(
        db_path=str(store.path),
        series=tuple(series[n] for n in names),
        symbols=tuple(names),
        listed_at=tuple(listed.timestamp() for _ in names),
        start_ms=ts[BARS - 1],
        end_ms=ts[-1] + STEP * 1000,
        rules=scan_rules(scanner),
        strategy=Strategy(),
        draw=False,
    )
    played, _ = replay_job(job)
    replayed = [
        (bar, names[row], "long" if up else "short", score)
        for bar, row, up, score in played.signals
    ]

    assert len(live) >= 15, "the bursts should make the scanner signal"
    assert {side for _, _, side, _ in live} == {"long", "short"}
    assert sorted(replayed) == sorted(live)
