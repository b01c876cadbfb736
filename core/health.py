"""The operator's window: `/health` (JSON) and `/metrics` (Prometheus) on a loopback port.

The server knows nothing of the store or the market: the wiring hands it probes. A probe
that raises or answers False makes `/health` answer 503 with the reason, so a process
supervisor can restart a bot whose database went away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.exchange.breaker import BreakerBoard
from core.metrics import Metrics

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[bool]]
Info = Callable[[], Mapping[str, object]]

_PROBE_TIMEOUT_S = 2.0


class HealthServer:
    """Serves /health and /metrics until closed; `port` is known after `start`."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        probes: Mapping[str, Probe] | None = None,
        info: Info | None = None,
        breakers: BreakerBoard | None = None,
    ) -> None:
        self._host, self.port = host, port
        self._metrics = metrics
        self._probes = dict(probes or {})
        self._info = info
        self._breakers = breakers
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("health and metrics on http://%s:%d", self._host, self.port)

    async def aclose(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def report(self) -> tuple[bool, dict[str, object]]:
        """Run every probe and build the /health document."""
        checks: dict[str, object] = {}
        healthy = True
        for name, probe in self._probes.items():
            try:
                ok = await asyncio.wait_for(probe(), _PROBE_TIMEOUT_S)
                checks[name] = "ok" if ok else "failing"
            except Exception as exc:  # a probe's failure is the answer, not a crash
                ok = False
                checks[name] = f"error: {type(exc).__name__}: {exc}"
            healthy = healthy and ok
        now = datetime.now(UTC)
        jobs = {
            name: {
                "last_run": run.finished_at.isoformat(),
                "age_s": round((now - run.finished_at).total_seconds(), 3),
                "duration_ms": round(run.duration_s * 1000, 3),
                "ok": run.ok,
            }
            for name, run in sorted(self._metrics.jobs.items())
        }
        body: dict[str, object] = {
            "status": "ok" if healthy else "failing",
            "checks": checks,
            "uptime_s": round(self._metrics.uptime_s(), 3),
            "jobs": jobs,
        }
        if self._breakers is not None:
            # An open breaker is an exchange's outage, not ours: reported, never a 503.
            body["breakers"] = self._breakers.report()
        if self._info is not None:
            body.update(self._info())
        return healthy, body

    async def _health(self, request: web.Request) -> web.Response:
        healthy, body = await self.report()
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        payload = generate_latest(self._metrics.registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})
