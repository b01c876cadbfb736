"""What an admin sees in /perf: latency by command, cache hit rates, slow statements, jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.cache import CacheLayer
from core.metrics import Metrics


@dataclass(slots=True, frozen=True)
class CommandPerf:
    command: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(slots=True, frozen=True)
class CachePerf:
    name: str
    hit_rate: float
    hits: int
    misses: int
    size: int


@dataclass(slots=True, frozen=True)
class StatementPerf:
    name: str
    count: int
    mean_ms: float
    total_ms: float


@dataclass(slots=True, frozen=True)
class JobPerf:
    name: str
    age_s: float
    duration_ms: float
    ok: bool


@dataclass(slots=True, frozen=True)
class PerfSnapshot:
    uptime_s: float
    commands: list[CommandPerf]
    caches: list[CachePerf]
    statements: list[StatementPerf]
    jobs: list[JobPerf]


class MonitoringService:
    """Reads the process metrics into a snapshot for the admin chat."""

    def __init__(
        self, metrics: Metrics, cache: CacheLayer, markets: Callable[[], int] | None = None
    ) -> None:
        self._metrics = metrics
        self._cache = cache
        self._markets = markets

    def health_info(self) -> dict[str, object]:
        """Extra /health fields: `markets`, the symbols trading in the live registry snapshot."""
        return {"markets": self._markets() if self._markets is not None else 0}

    def snapshot(self, top_statements: int = 8) -> PerfSnapshot:
        return PerfSnapshot(
            uptime_s=self._metrics.uptime_s(),
            commands=self._commands(),
            caches=self._caches(),
            statements=self._statements(top_statements),
            jobs=self._jobs(),
        )

    def _commands(self) -> list[CommandPerf]:
        result = []
        totals = self._metrics.totals("tradewind_command_seconds", "command")
        for name, window in sorted(self._metrics.recent_commands.items()):
            ordered = sorted(window)
            count = int(totals.get(name, (len(ordered), 0.0))[0])
            result.append(
                CommandPerf(
                    name,
                    count,
                    _percentile(ordered, 0.50) * 1000,
                    _percentile(ordered, 0.95) * 1000,
                    _percentile(ordered, 0.99) * 1000,
                )
            )
        return result

    def _caches(self) -> list[CachePerf]:
        result = []
        for name, stats in sorted(self._cache.stats().items()):
            lookups = stats.hits + stats.misses
            rate = stats.hits / lookups if lookups else 0.0
            result.append(CachePerf(name, rate, stats.hits, stats.misses, stats.size))
        return result

    def _statements(self, top: int) -> list[StatementPerf]:
        totals = self._metrics.totals("tradewind_db_statement_seconds", "statement")
        rows = [
            StatementPerf(name, int(count), total / count * 1000 if count else 0.0, total * 1000)
            for name, (count, total) in totals.items()
        ]
        rows.sort(key=lambda s: s.total_ms, reverse=True)
        return rows[:top]

    def _jobs(self) -> list[JobPerf]:
        now = datetime.now(UTC)
        return [
            JobPerf(name, (now - run.finished_at).total_seconds(), run.duration_s * 1000, run.ok)
            for name, run in sorted(self._metrics.jobs.items())
        ]


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]
