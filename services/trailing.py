"""Trailing stops the bot keeps itself, for venues without a native one (Binance, OKX).

Stops are stored, and mirrored per exchange in a `TrailBook` loaded from the store on first
use; every scan interval, one bulk ticker read per exchange that has stops feeds one pass of
the book (never a request per position). Peaks that moved are written back with one
statement per symbol, so a restart resumes from the best price seen. A stop that fires
closes its position with one reduce-only market order, recorded as an intent first (its id
derives from the stop, so a crash and a retry never close twice), and the trader is told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from core.clock import Clock
from core.errors import DomainError
from core.exchange.errors import ExchangeError
from core.exchange.ids import client_order_id
from core.exchange.models import Market, OrderType, Position, PositionSide, Ticker
from core.lifecycle import Origin
from db.repositories.intents import NewIntent
from db.repositories.trailing import NewTrailing, TrailingRecord, TrailingRepository
from db.repositories.users import UserRepository
from services import notices
from services.accounts import AccountRef
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.market import MarketService
from services.trailing_book import Fired, TrailBook, TrailStop
from services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class TrailReport:
    stops: int
    moved: int
    fired: int
    pass_ms: float

    def __str__(self) -> str:
        return (
            f"trailing stops fired: {self.fired}, peaks moved on {self.moved} symbols "
            f"({self.stops} kept, pass {self.pass_ms:.2f} ms)"
        )


class TrailingService:
    """Keeps, moves and fires the bot's own trailing stops."""

    def __init__(
        self,
        repo: TrailingRepository,
        users: UserRepository,
        work: UnitOfWork,
        market: MarketService,
        gateway: ExchangeGateway,
        executor: OrderExecutor,
        clock: Clock,
    ) -> None:
        self._repo = repo
        self._users = users
        self._work = work
        self._market = market
        self._gateway = gateway
        self._executor = executor
        self._clock = clock
        self._books: dict[str, TrailBook] = {}
        self._records: dict[int, TrailingRecord] = {}
        self._loading = asyncio.Lock()
        self._loaded = False

    async def keep(
        self,
        account: AccountRef,
        market: Market,
        side: PositionSide,
        distance: Decimal,
        activation: Decimal | None,
        price: Decimal,
        entry: Decimal,
    ) -> TrailingRecord:
        """Trail the account's position on `market` (replacing an earlier trailing stop)."""
        book = await self._ready(account.exchange)
        long = side is PositionSide.LONG
        reached = activation is None or (price >= activation if long else price <= activation)
        new = NewTrailing(
            account.user_id, account.exchange, account.account_type, market.symbol, side.value,
            float(distance), None if activation is None else float(activation),
            float(price) if reached else None, float(entry),
        )  # fmt: skip
        record = await self._repo.keep(new, self._clock.now())
        book.add(_stop(record))
        self._records[record.id] = record
        return record

    async def current(self, account: AccountRef, symbol: str) -> TrailingRecord | None:
        return await self._repo.one(account.user_id, account.exchange, account.account_type, symbol)

    async def stop(self, account: AccountRef, symbol: str) -> bool:
        """Stop trailing the account's position on `symbol`; False if it was not trailed."""
        book = await self._ready(account.exchange)
        removed = await self._repo.remove(
            account.user_id, account.exchange, account.account_type, symbol
        )
        if removed is None:
            return False
        book.discard([removed.id])
        self._records.pop(removed.id, None)
        return True

    async def check(self) -> TrailReport:
        """One pass per exchange that has stops, on its bulk ticker snapshot (the job)."""
        await self._load_all()
        total = TrailReport(0, 0, 0, 0.0)
        for exchange, book in list(self._books.items()):
            if not book:
                continue
            try:
                tickers = await self._market.tickers(exchange)
            except ExchangeError as error:
                log.warning("trailing stops of %s wait: %s", exchange, error)
                continue
            report = await self.evaluate(exchange, tickers)
            total = TrailReport(
                total.stops + report.stops, total.moved + report.moved,
                total.fired + report.fired, total.pass_ms + report.pass_ms,
            )  # fmt: skip
        return total

    async def evaluate(self, exchange: str, tickers: Mapping[str, Ticker]) -> TrailReport:
        """Move and fire one exchange's stops against one snapshot."""
        book = await self._ready(exchange)
        start = time.perf_counter()
        prices = {symbol: float(t.last) for symbol, t in tickers.items() if t.last > 0}
        found = book.due(prices)
        pass_ms = (time.perf_counter() - start) * 1000
        await self._repo.move(exchange, found.moved, self._clock.now())
        for fired in found.fired:
            await self._fire(fired)
        return TrailReport(len(book), len(found.moved), len(found.fired), pass_ms)

    async def _fire(self, fired: Fired) -> None:
        record = self._records.pop(fired.id, None)
        if record is None:
            return
        client = self._gateway.account(record.user_id, record.exchange, record.account_type)
        held = []
        try:
            found = [p for p in await client.positions(fresh=True) if p.symbol == record.symbol]
            # Only the position it was set on: closed and opened again, it is another one.
            held = [p for p in found if p.side.value == record.side and _same(p, record)]
            if held:
                cid = client_order_id("trail", record.id, record.created_at.timestamp())
                await self._executor.record(
                    NewIntent(
                        cid, record.user_id, record.exchange, record.account_type,
                        record.symbol, held[0].side.closing_side.value, OrderType.MARKET.value,
                        held[0].qty, Origin.CLOSE.value, reduce_only=True,
                    )
                )  # fmt: skip
                await self._executor.place(client, cid)
        except ExchangeError as error:
            # Kept in the book and the store: the next pass tries again at its price.
            log.warning("trailing stop %s of user %s failed: %s", fired.id, record.user_id, error)
            self._records[fired.id] = record
            self._books[record.exchange].add(_stop(record))
            return
        except DomainError as error:  # the account is gone (keys removed): so is its stop
            log.info("trailing stop %s dropped: %s", fired.id, error)
        user = await self._users.get(record.user_id)
        async with self._work.begin() as work:
            await self._repo.delete([record.id], work.tx)
            if user is not None and held:
                await work.notify([notices.trailing_stop_hit(record, user.chat_id, fired.price)])

    async def _ready(self, exchange: str) -> TrailBook:
        await self._load_all()
        book = self._books.get(exchange)
        if book is None:
            book = self._books[exchange] = TrailBook()
        return book

    async def _load_all(self) -> None:
        """Every exchange's stops, loaded once (even if asked concurrently)."""
        if self._loaded:
            return
        async with self._loading:
            if self._loaded:
                return
            books: dict[str, TrailBook] = {}
            for exchange in await self._repo.exchanges():
                records = await self._repo.of_exchange(exchange)
                self._records.update((r.id, r) for r in records)
                books[exchange] = TrailBook.of(_stop(r) for r in records)
            self._books.update(books)
            self._loaded = True


def _same(position: Position, record: TrailingRecord) -> bool:
    """The position the stop was set on: its entry price is where it was then."""
    return abs(float(position.entry_price) - record.entry) <= 1e-9 * max(record.entry, 1.0)


def _stop(record: TrailingRecord) -> TrailStop:
    return TrailStop(
        record.id, record.symbol, record.side, record.distance, record.activation, record.peak
    )
