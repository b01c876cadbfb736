"""Named pauses at the moments a crash hurts most, for the crash soak only.

`TRADEWIND_PAUSE_POINTS=order.placed=0.4,outbox.sent=0.2` makes `await pause("order.placed")`
log `pause point order.placed` and sleep 0.4 s, so a test driver that watches the log can
kill the process inside that window (between the exchange's answer and the commit, say).
Unset, which it always is in production, a pause point costs one dict lookup. The variable
is read here and nowhere else, once per process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from functools import cache

__all__ = ["POINTS", "pause", "pauses"]

log = logging.getLogger(__name__)

ENV = "TRADEWIND_PAUSE_POINTS"
POINTS = (
    "registry.fetched",  # market registry sync: fetched, about to write the diff
    "order.placed",  # the exchange answered an order; the intent is not settled yet
    "promo.redeemed",  # a promo use taken and the licence extended, not committed
    "payment.credited",  # a payment recorded and the licence extended, not committed
    "broadcast.queued",  # a broadcast's deliveries queued, not committed
    "outbox.sent",  # Telegram accepted a message; the outbox row is not marked sent
)


@cache
def pauses() -> dict[str, float]:
    """Point → seconds, from the environment (malformed entries are ignored)."""
    found: dict[str, float] = {}
    for item in os.environ.get(ENV, "").split(","):
        name, _, seconds = item.strip().partition("=")
        try:
            found[name] = max(0.0, float(seconds or "0"))
        except ValueError:
            continue
    return {name: s for name, s in found.items() if name in POINTS and s > 0}


async def pause(point: str) -> None:
    """Sleep at `point` when the environment asks for it; otherwise return at once."""
    seconds = pauses().get(point)
    if seconds:
        log.warning("pause point %s (%.2f s)", point, seconds)
        await asyncio.sleep(seconds)
