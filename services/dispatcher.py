"""The dispatcher: one background task that drains the outbox within Telegram's limits.

It sleeps until the outbox is woken or the next retry falls due (never a polling loop),
claims the most urgent rows (`pending → sending`), merges what one chat has waiting into a
single digest, and sends through a `MessageSender` under a `FloodWindow` (overall and
per-chat limits). Outcomes are written back in coalesced batches. On start, rows a crashed
process left in `sending` go back to `pending`: each is sent at most once more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from core.clock import Clock
from core.flood import FloodWindow
from core.metrics import Metrics
from core.pause_points import pause
from db.repositories.notifications import Delivery, NotificationRepository, Retry
from services.outbox import Outbox
from services.sender import MessageSender, RetryLater, SendError, Unreachable

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_BUTTONS = 100  # Telegram's limit for one inline keyboard
DIGEST_SEPARATOR = "\n\n"
DEPTH_EVERY_S = 5.0  # how stale the queue depth gauge may get while sending flat out


@dataclass(slots=True, frozen=True)
class DispatchPolicy:
    """Limits and retry schedule; the defaults are Telegram's free-tier limits."""

    overall_rate: int = 30  # messages per window, all chats together
    per_chat_rate: int = 1  # messages per window to one chat
    window_s: float = 1.0
    max_attempts: int = 5  # a row is dead after this many failed tries
    backoff_s: float = 5.0  # first retry delay, doubled on each further failure
    max_backoff_s: float = 900.0
    batch: int = 0  # rows claimed at once; 0: two windows' worth of messages
    concurrency: int = 64  # sends awaiting their reply at once

    @property
    def claim_size(self) -> int:
        return self.batch or max(20, 2 * self.overall_rate)


@dataclass(slots=True)
class DispatchStats:
    sent: int = 0  # messages delivered (a digest counts once)
    delivered_rows: int = 0
    merged_rows: int = 0  # rows that rode along in a digest
    failed: int = 0
    dead: int = 0
    dropped: int = 0
    retry_after: int = 0
    recovered: int = 0


@dataclass(slots=True)
class _Message:
    chat_id: int
    rows: list[Delivery] = field(default_factory=list)

    @property
    def text(self) -> str:
        return DIGEST_SEPARATOR.join(row.text for row in self.rows)

    @property
    def silent(self) -> bool:
        return all(row.silent for row in self.rows)

    @property
    def buttons(self) -> tuple[tuple[tuple[str, str], ...], ...]:
        return tuple(button_row for row in self.rows for button_row in row.buttons)


class Dispatcher:
    """Send the outbox in the background; `start()` once, `stop()` on shutdown."""

    def __init__(
        self,
        outbox: Outbox,
        sender: MessageSender,
        clock: Clock,
        metrics: Metrics,
        policy: DispatchPolicy | None = None,
    ) -> None:
        self._repo: NotificationRepository = outbox.repository
        self._outbox, self._sender = outbox, sender
        self._clock, self._metrics = clock, metrics
        self.policy = policy or DispatchPolicy()
        policy = self.policy
        self.flood = FloodWindow(
            clock, policy.overall_rate, policy.per_chat_rate, policy.window_s, policy.concurrency
        )
        self.stats = DispatchStats()
        self.depth: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._sent_ids: list[int] = []
        self._flush_lock = asyncio.Lock()
        self._stopping = False
        self._depth_at = float("-inf")

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Return interrupted rows to the queue, then run in the background."""
        if self._task is not None:
            raise RuntimeError("dispatcher already started")
        self.stats.recovered = await self._repo.recover()
        if self.stats.recovered:
            log.warning(
                "outbox: %d deliveries interrupted mid-send re-queued", self.stats.recovered
            )
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming, let sends in flight finish (up to `grace_s`), then end; idempotent.

        Claimed rows not yet sent go back to the queue; a send still in flight after the
        grace period stays `sending` and is re-queued by the next start.
        """
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._sends and grace_s > 0:
            await asyncio.wait(set(self._sends), timeout=grace_s)
        sends = set(self._sends)
        for send in sends:
            send.cancel()
        await asyncio.gather(*sends, return_exceptions=True)

    # -- the loop -------------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._cycle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox dispatcher cycle failed; retrying shortly")
                await asyncio.sleep(1.0)

    async def _cycle(self) -> None:
        self._outbox.take_wakeup()
        pause = self.flood.paused_for()
        if pause > 0:
            await asyncio.sleep(pause)
        if self._clock.monotonic() - self._depth_at >= DEPTH_EVERY_S:
            self.depth = await self._repo.depth()
            self._depth_at = self._clock.monotonic()
        rows = await self._repo.claim(self._clock.now(), self.policy.claim_size)
        if rows:
            await self._dispatch(rows)
            return
        self.depth = await self._repo.depth()
        self._depth_at = self._clock.monotonic()
        due = await self._repo.next_due()
        wait = None if due is None else max(0.0, (due - self._clock.now()).total_seconds())
        if wait is None or wait > 0:
            await self._outbox.wait_for_work(wait)

    async def _dispatch(self, rows: Sequence[Delivery]) -> None:
        """Merge per chat, hold back chats sent to a moment ago, send the rest in order."""
        messages, later = self._plan(rows)
        if later:
            now = self._clock.now()
            await self._repo.release_each(
                (row_id, now + timedelta(seconds=delay)) for row_id, delay in later
            )
        for launched, message in enumerate(messages):
            try:
                await self.flood.acquire(message.chat_id)
            except asyncio.CancelledError:  # stopping: what was not sent goes back unharmed
                ids = [row.id for m in messages[launched:] for row in m.rows]
                await self._repo.release(ids, self._clock.now())
                raise
            task = asyncio.create_task(self._send(message))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _plan(self, rows: Sequence[Delivery]) -> tuple[list[_Message], list[tuple[int, float]]]:
        """One message per chat (a digest when several rows wait); the rest goes back."""
        by_chat: dict[int, _Message] = {}
        later: list[tuple[int, float]] = []
        for row in rows:  # already lane first
            ready_in = self.flood.chat_ready_in(row.chat_id)
            if ready_in > 0:
                later.append((row.id, ready_in))
                continue
            message = by_chat.get(row.chat_id)
            if message is None:
                by_chat[row.chat_id] = _Message(row.chat_id, [row])
            elif _fits(message, row):
                message.rows.append(row)
            else:
                later.append((row.id, self.policy.window_s))
        return list(by_chat.values()), later

    async def _send(self, message: _Message) -> None:
        try:
            await self._sender.send(
                message.chat_id, message.text, silent=message.silent, buttons=message.buttons
            )
        except RetryLater as err:
            self.flood.release(message.chat_id)
            await self._retry_after(message, err)
        except Unreachable as err:
            self.flood.release(message.chat_id)
            await self._unreachable(message, err)
        except SendError as err:
            self.flood.release(message.chat_id)
            await self._failed(message, str(err))
        except asyncio.CancelledError:
            self.flood.release(message.chat_id)
            raise
        except Exception as err:  # a bug in a sender must not kill the dispatcher
            self.flood.release(message.chat_id)
            log.exception("outbox: sender raised unexpectedly")
            await self._failed(message, f"{type(err).__name__}: {err}")
        else:
            self.flood.release(message.chat_id)
            await pause("outbox.sent")
            await self._delivered(message)

    # -- outcomes -------------------------------------------------------------------------------
    async def _delivered(self, message: _Message) -> None:
        self.stats.sent += 1
        self.stats.delivered_rows += len(message.rows)
        self.stats.merged_rows += len(message.rows) - 1
        for row in message.rows:
            self._metrics.messages_sent.labels(row.kind).inc()
        self._metrics.notifications.labels("sent").inc(len(message.rows))
        self._sent_ids.extend(row.id for row in message.rows)
        # Coalesce: whoever holds the lock writes everything delivered meanwhile in one go.
        async with self._flush_lock:
            ids, self._sent_ids = self._sent_ids, []
            if ids:
                await self._repo.mark_sent(ids, self._clock.now())

    async def _retry_after(self, message: _Message, err: RetryLater) -> None:
        self.stats.retry_after += 1
        self._metrics.notifications.labels("retry_after").inc()
        self.flood.pause(err.retry_after)
        log.warning("outbox: flood control, pausing all sends for %.1f s", err.retry_after)
        at = self._clock.now() + timedelta(seconds=err.retry_after)
        await self._repo.release([row.id for row in message.rows], at)
        self._outbox.wake()

    async def _unreachable(self, message: _Message, err: Unreachable) -> None:
        users = {row.user_id for row in message.rows}
        dropped = await self._repo.drop_users(users, str(err))
        self.stats.dropped += dropped
        self._metrics.notifications.labels("dropped").inc(dropped)
        log.info("outbox: %d user(s) blocked the bot; %d deliveries dropped", len(users), dropped)

    async def _failed(self, message: _Message, error: str) -> None:
        now, policy = self._clock.now(), self.policy
        retries = []
        for row in message.rows:
            tries = row.attempts + 1
            dead = tries >= policy.max_attempts
            delay = min(policy.max_backoff_s, policy.backoff_s * 2 ** (tries - 1))
            retries.append(Retry(row.id, error[:500], now + timedelta(seconds=delay), dead))
        await self._repo.retry(retries)
        dead_count = sum(r.dead for r in retries)
        self.stats.failed += len(retries) - dead_count
        self.stats.dead += dead_count
        self._metrics.notifications.labels("failed").inc(len(retries) - dead_count)
        self._metrics.notifications.labels("dead").inc(dead_count)
        if dead_count:
            log.warning("outbox: %d deliveries dead: %s", dead_count, error)
        self._outbox.wake()  # the loop recomputes when the next retry falls due


def _fits(message: _Message, row: Delivery) -> bool:
    """Whether `row` can join `message` and keep it within Telegram's size limits."""
    text_len = sum(len(r.text) for r in message.rows) + len(DIGEST_SEPARATOR) * len(message.rows)
    buttons = sum(len(button_row) for r in message.rows for button_row in r.buttons)
    return (
        text_len + len(row.text) <= MAX_TEXT
        and buttons + sum(len(button_row) for button_row in row.buttons) <= MAX_BUTTONS
    )
