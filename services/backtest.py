"""Backtests on request: the trader's strategy over the stored candles of the last 7, 30 or
90 days, run in a worker process so the bot keeps answering.

A run: the candles missing from the store are fetched (`CandleStore.ensure`), then a fresh
worker process (spawned: a fork would inherit the bot's threads and connections) judges
the candles block by block and sends its progress down a pipe, which the event loop reads
as it arrives (`add_reader`: no thread, no polling). Cancelling sets an event the worker
checks between blocks; a worker that does not stop within seconds is terminated.

One run per trader at a time, and at most `max_running` for the whole bot (an admin's
setting: each run takes a core while it lasts).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import multiprocessing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from core.clock import Clock
from core.errors import DomainError, InvalidInput
from db.repositories.strategy import StrategyRecord
from services.amounts import TAKER_FEE
from services.backtest_engine import ScanRules, Strategy
from services.backtest_worker import BacktestJob, Finished, work
from services.candles import CandleStore
from services.ladder_rungs import rungs_of
from services.market_registry import MarketRegistry
from services.scanner import BAR_MINUTES, BARS, Scanner
from services.signals import COOLDOWN

SPANS = {"7d": 7, "30d": 30, "90d": 90}
STOP_WAIT_S = 5.0

Progress = Callable[[str, int, int], Awaitable[None]]  # (phase, done, total)


class BacktestBusy(DomainError):
    """This trader already runs one, or the bot runs as many as the admin allows."""


class BacktestCancelled(DomainError):
    """The trader cancelled the run."""


class BacktestFailed(DomainError):
    """The worker failed; the reason is in the log."""


@dataclass(slots=True)
class _Run:
    id: int
    user_id: int
    stop: Any = None  # the worker's multiprocessing Event, once started
    cancelled: bool = False
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class BacktestService:
    """Starts, tracks and cancels backtests."""

    def __init__(
        self,
        candles: CandleStore,
        registry: MarketRegistry,
        scanner: Scanner,
        clock: Clock,
        db_path: str,
        *,
        max_running: int = 2,
        slippage_pct: float = 0.05,
    ) -> None:
        self._candles = candles
        self._registry = registry
        self._scanner = scanner
        self._clock = clock
        self._db_path = db_path
        self.max_running = max_running
        self.slippage_pct = slippage_pct
        self._runs: dict[int, _Run] = {}
        self._ids = itertools.count(1)
        self._context = multiprocessing.get_context("spawn")

    async def aclose(self) -> None:
        """Stop every running backtest and wait for them to end (shutdown)."""
        runs = list(self._runs.values())
        for run in runs:
            if run.started:
                self.cancel(run.user_id, run.id)
            else:
                self.release(run.id)  # reserved, never started: nothing to wait for
        for run in runs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.done.wait(), STOP_WAIT_S * 2)

    def running(self) -> int:
        return len(self._runs)

    def symbols(self, typed: Sequence[str]) -> list[str]:
        """The scanner market's symbols a trader typed (`BTC`, `btcusdt`, `BTC/USDT:USDT`),
        or all of them; an unknown one is refused with the nearest names."""
        listed = self._candles.symbols()
        if not typed or not listed:
            return listed
        found: list[str] = []
        for text in typed:
            wanted = text.strip().upper().replace("/USDT:USDT", "").removesuffix("USDT")
            symbol = f"{wanted}/USDT:USDT"
            if symbol not in listed:
                near = sorted(s.split("/")[0] for s in listed if s.startswith(wanted[:2]))[:3]
                hint = f" Did you mean {', '.join(near)}?" if near else ""
                raise InvalidInput(f"{text[:30]} is not traded on the scanner's market.{hint}")
            if symbol not in found:
                found.append(symbol)
        return found

    def begin(self, user_id: int) -> int:
        """Reserve a run for the trader, or refuse: one each, `max_running` in all."""
        if any(r.user_id == user_id for r in self._runs.values()):
            raise BacktestBusy("Your backtest is still running: wait for it or press Cancel.")
        if len(self._runs) >= self.max_running:
            raise BacktestBusy(
                f"{len(self._runs)} backtests are running, the most this bot runs at once; "
                "try again in a minute."
            )
        run = _Run(next(self._ids), user_id)
        self._runs[run.id] = run
        return run.id

    def release(self, run_id: int) -> None:
        """Give back a reserved run that never started."""
        run = self._runs.pop(run_id, None)
        if run is not None:
            run.done.set()

    def cancel(self, user_id: int, run_id: int) -> bool:
        """Ask the trader's run to stop; False when it is not theirs or already over."""
        run = self._runs.get(run_id)
        if run is None or run.user_id != user_id:
            return False
        run.cancelled = True
        if run.stop is not None:
            run.stop.set()
        return True

    async def run(
        self,
        run_id: int,
        settings: StrategyRecord,
        days: int,
        symbols: Sequence[str],
        progress: Progress,
    ) -> Finished:
        """Fill the candles, run the worker, return its result; the run ends either way."""
        run = self._runs[run_id]
        run.started = True
        try:
            start, end = self._candles.span(days)
            await progress("candles", 0, len(symbols))

            async def fetched(done: int, total: int) -> None:
                if run.cancelled:  # between two batches: what was fetched stays stored
                    raise BacktestCancelled("Backtest cancelled.")
                await progress("candles", done, total)

            series, _ = await self._candles.ensure(
                symbols, "5m", start - BARS * 300_000, end, fetched
            )
            if run.cancelled:
                raise BacktestCancelled("Backtest cancelled.")
            rows = self._registry.snapshot.rows
            job = BacktestJob(
                db_path=self._db_path,
                series=tuple(series[s] for s in symbols),
                symbols=tuple(symbols),
                listed_at=tuple(
                    rows[s].listed_at.timestamp() if s in rows else math.nan for s in symbols
                ),
                start_ms=start,
                end_ms=end,
                rules=self.rules(),
                strategy=self.strategy(settings),
            )
            run.stop = self._context.Event()
            if run.cancelled:
                run.stop.set()
            return await run_in_worker(job, progress, run.stop)
        finally:
            self._runs.pop(run_id, None)
            run.done.set()

    def rules(self) -> ScanRules:
        return scan_rules(self._scanner)

    def strategy(self, s: StrategyRecord) -> Strategy:
        return Strategy(
            size_usdt=None if s.size_usdt is None else float(s.size_usdt),
            risk_pct=None if s.risk_pct is None else float(s.risk_pct),
            leverage=s.leverage,
            tp_pct=float(s.tp_pct),
            sl_pct=float(s.sl_pct),
            max_positions=s.max_positions,
            min_score=s.min_score,
            allow=frozenset(s.allow_symbols),
            deny=frozenset(s.deny_symbols),
            fee_rate=float(TAKER_FEE),
            slippage_pct=self.slippage_pct,
            trail_pct=None if s.trail_pct is None else float(s.trail_pct),
            trail_activation_pct=(
                None if s.trail_activation_pct is None else float(s.trail_activation_pct)
            ),
            ladder=tuple((float(p), float(w)) for p, w in rungs_of(s.tp_ladder or "")),
            ladder_breakeven=s.ladder_breakeven,
        )


def management(s: StrategyRecord) -> str:
    """The trade management a run applies, in a few words (empty: none), e.g.
    `trail 1.5 % from +2 % · ladder 2%:50,4%:30,8%:20 · break-even on`."""
    parts = []
    if s.trail_pct is not None:
        start = "" if s.trail_activation_pct is None else f" from +{s.trail_activation_pct:f} %"
        parts.append(f"trail {s.trail_pct:f} %{start}")
    if s.tp_ladder:
        rungs = ",".join(f"{pct:f}%:{share:f}" for pct, share in rungs_of(s.tp_ladder))
        parts.append(f"ladder {rungs}")
        parts.append(f"break-even {'on' if s.ladder_breakeven else 'off'}")
    return " · ".join(parts)


def scan_rules(scanner: Scanner) -> ScanRules:
    """The live scanner's publication rules, read from the scanner itself."""
    return ScanRules(
        min_score=scanner.min_score,
        max_per_scan=scanner.max_per_scan,
        cooldown_s=COOLDOWN.total_seconds(),
        window=BARS,
        bar_s=BAR_MINUTES * 60,
        direction_bars=ScanRules.direction_for(scanner.interval_s, BAR_MINUTES * 60),
    )


async def run_in_worker(job: BacktestJob, progress: Progress, stop: Any) -> Finished:
    """Run `job` in a fresh worker process; `stop` (a spawn-context Event) asks it to end."""
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=work, args=(job, send, stop), daemon=True)
    process.start()
    send.close()  # the worker holds the only writing end: EOF means it is gone
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(receive.fileno(), _drain, receive, inbox)
    try:
        while True:
            message = await inbox.get()
            if message[0] == "progress":
                await progress("symbols", message[1], message[2])
            elif message[0] == "done":
                finished: Finished = message[1]
                return finished
            elif message[0] == "cancelled":
                raise BacktestCancelled("Backtest cancelled.")
            else:
                raise BacktestFailed("The backtest failed; the log has the reason.")
    except asyncio.CancelledError:
        stop.set()
        raise
    finally:
        loop.remove_reader(receive.fileno())
        receive.close()
        await _reap(process)


def _drain(pipe: Connection, inbox: asyncio.Queue[tuple[Any, ...]]) -> None:
    """Move what the worker sent into the queue; EOF (a dead worker) becomes a failure."""
    try:
        while pipe.poll():
            inbox.put_nowait(pipe.recv())
    except (EOFError, OSError):
        inbox.put_nowait(("failed",))


async def _reap(process: Any) -> None:
    """Wait for the worker to exit (off the loop), terminating one that will not."""
    await asyncio.to_thread(process.join, STOP_WAIT_S)
    if process.is_alive():
        process.terminate()
        await asyncio.to_thread(process.join, STOP_WAIT_S)
