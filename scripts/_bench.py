"""Small helpers shared by the benchmark scripts: RSS, percentiles, tables, the docs file.

Nothing here times anything by itself; the benchmarks decide what to measure and print.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
PERFORMANCE_MD = REPO / "docs" / "PERFORMANCE.md"
_TITLE = "# Performance\n\nBenchmark results. Each section names the command that produced it.\n"


@asynccontextmanager
async def exchange_process(
    *,
    symbols: int = 530,
    latency_ms: float = 0,
    rate: float | None = None,
    accounts: int = 0,
    moving: bool = False,
) -> AsyncIterator[str]:
    """The local Bybit server in its own process, as a real exchange is: its CPU is not ours.

    Yields its base URL. `accounts` creates users key1/secret1 … keyN/secretN with 10,000 USDT;
    `rate` is the server's per-IP limit in requests/s (None: no limit); `moving` lets
    `tick(url)` move its market one step.
    """
    args = ["--symbols", str(symbols), "--seed", "1", "--latency-ms", str(latency_ms)]
    if moving:
        args.append("--moving")
    if rate is not None:
        args += ["--rate-limit", str(rate)]
    args += [f"--account=key{uid}:secret{uid}:10000" for uid in range(1, accounts + 1)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.exchange_server", *args, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = (await process.stdout.readline()).decode()
    try:
        yield line.split(" listening on ", 1)[1].split()[0]
    finally:
        process.terminate()
        await process.wait()


async def tick(url: str, **counts: float) -> dict[str, Any]:
    """Move a `moving` exchange process's market one step (prices, breakouts, listings…)."""
    params = {name: str(value) for name, value in counts.items()}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/test/tick", params=params) as response,
    ):
        response.raise_for_status()
        report: dict[str, Any] = await response.json()
        return report


class LoopLag:
    """How late the event loop wakes a task that sleeps `interval_s` at a time, while
    `async with`-entered: every stall (a long callback, a garbage collection) shows as lag."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _watch(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            self.lags.append(max(0.0, time.perf_counter() - start - self.interval_s))

    def p99_ms(self) -> float:
        return percentile(self.lags, 99) * 1000 if self.lags else 0.0

    def max_ms(self) -> float:
        return max(self.lags, default=0.0) * 1000


class GcPauses:
    """Records the duration of every garbage collection while `with`-entered, by generation
    (a full collection walks the whole heap and stalls the event loop meanwhile)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._observe)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def max_ms(self) -> float:
        """The longest pause of any generation, in ms."""
        return max((max(p, default=0.0) for p in self.pauses.values()), default=0.0) * 1000

    def rows(self) -> list[str]:
        """Markdown rows: generation, count, total, p99 and max pause in ms."""
        lines = [
            "| collection | count | total (ms) | p99 (ms) | max (ms) |",
            "|---|---:|---:|---:|---:|",
        ]
        for generation, pauses in self.pauses.items():
            if pauses:
                lines.append(
                    f"| gen {generation} | {len(pauses)} | {sum(pauses) * 1000:.0f} "
                    f"| {percentile(pauses, 99) * 1000:.1f} | {max(pauses) * 1000:.1f} |"
                )
        return lines


def rss_mb(collect: bool = True) -> float:
    """This process's resident set size in MB (VmRSS), after a full collection by default."""
    if collect:
        gc.collect()
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation; `values` need not be sorted."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ms(seconds: float) -> str:
    """Seconds as a millisecond figure with sensible precision."""
    value = seconds * 1000
    return (
        f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    )


def cols(row: str) -> list[str]:
    """A table row written as markdown: 'A | B | C'."""
    return [cell.strip() for cell in row.split(" | ")]


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; numbers right-aligned."""
    body = [[str(cell) for cell in row] for row in rows]
    numeric = [
        all(_looks_numeric(row[i]) for row in body) if body else False for i in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in body)
    return "\n".join(lines)


def _looks_numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"[-+−~≈×%., 0-9]+[%×]?", cell.strip())) and any(
        ch.isdigit() for ch in cell
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line describing where the numbers came from."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem_gb = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            total_kb = int(info.readline().split()[1])
        mem_gb = f", {total_kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"nproc {cpus} ({cpu_model()}){mem_gb}, Python {platform.python_version()} "
        f"({sys.implementation.name}), {platform.system()} {platform.release()}"
    )


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_section(heading: str, body: str, path: Path = PERFORMANCE_MD) -> None:
    """Replace (or append) the `## heading` section of the performance doc, keeping others.

    A section runs from its heading to the next `## ` heading. The file is created with a
    title if it does not exist yet.
    """
    if not heading.startswith("## "):
        raise ValueError("section headings are level 2: '## …'")
    text = path.read_text(encoding="utf-8") if path.exists() else _TITLE
    section = f"{heading}\n\n{body.strip()}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
