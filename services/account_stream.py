"""One streamed account: its feed kept connected, its pushes applied.

Each connection goes: open the feed → subscriptions confirmed → the account's state read
once by REST (pushes heard meanwhile are applied again on top) → the gap closed by the
injected catch-up (executions since the last recorded one) → pushes applied until the feed
is lost → back off → again. Every connection is a gap: what happened before it was heard
only by the catch-up.

Pushed orders, positions and balance replace the account's cached values (and are pushed
again every `REPUSH_S`, so the cache never expires into a REST read while the stream
lives); pushed executions go to the fill sink. An order that reports more filled than the
executions heard for it means an execution push was missed: after a grace the account is
caught up. A frame that could not be read is a gap too.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from core.exchange.errors import AuthFailed, ExchangeError
from core.exchange.feed import AccountFeed, GapHandler, PositionUpdate
from core.exchange.models import ZERO, Balance, Fill, Order, OrderStatus, Position, PositionSide
from core.metrics import Metrics
from core.ratelimit import TokenBucket
from services.account_client import AccountClient

log = logging.getLogger(__name__)

# Pushed values are put back this often: well inside the shortest account cache TTL minus
# the warmer's lead, and soon after a job drops them (a settled order forgets the account).
REPUSH_S = 1.0
GAP_GRACE_S = 1.0  # an order's executions may arrive a little after the order itself

Key = tuple[int, str, str]  # (user id, exchange, account type)
CatchUp = Callable[[int, str, str], Awaitable[None]]
MarkReader = Callable[[str, str], Decimal | None]  # (exchange, symbol) → the last price known


class FillSink(Protocol):
    """Where executions are recorded (the fill ledger): the same one twice is a no-op."""

    async def record(
        self, user_id: int, exchange: str, account_type: str, fills: Sequence[Fill]
    ) -> None: ...


class ConnectGate:
    """How fast one venue lets us open connections: at most `concurrent` handshakes at once
    and `per_s` new connections a second on average (Bybit: 500 per 5 minutes per IP)."""

    def __init__(self, concurrent: int = 20, per_s: float = 1000.0, burst: float = 50) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._pace = TokenBucket(per_s, burst)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            await self._pace.acquire()
            yield


class FeedOpener(Protocol):
    async def open_feed(
        self, user_id: int, exchange: str, account_type: str, on_gap: GapHandler
    ) -> AccountFeed: ...

    async def aclose(self) -> None: ...


class AccountStream:
    """Keeps one account's feed connected and its pushes applied, until `stop`."""

    def __init__(
        self,
        key: Key,
        *,
        account: AccountClient,
        opener: FeedOpener,
        sink: FillSink,
        catch_up: CatchUp,
        metrics: Metrics | None = None,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        marks: MarkReader | None = None,
        gate: ConnectGate | None = None,
    ) -> None:
        self.key = key
        self._marks = marks
        self._gate = gate or ConnectGate()
        self.account = account  # held: the gateway keeps account clients only while used
        self._opener = opener
        self._sink = sink
        self._catch_up = catch_up
        self._metrics = metrics
        self._backoff = backoff_s
        self.connected = False
        self.connects = 0
        self.balance: Balance | None = None
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, Order] = {}
        self._seeding: list[Callable[[], None]] | None = None
        self._baseline: dict[str, Decimal] = {}  # filled before this connection's seed
        self._reported: dict[str, Decimal] = {}  # filled since the seed, per order pushes
        self._heard: dict[str, Decimal] = {}  # executions heard per order
        self._gap_check: asyncio.TimerHandle | None = None
        self._gaps: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def exchange(self) -> str:
        return self.key[1]

    @property
    def exposed(self) -> bool:
        """Open positions or resting orders, as the stream last said."""
        return bool(self.positions or self.orders)

    def start(self) -> None:
        if self._task is None:
            # A context of its own: the command that started it must not lend its cache
            # read tally or log context to a stream that outlives it.
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if self._gap_check is not None:
            self._gap_check.cancel()
        pending = [t for t in (task, *self._gaps) if t is not None]
        for running in pending:
            running.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.connected = False

    # ---- the connection loop --------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            feed: AccountFeed | None = None
            try:
                started = time.perf_counter()
                async with self._gate.slot():
                    feed = await self._opener.open_feed(*self.key, on_gap=self._gap)
                    await feed.ready()
                self._phase("connect", time.perf_counter() - started)
                await self._serve(feed, started)
            except AuthFailed as exc:
                self._count("auth_failed")
                log.warning("stream of %s refused: %s", self._name, exc)
                failures = max(failures, 6)  # keys may be fixed later: retry, but rarely
            except ExchangeError as exc:
                self._count("drop")
                log.info("stream of %s lost: %s", self._name, exc)
            except Exception:
                self._count("drop")
                log.exception("stream of %s failed", self._name)
            finally:
                self.connected = False
                if feed is not None:
                    await feed.aclose()
            failures += 1
            base, cap = self._backoff
            delay = min(cap, base * 2 ** min(failures - 1, 10))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            log.debug("stream of %s reconnecting (attempt %d)", self._name, failures)

    async def _serve(self, feed: AccountFeed, started: float) -> None:
        connected = time.perf_counter()
        self._seeding = []
        pumps = [
            asyncio.ensure_future(self._pump(feed.next_orders, self._on_orders, self._push_orders)),
            asyncio.ensure_future(self._pump(feed.next_fills, self._on_fills, None)),
            asyncio.ensure_future(
                self._pump(feed.next_positions, self._on_positions, self._push_positions)
            ),
            asyncio.ensure_future(
                self._pump(feed.next_balance, self._on_balance, self._push_balance)
            ),
            asyncio.ensure_future(self._repush()),
        ]
        try:
            await self._seed()
            seeded = time.perf_counter()
            await self._catch_up(*self.key)
            caught = time.perf_counter()
            self.connected = True
            self.connects += 1
            self._count("connect")
            self._phase("seed", seeded - connected)
            self._phase("catch_up", caught - seeded)
            log.info(
                "stream of %s up: connect %.0f ms, seed %.0f ms, catch-up %.0f ms",
                self._name, (connected - started) * 1000, (seeded - connected) * 1000,
                (caught - seeded) * 1000,
            )  # fmt: skip
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            for finished in done:
                finished.result()  # raises what ended the connection
        finally:
            self._seeding = None
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _seed(self) -> None:
        """The account as REST says now; pushes heard meanwhile are applied again after."""
        balance, positions, orders = await asyncio.gather(
            self.account.balance(fresh=True),
            self.account.positions(fresh=True),
            self.account.open_orders(fresh=True),
        )
        self.balance = balance
        self.positions = {p.symbol: p for p in positions}
        self.orders = {o.order_id: o for o in orders}
        self._baseline = {o.order_id: o.filled_qty for o in orders}
        self._reported.clear()
        self._heard.clear()
        replay, self._seeding = self._seeding or [], None
        for apply in replay:
            apply()
        self._push()

    async def _pump(
        self,
        read: Callable[[], Awaitable[Any]],
        apply: Callable[[Any], None],
        push: Callable[[], None] | None,
    ) -> None:
        """Apply each push of one topic and put that topic (only: the others may be older
        than a write that just dropped them) in the cache. Fills (`push` None) are recorded,
        never replayed."""
        while True:
            items = await read()
            started = time.perf_counter()
            if push is not None and self._seeding is not None:
                self._seeding.append(functools.partial(apply, items))
            apply(items)
            if push is not None and self._seeding is None:
                push()
            self._phase("apply", time.perf_counter() - started)

    async def _repush(self) -> None:
        while True:
            await asyncio.sleep(REPUSH_S)
            if self.connected and self._seeding is None:
                self._push()

    # ---- applying pushes ------------------------------------------------
    def _on_orders(self, orders: Sequence[Order]) -> None:
        self._count("order", len(orders))
        for order in orders:
            if order.status is OrderStatus.OPEN:
                self.orders[order.order_id] = order
            else:
                self.orders.pop(order.order_id, None)
            reported = order.filled_qty - self._baseline.get(order.order_id, ZERO)
            if reported > ZERO:
                self._reported[order.order_id] = reported
            if reported > self._heard.get(order.order_id, ZERO):
                self._expect_fills()
            elif order.status.is_final:
                self._forget_order(order.order_id)

    def _on_fills(self, fills: Sequence[Fill]) -> None:
        if not fills:
            return
        self._count("fill", len(fills))
        for fill in fills:
            self._heard[fill.order_id] = self._heard.get(fill.order_id, ZERO) + fill.qty
        self._spawn(self._record(list(fills)))

    def _on_positions(self, updates: Sequence[PositionUpdate]) -> None:
        self._count("position", len(updates))
        for symbol, position in updates:
            if position is None:
                self.positions.pop(symbol, None)
            else:
                self.positions[symbol] = position

    def _on_balance(self, balance: Balance) -> None:
        self._count("balance")
        self.balance = balance

    def _push(self) -> None:
        self._push_balance()
        self._push_positions()
        self._push_orders()

    def _push_balance(self) -> None:
        if self.balance is not None:
            self.account.push_balance(self.balance)

    def _push_positions(self) -> None:
        positions: Iterable[Position] = self.positions.values()
        if self._marks is not None:  # a venue pushes a position when it changes, not its mark
            positions = [self._repriced(p) for p in positions]
        self.account.push_positions(positions)

    def _push_orders(self) -> None:
        self.account.push_orders(self.orders.values())

    def _repriced(self, position: Position) -> Position:
        assert self._marks is not None
        mark = self._marks(self.exchange, position.symbol)
        if mark is None or mark == position.mark_price:
            return position
        sign = 1 if position.side is PositionSide.LONG else -1
        upnl = (mark - position.entry_price) * position.qty * sign
        return replace(position, mark_price=mark, unrealised_pnl=upnl)

    async def _record(self, fills: list[Fill]) -> None:
        try:
            await self._sink.record(*self.key, fills)
        except Exception:
            log.exception("recording %d pushed fills of %s failed", len(fills), self._name)
            await self._close_gap("record")

    # ---- gaps -----------------------------------------------------------
    def _gap(self, why: str) -> None:
        self._spawn(self._close_gap(why))

    def _expect_fills(self) -> None:
        if self._gap_check is None:
            loop = asyncio.get_running_loop()
            self._gap_check = loop.call_later(GAP_GRACE_S, self._check_fills)

    def _check_fills(self) -> None:
        self._gap_check = None
        short = [
            order_id
            for order_id, reported in self._reported.items()
            if reported > self._heard.get(order_id, ZERO)
        ]
        for order_id in short:  # the catch-up reads them: not missed twice
            self._heard[order_id] = self._reported[order_id]
        for order_id in [o for o in self._reported if o not in self.orders]:
            self._forget_order(order_id)
        if short:
            self._spawn(self._close_gap("gap"))

    def _forget_order(self, order_id: str) -> None:
        for book in (self._baseline, self._reported, self._heard):
            book.pop(order_id, None)

    async def _close_gap(self, why: str) -> None:
        self._count(why)
        log.info("stream of %s: %s, catching up", self._name, why)
        await self._catch_up(*self.key)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._gaps.add(task)
        task.add_done_callback(self._gaps.discard)

    # ---- measures -------------------------------------------------------
    @property
    def _name(self) -> str:
        return f"{self.key[0]}:{self.key[1]}:{self.key[2]}"

    def _count(self, kind: str, n: int = 1) -> None:
        if self._metrics is not None:
            self._metrics.stream_events.labels(self.exchange, kind).inc(n)

    def _phase(self, phase: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.stream_phase.labels(self.exchange, phase).observe(seconds)
