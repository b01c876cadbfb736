"""One write and the notices it causes, committed together.

Every service that changes state and tells traders about it follows the same order:
open the store's write transaction, write, queue the notices in that same transaction,
commit, wake the outbox's dispatcher, then run the after-commit hooks (stale caches such as
the admin analytics). A write that raises rolls back everything: no notice is queued, the
dispatcher is not woken and no hook runs, so nobody is told of a change that did not happen.

    async with self._work.begin(durable=True) as work:
        record = await self._licenses.extend(..., tx=work.tx)
        await work.notify([notices.licence_granted(user, ...)])
        work.changed()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from db.store import Store, Tx
from services.outbox import Notice, Outbox

Hook = Callable[[], None]


class Work:
    """One open write transaction: write with `tx`, `notify`, and say whether it `changed()`
    what the after-commit hooks watch."""

    __slots__ = ("_changed", "_outbox", "_queued", "tx")

    def __init__(self, tx: Tx, outbox: Outbox) -> None:
        self.tx = tx
        self._outbox = outbox
        self._queued = 0
        self._changed = False

    async def notify(self, notices: Sequence[Notice]) -> int:
        """Queue deliveries in this transaction; return how many rows were new (a repeated
        dedup key or a user who turned that kind off is not queued)."""
        if not notices:
            return 0
        queued = await self._outbox.enqueue(notices, self.tx)
        self._queued += queued
        return queued

    def changed(self) -> None:
        """This write changed what the after-commit hooks watch (licences, trades, fills)."""
        self._changed = True

    @property
    def queued(self) -> int:
        """Deliveries queued so far in this transaction."""
        return self._queued

    @property
    def has_changed(self) -> bool:
        return self._changed


class UnitOfWork:
    """Opens write transactions whose notices and hooks follow the commit, never precede it."""

    def __init__(self, store: Store, outbox: Outbox, on_change: Sequence[Hook] = ()) -> None:
        """`on_change` runs after a commit whose work said `changed()`, in order."""
        self._store = store
        self._outbox = outbox
        self._on_change = tuple(on_change)

    @property
    def outbox(self) -> Outbox:
        """The outbox notices go to, for reading how far deliveries got."""
        return self._outbox

    @asynccontextmanager
    async def begin(self, *, durable: bool = False) -> AsyncIterator[Work]:
        """One write transaction (`durable=True` for money and licences: synced on commit).

        On a clean exit it commits, then wakes the dispatcher if notices were queued, then
        runs the hooks if the work `changed()`; an exception rolls back and skips both.
        """
        async with self._store.transaction(durable=durable) as tx:
            work = Work(tx, self._outbox)
            yield work
        if work.queued:
            self._outbox.wake()
        if work.has_changed:
            for hook in self._on_change:
                hook()
