"""Process metrics: one Prometheus registry and the instruments every layer fills.

`Metrics` is created once by the wiring and handed to whatever measures something; nothing
here is global, so tests get a fresh registry each. Cache statistics are not pushed on
every hit: a collector reads `CacheLayer.stats()` when Prometheus scrapes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_WINDOW = 1000  # recent latencies kept per command for exact percentiles in /perf
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class CacheStatsSource(Protocol):
    """What the cache collector reads; `core.cache.CacheLayer` satisfies it."""

    def stats(self) -> Mapping[str, object]: ...


@dataclass(slots=True)
class JobRun:
    """The last run of one scheduled job, as /health reports it."""

    finished_at: datetime
    duration_s: float
    ok: bool


class Metrics:
    """The registry and the named instruments of one Tradewind process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.command_latency = Histogram(
            "tradewind_command_seconds", "Handler latency by command", ["command"],
            registry=r, buckets=_FAST,
        )  # fmt: skip
        self.command_errors = Counter(
            "tradewind_command_errors_total", "Unhandled errors by command", ["command"],
            registry=r,
        )  # fmt: skip
        self.exchange_latency = Histogram(
            "tradewind_exchange_call_seconds", "Exchange call latency",
            ["exchange", "method"], registry=r, buckets=_FAST,
        )  # fmt: skip
        self.exchange_errors = Counter(
            "tradewind_exchange_errors_total", "Exchange call failures by domain error",
            ["exchange", "method", "error"], registry=r,
        )  # fmt: skip
        self.breaker_opened = Counter(
            "tradewind_exchange_breaker_opened_total",
            "Times a venue's circuit breaker opened, by exchange/account type", ["venue"],
            registry=r,
        )  # fmt: skip
        self.breaker_refused = Counter(
            "tradewind_exchange_breaker_refused_total",
            "Calls failed fast while a venue's breaker was open", ["venue"], registry=r,
        )  # fmt: skip
        self.db_latency = Histogram(
            "tradewind_db_statement_seconds", "SQLite statement latency by statement name",
            ["statement"], registry=r, buckets=_FAST,
        )  # fmt: skip
        self.job_duration = Histogram(
            "tradewind_job_seconds", "Scheduled job duration", ["job"],
            registry=r, buckets=_SLOW,
        )  # fmt: skip
        self.job_failures = Counter(
            "tradewind_job_failures_total", "Scheduled job runs that raised", ["job"],
            registry=r,
        )  # fmt: skip
        self.job_last_success = Gauge(
            "tradewind_job_last_success_timestamp", "Unix time of the last good run", ["job"],
            registry=r,
        )  # fmt: skip
        self.messages_sent = Counter(
            "tradewind_messages_sent_total", "Messages sent to Telegram by kind", ["kind"],
            registry=r,
        )  # fmt: skip
        self.notifications = Counter(
            "tradewind_notifications_total",
            "Outbox deliveries by outcome: sent, failed, dead, dropped, retry_after",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.stream_events = Counter(
            "tradewind_stream_events_total",
            "Account stream events: order, fill, position, balance, connect, drop, "
            "malformed, gap, catch_up, evicted",
            ["exchange", "kind"], registry=r,
        )  # fmt: skip
        self.stream_phase = Histogram(
            "tradewind_stream_phase_seconds",
            "Account stream phases: connect, seed, catch_up, apply",
            ["exchange", "phase"], registry=r, buckets=_FAST,
        )  # fmt: skip
        self.started_at = time.time()
        self.jobs: dict[str, JobRun] = {}
        self.recent_commands: dict[str, deque[float]] = {}

    @contextmanager
    def time_command(self, command: str) -> Iterator[None]:
        """Measure one handler run; an escaping exception is counted too."""
        start = time.perf_counter()
        try:
            yield
        except Exception:
            self.command_errors.labels(command).inc()
            raise
        finally:
            elapsed = time.perf_counter() - start
            self.command_latency.labels(command).observe(elapsed)
            window = self.recent_commands.get(command)
            if window is None:
                window = self.recent_commands[command] = deque(maxlen=_WINDOW)
            window.append(elapsed)

    def observe_statement(self, name: str, seconds: float) -> None:
        """Record one SQL statement's latency (the store calls this)."""
        self.db_latency.labels(name).observe(seconds)

    def observe_exchange(
        self, exchange: str, method: str, seconds: float, error: str | None = None
    ) -> None:
        """Record one exchange call and, if it failed, the domain error's name."""
        self.exchange_latency.labels(exchange, method).observe(seconds)
        if error is not None:
            self.exchange_errors.labels(exchange, method, error).inc()

    def record_job(self, job: str, seconds: float, ok: bool) -> None:
        """Record one run of a scheduled job for /metrics and /health."""
        now = datetime.now(UTC)
        self.job_duration.labels(job).observe(seconds)
        if ok:
            self.job_last_success.labels(job).set(now.timestamp())
        else:
            self.job_failures.labels(job).inc()
        self.jobs[job] = JobRun(finished_at=now, duration_s=seconds, ok=ok)

    def watch_caches(self, source: CacheStatsSource) -> None:
        """Export a cache layer's statistics, read at scrape time."""
        self.registry.register(_CacheCollector(source))

    def watch_gauges(self, name: str, doc: str, read: Callable[[], Mapping[str, float]]) -> None:
        """Export a labelled gauge family computed at scrape time (pool size, outbox depth)."""
        self.registry.register(_GaugeCollector(name, doc, read))

    def uptime_s(self) -> float:
        return time.time() - self.started_at

    def totals(self, metric: str, label: str) -> dict[str, tuple[float, float]]:
        """(count, sum) per label value of one histogram, e.g. DB time per statement."""
        found: dict[str, list[float]] = {}
        for family in self.registry.collect():
            if family.name != metric:
                continue
            for sample in family.samples:
                key = sample.labels.get(label)
                if key is None:
                    continue
                pair = found.setdefault(key, [0.0, 0.0])
                if sample.name.endswith("_count"):
                    pair[0] = sample.value
                elif sample.name.endswith("_sum"):
                    pair[1] = sample.value
        return {key: (pair[0], pair[1]) for key, pair in found.items()}


class _CacheCollector(Collector):
    def __init__(self, source: CacheStatsSource) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        counters = {
            field: CounterMetricFamily(
                f"tradewind_cache_{field}", f"Cache {field} by cache", labels=["cache"]
            )
            for field in ("hits", "misses", "loads", "evictions")
        }
        size = GaugeMetricFamily("tradewind_cache_size", "Entries by cache", labels=["cache"])
        for name, stats in self._source.stats().items():
            for field, family in counters.items():
                family.add_metric([name], float(getattr(stats, field)))
            size.add_metric([name], float(getattr(stats, "size")))  # noqa: B009
        yield from counters.values()
        yield size


class _GaugeCollector(Collector):
    def __init__(self, name: str, doc: str, read: Callable[[], Mapping[str, float]]) -> None:
        self._name, self._doc, self._read = name, doc, read

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self._name, self._doc, labels=["key"])
        for key, value in self._read().items():
            family.add_metric([key], value)
        yield family
