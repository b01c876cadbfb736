"""Settling orders whose outcome is unknown, and telling their traders how they ended.

A crash between recording an order and hearing back from the exchange, or a lookup that
failed, leaves an intent `pending`, `sent` or `unknown`. At start-up everything an earlier
run left is looked up at once (nobody else will), then a job takes what has been unknown
for 30 s. Each trader gets one notice per settled order through the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from html import escape

from core.cache import CacheLayer
from core.exchange.protocol import ExchangeClient
from core.exchange.venues import title
from db.repositories import intents as status
from db.repositories.intents import IntentRecord
from db.repositories.users import UserRepository
from services.caching import invalidate_user
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.outbox import Notice, NoticeKind, Outbox


class OrderSettlement:
    """Looks up orders left unknown and tells each trader the outcome."""

    def __init__(
        self,
        *,
        executor: OrderExecutor,
        gateway: ExchangeGateway,
        users: UserRepository,
        outbox: Outbox,
        cache: CacheLayer,
    ) -> None:
        self._executor = executor
        self._gateway = gateway
        self._users = users
        self._outbox = outbox
        self._cache = cache

    async def settle(self, older_than_s: float = 30) -> list[IntentRecord]:
        """Settle what is left unknown (all of it from before this start); return it."""
        settled = await self._executor.settle_unresolved(self._lease, older_than_s)
        if not settled:
            return settled
        for user_id in {intent.user_id for intent in settled}:
            invalidate_user(self._cache, user_id)  # a settled order changes what they hold
        users = await self._users.get_many(sorted({i.user_id for i in settled}))
        notices = [
            Notice(
                user_id=intent.user_id,
                chat_id=users[intent.user_id].chat_id,
                kind=NoticeKind.FILL,
                text=outcome_text(intent),
                dedup_key=f"settled:{intent.client_order_id}",
            )
            for intent in settled
            if intent.user_id in users
        ]
        await self._tell(notices)
        return settled

    async def _tell(self, notices: Sequence[Notice]) -> None:
        if notices:
            await self._outbox.enqueue(notices)
            self._outbox.wake()

    def _lease(self, intent: IntentRecord) -> AbstractAsyncContextManager[ExchangeClient]:
        return self._gateway.lease(intent.user_id, intent.exchange, intent.account_type)


def outcome_text(intent: IntentRecord) -> str:
    """How an order whose outcome was unknown ended, in the trader's words (HTML)."""
    venue = escape(title(intent.exchange))
    what = escape(f"{intent.side} {intent.qty} {intent.symbol}")
    head = f"Your order {what}, interrupted before {venue} answered,"
    if intent.status == status.FILLED:
        filled = escape(f"{intent.filled_qty or intent.qty} at {intent.avg_price}")
        return f"✅ {head} was filled: {filled}. /positions shows it."
    if intent.status == status.OPEN:
        return f"✅ {head} was placed and is open. /orders shows it."
    if intent.status == status.CANCELLED:
        return f"✖️ {head} was cancelled on {venue}; nothing more will happen to it."
    reasons = {"not sent": "it was never sent", "never reached the exchange": "it never got there"}
    reason = reasons.get(intent.error or "", f"{venue} refused it")
    return f"❌ {head} was not placed: {reason}. Nothing was traded."
