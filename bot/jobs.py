"""Scheduled jobs: each run is timed, logged with its phases and recorded in the metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.ext import JobQueue

from core.metrics import Metrics
from handlers.context import TradewindContext
from services.container import Services

log = logging.getLogger(__name__)

JobBody = Callable[[], Awaitable[object]]


def timed_job(
    name: str, body: JobBody, metrics: Metrics
) -> Callable[[TradewindContext], Coroutine[Any, Any, None]]:
    """Wrap a job body: measure it, record it, and keep one failure from killing the schedule."""

    async def run(context: TradewindContext) -> None:
        start = time.perf_counter()
        ok = True
        result: object = None
        try:
            result = await body()
        except Exception:
            ok = False
            log.exception("job %s failed", name)
        finally:
            elapsed = time.perf_counter() - start
            metrics.record_job(name, elapsed, ok)
        if ok and result:
            log.info("job %s: %.1f ms — %s", name, elapsed * 1000, result)
        else:
            log.debug("job %s: %.1f ms", name, elapsed * 1000)

    return run


def schedule_jobs(job_queue: JobQueue[TradewindContext], services: Services) -> None:
    """Register the foundation's recurring jobs."""

    async def flush_presence() -> str | None:
        count = await services.users.flush_presence()
        return f"last-seen of {count} users written in one transaction" if count else None

    job_queue.run_repeating(
        timed_job("presence_flush", flush_presence, services.metrics),
        interval=30,
        first=30,
        name="presence_flush",
    )
