"""Drive the real Application offline: send text or press buttons as any user, read replies."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from telegram import Update

from bot.app import build_application
from bot.offline_api import ApiCall, FakeTelegramState
from bot.offline_request import OfflineRequest
from bot.offline_updates import make_callback_update, make_message_update
from bot.updates import UpdateGuard
from core.clock import Clock
from core.config import Settings
from core.metrics import Metrics
from db.store import Store
from handlers.context import TradewindApp
from services.container import Services
from services.dispatcher import DispatchPolicy


class BotHarness:
    """One running Application answering through a `FakeTelegramState`.

    `store` opens the bot's database on connections of its own, as an operator's tool would:
    tests seed and inspect rows through it, never through a service's private parts.
    """

    def __init__(
        self, app: TradewindApp, state: FakeTelegramState, store: Store, first_update_id: int = 1
    ) -> None:
        self.app = app
        self.state = state
        self.store = store
        # Update ids go on from the newest one the database has handled, as Telegram's do:
        # an id seen before would be dropped as a redelivery.
        self._ids = itertools.count(first_update_id)

    @property
    def services(self) -> Services:
        assert self.app.bot_data.services is not None
        return self.app.bot_data.services

    async def send(self, user_id: int, text: str, first_name: str = "Trader") -> list[ApiCall]:
        """Process a text message from `user_id`; return the Bot API calls it caused."""
        update = make_message_update(next(self._ids), user_id, text, first_name=first_name)
        return await self._process(self.state.record_incoming(update))

    async def send_in_group(
        self, user_id: int, chat_id: int, text: str, first_name: str = "Trader"
    ) -> list[ApiCall]:
        """Process a text message from `user_id` in the group chat `chat_id` (negative)."""
        update = make_message_update(
            next(self._ids), user_id, text, first_name=first_name, chat_id=chat_id
        )
        return await self._process(self.state.record_incoming(update))

    async def press(
        self, user_id: int, message: dict[str, Any], data: str, first_name: str = "Trader"
    ) -> list[ApiCall]:
        update = make_callback_update(
            next(self._ids), user_id, message, data, first_name=first_name
        )
        return await self._process(update)

    async def deliver(self, update: dict[str, Any]) -> list[ApiCall]:
        """Process a raw update (e.g. from `bot.offline_updates` builders) as Telegram sends
        it, under the next update id."""
        update["update_id"] = next(self._ids)
        return await self._process(self.state.record_incoming(update))

    async def redeliver(self, update: dict[str, Any]) -> list[ApiCall]:
        """Process an update again under its own update id, as Telegram does after a crash."""
        return await self._process(update)

    async def _process(self, data: dict[str, Any]) -> list[ApiCall]:
        before = len(self.state.calls)
        await self.app.process_update(Update.de_json(data, self.app.bot))
        return self.state.calls[before:]


def texts(calls: list[ApiCall]) -> list[str]:
    """The plain text of every message sent or edited by these calls."""
    found = []
    for call in calls:
        if isinstance(call.result, dict) and "text" in call.result:
            found.append(str(call.result["text"]))
    return found


@asynccontextmanager
async def running_bot(
    tmp_path: Path,
    *,
    admin_ids: frozenset[int] = frozenset({99}),
    clock: Clock | None = None,
    state: FakeTelegramState | None = None,
    rate_limited: bool = True,
    dispatch_policy: DispatchPolicy | None = None,
    **overrides: Any,
) -> AsyncIterator[BotHarness]:
    """Start the real Application on a fresh SQLite file with the offline Bot API.

    Pass the `state` of an earlier run (and the same `tmp_path`) to restart the bot on the
    same database and the same Telegram chats. `rate_limited=False` drops Telegram's
    30-messages-a-second pacing, for tests that answer hundreds of users at once.
    """
    settings = Settings(
        telegram_bot_token="123456:TEST-token-for-the-offline-bot-api",
        db_path=tmp_path / "tradewind.db",
        master_key_file=tmp_path / "master.key",
        admin_ids=admin_ids,
        metrics_addr=None,
    )
    settings = replace(settings, **overrides)
    state = state if state is not None else FakeTelegramState()
    guard = UpdateGuard()
    app = build_application(
        settings,
        request=OfflineRequest(state),
        get_updates_request=OfflineRequest(state),
        metrics=Metrics(),
        clock=clock,
        rate_limited=rate_limited,
        dispatch_policy=dispatch_policy,
        update_guard=guard,
    )
    await app.initialize()
    assert app.post_init is not None and app.post_shutdown is not None
    await app.post_init(app)
    await app.start()
    try:
        async with Store(settings.db_path, readers=1) as store:
            yield BotHarness(app, state, store, guard.latest + 1)
    finally:
        await app.stop()
        await app.shutdown()
        await app.post_shutdown(app)
