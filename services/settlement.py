"""Settling orders whose outcome is unknown, and telling their traders how they ended.

A crash between recording an order and hearing back from the exchange, or a lookup that
failed, leaves an intent `pending`, `sent` or `unknown`. At start-up everything an earlier
run left is looked up at once (nobody else will), then a job takes what has been unknown
for 30 s. Each trader gets one notice per settled order through the outbox, and a close that
filled is logged as a trade (the Confirm that would have logged it never heard the answer).
"""

from __future__ import annotations

from db.repositories.intents import IntentRecord
from db.repositories.users import UserRepository
from services import notices
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.trading import TradingService
from services.unit_of_work import UnitOfWork


class OrderSettlement:
    """Looks up orders left unknown and tells each trader the outcome."""

    def __init__(
        self,
        *,
        executor: OrderExecutor,
        gateway: ExchangeGateway,
        users: UserRepository,
        work: UnitOfWork,
        trading: TradingService,
    ) -> None:
        self._executor = executor
        self._trading = trading
        self._gateway = gateway
        self._users = users
        self._work = work

    async def settle(self, older_than_s: float = 30) -> list[IntentRecord]:
        """Settle what is left unknown (all of it from before this start); return it."""
        settled = await self._executor.settle_unresolved(self._gateway.lease_for, older_than_s)
        if not settled:
            return settled
        for account in {(i.user_id, i.exchange, i.account_type) for i in settled}:
            self._gateway.account(*account).forget()  # a settled order changes what they hold
        for intent in settled:  # a close nobody logged when it filled goes to the ledger now
            await self._trading.log_settled_close(intent)
        users = await self._users.get_many(sorted({i.user_id for i in settled}))
        told = [
            notices.order_settled(intent, users[intent.user_id].chat_id)
            for intent in settled
            if intent.user_id in users
        ]
        async with self._work.begin() as work:
            await work.notify(told)
        return settled
