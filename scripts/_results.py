"""The one shape every benchmark reports in: rows of workload, size, baselines, Tradewind,
target, and the evidence that the workload did the work it claims.

A benchmark script given `--json PATH` writes its rows there; `scripts.bench_all` runs each
script in its own process, reads the rows and prints one table. A row whose workload did
not do its work (no candidate confirmed, no trade closed, no row written...) says so in
its verdict and makes the run fail: a fast figure for work not done is worse than none.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Row:
    """One measured figure: Tradewind's `value` (in `unit`) against the baselines doing the
    same work in the same run, and against `target` when the figure has one."""

    workload: str
    size: str
    value: float
    unit: str
    work: str  # what the run did, counted: the proof it exercised the path
    did_work: bool
    baselines: dict[str, float] = field(default_factory=dict)
    target: float | None = None
    higher_is_better: bool = False
    detail: str = ""  # shown instead of the bare value (e.g. "p99 4.1 / max 38 ms")
    why: str = ""  # the reason for a miss, when known

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        return cls(**dict(data))

    def verdict(self) -> str:
        if not self.did_work:
            return "DID NOT DO THE WORK"
        if self.target is None:
            return "reported"
        met = self.value >= self.target if self.higher_is_better else self.value <= self.target
        if met:
            return "met"
        gap = abs(self.value - self.target)
        share = f" ({gap / self.target:.0%})" if self.target else ""
        return f"missed by {number(gap)} {self.unit}{share}"

    def ratio(self) -> str:
        """The best baseline against Tradewind, as "N× better" (— without a baseline)."""
        if not self.baselines or self.value <= 0:
            return "—"
        best = (max if self.higher_is_better else min)(self.baselines.values())
        factor = self.value / best if self.higher_is_better else best / self.value
        return f"{factor:,.0f}×" if factor >= 10 else f"{factor:.1f}×"

    def shown(self) -> str:
        return self.detail or f"{number(self.value)} {self.unit}"

    def target_text(self) -> str:
        if self.target is None:
            return "—"
        return f"{'≥' if self.higher_is_better else '≤'} {number(self.target)} {self.unit}"

    def baselines_text(self) -> str:
        return (
            "; ".join(f"{name} {number(v)} {self.unit}" for name, v in self.baselines.items())
            or "—"
        )


def number(value: float) -> str:
    """A figure with sensible precision: 0.123, 4.56, 78.9, 1,234."""
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if size >= 10 else f"{value:.2f}" if size >= 1 else f"{value:.3f}"


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the rows as JSON"
    )


def emit(path: Path | None, rows: Iterable[Row]) -> None:
    """Write the rows to `path` (nothing without one); print the ones that did no work."""
    rows = list(rows)
    for row in rows:
        if not row.did_work:
            print(f"DID NOT DO THE WORK: {row.workload} ({row.size}): {row.work}", flush=True)
    if path is not None:
        path.write_text(json.dumps([asdict(row) for row in rows], indent=1), encoding="utf-8")


def load(path: Path) -> list[Row]:
    return [Row.from_json(item) for item in json.loads(path.read_text(encoding="utf-8"))]
