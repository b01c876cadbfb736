"""The application factory: settings in, a ready python-telegram-bot Application out.

Resources open in `post_init` (store → cache → services → metrics endpoint) and close in
`post_shutdown` in reverse order, so a failed start leaves nothing half-open.
"""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest

from bot.jobs import schedule_jobs
from bot.logs import quiet_shutdown_cancellations
from bot.payment_inbox import PaymentInbox
from bot.sender import TelegramSender
from bot.telegram_limits import TelegramLimiter
from bot.updates import UpdateGuard
from bot.wiring import build_services
from core.cache import CacheLayer
from core.clock import Clock, SystemClock
from core.config import Settings
from core.crypto import SecretBox, load_master_keys
from core.health import HealthServer
from core.heap import HeapGuard
from core.metrics import Metrics
from core.redaction import SECRETS
from db.repositories.app_state import AppStateRepository
from db.repositories.updates import UpdateRepository
from db.store import Store
from handlers.context import CONTEXT_TYPES, TradewindApp
from handlers.registry import register_handlers
from services.container import Services
from services.dispatcher import Dispatcher, DispatchPolicy

log = logging.getLogger(__name__)

CONSOLE_TOKEN = "7000000001:offline-console-token-not-a-secret"
CONSOLE_USER_ID = 1
_MENU_ADMINS_KEY = "command_menu_admins"


class Lifecycle:
    """Opens the bot's resources on start and closes them on stop."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        dispatch_policy: DispatchPolicy | None = None,
        paid_broadcast: bool = False,
        updates: UpdateGuard | None = None,
    ) -> None:
        self.settings = settings
        self.updates = updates or UpdateGuard()
        self.clock = clock
        self.metrics = metrics
        self.health: HealthServer | None = None
        self.dispatch_policy = dispatch_policy
        self.paid_broadcast = paid_broadcast
        self.dispatcher: Dispatcher | None = None
        self.inbox: PaymentInbox | None = None
        self._stack = AsyncExitStack()

    async def post_init(self, app: TradewindApp) -> None:
        phases: dict[str, float] = {}
        mark = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = (now - mark) * 1000
            mark = now

        try:
            store = await self._stack.enter_async_context(
                Store(self.settings.db_path, observer=self.metrics)
            )
            await self.updates.open(UpdateRepository(store), self.clock)
            self._stack.callback(self.updates.close)
            phase("store")
            keys = load_master_keys(
                ",".join(k.decode() for k in self.settings.master_keys) or None,
                self.settings.master_key_file,
            )
            phase("keys")
            cache = CacheLayer(self.clock)
            self.metrics.watch_caches(cache)
            services = await build_services(
                self.settings,
                store,
                self.clock,
                self.metrics,
                cache,
                SecretBox(keys),
                self._admins(),
            )
            self._stack.push_async_callback(services.aclose)
            app.bot_data.services = services
            if self.inbox is not None:
                self.inbox.keep = services.payments.receive
            phase("services")
            if self.settings.metrics_addr is not None:
                host, port = self.settings.metrics_addr
                self.health = HealthServer(
                    host,
                    port,
                    self.metrics,
                    probes={"db": store.ping},
                    info=services.monitoring.health_info,
                    breakers=services.exchanges.breakers,
                )
                await self._stack.enter_async_context(self.health)
            phase("metrics")
            if app.job_queue is not None:
                heap = self._stack.enter_context(HeapGuard())
                schedule_jobs(app.job_queue, services, self.settings.scan_interval, heap)
            self.metrics.watch_gauges(
                "tradewind_exchange_pool",
                "Pooled exchange clients: size, leased, created, evicted",
                lambda: _pool_gauges(services),
            )
            self.metrics.watch_gauges(
                "tradewind_cache_warming",
                "Cache warming since start: reloads scheduled, refreshed, failed, skipped (budget)",
                lambda: {
                    "scheduled": services.warmer.stats.scheduled,
                    "refreshed": services.warmer.stats.refreshed,
                    "failed": services.warmer.stats.failed,
                    "skipped": services.warmer.stats.skipped,
                },
            )
            await self._start_dispatcher(app, services)
            phase("outbox")
            await self._publish_commands(app, store)
            phase("commands")
        except BaseException:
            await self._stack.aclose()
            raise
        timings = ", ".join(f"{name} {ms:.0f} ms" for name, ms in phases.items())
        log.info("Tradewind started: %s", timings)

    async def post_stop(self, app: TradewindApp) -> None:
        """Finish the notifications in flight while the bot can still send them."""
        if self.dispatcher is not None:
            await self.dispatcher.stop()

    async def post_shutdown(self, app: TradewindApp) -> None:
        await self.post_stop(app)
        services = app.bot_data.services
        if services is not None:
            try:
                await services.users.flush_presence()
            except Exception:
                log.exception("could not flush presence on shutdown")
        app.bot_data.services = None
        await self._stack.aclose()
        log.info("Tradewind stopped")

    async def _start_dispatcher(self, app: TradewindApp, services: Services) -> None:
        """Send the notification outbox in the background until shutdown."""
        sender = TelegramSender(app.bot, paid_broadcast=self.paid_broadcast)
        dispatcher = Dispatcher(
            services.outbox, sender, self.clock, self.metrics, self.dispatch_policy
        )
        await dispatcher.start()
        self.dispatcher = dispatcher
        self._stack.push_async_callback(dispatcher.stop)
        self.metrics.watch_gauges(
            "tradewind_outbox_pending",
            "Notifications waiting to be sent, by priority lane",
            lambda: {str(lane): float(n) for lane, n in dispatcher.depth.items()},
        )

    def _admins(self) -> frozenset[int]:
        admins = set(self.settings.admin_ids)
        if self.settings.console_mode:
            admins.add(CONSOLE_USER_ID)
        return frozenset(admins)

    async def _publish_commands(self, app: TradewindApp, store: Store) -> None:
        """Publish the trader commands to everyone, and trader + admin ones to each admin.

        Admin menus are per-chat scopes (an admin's private chat id is their user id); the
        admins published last time are remembered so a removed admin loses the admin menu.
        """
        commands = app.bot_data.commands
        traders = [BotCommand(c.name, c.description) for c in commands if not c.admin]
        admins = traders + [BotCommand(c.name, c.description) for c in commands if c.admin]
        state = AppStateRepository(store)
        before = {int(i) for i in (await state.get(_MENU_ADMINS_KEY) or "").split(",") if i}
        current = set(self._admins())
        await _publish(app, traders, BotCommandScopeDefault())
        for admin_id in sorted(current):
            await _publish(app, admins, BotCommandScopeChat(admin_id))
        for former in sorted(before - current):
            try:
                await app.bot.delete_my_commands(scope=BotCommandScopeChat(former))
            except TelegramError as exc:
                log.warning("could not remove the admin menu of %s: %s", former, exc)
        await state.set(_MENU_ADMINS_KEY, ",".join(map(str, sorted(current))), self.clock.now())


async def _publish(app: TradewindApp, menu: list[BotCommand], scope: BotCommandScope) -> None:
    try:
        await app.bot.set_my_commands(menu, scope=scope)
    except TelegramError as exc:  # a cosmetic failure must not stop the bot
        log.warning("could not publish the command menu (%s): %s", scope.type, exc)


def _pool_gauges(services: Services) -> dict[str, float]:
    stats = services.exchanges.pool_stats()
    return {
        "size": stats.size,
        "leased": stats.leased,
        "created": stats.created,
        "evicted": stats.evicted,
    }


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    rate_limited: bool = True,
    dispatch_policy: DispatchPolicy | None = None,
    paid_broadcast: bool = False,
    update_guard: UpdateGuard | None = None,
) -> TradewindApp:
    """Build the Application; pass `request` to answer the Bot API offline.

    `rate_limited=False` drops Telegram's flood-control pacing (AIORateLimiter), for
    benchmarks that measure the bot's own latency against an offline Bot API; 429s and
    unparsable HTML are still handled.
    `dispatch_policy` and `paid_broadcast` tune the notification dispatcher's limits.
    Pass `update_guard` to learn the newest update id handled (offline ids continue it).
    """
    quiet_shutdown_cancellations()
    SECRETS.keep(settings.telegram_bot_token)  # PTB logs the Bot API URL, token included
    lifecycle = Lifecycle(
        settings,
        clock or SystemClock(),
        metrics or Metrics(),
        dispatch_policy,
        paid_broadcast,
        update_guard,
    )
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token or CONSOLE_TOKEN)
        .context_types(CONTEXT_TYPES)
        # One trader's slow exchange must never hold up everybody else's updates.
        .concurrent_updates(256)
        .post_init(lifecycle.post_init)
        .post_stop(lifecycle.post_stop)
        .post_shutdown(lifecycle.post_shutdown)
    )
    # Pacing is PTB's; a 429 is handled once: by the dispatcher for outbox deliveries, by
    # the limiter for everything else (see bot.telegram_limits). The builder's generic type
    # changes with the limiter's; PTB's stubs cannot express re-binding the variable.
    pacer = AIORateLimiter(max_retries=0) if rate_limited else None
    builder = builder.rate_limiter(TelegramLimiter(pacer))  # type: ignore[arg-type]
    if settings.telegram_api_base_url:
        builder = builder.base_url(settings.telegram_api_base_url)
    # Payments in a getUpdates batch are written down before the next call confirms it.
    lifecycle.inbox = PaymentInbox(get_updates_request or request or HTTPXRequest())
    if request is not None:
        builder = builder.request(request)
    builder = builder.get_updates_request(lifecycle.inbox)
    app: TradewindApp = builder.build()
    app.bot_data.commands = register_handlers(app, settings.flood)
    # Before everything else (anti-flood is -2): a redelivered update never acts twice.
    app.add_handler(TypeHandler(Update, lifecycle.updates.check), group=-3)
    return app
