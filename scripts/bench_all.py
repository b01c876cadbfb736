"""Every benchmark, one table: `make bench` (quick sizes) or `make bench FULL=1`.

Usage: .venv/bin/python -m scripts.bench_all [--full] [--only scan,trader] [--write-docs]

Each benchmark runs in its own child process (so its RSS and garbage collector are its own)
and hands back its rows as JSON (`--json`, see `scripts._results`). The table shows, per
row: the workload and its size, the baselines measured in the same run doing the same work,
Tradewind, the ratio of the best baseline to Tradewind, the target and the verdict, and the
work the run did (counted, so a benchmark that silently stopped exercising its path shows).
Exit status 1 when any benchmark failed or did not do its work; a missed target is reported,
not an error. `--write-docs` records the table, machine, date, load and command in
docs/PERFORMANCE.md; without it nothing is written.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scripts import _bench as bench
from scripts._results import Row, emit, load

HEADING = "## Summary: `make bench`"


@dataclass(frozen=True, slots=True)
class Bench:
    name: str
    module: str
    quick: tuple[str, ...]
    full: tuple[str, ...]


SUITE = (
    Bench(
        "scan", "scripts.bench_scan",
        ("--symbols", "530,5000", "--reps", "5", "--impls", "batched,tradewind",
         "--baselines-up-to", "530"),
        ("--symbols", "530,5000", "--reps", "5", "--skip-naive-above", "530"),
    ),
    Bench(
        "trader", "scripts.bench_trader",
        ("--users", "300", "--seconds", "15", "--heavy", "2"),
        ("--users", "1000", "--seconds", "60", "--heavy", "10"),
    ),
    Bench(
        "admin", "scripts.bench_admin",
        ("--users", "20000", "--trades", "100000", "--runs", "30"),
        ("--users", "100000", "--trades", "1000000", "--runs", "30"),
    ),
    Bench("autotrade", "scripts.bench_autotrade", ("--users", "200"), ("--users", "1000")),
    Bench(
        "fanout", "scripts.bench_fanout",
        ("--subscribers", "300", "--modes", "free"), ("--subscribers", "10000"),
    ),
    Bench("licensing", "scripts.bench_licensing", ("--users", "20000"), ("--users", "100000")),
    Bench("exchange", "scripts.bench_exchange", ("--quick",), ("--no-docs",)),
    Bench("startup", "scripts.bench_startup", ("--runs", "1"), ("--runs", "5")),
    Bench("manage", "scripts.bench_manage", ("--alerts", "100000", "--stops", "10000"), ()),
    Bench("streams", "scripts.bench_streams", ("--quick",), ()),
    Bench("tape", "scripts.bench_tape", ("--quick",), ()),
    Bench("backtest", "scripts.bench_backtest", ("--quick",), ("--symbols", "530", "--days", "30")),
)  # fmt: skip


def run_one(item: Bench, full: bool, timeout_s: float) -> tuple[list[Row], str]:
    """Run one benchmark in a child process; its rows, or none and why."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        command = [sys.executable, "-m", item.module, *(item.full if full else item.quick)]
        command += ["--json", str(out)]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, cwd=bench.REPO, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            return [], f"timed out after {timeout_s:.0f} s"
        spent = time.perf_counter() - started
        rows = load(out) if out.exists() else []
        if done.returncode != 0 and not rows:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            return [], f"exit status {done.returncode}: " + " / ".join(tail)
        return rows, f"{spent:.0f} s" + ("" if done.returncode == 0 else " (did not do the work)")


def render(rows: list[Row]) -> str:
    return bench.table(
        ["workload", "size", "baseline(s)", "Tradewind", "ratio", "target", "verdict",
         "work done"],
        [
            [r.workload, r.size, r.baselines_text(), r.shown(), r.ratio(), r.target_text(),
             r.verdict() + (f" ({r.why})" if r.why and r.verdict().startswith("missed") else ""),
             r.work]
            for r in rows
        ],
    )  # fmt: skip


def _load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--full", action="store_true", help="the full sizes (long)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--write-docs", action="store_true", help="record in PERFORMANCE.md")
    parser.add_argument("--timeout", type=float, default=0, help="per benchmark, seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write every row as JSON")
    args = parser.parse_args(argv)
    chosen = [b for b in SUITE if not args.only or b.name in args.only.split(",")]
    timeout = args.timeout or (3600.0 if args.full else 300.0)
    load_before, started = _load_average(), time.perf_counter()
    rows: list[Row] = []
    failures: list[str] = []
    for item in chosen:
        print(f"… {item.name}", file=sys.stderr, flush=True)
        found, how = run_one(item, args.full, timeout)
        print(f"  {item.name}: {how}", file=sys.stderr, flush=True)
        if not found:
            failures.append(f"{item.name}: {how}")
        rows += found
    total = time.perf_counter() - started
    mode = "full" if args.full else "quick"
    command = "make bench" + (" FULL=1" if args.full else "")
    head = (
        f"{mode} sizes, {total:.0f} s in all — {bench.today()}; {bench.machine()}\n"
        f"Load average before / after: {load_before} / {_load_average()}."
    )
    text = f"{head}\n\n{render(rows)}"
    if failures:
        text += "\n\nFailed: " + "; ".join(failures)
    print(f"\n{text}")
    if args.json is not None:
        emit(args.json, rows)
    if args.write_docs:
        bench.write_section(HEADING, f"Command: `{command}`. {text}\n\n{READING}")
        print(f"\nrecorded in {bench.PERFORMANCE_MD}")
    return 1 if failures or not all(r.did_work for r in rows) else 0


READING = """\
How to read it: "baseline(s)" are measured in the same run, doing the same work (the
scan's baselines confirm as many candidates as Tradewind did; see each section below for
what each baseline is). "ratio" is the best baseline against Tradewind. "work done" is
what the run counted it did; a row that did not do its work fails `make bench`. Load
benchmarks report the event loop's lag (a 5 ms sleeper's lateness: p99 and max) and the
longest garbage-collection pause."""


if __name__ == "__main__":
    sys.exit(main())
