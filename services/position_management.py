"""Managing an open position: its take profit, stop loss and trailing stop.

Changes go to the exchange as position-level levels (`ExchangeClient.set_trading_stop`:
Bybit's trading-stop, Binance's whole-position conditional orders, OKX's whole-position
algo order, the paper engine). A trailing stop is the venue's own where it has
one (Bybit `trailingStop` with `activePrice`, paper); elsewhere the bot keeps it
(`services.trailing`). A change that moves the stop loss further from the price (or removes
it) is only planned: the trader confirms it, and it is checked again then. Managing
existing exposure needs no licence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from core.errors import DomainError, InvalidInput, NotFound
from core.exchange.errors import ExchangeError
from core.exchange.models import ZERO, Market, Position, PositionSide, TradingStop
from db.repositories.intents import IntentRecord
from db.repositories.trailing import TrailingRecord
from services import position_levels as levels
from services.accounts import AccountRef, AccountService
from services.exchanges import ExchangeGateway
from services.market import MarketService
from services.strategy import StrategyService
from services.trailing import TrailingService

log = logging.getLogger(__name__)

NATIVE_TRAILING = frozenset({"bybit", "paper"})  # venues that trail a position themselves
_OFF = {"off", "none", "0", "stop", "remove", "-"}


@dataclass(slots=True, frozen=True)
class Held:
    """A position as a change sees it: the account, its market and the last price."""

    account: AccountRef
    market: Market
    position: Position
    price: Decimal


@dataclass(slots=True, frozen=True)
class StopChange:
    """A change to one position's levels: applied, or waiting for the trader's Confirm."""

    held: Held
    what: str  # tp | sl | be | remove | trail | untrail
    take_profit: Decimal | None = None  # the new level (ZERO: removed), None: unchanged
    stop_loss: Decimal | None = None
    trail_distance: Decimal | None = None
    trail_activation: Decimal | None = None
    applied: bool = True
    by_bot: bool = False  # a trailing stop the bot keeps (the venue has none)


class PositionManagementService:
    """Sets, moves and removes the TP, SL and trailing stop of a trader's open position."""

    def __init__(
        self,
        accounts: AccountService,
        gateway: ExchangeGateway,
        market: MarketService,
        strategy: StrategyService,
        trailing: TrailingService,
    ) -> None:
        self._accounts = accounts
        self._gateway = gateway
        self._market = market
        self._strategy = strategy
        self._trailing = trailing

    async def held(self, user_id: int, symbol: str, account_id: int | None = None) -> Held:
        """The trader's open position on `symbol`, fresh from the exchange, and its price."""
        account = await self._accounts.require_active(user_id)
        if account_id is not None and account_id != account.credential_id:
            raise InvalidInput(
                "This button belongs to another of your accounts; send /positions again."
            )
        market = await self._market.resolve(account.exchange, symbol)
        client = self._gateway.account(user_id, account.exchange, account.account_type)
        found = [p for p in await client.positions(fresh=True) if p.symbol == market.symbol]
        if not found:
            raise NotFound(
                f"You have no open {market.base} position on {account.label}. "
                "/positions lists yours."
            )
        # The fresh position's mark: the shared ticker snapshot may be seconds old, and a
        # level checked against an old price is refused by the venue or set on the wrong side.
        price = found[0].mark_price
        if not price:
            price = (await self._market.ticker(account.exchange, market.symbol)).last
        return Held(account, market, found[0], price)

    async def take_profit(
        self, user_id: int, symbol: str, value: str, account_id: int | None = None
    ) -> StopChange:
        """Set the take profit at a price or `+PCT%` from the last price."""
        held = await self.held(user_id, symbol, account_id)
        if value.strip().lower() in _OFF:
            return await self._apply(StopChange(held, "tp", take_profit=ZERO))
        level = levels.take_profit(value, held.position, held.price, held.market)
        return await self._apply(StopChange(held, "tp", take_profit=level))

    async def stop_loss(
        self,
        user_id: int,
        symbol: str,
        value: str,
        *,
        confirmed: bool = False,
        account_id: int | None = None,
    ) -> StopChange:
        """Set the stop loss at a price or `-PCT%`; a looser one waits for Confirm."""
        held = await self.held(user_id, symbol, account_id)
        if value.strip().lower() in _OFF:
            return await self._guarded(StopChange(held, "sl", stop_loss=ZERO), confirmed)
        level = levels.stop_loss(value, held.position, held.price, held.market)
        return await self._guarded(StopChange(held, "sl", stop_loss=level), confirmed)

    async def break_even(
        self, user_id: int, symbol: str, *, confirmed: bool = False, account_id: int | None = None
    ) -> StopChange:
        """Move the stop loss to the entry price (only while the position is in profit)."""
        held = await self.held(user_id, symbol, account_id)
        entry = held.market.round_price(held.position.entry_price)
        long = held.position.side is PositionSide.LONG
        if entry >= held.price if long else entry <= held.price:
            raise InvalidInput(
                f"{held.market.base} is at {levels.show(held.price, held.market)}, not past "
                f"your entry {levels.show(entry, held.market)}: a stop at break-even would "
                "close the position at once. Try again once it is in profit."
            )
        levels.check_stop(entry, held.position, held.price, held.market)
        return await self._guarded(StopChange(held, "be", stop_loss=entry), confirmed)

    async def remove(
        self, user_id: int, symbol: str, *, confirmed: bool = False, account_id: int | None = None
    ) -> StopChange:
        """Remove the take profit, the stop loss and any trailing stop."""
        held = await self.held(user_id, symbol, account_id)
        native = ZERO if held.position.trailing_distance else None
        change = StopChange(held, "remove", ZERO, ZERO, trail_distance=native)
        kept = await self._bot_trail(held)
        risky = levels.riskier(held.position.side, held.position.stop_loss, None)
        if (risky or native is not None or kept is not None) and not confirmed:
            return _waiting(change)
        if kept is not None:
            await self._trailing.stop(held.account, held.market.symbol)
        return await self._apply(change)

    async def trail(
        self, user_id: int, symbol: str, distance: str | None, activation: str | None = None
    ) -> StopChange:
        """Trail the stop loss by a distance (or the strategy's `trail_pct`); `off` stops."""
        held = await self.held(user_id, symbol)
        if distance is not None and distance.strip().lower() in _OFF:
            await self._untrail(held)
            return StopChange(held, "untrail", trail_distance=ZERO)
        settings = await self._strategy.settings(user_id)
        if distance is None:
            if settings.trail_pct is None:
                raise InvalidInput(
                    "You have no default trailing distance: /set trail_pct 1.5, or give one: "
                    + levels.TRAIL_USAGE
                )
            distance = f"{settings.trail_pct}%"
            if activation is None and settings.trail_activation_pct is not None:
                activation = f"+{settings.trail_activation_pct}%"
        gap = levels.trail_distance(distance, held.position, held.price, held.market)
        start = (
            None
            if activation is None
            else levels.activation(activation, held.position, held.market)
        )
        if held.account.exchange not in NATIVE_TRAILING:
            position = held.position
            await self._trailing.keep(
                held.account, held.market, position.side, gap, start, held.price,
                position.entry_price,
            )  # fmt: skip
            return StopChange(
                held, "trail", trail_distance=gap, trail_activation=start, by_bot=True
            )
        change = StopChange(held, "trail", trail_distance=gap, trail_activation=start)
        return await self._apply(change)

    async def on_opened(self, entry: IntentRecord) -> StopChange | None:
        """Trail a freshly filled entry by the trader's `trail_pct`, if they set one (and
        it is on their active account, where /trail would act)."""
        settings = await self._strategy.settings(entry.user_id)
        if settings.trail_pct is None or entry.reduce_only:
            return None
        account = await self._accounts.active(entry.user_id)
        if account is None or (account.exchange, account.account_type) != (
            entry.exchange,
            entry.account_type,
        ):
            return None
        try:
            return await self.trail(entry.user_id, entry.symbol, None)
        except (DomainError, ExchangeError) as error:
            log.warning("no trailing stop on %s: %s", entry.client_order_id, error)
            return None

    async def bot_trail(self, user_id: int, symbol: str) -> TrailingRecord | None:
        """The trailing stop the bot keeps on the trader's position, if any."""
        held = await self.held(user_id, symbol)
        return await self._bot_trail(held)

    async def _bot_trail(self, held: Held) -> TrailingRecord | None:
        if held.account.exchange in NATIVE_TRAILING:
            return None
        return await self._trailing.current(held.account, held.market.symbol)

    async def _untrail(self, held: Held) -> None:
        if held.account.exchange not in NATIVE_TRAILING:
            await self._trailing.stop(held.account, held.market.symbol)
        elif held.position.trailing_distance:
            await self._send(held, TradingStop(held.market.symbol, held.position.side,
                                               trailing_distance=ZERO))  # fmt: skip

    async def _guarded(self, change: StopChange, confirmed: bool) -> StopChange:
        """Apply a stop-loss change at once when it reduces risk, else after Confirm."""
        position = change.held.position
        new = None if change.stop_loss == ZERO else change.stop_loss
        if levels.riskier(position.side, position.stop_loss, new) and not confirmed:
            return _waiting(change)
        return await self._apply(change)

    async def _apply(self, change: StopChange) -> StopChange:
        held = change.held
        stop = TradingStop(
            held.market.symbol,
            held.position.side,
            take_profit=change.take_profit,
            stop_loss=change.stop_loss,
            trailing_distance=change.trail_distance,
            trailing_activation=change.trail_activation,
        )
        await self._send(held, stop)
        return change

    async def _send(self, held: Held, stop: TradingStop) -> None:
        account = held.account
        client = self._gateway.account(account.user_id, account.exchange, account.account_type)
        await client.set_trading_stop(stop)


def _waiting(change: StopChange) -> StopChange:
    return StopChange(
        change.held, change.what, change.take_profit, change.stop_loss,
        change.trail_distance, change.trail_activation, applied=False,
    )  # fmt: skip
