"""Confirmed trading: order cards that place nothing until their owner presses Confirm.

A card is an order intent in status `draft` with a deterministic client order id and two
minutes to live. Confirm moves it draft → pending with one conditional UPDATE, so a double
tap, a redelivered update or two concurrent presses place exactly one order; the executor
then sends it exactly once. Opening needs a licence; closing and cancelling never do.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from core.clock import Clock
from core.errors import Forbidden, InvalidInput, NotFound
from core.exchange.errors import ExchangeError, InvalidOrder
from core.exchange.ids import client_order_id
from core.exchange.models import (
    ZERO,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
)
from core.lifecycle import UNRESOLVED, CloseReason, IntentStatus, Origin
from db.repositories.intents import IntentRecord, IntentRepository, IntentUpdate, NewIntent
from services.account_client import AccountClient
from services.accounts import AccountRef, AccountService
from services.amounts import (
    check_leverage,
    opening_fee,
    parse_leverage,
    parse_percent,
    parse_usdt,
    protective_levels,
    realised_pnl,
    taker_fee,
    usdt_range,
)
from services.cards import CardExpired, CloseCard, LimitTerms, OpenCard, Placement
from services.cards import placement as _placement
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.history import HistoryService, TradeLog
from services.licenses import LicenseService
from services.limit_orders import RestingOrders, limit_terms, opening_fee_estimate
from services.market import MarketService
from services.strategy import StrategyService

__all__ = ["LICENCE_NEEDED", "CardExpired", "CloseCard", "OpenCard", "Placement", "TradingService"]

log = logging.getLogger(__name__)

DRAFT_TTL = timedelta(minutes=2)
MIN_PREFIX = 4  # a shorter start of an id is too easily a typo to cancel an order by
AMBIGUOUS_SHOWN = 5
LICENCE_NEEDED = (
    "Opening new positions needs an active licence (/redeem a promo code or ask an admin). "
    "Closing positions, cancelling orders and viewing never need one."
)


class TradingService:
    """Builds order cards and carries out the confirmed ones."""

    def __init__(
        self,
        *,
        intents: IntentRepository,
        executor: OrderExecutor,
        accounts: AccountService,
        market: MarketService,
        strategy: StrategyService,
        licenses: LicenseService,
        gateway: ExchangeGateway,
        history: HistoryService,
        clock: Clock,
        resting: RestingOrders,
    ) -> None:
        self._intents = intents
        self._resting = resting
        self._executor = executor
        self._accounts = accounts
        self._market = market
        self._strategy = strategy
        self._licenses = licenses
        self._gateway = gateway
        self._history = history
        self._clock = clock

    async def open_card(
        self,
        user_id: int,
        side: PositionSide,
        symbol: str,
        amount: str,
        leverage: str | None,
        limit: str | None = None,
    ) -> OpenCard:
        """Price an order of `amount` USDT, at market or resting at the `limit` price
        (`64000`, `64k`, `-1%`), and keep it as a draft for Confirm."""
        await self._require_licence(user_id)
        account = await self._accounts.require_active(user_id)
        market = await self._market.resolve(account.exchange, symbol)
        settings = await self._strategy.settings(user_id)
        lev = (
            parse_leverage(leverage, market.max_leverage)
            if leverage is not None
            else check_leverage(settings.leverage, market.max_leverage, "Your /strategy leverage")
        )
        last = (await self._market.ticker(account.exchange, market.symbol)).last
        terms = None if limit is None else limit_terms(side, limit, last, market, settings)
        price = last if terms is None else terms.price
        balance = await self._account(account).balance(fresh=True)
        notional_asked = parse_usdt(amount, usdt_range(market, price, balance.available, lev))
        qty = market.round_qty(notional_asked / price)
        take, stop = protective_levels(side, price, settings.tp_pct, settings.sl_pct, market)
        cid, expires = await self._draft(
            account, market.symbol, side.opening_side, qty, Origin.MANUAL, lev, take, stop, terms
        )
        notional = qty * price
        return OpenCard(
            client_order_id=cid,
            account=account.label,
            symbol=market.symbol,
            side=side,
            price=price,
            qty=qty,
            notional=notional,
            leverage=lev,
            margin=notional / lev,
            take_profit=take,
            stop_loss=stop,
            fee=opening_fee_estimate(notional, terms),
            expires_at=expires,
            tick=market.tick_size,
            limit=terms,
        )

    async def close_card(self, user_id: int, symbol: str, percent: str | None) -> CloseCard:
        """Price a reduce-only close of `percent` of a position and keep it as a draft."""
        account = await self._accounts.require_active(user_id)
        market = await self._market.resolve(account.exchange, symbol)
        share = parse_percent(percent)
        position = _find(await self._account(account).positions(fresh=True), market.symbol)
        if position is None:
            raise NotFound(
                f"You have no open {market.symbol} position on {account.label}. "
                "/positions lists yours."
            )
        qty = position.qty if share == 100 else market.round_qty(position.qty * share / 100)
        if qty <= 0 or qty < market.min_qty:
            raise InvalidInput(
                f"{share}% of {position.qty} {market.base} is below the smallest order "
                f"({market.min_qty} {market.base}); close a larger share, or all of it with "
                f"/close {market.base}."
            )
        price = (await self._market.ticker(account.exchange, market.symbol)).last
        opened = await self._intents.latest_opening(
            *_account_of(account), market.symbol, position.side.opening_side.value, filled_only=True
        )
        opening = opening_fee(
            opened.fee if opened else None,
            opened.filled_qty if opened else None,
            qty,
            position.entry_price,
        )
        fee = taker_fee(qty * price) + opening  # both legs, as the trade will be logged
        cid, expires = await self._draft(
            account,
            market.symbol,
            position.side.closing_side,
            qty,
            Origin.CLOSE,
            position.leverage,
        )
        return CloseCard(
            client_order_id=cid,
            account=account.label,
            symbol=market.symbol,
            side=position.side,
            qty=qty,
            position_qty=position.qty,
            percent=share,
            entry_price=position.entry_price,
            price=price,
            pnl=realised_pnl(position.side, position.entry_price, price, qty, fee),
            fee=fee,
            expires_at=expires,
            tick=market.tick_size,
        )

    async def confirm(self, user_id: int, cid: str) -> Placement:
        """Place the caller's draft exactly once; a repeat press gets the recorded outcome."""
        intent = await self._owned(user_id, cid)
        if intent.status != IntentStatus.DRAFT:
            return await self._recorded(intent)
        now = self._clock.now()
        if intent.expires_at is None or intent.expires_at <= now:
            await self._intents.close_draft(cid, user_id, IntentStatus.EXPIRED, now)
            raise CardExpired("This card expired; send the command again for a fresh price.")
        if not intent.reduce_only:
            await self._require_licence(user_id)
        if not await self._intents.claim_draft(cid, user_id, now):
            return await self._recorded(
                await self._owned(user_id, cid)
            )  # another press won, or time
        try:
            account = self._gateway.account(user_id, intent.exchange, intent.account_type)
            return await self._place(account, intent)
        except ExchangeError as error:
            current = await self._owned(user_id, cid)
            if current.status == IntentStatus.PENDING:  # failed before the order left: not sent
                change = IntentUpdate(IntentStatus.REJECTED, error=error.message)
                await self._intents.update(cid, change, self._clock.now())
            return _placement(await self._owned(user_id, cid), error=error.message)

    async def discard(self, user_id: int, cid: str) -> None:
        """Cancel the caller's draft; nothing was or will be sent."""
        intent = await self._owned(user_id, cid)
        if await self._intents.close_draft(cid, user_id, IntentStatus.CANCELLED, self._clock.now()):
            return
        if intent.status in (IntentStatus.CANCELLED, IntentStatus.EXPIRED) and intent.attempts == 0:
            raise CardExpired("This card was already cancelled or expired; nothing was sent.")
        raise InvalidInput("This order was already confirmed; /orders and /positions show it.")

    async def expire_cards(self) -> int:
        """End the confirmation cards nobody pressed before they expired; return how many."""
        return await self._intents.expire_drafts(self._clock.now())

    async def cancel_order(self, user_id: int, order_id: str) -> Order:
        """Cancel one of the caller's open orders on their active account, named by its
        exchange or client order id or a unique start of either (as /orders shows it).

        The order returned is the one known before the cancel (venues answer a cancel with
        little more than the id), marked cancelled.
        """
        account = await self._accounts.require_active(user_id)
        wanted = order_id.strip()
        client = self._account(account)
        found = _matching(await client.open_orders(fresh=True), wanted)
        if found is None:
            raise NotFound(f"No open order {wanted[:40]} on {account.label}. /orders lists yours.")
        cancelled = await client.cancel_order(found.symbol, found.order_id)
        filled = max(found.filled_qty, cancelled.filled_qty)
        await self._note_cancelled(user_id, client, found, filled)
        return replace(found, status=OrderStatus.CANCELLED, filled_qty=filled)

    async def _place(self, client: AccountClient, intent: IntentRecord) -> Placement:
        position = None
        if intent.reduce_only:
            position = _find(await client.positions(fresh=True), intent.symbol)
            if position is None:
                raise InvalidOrder(intent.exchange, f"There is no open {intent.symbol} position.")
        elif intent.leverage is not None:
            await client.set_leverage(intent.symbol, intent.leverage)
        execution = await self._executor.place(client, intent.client_order_id, await_fill=True)
        record = execution.intent
        if record.order_type == OrderType.LIMIT.value:
            return await self._resting.placed(record)
        trade = None
        # Settled by someone else meanwhile (the settlement job): it logged the close.
        fresh = not execution.already_done
        if position is not None and fresh and record.filled_qty and record.avg_price is not None:
            trade = await self._record_close(record, position)
        return _placement(record, trade=trade)

    async def _record_close(self, intent: IntentRecord, position: Position) -> TradeLog:
        """Log the close: its fee is both legs, the closing order's and the share of the
        opening order's fee the closed quantity carries, so its PnL is the wallet's change."""
        qty, exit_price = intent.filled_qty or ZERO, intent.avg_price or ZERO
        opened = await self._opening(intent, position.side)
        fee = (intent.fee or ZERO) + opening_fee(
            opened.fee if opened else None,
            opened.filled_qty if opened else None,
            qty,
            position.entry_price,
        )
        trade = TradeLog(
            user_id=intent.user_id,
            exchange=intent.exchange,
            account_type=intent.account_type,
            symbol=intent.symbol,
            side=position.side.value,
            qty=qty,
            entry_price=position.entry_price,
            exit_price=exit_price,
            pnl=realised_pnl(position.side, position.entry_price, exit_price, qty, fee),
            fee=fee,
            entry_ts=opened.created_at if opened else intent.created_at,
            exit_ts=intent.updated_at,
            leverage=position.leverage,
            origin=opened.origin if opened else Origin.MANUAL,
            signal_id=opened.signal_id if opened else None,
            close_reason=CloseReason.MANUAL,
            order_id=intent.exchange_order_id,  # the fill ledger replaces it with the fills'
        )
        await self._history.record_close(trade)
        return trade

    async def log_settled_close(self, intent: IntentRecord) -> TradeLog | None:
        """Log a close whose fill was learnt only later (the bot died between the exchange's
        answer and the commit, or the answer was lost): as the Confirm would have logged it,
        the entry taken from the filled order that opened the position. Nothing when it is
        not a filled close, already logged (position sync may have), or a paper close (the
        paper engine logs those from its fills)."""
        qty = intent.filled_qty or ZERO
        if not intent.reduce_only or qty <= 0 or intent.avg_price is None:
            return None
        if intent.exchange == "paper":
            return None
        logged = await self._history.logged_qty_since(
            intent.user_id, intent.exchange, intent.account_type, intent.symbol, intent.created_at
        )
        if logged >= qty:
            return None
        side = PositionSide.LONG if intent.side == Side.SELL.value else PositionSide.SHORT
        opened = await self._opening(intent, side)
        if opened is None or opened.avg_price is None:
            log.warning("close %s settled without a known entry", intent.client_order_id)
            return None
        position = Position(
            symbol=intent.symbol,
            side=side,
            qty=qty,
            entry_price=opened.avg_price,
            mark_price=intent.avg_price,
            unrealised_pnl=ZERO,
            leverage=opened.leverage or 1,
            margin=ZERO,
        )
        return await self._record_close(intent, position)

    async def log_missed_closes(self, within: timedelta = timedelta(days=1)) -> int:
        """At start-up: log the closes of the last day that filled but never reached the
        ledger (the process died between settling the order and logging its trade, both
        commits of their own); return how many."""
        missed = 0
        for intent in await self._intents.filled_closes(self._clock.now() - within):
            missed += await self.log_settled_close(intent) is not None
        return missed

    async def _opening(self, close: IntentRecord, side: PositionSide) -> IntentRecord | None:
        """The latest filled order that opened this position, for its time and origin."""
        return await self._intents.latest_opening(
            close.user_id,
            close.exchange,
            close.account_type,
            close.symbol,
            side.opening_side.value,
            filled_only=True,
        )

    async def _draft(
        self,
        account: AccountRef,
        symbol: str,
        side: Side,
        qty: Decimal,
        origin: Origin,
        leverage: int | None,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
        limit: LimitTerms | None = None,
    ) -> tuple[str, datetime]:
        cid = client_order_id(origin, account.user_id, uuid.uuid4().hex)
        expires = self._clock.now() + DRAFT_TTL
        draft = NewIntent(
            client_order_id=cid,
            user_id=account.user_id,
            exchange=account.exchange,
            account_type=account.account_type,
            symbol=symbol,
            side=side.value,
            order_type=OrderType.MARKET.value if limit is None else OrderType.LIMIT.value,
            qty=qty,
            price=None if limit is None else limit.price,
            post_only=limit is not None and limit.post_only,
            origin=origin,
            status=IntentStatus.DRAFT,
            reduce_only=origin == Origin.CLOSE,
            leverage=leverage,
            take_profit=take_profit,
            stop_loss=stop_loss,
            expires_at=expires,
        )
        await self._executor.record(draft)
        return cid, expires

    async def _recorded(self, intent: IntentRecord) -> Placement:
        """The outcome of a card pressed before: settled, in flight, or never sent."""
        if intent.status in (
            IntentStatus.EXPIRED,
            IntentStatus.DRAFT,
        ):  # a draft here ran out of time
            raise CardExpired("This card expired; send the command again for a fresh price.")
        if intent.status == IntentStatus.CANCELLED and intent.attempts == 0:
            raise CardExpired("This card was cancelled; send the command again.")
        if intent.order_type == OrderType.LIMIT.value and intent.status not in UNRESOLVED:
            return replace(await self._resting.placed(intent, track=False), repeated=True)
        return _placement(intent, error=intent.error, repeated=True)

    async def _owned(self, user_id: int, cid: str) -> IntentRecord:
        intent = await self._intents.get(cid)
        if intent is None:
            raise NotFound("This card is no longer valid; send the command again.")
        if intent.user_id != user_id:
            raise Forbidden("This card belongs to another trader; only they can use it.")
        return intent

    async def _note_cancelled(
        self, user_id: int, client: AccountClient, order: Order, filled: Decimal
    ) -> None:
        """Settle the cancelled order's intent. An entry cancelled with a part filled keeps
        that part, read back from the venue (a cancel's answer says little), and the part
        is a position like any other: it gets its ladder and trail, as at expiry."""
        cid = order.client_order_id
        intent = None if cid is None else await self._intents.get(cid)
        if intent is None or intent.user_id != user_id:
            return
        change = IntentUpdate(IntentStatus.CANCELLED)
        if filled > 0 and not intent.reduce_only:
            try:
                final = await client.fetch_order(order.symbol, order_id=order.order_id)
            except ExchangeError as error:  # what filled is learnt from the fills later
                log.info("cancelled %s not read back: %s", intent.client_order_id, error)
                final = replace(order, filled_qty=filled)
            change = replace(IntentUpdate.of_order(final), status=IntentStatus.CANCELLED)
        await self._intents.update(intent.client_order_id, change, self._clock.now())
        if change.filled_qty:
            await self._executor.settle_cancelled([intent.client_order_id])

    async def _require_licence(self, user_id: int) -> None:
        if not (await self._licenses.state(user_id)).can_open_positions:
            raise Forbidden(LICENCE_NEEDED)

    def _account(self, account: AccountRef) -> AccountClient:
        return self._gateway.account(account.user_id, account.exchange, account.account_type)


def _matching(orders: Sequence[Order], wanted: str) -> Order | None:
    """The order with this id, or the only one whose exchange or client id starts with it;
    several make the prefix ambiguous: refused with the candidates."""
    key = wanted.lower()
    exact = [o for o in orders if key in (o.order_id.lower(), (o.client_order_id or "").lower())]
    if exact or len(key) < MIN_PREFIX:
        return exact[0] if exact else None
    starts = [
        o
        for o in orders
        if o.order_id.lower().startswith(key) or (o.client_order_id or "").lower().startswith(key)
    ]
    if len(starts) > 1:
        shown = ", ".join(
            f"{o.order_id} ({o.side.value} {o.symbol})" for o in starts[:AMBIGUOUS_SHOWN]
        )
        more = f" and {len(starts) - AMBIGUOUS_SHOWN} more" if len(starts) > AMBIGUOUS_SHOWN else ""
        raise InvalidInput(
            f"{wanted[:40]} starts {len(starts)} open orders: {shown}{more}. "
            "Give more of the id; nothing was cancelled."
        )
    return starts[0] if starts else None


def _account_of(account: AccountRef) -> tuple[int, str, str]:
    return account.user_id, account.exchange, account.account_type


def _find(positions: Sequence[Position], symbol: str) -> Position | None:
    return next((p for p in positions if p.symbol == symbol and p.qty > 0), None)
