"""A local HTTP Bot API for end-to-end tests and benchmarks, backed by `FakeTelegramState`.

Start the real bot with ``TELEGRAM_API_BASE_URL=server.base_url`` (PTB appends
``{token}/{method}``)::

    async with BotApiServer(flood_limit=True) as server:
        server.push_update(make_message_update(0, 42, "/start"))
        call = await server.wait_for_call("sendMessage")

The server binds 127.0.0.1 on an ephemeral port only. ``getUpdates`` long-polls event-driven.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.offline_api import ApiCall, BotApiError, FakeTelegramState
from bot.offline_updates import Predicate

__all__ = ["BotApiServer", "FloodLimiter"]

HOST = "127.0.0.1"


class FloodLimiter:
    """Telegram's flood control for sent messages: at most ``global_rate`` per ``window``
    seconds overall and ``per_chat_rate`` per chat (sliding windows). Excess messages get
    ``429 Too Many Requests`` with an integer ``retry_after``. Counts ``sent``/``rejected_429``.
    Messages sent with ``allow_paid_broadcast`` count against ``paid_rate`` overall instead.
    """

    def __init__(
        self,
        global_rate: int = 30,
        per_chat_rate: int = 1,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        paid_rate: int = 1000,
    ) -> None:
        self.global_rate, self.per_chat_rate, self.window = global_rate, per_chat_rate, window
        self.paid_rate = paid_rate
        self._clock = clock
        self._global: deque[float] = deque()
        self._paid: deque[float] = deque()
        self._chats: dict[str, deque[float]] = {}
        self.sent = 0
        self.rejected_429 = 0

    def _retry_after(self, stamps: deque[float], limit: int, now: float) -> int | None:
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if len(stamps) < limit:
            return None
        return max(1, math.ceil(stamps[0] + self.window - now))

    def check(self, chat_key: str, paid: bool = False) -> None:
        now = self._clock()
        chat = self._chats.setdefault(chat_key, deque())
        overall, limit = (self._paid, self.paid_rate) if paid else (self._global, self.global_rate)
        retry = self._retry_after(chat, self.per_chat_rate, now)
        retry = retry or self._retry_after(overall, limit, now)
        if retry is not None:
            self.rejected_429 += 1
            raise BotApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        chat.append(now)
        overall.append(now)
        self.sent += 1


class BotApiServer:
    """``async with BotApiServer() as server``: an aiohttp Bot API on ``server.base_url``."""

    def __init__(
        self,
        state: FakeTelegramState | None = None,
        *,
        flood_limit: bool = False,
        global_rate: int = 30,
        per_chat_rate: int = 1,
        token: str | None = None,
    ) -> None:
        self.state = state if state is not None else FakeTelegramState()
        self.flood: FloodLimiter | None = None
        if flood_limit:
            self.flood = FloodLimiter(global_rate=global_rate, per_chat_rate=per_chat_rate)
            self.state.flood_limiter = self.flood
        self.token = token
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.state.updates.interrupt()  # end pending long polls so shutdown is immediate
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("BotApiServer is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """For PTB's ``base_url`` / ``TELEGRAM_API_BASE_URL``: ``http://127.0.0.1:PORT/bot``."""
        return f"http://{HOST}:{self.port}/bot"

    # -- test API ------------------------------------------------------------------------------
    @property
    def calls(self) -> list[ApiCall]:
        return self.state.calls

    @property
    def sent(self) -> int:
        """Messages accepted by flood control (0 when flood mode is off)."""
        return self.flood.sent if self.flood else 0

    @property
    def rejected_429(self) -> int:
        return self.flood.rejected_429 if self.flood else 0

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an incoming update (assigns ``update_id``); wakes a waiting ``getUpdates``."""
        return self.state.push_update(update)

    async def wait_for_call(
        self,
        method: str,
        predicate: Predicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - mirrors FakeTelegramState.wait_for_call
    ) -> ApiCall:
        return await self.state.wait_for_call(method, predicate, timeout)

    # -- HTTP ----------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.token is not None and request.match_info["token"] != self.token:
            body = BotApiError(401, "Unauthorized").to_json()
            return web.json_response(body, status=401)
        params: dict[str, object] = dict(request.query)
        if request.method == "POST" and request.body_exists:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:  # application/x-www-form-urlencoded or multipart/form-data
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        value = f"<file {value.filename}>"
                    elif not isinstance(value, str):
                        value = bytes(value).decode("utf-8", "replace")
                    params[key] = value
        status, payload = await self.state.handle(request.match_info["method"], params)
        return web.Response(status=status, body=payload, content_type="application/json")
