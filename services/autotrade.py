"""Auto-trading: a new signal becomes one order for every trader who asked for it.

For each signal, one query finds the candidates (auto-trade on since before the signal was
published, the score meets their threshold, not yet handled for this signal). Each is
decided locally (allow/deny list, age and price drift within the trader's limits, licence,
account, max positions, size, the market's minimum): skipped with a reason, or given an
order intent whose client order id is derived from (signal id, user id), so a retry, a
crash or a redelivered signal meets the same id and the executor never sends it twice.
Every ccxt client of one exchange spends the venue's one request budget, so together they
stay under the per-IP limit. Signals found together share it fairly: orders go out
round-robin, each signal's first traders before any signal's later ones. One user's
failure is that user's outcome only. Outcomes go to `executions` with the user's notices
in one transaction at the end; stale skips (too old, price moved) are audited, not told.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from core.clock import Clock
from core.exchange.errors import ExchangeError, InsufficientFunds
from core.exchange.ids import client_order_id
from core.exchange.models import ZERO, Market, OrderType, PositionSide, Ticker
from core.lifecycle import ExecutionStatus, IntentStatus, Origin
from db.repositories.executions import Candidate, ExecutionRecord, ExecutionRepository
from db.repositories.intents import IntentRecord, IntentRepository, IntentUpdate, NewIntent
from db.repositories.positions import PositionRepository
from db.repositories.signals import SignalRecord, SignalRepository
from services import notices
from services.account_client import AccountClient
from services.amounts import protective_levels
from services.audit import AuditService
from services.autotrade_plan import (
    PRICE_MOVED,
    STALE,
    TOO_OLD,
    AutoTradeReport,
    moved,
    stale_audits,
    too_old,
)
from services.autotrade_plan import Batch as _Batch
from services.autotrade_plan import MarketContext as _Context
from services.autotrade_plan import Outcome as _Outcome
from services.autotrade_plan import Plan as _Plan
from services.autotrade_plan import opened_position as _opened
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.market import MarketService
from services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

FILLED, PLACED = ExecutionStatus.FILLED, ExecutionStatus.PLACED
SKIPPED, FAILED = ExecutionStatus.SKIPPED, ExecutionStatus.FAILED

NO_LICENCE = "no licence"
NO_ACCOUNT = "no account"
MAX_POSITIONS = "max positions"
NO_MARGIN = "insufficient margin"
BELOW_MINIMUM = "below minimum notional"
DENIED = "symbol denied"
NOT_LISTED = "symbol not listed"
UNAVAILABLE = "exchange unavailable"
POST_ONLY_TOOK = "post-only limit cancelled by the exchange: the price had moved through it"
# A signal older than this is not looked at again after a restart, whatever the trader's limit.
RESUME_WINDOW = timedelta(minutes=2)
QUIET = frozenset({DENIED}) | STALE  # the trader's own filter said no: nothing to tell them


class AutoTrader:
    """Places the orders signals call for, once per (signal, user)."""

    def __init__(
        self,
        *,
        work: UnitOfWork,
        executions: ExecutionRepository,
        intents: IntentRepository,
        positions: PositionRepository,
        executor: OrderExecutor,
        market: MarketService,
        gateway: ExchangeGateway,
        clock: Clock,
        signals: SignalRepository,
        audit: AuditService,
        concurrency: int = 500,
    ) -> None:
        self._work = work
        self._executions = executions
        self._intents = intents
        self._positions = positions
        self._executor = executor
        self._market = market
        self._gateway = gateway
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._signals = signals
        self._audit = audit
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, signals: Sequence[SignalRecord]) -> None:
        """Trade new signals in the background, so the scan that found them is not held up
        while a thousand orders queue for the exchange's rate limit."""
        if not signals:
            return
        task = asyncio.get_running_loop().create_task(self._trade_in_background(signals))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self, max_age: timedelta = RESUME_WINDOW) -> int:
        """After a restart: finish the signals still fresh enough to trade; return how many.

        Users already served have an execution row and the order ids are derived from
        (signal, user), so going over a signal again never places a second order.
        """
        signals = await self._signals.since(self._clock.now() - max_age)
        self.submit(signals)
        return len(signals)

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Give trading in flight `grace_s` to finish, then stop it (orders already recorded
        are resolved after the restart, and `resume` finishes the signal)."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _trade_in_background(self, signals: Sequence[SignalRecord]) -> None:
        try:
            for report in await self.on_signals(signals):
                log.info("auto-trade %s in %.1f s", report, report.seconds)
        except Exception:  # a bug must show in the log; the next restart resumes the signal
            log.exception("auto-trading signals %s failed", [s.id for s in signals])

    async def on_signals(self, signals: Sequence[SignalRecord]) -> list[AutoTradeReport]:
        """Trade every new signal for the users who want it; return what happened.

        Orders go out interleaved across the signals: the n-th trader of every signal before
        the (n+1)-th of any. A trader's orders planned for earlier signals count towards their
        maximum of open positions, as if those signals had been traded first.
        """
        started = time.perf_counter()
        planned: dict[int, int] = {}
        batches = [await self._prepare(signal, planned) for signal in signals]
        tasks: list[list[asyncio.Task[_Outcome]]] = [[] for _ in batches]
        loop = asyncio.get_running_loop()
        # Tasks reach the concurrency slots and the venue's request queue in creation order.
        for turn in itertools.zip_longest(*(b.plans for b in batches)):
            for index, plan in enumerate(turn):
                if plan is not None:
                    work = self._execute(batches[index].signal, plan)
                    tasks[index].append(loop.create_task(work))
        concluding = (self._conclude(b, t, started) for b, t in zip(batches, tasks, strict=True))
        try:
            return list(await asyncio.gather(*concluding))
        finally:
            for task in itertools.chain.from_iterable(tasks):
                task.cancel()  # only those still running: a failed sibling stops the batch

    async def on_signal(self, signal: SignalRecord) -> AutoTradeReport:
        (report,) = await self.on_signals([signal])
        return report

    async def _prepare(self, signal: SignalRecord, planned: dict[int, int]) -> _Batch:
        """Find and decide the signal's candidates; record the intents already sized."""
        now = self._clock.now()
        candidates = await self._executions.candidates(
            signal.id, signal.score, now, signal.created_at
        )
        batch = _Batch(signal, len(candidates), [], [])
        if not candidates:
            return batch
        context = await self._market_context(signal, candidates)
        reference = await self._reference(signal)
        for candidate in candidates:
            held = planned.get(candidate.user_id, 0)
            decided = self._decide(signal, candidate, context, reference, held)
            if isinstance(decided, _Plan):
                batch.plans.append(decided)
                planned[candidate.user_id] = planned.get(candidate.user_id, 0) + 1
            else:
                batch.outcomes.append(decided)
        await self._finish_begun(batch, context, reference, planned)
        ready = [p.intent for p in batch.plans if p.intent is not None]
        if ready:
            await self._intents.create_many(ready, now)
        return batch

    async def _finish_begun(
        self, batch: _Batch, context: _Context, reference: Ticker | None, planned: dict[int, int]
    ) -> None:
        """Orders a cut-off run recorded may be on the exchange: finish and record them as
        they are, never skip them as stale (the executor sends none of them twice)."""
        signal = batch.signal
        stale = {
            client_order_id(Origin.AUTO, signal.id, o.candidate.user_id): o
            for o in batch.outcomes
            if o.record.reason in STALE
        }
        for cid in await self._intents.recorded(list(stale)) if stale else ():
            outcome, user_id = stale[cid], stale[cid].candidate.user_id
            held = planned.get(user_id, 0)
            decided = self._decide(signal, outcome.candidate, context, reference, held, False)
            batch.outcomes.remove(outcome)
            if isinstance(decided, _Plan):
                batch.plans.append(decided)
                planned[user_id] = held + 1
            else:
                batch.outcomes.append(decided)

    async def _conclude(
        self, batch: _Batch, tasks: Sequence[asyncio.Task[_Outcome]], started: float
    ) -> AutoTradeReport:
        """Wait for the signal's orders, then write its outcomes; report what happened."""
        signal = batch.signal
        report = AutoTradeReport(signal.id, batch.candidates)
        if not batch.candidates:
            return report
        outcomes = batch.outcomes + list(await asyncio.gather(*tasks))
        await self._finish(signal, outcomes)
        for outcome in outcomes:
            what = outcome.record.reason if outcome.record.status == SKIPPED else None
            key = f"{outcome.record.status}: {what}" if what else outcome.record.status
            report.counts[key] = report.counts.get(key, 0) + 1
        report.seconds = time.perf_counter() - started
        log.info("auto-trade %s in %.0f ms", report, report.seconds * 1000)
        return report

    async def _market_context(
        self, signal: SignalRecord, candidates: Sequence[Candidate]
    ) -> dict[str, tuple[Mapping[str, Market], Ticker | None] | None]:
        """Markets and the signal symbol's price on each exchange the candidates trade on
        (None for an exchange that cannot be reached)."""
        context: dict[str, tuple[Mapping[str, Market], Ticker | None] | None] = {}
        for exchange in {c.exchange for c in candidates if c.exchange is not None}:
            try:
                markets = await self._market.markets(exchange)
                ticker = (await self._market.tickers(exchange)).get(signal.symbol)
            except ExchangeError as error:
                log.warning("auto-trade: no %s market data: %s", exchange, error.message)
                context[exchange] = None
                continue
            context[exchange] = (markets, ticker)
        return context

    async def _reference(self, signal: SignalRecord) -> Ticker | None:
        """The price now where the signal was found, to measure drift (None: the trader's)."""
        try:
            return (await self._market.tickers(signal.source)).get(signal.symbol)
        except ExchangeError as error:
            log.warning("auto-trade: no %s price for drift: %s", signal.source, error.message)
            return None

    def _decide(
        self,
        signal: SignalRecord,
        candidate: Candidate,
        context: _Context,
        reference: Ticker | None,
        planned: int = 0,
        fresh_only: bool = True,
    ) -> _Plan | _Outcome:
        strategy = candidate.strategy
        if signal.symbol in strategy.deny_symbols or (
            strategy.allow_symbols and signal.symbol not in strategy.allow_symbols
        ):
            return self._skip(signal, candidate, DENIED)
        age = too_old(signal, strategy, self._clock.now()) if fresh_only else None
        if age is not None:
            return replace(self._skip(signal, candidate, TOO_OLD), detail=age)
        if not candidate.licensed:
            return self._skip(signal, candidate, NO_LICENCE)
        if candidate.exchange is None or candidate.account_type is None:
            return self._skip(signal, candidate, NO_ACCOUNT)
        found = context[candidate.exchange]
        if found is None:
            return self._skip(signal, candidate, UNAVAILABLE)
        markets, ticker = found
        market = markets.get(signal.symbol)
        if market is None or ticker is None or ticker.last <= 0:
            return self._skip(signal, candidate, NOT_LISTED)
        drift = moved(signal, strategy, (reference or ticker).last) if fresh_only else None
        if drift is not None:
            return replace(self._skip(signal, candidate, PRICE_MOVED), detail=drift)
        if candidate.open_positions + planned >= strategy.max_positions:
            return self._skip(signal, candidate, MAX_POSITIONS)
        leverage = max(1, min(strategy.leverage, market.max_leverage))
        plan = _Plan(
            candidate=candidate,
            exchange=candidate.exchange,
            account_type=candidate.account_type,
            market=market,
            price=ticker.last,
            leverage=leverage,
            cid=client_order_id(Origin.AUTO, signal.id, candidate.user_id),
            intent=None,
        )
        if strategy.size_usdt is None:
            return plan  # sized from equity once the balance is read
        intent = self._intent(signal, plan, strategy.size_usdt)
        if intent is None:
            return self._skip(signal, candidate, BELOW_MINIMUM)
        return replace(plan, intent=intent)

    def _intent(self, signal: SignalRecord, plan: _Plan, notional: Decimal) -> NewIntent | None:
        """The order for `notional` USDT (at market, or a limit at the signal's price when
        the trader's `autotrade_entry` says so), or None below the market's minimum."""
        market, strategy = plan.market, plan.candidate.strategy
        limit = strategy.autotrade_entry == OrderType.LIMIT.value
        price = market.round_price(signal.price) if limit else plan.price
        if price <= 0:
            return None
        qty = market.round_qty(notional / price)
        if qty <= 0 or qty < market.min_qty or qty * price < market.min_notional:
            return None
        side = PositionSide(signal.side)
        take, stop = protective_levels(side, price, strategy.tp_pct, strategy.sl_pct, market)
        return NewIntent(
            client_order_id=plan.cid,
            user_id=plan.candidate.user_id,
            exchange=plan.exchange,
            account_type=plan.account_type,
            symbol=market.symbol,
            side=side.opening_side.value,
            order_type=OrderType.LIMIT.value if limit else OrderType.MARKET.value,
            qty=qty,
            price=price if limit else None,
            post_only=limit and strategy.post_only,
            origin=Origin.AUTO,
            leverage=plan.leverage,
            take_profit=take,
            stop_loss=stop,
            signal_id=signal.id,
        )

    async def _execute(self, signal: SignalRecord, plan: _Plan) -> _Outcome:
        """Place one user's order; whatever goes wrong stays this user's outcome."""
        user_id = plan.candidate.user_id
        try:
            client = self._gateway.account(user_id, plan.exchange, plan.account_type)
            async with self._slots:
                intent = plan.intent or await self._sized(signal, plan, client)
                if intent is None:
                    return self._skip(signal, plan.candidate, BELOW_MINIMUM)
                return await self._place(signal, plan, client)
        except InsufficientFunds:
            await self._reject_unsent(plan.cid, NO_MARGIN)
            return self._skip(signal, plan.candidate, NO_MARGIN, plan.cid)
        except ExchangeError as error:
            await self._reject_unsent(plan.cid, error.message)
            return self._failed(signal, plan, error.message)
        except Exception:
            log.exception("auto-trade of signal %s for user %s failed", signal.id, user_id)
            await self._reject_unsent(plan.cid, "internal error")
            return self._failed(signal, plan, "internal error")

    async def _sized(
        self, signal: SignalRecord, plan: _Plan, client: AccountClient
    ) -> NewIntent | None:
        """Risk sizing: lose `risk_pct` of equity if the stop is hit; record the intent."""
        strategy = plan.candidate.strategy
        balance = await client.balance()
        risk, stop = strategy.risk_pct or ZERO, strategy.sl_pct
        notional = balance.equity * risk / stop if stop > 0 else balance.equity * risk / 100
        intent = self._intent(signal, plan, notional)
        if intent is not None:
            await self._executor.record(intent)
        return intent

    async def _place(self, signal: SignalRecord, plan: _Plan, client: AccountClient) -> _Outcome:
        await client.set_leverage(plan.market.symbol, plan.leverage)
        # A limit is read back once: a post-only one the venue cancelled must not count as placed.
        limit = plan.candidate.strategy.autotrade_entry == OrderType.LIMIT.value
        execution = await self._executor.place(client, plan.cid, await_fill=limit)
        intent = execution.intent
        if intent.status == IntentStatus.REJECTED:
            return self._failed(signal, plan, intent.error or "rejected", intent)
        if intent.status == IntentStatus.CANCELLED and not intent.filled_qty:
            return self._failed(signal, plan, POST_ONLY_TOOK, intent)
        now = self._clock.now()
        filled = intent.status == IntentStatus.FILLED and intent.avg_price is not None
        record = ExecutionRecord(
            signal_id=signal.id,
            user_id=plan.candidate.user_id,
            status=FILLED if filled else PLACED,
            at=now,
            client_order_id=plan.cid,
            signal_price=signal.price,
            fill_price=intent.avg_price if filled else None,
            latency_ms=(now - signal.created_at).total_seconds() * 1000,
        )
        return _Outcome(record, plan.candidate, intent)

    async def _reject_unsent(self, cid: str, reason: str) -> None:
        """An intent that never left (sizing or leverage failed) is closed, not left pending."""
        intent = await self._intents.get(cid)
        if intent is not None and intent.status == IntentStatus.PENDING:
            change = IntentUpdate(IntentStatus.REJECTED, error=reason)
            await self._intents.update(cid, change, self._clock.now())

    def _skip(
        self, signal: SignalRecord, candidate: Candidate, reason: str, cid: str | None = None
    ) -> _Outcome:
        record = ExecutionRecord(
            signal.id, candidate.user_id, SKIPPED, self._clock.now(), reason, cid, signal.price
        )
        return _Outcome(record, candidate)

    def _failed(
        self, signal: SignalRecord, plan: _Plan, reason: str, intent: IntentRecord | None = None
    ) -> _Outcome:
        record = ExecutionRecord(
            signal.id,
            plan.candidate.user_id,
            FAILED,
            self._clock.now(),
            reason[:200],
            plan.cid,
            signal.price,
        )
        return _Outcome(record, plan.candidate, intent)

    async def _finish(self, signal: SignalRecord, outcomes: Sequence[_Outcome]) -> None:
        """Outcomes, positions just opened and notices, committed together."""
        opened = [_opened(o, signal) for o in outcomes if o.record.status in (FILLED, PLACED)]
        told = [
            notices.auto_trade(signal, o.record, o.candidate, o.intent)
            for o in outcomes
            if not (o.record.status == SKIPPED and o.record.reason in QUIET)
        ]
        async with self._work.begin() as work:
            await self._executions.record_many([o.record for o in outcomes], work.tx)
            await self._positions.opened_many([p for p in opened if p is not None], work.tx)
            await work.notify(told)
            for target, stale in stale_audits(signal, outcomes):  # not told, so audited
                await self._audit.record(None, "autotrade_stale", target, stale, tx=work.tx)
            work.changed()  # the admin analytics count auto-trades
