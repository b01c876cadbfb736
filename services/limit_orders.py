"""Limit orders from a card: their terms before Confirm, and what became of them after.

A limit that rests is tracked in `pending_limit_orders` the moment it is placed, due at the
owner's `limit_order_ttl_min` from then, so the expiry job knows it even if the bot
restarts before the next position sync (which tracks it too; the first record stands).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from core.clock import Clock
from core.exchange.models import Market, PositionSide
from core.lifecycle import IntentStatus, Origin
from db.repositories.intents import IntentRecord
from db.repositories.pending_orders import PendingOrder, PendingOrderRepository
from db.repositories.strategy import StrategyRecord
from services.amounts import TAKER_FEE
from services.cards import LimitTerms, Placement, placement
from services.limit_price import limit_level, parse_limit_price, refuse_taking
from services.strategy import StrategyService

MAKER_FEE = Decimal("0.0002")  # what a resting order pays on the venues Tradewind trades
POST_ONLY_CANCELLED = (
    "Post-only: the exchange cancelled it because it would have filled at once as taker; "
    "nothing was filled. Price it further from the market, or /set post_only off."
)


def limit_terms(
    side: PositionSide, text: str, last: Decimal, market: Market, settings: StrategyRecord
) -> LimitTerms:
    """The terms of a limit at `text` (`64000`, `64k`, `-1%`), refused when they make no sense."""
    level = limit_level(side, parse_limit_price(text), last, market)
    if level.takes and settings.post_only:
        raise refuse_taking(side, level)
    return LimitTerms(
        price=level.price,
        last=last,
        distance_pct=level.distance_pct,
        takes=level.takes,
        post_only=settings.post_only,
        ttl_min=settings.limit_order_ttl_min,
    )


def opening_fee_estimate(notional: Decimal, limit: LimitTerms | None) -> Decimal:
    """Taker at market (or for a limit that takes at once), maker for one that rests."""
    rate = TAKER_FEE if limit is None or limit.takes else MAKER_FEE
    return (notional * rate).quantize(Decimal("1e-8"))


class RestingOrders:
    """Tracks the limits a card placed, and words what became of them."""

    def __init__(
        self, pending: PendingOrderRepository, strategy: StrategyService, clock: Clock
    ) -> None:
        self._pending = pending
        self._strategy = strategy
        self._clock = clock

    async def placed(self, intent: IntentRecord, *, track: bool = True) -> Placement:
        """The outcome of a placed limit; one resting on the book is tracked for expiry."""
        done = placement(intent)
        if intent.status == IntentStatus.CANCELLED and not intent.filled_qty and intent.post_only:
            return replace(done, error=POST_ONLY_CANCELLED)
        if intent.status == IntentStatus.REJECTED:
            return replace(done, error=intent.error or "refused by the exchange")
        if intent.status != IntentStatus.OPEN or intent.price is None:
            return done
        settings = await self._strategy.settings(intent.user_id)
        since = self._clock.now() if track else intent.updated_at
        expires = since + timedelta(minutes=settings.limit_order_ttl_min)
        if track:
            await self._pending.track_many([_pending(intent, since, expires)])
        return replace(done, resting=True, expires_at=expires)


def _pending(intent: IntentRecord, since: datetime, expires: datetime) -> PendingOrder:
    assert intent.price is not None and intent.exchange_order_id is not None
    return PendingOrder(
        user_id=intent.user_id,
        exchange=intent.exchange,
        account_type=intent.account_type,
        symbol=intent.symbol,
        side=intent.side,
        client_order_id=intent.client_order_id,
        exchange_order_id=intent.exchange_order_id,
        price=intent.price,
        qty=intent.qty,
        created_at=since,
        expires_at=expires,
        strategy=Origin.AUTO if intent.origin == Origin.AUTO else Origin.MANUAL,
    )
