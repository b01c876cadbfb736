"""One backtest, start to finish, in the process that runs it: read the stored candles a
block of symbols at a time, judge and price each block (`backtest_engine`), replay the
signals, sum up, draw the equity curve.

`run_backtest` is plain synchronous code. The bot calls `work` in a worker process (see
`services.backtest`), which reports progress and its result down a pipe and stops between
blocks when asked to; the benchmark and the tests call `run_backtest` directly.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

import numpy as np

from db.repositories.candles import read_block
from services.backtest_engine import (
    EXIT_NAMES,
    Candidates,
    Replay,
    ScanRules,
    Strategy,
    candidates,
    replay,
)
from services.backtest_stats import BacktestResult, summarise
from services.chart_drawing import draw_curve
from services.features import Bars

log = logging.getLogger(__name__)

BLOCK = 32  # symbols judged together: ~40 MB of temporaries for 30 days of 5-minute bars


@dataclass(slots=True, frozen=True)
class BacktestJob:
    """What a worker needs: where the candles are and how to judge and trade them."""

    db_path: str
    series: tuple[int, ...]
    symbols: tuple[str, ...]
    listed_at: tuple[float, ...]  # unix seconds, NaN unknown
    start_ms: int  # open of the first bar judged
    end_ms: int  # end of the last bar
    rules: ScanRules
    strategy: Strategy
    draw: bool = True


class Cancelled(Exception):
    """The trader cancelled the backtest."""


@dataclass(slots=True, frozen=True)
class Finished:
    result: BacktestResult
    png: bytes | None
    seconds: float
    peak_mb: float  # the process's peak resident memory (the worker's own, in the bot)


def replay_job(
    job: BacktestJob,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[Replay, list[int]]:
    """The signals and trades of `job`, and the bar open times (s) they index into."""
    rules, step = job.rules, job.rules.bar_s * 1000
    history = job.start_ms - (rules.window - 1) * step  # the first judged bar needs its window
    total = len(job.series)
    found: list[Candidates] = []
    times = np.arange(history, job.end_ms, step, dtype=np.int64)
    for first in range(0, total, BLOCK):
        if cancelled is not None and cancelled():
            raise Cancelled
        ids = job.series[first : first + BLOCK]
        times, values = read_block(job.db_path, ids, history, job.end_ms, step)
        bars = Bars(values[0], values[1], values[2], values[3])
        listed = np.asarray(job.listed_at[first : first + BLOCK], dtype=np.float64)
        found.append(
            candidates(bars, job.symbols, first, listed, times // 1000, rules, job.strategy)
        )
        if progress is not None:
            progress(min(first + BLOCK, total), total)
    return replay(Candidates.concat(found), rules, job.strategy), (times // 1000).tolist()


def run_backtest(
    job: BacktestJob,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Finished:
    """Run `job`; `progress(done, total)` after each block of symbols; `cancelled()` is asked
    between blocks and raises `Cancelled` when it says so."""
    began = time.perf_counter()
    played, bar_times = replay_job(job, progress, cancelled)
    rules = job.rules
    result = summarise(
        played, job.symbols, bar_times, rules.window - 1, rules.bar_s, job.strategy, EXIT_NAMES
    )
    png = draw_curve(list(result.days), list(result.curve), "UTC") if job.draw else None
    return Finished(result, png, time.perf_counter() - began, peak_mb())


def peak_mb() -> float:
    """This process's own peak resident memory, in MB. On Linux from `VmHWM`, not
    `ru_maxrss`: a spawned process begins as a fork of its parent, and `ru_maxrss` keeps
    that copy's high-water mark, so a worker of a 500 MB bot would report 500 MB however
    little it used itself."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def work(job: BacktestJob, pipe: Connection, stop: Event) -> None:
    """Worker-process entry: progress, then the result (or the failure) down `pipe`."""
    try:
        finished = run_backtest(
            job, lambda done, total: pipe.send(("progress", done, total)), stop.is_set
        )
        pipe.send(("done", finished))
    except Cancelled:
        pipe.send(("cancelled",))
    except Exception as error:  # the bot tells the trader; the traceback stays in the log
        log.exception("backtest failed")
        pipe.send(("failed", f"{type(error).__name__}: {error}"))
    finally:
        pipe.close()
