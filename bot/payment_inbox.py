"""The getUpdates request, writing successful payments down before PTB sees the batch.

PTB confirms a batch of updates with its next getUpdates, which it sends as soon as the batch
is queued, long before the handlers commit. A crash in between loses the batch for good:
Telegram never sends a confirmed update again. For a successful payment that means Stars taken
and no licence. So every payment in a batch is written to `payment_inbox` here, before this
call returns (and so before the next one can confirm it); crediting removes it, and the next
start credits whatever a crash left there. Other updates stay at most once (a lost button
press can be pressed again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram.request import BaseRequest, RequestData

from db.repositories.payments import ReceivedPayment

log = logging.getLogger(__name__)

Keep = Callable[[Sequence[ReceivedPayment]], Awaitable[None]]


class PaymentInbox(BaseRequest):
    """Wraps the request that carries getUpdates; `keep` is set once the services exist."""

    __slots__ = ("inner", "keep")

    def __init__(self, inner: BaseRequest) -> None:
        self.inner = inner
        self.keep: Keep | None = None

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        code, payload = await self.inner.do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if self.keep is not None and code == 200 and url.rstrip("/").endswith("/getUpdates"):
            found = payments_in(payload)
            if found:
                # A failure here fails this getUpdates: PTB asks again with the same offset,
                # so the batch is not confirmed until its payments are written down.
                await self.keep(found)
        return code, payload


def payments_in(payload: bytes) -> list[ReceivedPayment]:
    """The successful payments in a getUpdates answer."""
    try:
        updates = json.loads(payload).get("result") or []
    except (ValueError, AttributeError):
        return []
    found = []
    for update in updates if isinstance(updates, list) else []:
        message = update.get("message") if isinstance(update, dict) else None
        paid = message.get("successful_payment") if isinstance(message, dict) else None
        sender = message.get("from") if isinstance(message, dict) else None
        if not isinstance(paid, dict) or not isinstance(sender, dict):
            continue
        try:
            found.append(
                ReceivedPayment(
                    user_id=int(sender["id"]),
                    currency=str(paid["currency"]),
                    amount=int(paid["total_amount"]),
                    payload=str(paid["invoice_payload"]),
                    telegram_charge_id=str(paid["telegram_payment_charge_id"]),
                    provider_charge_id=str(paid.get("provider_payment_charge_id") or "") or None,
                )
            )
        except (KeyError, TypeError, ValueError):
            log.warning("a successful payment in an unexpected shape was not written down")
    return found
