"""/health and /metrics served over loopback HTTP."""

from __future__ import annotations

import json

import aiohttp

from core.cache import CacheLayer
from core.health import HealthServer
from core.metrics import Metrics


async def _fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_health_reports_probes_uptime_and_jobs() -> None:
    metrics = Metrics()
    metrics.record_job("market_scan", 0.042, ok=True)

    async def db_ok() -> bool:
        return True

    async with HealthServer(
        "127.0.0.1", 0, metrics, probes={"db": db_ok}, info=lambda: {"markets": 530}
    ) as server:
        status, body = await _fetch(f"http://127.0.0.1:{server.port}/health")
    report = json.loads(body)
    assert status == 200
    assert report["status"] == "ok" and report["checks"] == {"db": "ok"}
    assert report["markets"] == 530
    assert report["jobs"]["market_scan"]["duration_ms"] == 42.0
    assert report["jobs"]["market_scan"]["ok"] is True
    assert report["uptime_s"] >= 0


async def test_failing_probe_answers_503_with_the_reason() -> None:
    async def db_down() -> bool:
        raise OSError("disk I/O error")

    async with HealthServer("127.0.0.1", 0, Metrics(), probes={"db": db_down}) as server:
        status, body = await _fetch(f"http://127.0.0.1:{server.port}/health")
    assert status == 503
    assert json.loads(body)["checks"]["db"] == "error: OSError: disk I/O error"


async def test_metrics_page_exports_instruments_and_cache_stats() -> None:
    metrics = Metrics()
    cache = CacheLayer()
    metrics.watch_caches(cache)
    tickers = cache.define("tickers", ttl=5, maxsize=10)

    async def load() -> int:
        return 1

    await tickers.get_or_load("all", load)
    await tickers.get_or_load("all", load)
    with metrics.time_command("balance"):
        pass
    metrics.observe_exchange("bybit", "fetch_balance", 0.03, error="RateLimited")
    async with HealthServer("127.0.0.1", 0, metrics) as server:
        status, body = await _fetch(f"http://127.0.0.1:{server.port}/metrics")
    assert status == 200
    assert 'tradewind_cache_hits_total{cache="tickers"} 1.0' in body
    assert 'tradewind_cache_misses_total{cache="tickers"} 1.0' in body
    assert 'tradewind_command_seconds_count{command="balance"} 1.0' in body
    assert (
        'tradewind_exchange_errors_total{error="RateLimited",exchange="bybit",'
        'method="fetch_balance"} 1.0'
    ) in body
