"""Take-profit ladders: partial take profits placed as reduce-only limit orders once an entry
fills, and the stop loss moved to the entry once the first of them fills.

The executor tells this service of every opening order that filled (manual or auto-trade):
at once, or resting until the fill ledger saw it complete, or expired with a part filled
(then the ladder is sized from that part).
Each part is an order intent with an id derived from the entry's and the part's number, so a
repeated notice never places a part twice. The ladder replaces the position's single take
profit. Ladders that move the stop to break-even are watched: the trailing job looks at the
cached open orders of each watched account, and once the first part is gone while the
position is still open (it filled), the stop loss goes to the entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from core.clock import Clock
from core.exchange.errors import ExchangeError, InvalidOrder
from core.exchange.ids import client_order_id
from core.exchange.models import ZERO, OrderStatus, OrderType, PositionSide, Side, TradingStop
from core.lifecycle import Origin
from db.repositories.intents import IntentRecord, NewIntent
from db.repositories.ladders import LadderRepository, LadderWatch
from db.repositories.users import UserRepository
from services import notices
from services.account_client import AccountClient
from services.exchanges import ExchangeGateway
from services.execution import OrderExecutor
from services.ladder_rungs import part_sizes, rungs_of
from services.market import MarketService
from services.notices import LadderPart
from services.outbox import Outbox
from services.strategy import StrategyService

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class LadderPlaced:
    entry: str  # the entry's client order id
    parts: int


class LadderService:
    """Places take-profit ladders and moves their stops to break-even."""

    def __init__(
        self,
        repo: LadderRepository,
        strategy: StrategyService,
        market: MarketService,
        gateway: ExchangeGateway,
        executor: OrderExecutor,
        clock: Clock,
        *,
        users: UserRepository,
        outbox: Outbox,
    ) -> None:
        self._users = users
        self._outbox = outbox
        self._repo = repo
        self._strategy = strategy
        self._market = market
        self._gateway = gateway
        self._executor = executor
        self._clock = clock

    async def on_filled(self, entry: IntentRecord) -> LadderPlaced | None:
        """Place the trader's ladder for a filled opening order (none: nothing happens)."""
        settings = await self._strategy.settings(entry.user_id)
        price, qty = entry.avg_price, entry.filled_qty
        if not settings.tp_ladder or entry.reduce_only or not price or not qty:
            return None
        market = (await self._market.markets(entry.exchange)).get(entry.symbol)
        if market is None:
            return None
        side = PositionSide.LONG if entry.side == Side.BUY.value else PositionSide.SHORT
        sign = 1 if side is PositionSide.LONG else -1
        client = self._gateway.account(entry.user_id, entry.exchange, entry.account_type)
        placed: list[str] = []
        parts: list[LadderPart] = []
        rungs = rungs_of(settings.tp_ladder)
        for n, ((pct, _), part) in enumerate(
            zip(rungs, part_sizes(qty, rungs, market.lot_size), strict=True)
        ):
            if part < market.min_qty or part <= 0:
                continue  # its share of this position rounds to nothing: the next takes it
            cid = client_order_id("ladder", entry.client_order_id, n)
            level = market.round_price(price * (1 + sign * pct / 100))
            await self._executor.record(
                NewIntent(
                    cid, entry.user_id, entry.exchange, entry.account_type, entry.symbol,
                    side.closing_side.value, OrderType.LIMIT.value, part, Origin.CLOSE.value,
                    price=level, reduce_only=True,
                )
            )  # fmt: skip
            try:
                await self._executor.place(client, cid)
            except ExchangeError as error:
                log.warning("ladder part %s of %s refused: %s", n, entry.client_order_id, error)
                continue
            placed.append(cid)
            parts.append(LadderPart(part, level, pct))
        if not placed:
            await self._tell(entry, notices.ladder_not_placed(entry, market.lot_size))
            return None
        try:  # the ladder takes profit: the single take profit would close it all at once
            await client.set_trading_stop(TradingStop(entry.symbol, side, take_profit=ZERO))
        except InvalidOrder as error:
            log.info("take profit of %s left as it is: %s", entry.client_order_id, error)
        if settings.ladder_breakeven:
            watch = LadderWatch(
                placed[0], entry.user_id, entry.exchange, entry.account_type, entry.symbol,
                side.value, price,
            )  # fmt: skip
            await self._repo.watch(watch, self._clock.now())
        told = notices.ladder_placed(entry, parts, qty, settings.ladder_breakeven)
        await self._tell(entry, told)
        return LadderPlaced(entry.client_order_id, len(placed))

    async def _tell(self, entry: IntentRecord, text: str) -> None:
        user = await self._users.get(entry.user_id)
        if user is not None:
            await self._outbox.enqueue([notices.ladder_notice(entry, user.chat_id, text)])

    async def check(self) -> int:
        """Move the stop loss to the entry where a ladder's first part filled; return how many."""
        moved = 0
        for watch in await self._repo.all():
            client = self._gateway.account(watch.user_id, watch.exchange, watch.account_type)
            try:
                # The cached list (kept warm for active traders): no request per ladder per
                # tick; only a part that left the book is looked up.
                resting = {o.client_order_id for o in await client.open_orders()}
                if watch.first_order in resting:
                    continue
                first = await client.fetch_order(watch.symbol, client_order_id=watch.first_order)
                held = [p for p in await client.positions(fresh=True) if p.symbol == watch.symbol]
                filled = first.status is OrderStatus.FILLED or first.filled_qty > 0
                if filled and held and held[0].side.value == watch.side:
                    await self._break_even(client, watch, held[0].mark_price)
                    moved += 1
            except ExchangeError as error:
                log.warning("ladder of %s waits: %s", watch.first_order, error)
                continue
            await self._repo.done(watch.first_order)
        return moved

    async def _break_even(self, client: AccountClient, watch: LadderWatch, mark: Decimal) -> None:
        side = PositionSide(watch.side)
        market = (await self._market.markets(watch.exchange)).get(watch.symbol)
        entry = market.round_price(watch.entry) if market else watch.entry
        in_profit = mark > entry if side is PositionSide.LONG else mark < entry
        if not in_profit:
            return  # back through the entry already: a stop there would close it at once
        stop = TradingStop(watch.symbol, side, stop_loss=entry)
        await client.set_trading_stop(stop)
