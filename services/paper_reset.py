"""Starting a paper account over: every position and order gone, the starting balance back.

Only the paper exchange can be reset; a live account's positions are real money and are
closed on the exchange, one by one, by the trader. A reset goes through a confirmation
card; the card names the reset it was drawn after, so a second press of the same card (or
a card drawn before another reset) resets nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from core.clock import Clock
from core.errors import Forbidden, InvalidInput
from core.lifecycle import LimitStatus
from core.paper.exchange import PaperExchange
from core.paper.ledger import INITIAL_BALANCE, AccountState
from db.repositories.audit import AuditRepository
from db.repositories.paper import PaperRepository
from db.repositories.pending_orders import PendingOrderRepository
from db.repositories.positions import PositionRepository
from db.store import Store
from services.audit import AuditService
from services.exchanges import ExchangeGateway

PAPER = "paper"
USED_CARD = "This card was used already, or the account was reset since; send /paper_reset again."


@dataclass(slots=True, frozen=True)
class ResetPreview:
    """What a reset would do, for the confirmation card."""

    credential_id: int
    positions: int
    orders: int
    starting_balance: Decimal
    mark: int  # the last reset (ms, 0 for none) the card was drawn after


@dataclass(slots=True, frozen=True)
class ResetDone:
    positions: int
    orders: int
    balance: Decimal


class PaperResets:
    """Preview and perform resets of traders' paper accounts; every reset is audited."""

    def __init__(self, store: Store, gateway: ExchangeGateway, clock: Clock) -> None:
        self._ledger = PaperRepository(store)
        self._positions = PositionRepository(store)
        self._pending = PendingOrderRepository(store)
        self._audit = AuditService(AuditRepository(store), clock)
        self._gateway = gateway
        self._lock = asyncio.Lock()  # presses run concurrently; a card resets once

    async def preview(self, user_id: int, exchange: str, label: str, cid: int) -> ResetPreview:
        """What resetting the active account (`exchange`, shown as `label`) would do."""
        if exchange != PAPER:
            raise Forbidden(
                f"Only a paper account can be reset; your active account is {label}, where "
                "positions are real. Switch to your paper account with /keys first."
            )
        state = await self._ledger.load(user_id)
        if state is None:
            return ResetPreview(cid, 0, 0, INITIAL_BALANCE, 0)
        return ResetPreview(
            cid, len(state.positions), len(state.open_orders), INITIAL_BALANCE, _mark(state)
        )

    async def reset(self, user_id: int, exchange: str, cid: int, mark: int) -> ResetDone:
        """Reset the paper account the card was drawn for, if nothing reset it since."""
        if exchange != PAPER:
            raise Forbidden("Only a paper account can be reset.")
        async with self._lock:
            state = await self._ledger.load(user_id)
            if (_mark(state) if state else 0) != mark:
                raise InvalidInput(USED_CARD)
            try:
                async with self._gateway.lease(user_id, PAPER, PAPER) as client:
                    if not isinstance(client, PaperExchange):  # the pool hands paper its own
                        raise Forbidden("Only a paper account can be reset.")
                    balance = await client.reset_account()
            finally:  # everything cached about the account may be gone now
                self._gateway.account(user_id, PAPER, PAPER).forget()
            await self._forget_tracking(user_id)
        done = ResetDone(
            len(state.positions) if state else 0,
            len(state.open_orders) if state else 0,
            balance.equity,
        )
        details = {"positions": done.positions, "orders": done.orders, "balance": done.balance}
        await self._audit.record(user_id, "paper_reset", f"account:{cid}", details)
        return done

    async def _forget_tracking(self, user_id: int) -> None:
        """What Tradewind tracked of the old paper positions and orders goes with them, so
        that position sync does not announce the reset as closes, one by one."""
        tracked = [p for p in await self._positions.for_user(user_id) if p.exchange == PAPER]
        await self._positions.delete_many(tracked)
        pending = [o for o in await self._pending.open_for_user(user_id) if o.exchange == PAPER]
        await self._pending.finish_many([(o.order_row_id, LimitStatus.CLOSED) for o in pending])


def _mark(state: AccountState) -> int:
    reset_at = state.account.reset_at
    return int(reset_at.timestamp() * 1000) if reset_at is not None else 0
