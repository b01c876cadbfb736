"""REST catch-up: the executions and closed PnL of accounts, read since each one's cursor,
fed to the fill ledger.

A job runs it for the accounts with open positions or recent orders; at start-up it runs
for every connected account, so what filled while Tradewind was down is recorded (exactly
once: the ledger ignores what it holds). Position sync runs it for an account whose
position it saw close, so the close is logged from its fills, not guessed. Paper settle
runs it for the paper accounts the engine moved.

An account the ledger has never looked at gets a cursor at its earliest recent activity
(a stored position's opening, a recent order), never earlier: the history before
Tradewind watched it is not imported.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.clock import Clock
from core.exchange.errors import ExchangeError
from core.exchange.models import ClosedPnl, Fill
from core.paper.book import EXCHANGE as PAPER
from core.paper.engine import EngineReport
from db.repositories.fills import AccountKey, FillRepository
from db.repositories.intents import IntentRepository
from db.repositories.positions import PositionRepository
from services.exchanges import ExchangeGateway
from services.fill_ledger import FillLedger

log = logging.getLogger(__name__)

OVERLAP = timedelta(seconds=5)  # re-read before the cursor: a fill pushed out of order
RECENT = timedelta(hours=1)  # an account with an order this recent is caught up
FIRST_LOOK = timedelta(minutes=1)  # before an account's first known activity
_Read = tuple[list[Fill], list[ClosedPnl], bool]  # fills, closed PnL, all of them read


@dataclass(slots=True)
class CaughtUp:
    """One catch-up pass: accounts read, what was new, what failed, and its phases."""

    accounts: int = 0
    fills: int = 0
    closed: int = 0
    trades: int = 0
    ok: set[AccountKey] = field(default_factory=set)
    failures: int = 0
    incomplete: int = 0  # accounts with more history than one pass reads
    read_ms: float = 0.0
    record_ms: float = 0.0

    def __str__(self) -> str:
        return (
            f"read {self.read_ms:.0f} ms, record {self.record_ms:.0f} ms — "
            f"{self.accounts} accounts: {self.fills} new fills, {self.closed} closed-PnL "
            f"records, {self.trades} trades logged, {self.failures} unreachable"
            + (f", {self.incomplete} with more to read" if self.incomplete else "")
        )


@dataclass(slots=True)
class LedgerTotals:
    """Running totals for the metrics endpoint."""

    passes: int = 0
    fills: int = 0
    trades: int = 0
    failures: int = 0
    last_ms: float = 0.0


class FillCatchUp:
    """Reads accounts' executions and closed PnL since their cursors into the ledger."""

    def __init__(
        self,
        *,
        ledger: FillLedger,
        fills: FillRepository,
        positions: PositionRepository,
        intents: IntentRepository,
        gateway: ExchangeGateway,
        clock: Clock,
        concurrency: int = 20,
        overlap: timedelta = OVERLAP,
    ) -> None:
        self._ledger = ledger
        self._fills = fills
        self._positions = positions
        self._intents = intents
        self._gateway = gateway
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._overlap = overlap
        self.totals = LedgerTotals()

    async def catch_up_active(self) -> CaughtUp:
        """The accounts with open positions, resting limit orders, or orders in the last
        hour."""
        now = self._clock.now()
        stored = {row.account for row in await self._positions.all()}
        recent = await self._positions.recent_accounts(now - RECENT)
        resting = set(await self._fills.resting_accounts())
        return await self.catch_up(sorted(stored | recent | resting))

    async def catch_up_everyone(self) -> CaughtUp:
        """Every connected account and every account with a stored position (start-up)."""
        connected = set(await self._fills.connected_accounts())
        stored = {row.account for row in await self._positions.all()}
        return await self.catch_up(sorted(connected | stored))

    async def record_paper_events(self, report: EngineReport) -> int:
        """Paper settle moved these accounts: record their fills; return the trades logged."""
        users = sorted({user_id for user_id, _, _ in report.affected})
        done = await self.catch_up([(user_id, PAPER, PAPER) for user_id in users])
        return done.trades

    async def catch_up(
        self, accounts: Sequence[AccountKey], since: datetime | None = None
    ) -> CaughtUp:
        """Read and record each account's executions since its cursor, all at once.

        `since` reads from an earlier moment instead (a stream that dropped at that time
        and has pushed newer fills since, which moved the cursor past the gap).
        """
        done = CaughtUp(accounts=len(accounts))
        if not accounts:
            return done
        started = time.perf_counter()
        cursors = await self._cursors(accounts)
        if since is not None:
            cursors = {a: min(at, since) for a, at in cursors.items()}
        reads = await asyncio.gather(*(self._read(a, cursors[a]) for a in accounts))
        done.read_ms = (time.perf_counter() - started) * 1000
        recorded = time.perf_counter()
        for account, read in zip(accounts, reads, strict=True):
            if read is None:
                done.failures += 1
                continue
            fills, closed, complete = read
            outcome = await self._ledger.record(*account, fills, closed)
            done.fills += outcome.fills
            done.closed += outcome.closed
            done.trades += len(outcome.trades)
            done.incomplete += not complete
            done.ok.add(account)
        done.record_ms = (time.perf_counter() - recorded) * 1000
        self._count(done)
        return done

    async def _cursors(self, accounts: Collection[AccountKey]) -> dict[AccountKey, datetime]:
        found = {a: await self._fills.cursor(a) for a in accounts}
        fresh = [a for a, at in found.items() if at is None]
        starts = {a: await self._first_look(a) for a in fresh}
        for at in set(starts.values()):
            await self._fills.start_cursors([a for a in fresh if starts[a] == at], at)
        return {a: (found[a] or starts[a]) - self._overlap for a in accounts}

    async def _first_look(self, account: AccountKey) -> datetime:
        """An unwatched account's start: its earliest stored position or recent order."""
        now = self._clock.now()
        moments = [
            row.opened_at for row in await self._positions.for_user(account[0])
            if row.account == account
        ] + [
            i.created_at for i in await self._intents.for_user(account[0])
            if (i.user_id, i.exchange, i.account_type) == account and i.created_at >= now - RECENT
        ]  # fmt: skip
        return min([now, *moments]) - FIRST_LOOK

    async def _read(self, account: AccountKey, since: datetime) -> _Read | None:
        try:
            async with self._slots, self._gateway.lease(*account) as client:
                fills = await client.fetch_fills(since)
                closed = await client.fetch_closed_pnl(since)
        except ExchangeError as error:
            log.warning("fill catch-up: %s unreachable: %s", account, error.message)
            return None
        return list(fills), list(closed), fills.complete and closed.complete

    def _count(self, done: CaughtUp) -> None:
        totals = self.totals
        totals.passes += 1
        totals.fills += done.fills
        totals.trades += done.trades
        totals.failures += done.failures
        totals.last_ms = done.read_ms + done.record_ms

    def gauges(self) -> dict[str, float]:
        """The totals as the metrics endpoint shows them."""
        t = self.totals
        return {
            "passes": t.passes,
            "fills": t.fills,
            "trades": t.trades,
            "failures": t.failures,
            "last_pass_ms": t.last_ms,
        }
