"""Balance snapshots: the latest equity of every account whose balance was loaded or pushed,
kept in memory and written by one job run as a single upsert in one transaction.

A balance read is the hottest account read there is (every /balance, order card, cache
warming round and stream update), so noting it costs a dict assignment and nothing else;
the table gets at most one row per account and UTC hour (`db.repositories.equity`). A
failed write puts what it took back, so a locked or full database loses no snapshot that a
later run can still write; rows older than the retention are pruned once an hour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.clock import Clock
from core.exchange.models import Balance
from db.repositories.equity import EquityRepository, EquitySnapshot

AccountKey = tuple[int, str, str]  # user id, exchange, account type
DEFAULT_RETENTION_DAYS = 400  # /equity all draws up to 730 days; a year and a bit by default
PRUNE_EVERY = timedelta(hours=1)


@dataclass(slots=True, frozen=True)
class EquityChange:
    """One account's equity at the close of a day and at the close of the day before."""

    exchange: str
    account_type: str
    close: Decimal
    close_at: datetime  # when that balance was read
    before: Decimal | None  # None: no balance recorded by the day before's close
    recorded_that_day: bool  # False: the close is an older read (nothing seen that day)

    @property
    def change(self) -> Decimal | None:
        return None if self.before is None else self.close - self.before


@dataclass(slots=True, frozen=True)
class FlushReport:
    """One flush's phases (ms) and counts, for the job's log line."""

    written: int
    take_ms: float
    write_ms: float
    prune_ms: float = 0.0
    pruned: int = 0

    def __str__(self) -> str:
        pruned = f", prune {self.prune_ms:.1f} ms ({self.pruned} old rows)" if self.pruned else ""
        return (
            f"equity snapshots: take {self.take_ms:.2f} ms, write {self.write_ms:.1f} ms "
            f"({self.written} accounts, one statement){pruned}"
        )


class EquityRecorder:
    """Notes each account's latest equity; `flush` writes them all at once."""

    def __init__(
        self,
        repo: EquityRepository,
        clock: Clock,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self._repo = repo
        self._clock = clock
        self.retention = timedelta(days=retention_days)
        self._pending: dict[AccountKey, EquitySnapshot] = {}
        self._pruned_at: datetime | None = None

    def observe(self, user_id: int, exchange: str, account_type: str, balance: Balance) -> None:
        """A balance was loaded or pushed: keep its equity until the next flush."""
        self.note(user_id, exchange, account_type, balance.equity)

    def note(self, user_id: int, exchange: str, account_type: str, equity: Decimal) -> None:
        key = (user_id, exchange, account_type)
        now = self._clock.now()
        self._pending[key] = EquitySnapshot(user_id, exchange, account_type, equity, now)

    @property
    def pending(self) -> int:
        """Accounts seen since the last flush."""
        return len(self._pending)

    def waiting(self, user_id: int) -> bool:
        """Whether one of the trader's balances is noted but not written yet."""
        return any(key[0] == user_id for key in self._pending)

    async def flush(self) -> FlushReport | None:
        """Write every pending snapshot in one transaction (one executemany); prune rows past
        the retention at most once an hour. None when there was nothing to do."""
        start = time.perf_counter()
        taken, self._pending = self._pending, {}
        took = time.perf_counter()
        written = 0
        if taken:
            try:
                await self._repo.upsert_many(list(taken.values()))
            except BaseException:
                # A later observation of the same account, made meanwhile, wins.
                for key, snapshot in taken.items():
                    self._pending.setdefault(key, snapshot)
                raise
            written = len(taken)
        wrote = time.perf_counter()
        pruned = await self._prune_if_due()
        done = time.perf_counter()
        if not written and not pruned:
            return None
        return FlushReport(
            written=written,
            take_ms=(took - start) * 1000,
            write_ms=(wrote - took) * 1000,
            prune_ms=(done - wrote) * 1000,
            pruned=pruned,
        )

    async def _prune_if_due(self) -> int:
        now = self._clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = now
        return await self._repo.prune(now - self.retention)
