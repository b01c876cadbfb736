"""Broadcasts: one message from an admin to every reachable trader, through the outbox.

A broadcast is drafted (the admin sees a preview), then confirmed: one transaction queues a
delivery per reachable user (deduplicated per broadcast and user) and marks it `sending`
with the admin's progress message. The outbox's dispatcher sends; `progress()` reports how
far it got. Nothing here is kept only in memory, so a restart simply carries on: the
outbox never sends a delivery twice and the progress message is read back from the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.clock import Clock
from core.errors import InvalidInput, NotFound
from core.pause_points import pause
from db.repositories.broadcasts import BroadcastRecord, BroadcastRepository
from services import notices
from services.audit import AuditService
from services.outbox import MAX_TEXT, BroadcastProgress
from services.unit_of_work import UnitOfWork

USAGE = "Usage: /broadcast TEXT, or reply /broadcast to the message to send."


@dataclass(slots=True, frozen=True)
class BroadcastDraft:
    broadcast_id: int
    text: str  # HTML, as it will be sent
    recipients: int


@dataclass(slots=True, frozen=True)
class BroadcastReport:
    """Where a broadcast stands, and the admin message that shows it."""

    broadcast_id: int
    total: int
    sent: int
    blocked: int  # the user had blocked the bot
    failed: int  # given up after retries
    pending: int
    chat_id: int
    message_id: int

    @property
    def done(self) -> bool:
        return self.pending == 0


class BroadcastService:
    """Drafts, confirms, cancels and follows broadcasts; every admin step is audited."""

    def __init__(
        self,
        repo: BroadcastRepository,
        work: UnitOfWork,
        audit: AuditService,
        clock: Clock,
    ) -> None:
        self._repo = repo
        self._work = work
        self._outbox = work.outbox  # how far deliveries got
        self._audit = audit
        self._clock = clock
        self._shown: dict[int, tuple[int, ...]] = {}  # counts last shown, per broadcast

    async def draft(self, admin_id: int, text: str) -> BroadcastDraft:
        """Save the message as a draft and count who would receive it."""
        text = text.strip()
        if not text:
            raise InvalidInput(USAGE)
        if len(text) > MAX_TEXT:
            raise InvalidInput(
                f"That message is {len(text):,} characters; Telegram allows {MAX_TEXT:,}."
            )
        broadcast_id = await self._repo.create(admin_id, text, self._clock.now())
        await self._audit.record(admin_id, "broadcast.draft", f"broadcast:{broadcast_id}")
        return BroadcastDraft(broadcast_id, text, await self._repo.count_recipients())

    async def start(
        self, admin_id: int, broadcast_id: int, chat_id: int, message_id: int
    ) -> BroadcastReport:
        """Queue the draft to every reachable user in one transaction; report the start."""
        draft = await self._own_draft(admin_id, broadcast_id)
        async with self._work.begin() as work:
            recipients = await self._repo.recipients(work.tx)
            total = await work.notify(
                [notices.broadcast(r, broadcast_id, draft.text) for r in recipients]
            )
            if not await self._repo.start(broadcast_id, total, chat_id, message_id, work.tx):
                raise InvalidInput("This broadcast was already sent or cancelled.")
            await self._audit.record(
                admin_id,
                "broadcast.start",
                f"broadcast:{broadcast_id}",
                {"total": total},
                tx=work.tx,
            )
            await pause("broadcast.queued")
        return BroadcastReport(broadcast_id, total, 0, 0, 0, total, chat_id, message_id)

    async def cancel(self, admin_id: int, broadcast_id: int) -> None:
        await self._own_draft(admin_id, broadcast_id)
        if not await self._repo.cancel(broadcast_id, self._clock.now()):
            raise InvalidInput("This broadcast was already sent or cancelled.")
        await self._audit.record(admin_id, "broadcast.cancel", f"broadcast:{broadcast_id}")

    async def progress(self) -> list[BroadcastReport]:
        """Broadcasts in flight whose counts moved since last `shown` (all of them after a
        restart); once a finished one's final report is shown, `complete` it."""
        reports = []
        for record in await self._repo.sending():
            report = _report(record, await self._outbox.broadcast_progress(record.broadcast_id))
            if self._shown.get(record.broadcast_id) != _counts(report):
                reports.append(report)
        return reports

    def shown(self, report: BroadcastReport) -> None:
        """The admin now sees these counts: report again only when they move."""
        self._shown[report.broadcast_id] = _counts(report)

    async def complete(self, broadcast_id: int) -> None:
        """Mark a broadcast whose deliveries are all settled as done."""
        await self._repo.finish(broadcast_id, self._clock.now())
        self._shown.pop(broadcast_id, None)

    async def _own_draft(self, admin_id: int, broadcast_id: int) -> BroadcastRecord:
        record = await self._repo.get(broadcast_id)
        if record is None or record.admin_id != admin_id:
            raise NotFound("That broadcast is not yours or no longer exists.")
        if record.status != "draft":
            raise InvalidInput("This broadcast was already sent or cancelled.")
        return record


def _counts(report: BroadcastReport) -> tuple[int, ...]:
    return (report.sent, report.blocked, report.failed, report.pending)


def _report(record: BroadcastRecord, progress: BroadcastProgress) -> BroadcastReport:
    return BroadcastReport(
        broadcast_id=record.broadcast_id,
        total=record.total,
        sent=progress.sent,
        blocked=progress.dropped,
        failed=progress.dead,
        pending=progress.pending,
        chat_id=record.progress_chat_id or record.admin_id,
        message_id=record.progress_message_id or 0,
    )
