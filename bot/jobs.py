"""Scheduled jobs: each run is timed, logged with its phases and recorded in the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.ext import JobQueue

from bot.logs import FailureLog
from core.clock import Clock, SystemClock
from core.heap import HeapGuard
from core.metrics import Metrics
from handlers.broadcast import BROADCAST_PROGRESS_S, report_progress
from handlers.context import TradewindContext
from services.container import Services

log = logging.getLogger(__name__)

CANDLE_INTERVAL_S = 300  # a 5-minute candle completes this often

JobBody = Callable[[], Awaitable[object]]
# Balance snapshots are hourly rows: writing the accounts seen every 5 minutes keeps a crash
# from losing more than that, for one statement per run.
EQUITY_FLUSH_S = 300


def timed_job(
    name: str, body: JobBody, metrics: Metrics, clock: Clock | None = None
) -> Callable[[TradewindContext], Coroutine[Any, Any, None]]:
    """Wrap a job body: measure it, record it, and keep one failure from killing the schedule."""
    failures = FailureLog(log, clock or SystemClock())

    async def run(context: TradewindContext) -> None:
        start = time.perf_counter()
        ok = True
        result: object = None
        try:
            result = await body()
        except asyncio.CancelledError:
            # Only shutdown cancels a job; ending quietly keeps the scheduler from
            # reporting a stop as a failure.
            log.debug("job %s cancelled by shutdown", name)
            return
        except Exception as exc:
            ok = False
            failures.failed(f"job {name}", exc)
        finally:
            elapsed = time.perf_counter() - start
            metrics.record_job(name, elapsed, ok)
        if ok and result:
            log.info("job %s: %.1f ms — %s", name, elapsed * 1000, result)
        else:
            log.debug("job %s: %.1f ms", name, elapsed * 1000)

    return run


def schedule_jobs(
    job_queue: JobQueue[TradewindContext],
    services: Services,
    price_interval_s: float,
    heap: HeapGuard | None = None,
) -> None:
    """Register the recurring jobs."""
    metrics = services.metrics
    exchanges = services.exchanges

    async def flush_presence() -> str | None:
        count = await services.users.flush_presence()
        return f"last-seen of {count} users written in one transaction" if count else None

    async def settle_paper() -> str | None:
        settled = await services.paper.settle()
        return None if settled is None else str(settled)

    async def warm_caches() -> None:
        # Runs every 1.5 s: its counts go to metrics (tradewind_cache_warming), not the log.
        await services.warmer.warm_once()

    async def evict_idle_clients() -> str | None:
        count = await exchanges.pool.evict_idle()
        return f"closed {count} idle exchange clients" if count else None

    async def resolve_orders() -> str | None:
        count = len(await services.settlement.settle())
        return f"settled {count} orders whose outcome was unknown" if count else None

    async def expire_cards() -> str | None:
        count = await services.trading.expire_cards()
        return f"{count} unconfirmed order cards expired" if count else None

    async def license_expiry() -> str | None:
        report = await services.licenses.run_expiry()
        return f"licences: {report}" if report.total else None

    async def sync_registry() -> str:
        return (await services.registry.sync()).line()

    async def scan_market() -> str:
        report = await services.scanner.scan()
        services.autotrader.submit(report.signals)  # in the background: scans keep their pace
        return report.line()

    async def check_price_alerts() -> str | None:
        report = await services.price_alerts.check()
        return str(report) if report.fired else None

    async def trail_stops() -> str | None:
        report = await services.trailing.check()
        moved = await services.ladders.check()  # ladders whose first part filled: SL to entry
        done = [str(report)] if report.fired else []
        done += (
            [f"{moved} stop losses moved to break-even after a ladder's first part"]
            if moved
            else []
        )
        return "; ".join(done) or None

    async def settle_then_resume() -> str | None:
        # Everything an earlier run left unknown is settled first, so auto-trading resumes
        # on orders whose outcome is known; a failure there must not stop the resume.
        try:
            settled = len(await services.settlement.settle())
            logged = await services.trading.log_missed_closes()
        finally:
            resumed = await services.autotrader.resume()
        done = [f"settled {settled} orders left unknown"] if settled else []
        done += [f"logged {logged} closes a crash kept out of the ledger"] if logged else []
        done += [f"resumed auto-trading of {resumed} recent signals"] if resumed else []
        return "; ".join(done) or None

    async def recover_payments() -> str | None:
        done = await services.payments.recover()
        return f"credited {len(done)} payments a crash left uncredited" if done else None

    async def sync_positions() -> str | None:
        report = await services.position_sync.sync_once()
        return f"positions: {report}" if report.accounts else None

    async def catch_up_fills() -> str | None:
        report = await services.fill_catchup.catch_up_active()
        return f"fills: {report}" if report.fills or report.failures else None

    async def catch_up_everyone() -> str:
        # Whatever filled while Tradewind was down is recorded now, once.
        return f"fills at start-up: {await services.fill_catchup.catch_up_everyone()}"

    async def expire_orders() -> str | None:
        report = await services.order_expiry.expire_once()
        return f"expiry: {report}" if report.due else None

    async def broadcast_progress() -> str | None:
        return await report_progress(job_queue.application.bot, services.broadcasts)

    async def scheduled_reports() -> str | None:
        count = await services.scheduled_reports.send_due()
        return f"{count} scheduled reports queued" if count else None

    async def equity_snapshots() -> str | None:
        report = await services.equity.flush()
        return None if report is None else str(report)

    async def collect_candles() -> str:
        return (await services.candles.collect()).line()

    async def tend_heap() -> str | None:
        return heap.tend() if heap is not None else None

    jobs: list[tuple[str, JobBody, float, float]] = [
        ("presence_flush", flush_presence, 30, 30),
        ("paper_settle", settle_paper, price_interval_s, price_interval_s),
        ("client_eviction", evict_idle_clients, 60, 60),
        ("cache_warming", warm_caches, services.warmer.lead_s / 2, 1),
        ("order_resolution", resolve_orders, 60, 60),  # the first run is at start-up
        ("card_expiry", expire_cards, 600, 60),
        ("registry_sync", sync_registry, services.registry.interval_s, 1),
        ("market_scan", scan_market, services.scanner.interval_s, services.scanner.interval_s),
        ("price_alerts", check_price_alerts, services.scanner.interval_s, 5),
        ("trailing_stops", trail_stops, services.scanner.interval_s, 6),
        ("license_expiry", license_expiry, 3600, 30),
        ("broadcast_progress", broadcast_progress, BROADCAST_PROGRESS_S, 1),
        ("position_sync", sync_positions, 30, 15),
        ("fill_catchup", catch_up_fills, 30, 20),
        ("order_expiry", expire_orders, 60, 45),
        ("heap_tending", tend_heap, 5, 5),
        ("scheduled_reports", scheduled_reports, 60, 60),
        ("equity_snapshots", equity_snapshots, EQUITY_FLUSH_S, EQUITY_FLUSH_S),
        ("candle_collection", collect_candles, CANDLE_INTERVAL_S, 30),
    ]
    for name, body, interval, first in jobs:
        job_queue.run_repeating(
            timed_job(name, body, metrics), interval=interval, first=first, name=name
        )
    job_queue.run_once(timed_job("startup_settlement", settle_then_resume, metrics), 0)
    job_queue.run_once(timed_job("startup_fill_catchup", catch_up_everyone, metrics), 0)
    job_queue.run_once(timed_job("payment_recovery", recover_payments, metrics), 0)
