"""Binance USDⓈ-M's quirks over the generic ccxt client.

- A client order id is unique among *open* orders only: once an order filled, Binance
  accepts its id again and places a second order. Tradewind's ids are deterministic, so a
  resend must never reach Binance while the first order exists: an id already used is an
  `UnknownOutcome` (resolved by lookup), as Bybit's and OKX's own refusals are.
- No TP/SL rides on an order: ccxt would pass `takeProfit`/`stopLoss` through unread, and
  Binance refuses unread parameters (-1104). They are placed after the entry as
  whole-position TAKE_PROFIT_MARKET / STOP_MARKET conditional orders, replacing the
  symbol's earlier ones. Those outlive their position (and one's firing leaves the other),
  so a close that leaves the symbol flat cancels them, and so does an entry on a flat symbol.
- Order answers carry no fee: a filled order's fee is read from its trades.
- Position risk v3 carries no leverage: it is notional ÷ initial margin.
- Trades are read per symbol only: the symbols traded since a time come from the income
  history (a commission row per trade), then each one's trades, with Binance's
  `realizedPnl` (before fees) on every fill.
- A trade names neither its order's client id nor its type, so a close by a take profit,
  a stop or liquidation would read as one the trader made on the exchange. For each
  symbol with closing trades, the orders are read once (`/fapi/v1/allOrders` from the
  oldest closing order on, following its `orderId` cursor until all of them are seen):
  their client ids, and what sent them (`order_trigger`).
- Error codes are read with ccxt's USDⓈ-M table whatever host answers: ccxt picks the table
  by URL, and only the production, testnet and demo hosts name the futures API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient
from core.exchange.errors import AccountSetupRequired, ExchangeError, InvalidOrder
from core.exchange.ids import client_order_id
from core.exchange.key_info import KeyInfo
from core.exchange.models import (
    ZERO,
    Fill,
    Order,
    OrderRequest,
    PagedList,
    Position,
    Side,
    TradingStop,
)

log = logging.getLogger(__name__)

INCOME_PAGE = 1000  # the most /fapi/v1/income serves at once
TRADE_PAGE = 1000  # the most /fapi/v1/userTrades serves at once
ORDER_PAGE = 1000  # the most /fapi/v1/allOrders serves at once
# Order types Binance fires on its own once a price is crossed. TAKE_PROFIT_MARKET and
# STOP_MARKET are the whole-position orders Tradewind places; the others a trader may
# place in Binance's app. A trailing stop is a stop that moved.
_TRIGGERS = {
    "TAKE_PROFIT_MARKET": "take_profit",
    "TAKE_PROFIT": "take_profit",
    "STOP_MARKET": "stop_loss",
    "STOP": "stop_loss",
    "TRAILING_STOP_MARKET": "stop_loss",
    "LIQUIDATION": "liquidation",
}
# Client order ids Binance gives the orders of its liquidation engine.
_LIQUIDATION_IDS = ("autoclose-", "adl_autoclose")


class BinanceClient(CcxtClient):
    """A Binance USDⓈ-M account through ccxt."""

    @classmethod
    def configure(cls, api: Any) -> None:
        table = api.exceptions.get("linear") or {}

        def linear_errors(url: str, exact_or_broad: str) -> Any:
            return table.get(exact_or_broad, {})

        api.get_exceptions_by_url = linear_errors

    ids_free_after_fill = True
    order_page = ORDER_PAGE  # orders asked per allOrders page

    async def create_order(self, request: OrderRequest) -> Order:
        cleared = False
        if not request.reduce_only and not await self._holds(request.symbol):
            # A flat symbol may still have the TP/SL of its last position (one leg fired,
            # the other stayed): they would close this one at the old levels.
            await self._cancel_protection(request.symbol)
            cleared = True
        entry = replace(request, take_profit=None, stop_loss=None)
        placed = await self._with_fee(await super().create_order(entry))
        if request.reduce_only:
            await self._unprotect_if_flat(request.symbol)
        if request.take_profit is None and request.stop_loss is None:
            return placed
        if not cleared:
            await self._cancel_protection(request.symbol)  # new levels replace the old ones
        return await self._protect(request, placed)

    async def _holds(self, symbol: str) -> bool:
        return any(p.symbol == symbol for p in await self.fetch_positions())

    async def _cancel_protection(self, symbol: str) -> None:
        await self.call(
            "cancel_order",
            lambda: self.api.cancel_all_orders(symbol, {"trigger": True}),
            retry=False,
        )

    async def _unprotect_if_flat(self, symbol: str) -> None:
        """A closed position's TP/SL orders stay on Binance and would close the next
        position on the symbol at the old levels: cancel them once it is flat. A failure
        here is logged, not raised: the close itself went through."""
        try:
            if not await self._holds(symbol):
                await self._cancel_protection(symbol)
        except ExchangeError as error:
            log.warning("could not clear Binance TP/SL orders of %s: %s", symbol, error)

    async def _protect(self, request: OrderRequest, placed: Order) -> Order:
        """Attach TP/SL as whole-position conditional orders; a level Binance refuses is
        left off the returned order, so the caller sees the position unprotected there."""
        closing = Side.SELL if request.side is Side.BUY else Side.BUY
        levels = {}
        for key, price, suffix in (
            ("takeProfitPrice", request.take_profit, "tp"),
            ("stopLossPrice", request.stop_loss, "sl"),
        ):
            if price is None:
                continue
            params = {
                key: float(price),
                "closePosition": True,
                "clientOrderId": request.client_order_id + suffix,
            }
            try:
                await self.call(
                    "create_order",
                    lambda p=params: self.api.create_order(  # type: ignore[misc]
                        request.symbol, "market", closing.value, None, None, p
                    ),
                    retry=False,
                )
            except ExchangeError as error:
                log.warning("Binance refused the %s of %s: %s", suffix, placed.order_id, error)
                continue
            levels[suffix] = price
        return replace(placed, take_profit=levels.get("tp"), stop_loss=levels.get("sl"))

    async def set_trading_stop(self, stop: TradingStop) -> None:
        """An open position's TP/SL as whole-position conditional orders: the symbol's
        current ones are read, the asked levels replace theirs (zero removes one), and the
        set is placed anew. Binance has no position-level trailing stop (the bot keeps one)."""
        if stop.trailing_distance:
            raise InvalidOrder(
                self.exchange, "Binance has no position-level trailing stop; the bot keeps one."
            )
        current = await self._protection(stop.symbol)
        wanted = {
            "tp": _level(current.get("tp"), stop.take_profit),
            "sl": _level(current.get("sl"), stop.stop_loss),
        }
        await self._cancel_protection(stop.symbol)
        cid = client_order_id("tpsl", stop.symbol, time.time_ns())
        closing = stop.side.closing_side
        for suffix, key in (("tp", "takeProfitPrice"), ("sl", "stopLossPrice")):
            price = wanted[suffix]
            if price is None:
                continue
            params = {key: float(price), "closePosition": True, "clientOrderId": cid + suffix}
            await self.call(
                "create_order",
                lambda p=params: self.api.create_order(  # type: ignore[misc]
                    stop.symbol, "market", closing.value, None, None, p
                ),
                retry=False,
            )

    async def _protection(self, symbol: str) -> dict[str, Decimal]:
        """The symbol's resting TP/SL conditional orders, by kind."""
        request = {"symbol": self.api.market_id(symbol)}
        rows = await self.call(
            "fetch_open_orders", lambda: self.api.fapiPrivateGetOpenAlgoOrders(request)
        )
        kinds = {"TAKE_PROFIT_MARKET": "tp", "STOP_MARKET": "sl"}
        return {
            kinds[row["orderType"]]: Decimal(str(row["triggerPrice"]))
            for row in rows or []
            if row.get("orderType") in kinds
        }

    async def _lookup(
        self, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> Order:
        return await self._with_fee(await super()._lookup(symbol, order_id, client_order_id))

    async def _with_fee(self, order: Order) -> Order:
        if order.filled_qty == 0 or order.fee:
            return order
        trades = await self.call(
            "fetch_my_trades",
            lambda: self.api.fetch_my_trades(order.symbol, None, None, {"orderId": order.order_id}),
        )
        fee = sum((parse.dec0((t.get("fee") or {}).get("cost")) for t in trades), Decimal(0))
        return replace(order, fee=fee)

    async def fetch_fills(self, since: datetime | None = None) -> PagedList[Fill]:
        """Every trade since `since`: the symbols from the income history, then each
        symbol's trades (oldest first, following `fromId`), oldest first overall."""
        ms = None if since is None else int(since.timestamp() * 1000)
        symbols, complete = await self._traded_symbols(ms)
        fills: list[Fill] = []
        for symbol in sorted(symbols):
            found, whole = await self._trades_of(symbol, ms)
            labelled, named = await self._labelled(symbol, found)
            fills += labelled
            complete = complete and whole and named
        unique = {f.fill_id: f for f in fills}
        return PagedList(sorted(unique.values(), key=lambda f: f.ts), complete)

    async def _traded_symbols(self, ms: int | None) -> tuple[set[str], bool]:
        request: dict[str, Any] = {"incomeType": "COMMISSION", "limit": INCOME_PAGE}

        async def page(cursor: str | None) -> Any:
            start = cursor or (None if ms is None else str(ms))
            asked = {**request, **({"startTime": start} if start else {})}
            rows = await self.api.fapiPrivateGetIncome(asked)
            following = str(rows[-1]["time"]) if len(rows) == INCOME_PAGE else None
            return rows, following

        rows, complete = await self._read_pages("fetch_fills", page)
        if not self._venue.symbols_by_id():
            await self.load_markets()
        names = self._venue.symbols_by_id()
        return {names[r["symbol"]] for r in rows if r.get("symbol") in names}, complete

    async def _trades_of(self, symbol: str, ms: int | None) -> tuple[list[Fill], bool]:
        async def page(cursor: str | None) -> Any:
            params: dict[str, Any] = {"fromId": cursor} if cursor else {}
            since = None if cursor else ms
            rows = await self.api.fetch_my_trades(symbol, since, TRADE_PAGE, params)
            following = str(int(rows[-1]["id"]) + 1) if len(rows) == TRADE_PAGE else None
            return rows, following

        rows, complete = await self._read_pages("fetch_fills", page)
        return [parse.fill(t) for t in rows], complete

    async def _labelled(self, symbol: str, fills: list[Fill]) -> tuple[list[Fill], bool]:
        """The fills with their orders' client ids and triggers, read when some of them
        closed (`realizedPnl` not zero: an opening trade has none); True when every
        closing order was found."""
        wanted = {f.order_id for f in fills if f.realised_pnl}
        if not wanted:
            return fills, True
        orders, complete = await self._orders_of(symbol, wanted)
        labelled = [_with_order(f, orders.get(f.order_id)) for f in fills]
        return labelled, complete and wanted <= orders.keys()

    async def _orders_of(
        self, symbol: str, wanted: set[str]
    ) -> tuple[dict[str, dict[str, Any]], bool]:
        """The symbol's orders from the oldest of `wanted` on (Binance's ids rise with
        time), page after page until all of `wanted` are seen: one request in the usual
        case, whatever the number of fills."""
        request = {"symbol": self.api.market_id(symbol), "limit": self.order_page}
        start = str(min(int(order_id) for order_id in wanted))
        orders: dict[str, dict[str, Any]] = {}

        async def page(cursor: str | None) -> Any:
            rows = await self.api.fapiPrivateGetAllOrders({**request, "orderId": cursor or start})
            orders.update((str(row["orderId"]), row) for row in rows)
            done = len(rows) < self.order_page or wanted <= orders.keys()
            return rows, None if done else str(int(rows[-1]["orderId"]) + 1)

        _, complete = await self._read_pages("fetch_fills", page)
        return orders, complete

    async def check_account(self) -> None:
        """Tradewind trades one-way: a Hedge Mode account refuses its orders (-4061)."""
        mode = await self.call("fetch_position_mode", lambda: self.api.fetch_position_mode())
        if mode.get("hedged"):
            raise AccountSetupRequired(
                self.exchange,
                "Your Binance futures account is in Hedge Mode; Tradewind trades in One-way "
                "Mode. Switch it in Binance Futures → Preferences → Position Mode (with no "
                "open positions or orders), then /connect again.",
            )

    async def fetch_key_info(self) -> KeyInfo:
        """`GET /sapi/v1/account/apiRestrictions` (the spot API's host: the testnet and demo
        hosts have none, and their keys are then reported as unknown)."""
        answer = await self.call("fetch_key_info", lambda: self.api.sapiGetAccountApiRestrictions())
        return key_info_from_binance(answer)

    async def fetch_positions(self) -> PagedList[Position]:
        """Binance answers every position at once; leverage is derived (see `_leverage`)."""
        raw = await self.call("fetch_positions", lambda: self.api.fetch_positions())
        found = [parse.position({**p, "leverage": _leverage(p)}) for p in raw]
        positions = [p for p in found if p is not None]
        for position in positions:
            self._leverage[position.symbol] = position.leverage
        return PagedList(await self._with_levels(positions))

    async def _with_levels(self, positions: list[Position]) -> list[Position]:
        """Binance positions carry no TP/SL: they are the account's conditional orders,
        read once for all held symbols (a flat account costs no request)."""
        if not positions:
            return positions
        rows = await self.call(
            "fetch_open_orders", lambda: self.api.fapiPrivateGetOpenAlgoOrders({})
        )
        levels: dict[tuple[str, str], Decimal] = {}
        by_id = {self.api.market_id(p.symbol): p.symbol for p in positions}
        for row in rows or []:
            symbol = by_id.get(str(row.get("symbol")))
            kind = {"TAKE_PROFIT_MARKET": "tp", "STOP_MARKET": "sl"}.get(str(row.get("orderType")))
            if symbol is not None and kind is not None:
                levels[(symbol, kind)] = Decimal(str(row["triggerPrice"]))
        return [
            replace(
                p,
                take_profit=levels.get((p.symbol, "tp")),
                stop_loss=levels.get((p.symbol, "sl")),
            )
            for p in positions
        ]


def order_trigger(order: Mapping[str, Any]) -> str | None:
    """What sent a Binance order the trader did not place: `take_profit`, `stop_loss` or
    `liquidation` (None for an order someone placed). Read from an `allOrders` row
    (`clientOrderId`, `type`, `origType`) or from the order of a pushed ORDER_TRADE_UPDATE
    (`c`, `o`, `ot`): a fired stop's type may read MARKET, its original type stays the
    stop's."""
    cid = str(order.get("clientOrderId") or order.get("c") or "")
    if cid.startswith(_LIQUIDATION_IDS):
        return "liquidation"
    for key in ("origType", "ot", "type", "o"):
        found = _TRIGGERS.get(str(order.get(key) or ""))
        if found is not None:
            return found
    return None


def pushed_trigger(info: Mapping[str, Any]) -> str | None:
    """`order_trigger` of a ccxt.pro trade's `info` when it is Binance's pushed order
    (it carries the original order type `ot`); None for another venue's."""
    return order_trigger(info) if "ot" in info else None


def _with_order(fill: Fill, order: Mapping[str, Any] | None) -> Fill:
    if order is None:
        return fill
    cid = str(order.get("clientOrderId") or "") or None
    return replace(
        fill,
        client_order_id=fill.client_order_id or cid,
        trigger=fill.trigger or order_trigger(order),
    )


def _level(current: Decimal | None, asked: Decimal | None) -> Decimal | None:
    """None keeps the current level, zero removes it, a price replaces it."""
    if asked is None:
        return current
    return None if asked == ZERO else asked


def key_info_from_binance(answer: dict[str, Any]) -> KeyInfo:
    """USDⓈ-M orders need `enableFutures`; `enableWithdrawals` can move funds out."""
    return KeyInfo(
        reported=True,
        can_trade=bool(answer.get("enableFutures")),
        can_withdraw=bool(answer.get("enableWithdrawals")),
        ip_restricted=bool(answer.get("ipRestrict")),
    )


def _leverage(raw: dict[str, Any]) -> Any:
    if raw.get("leverage"):
        return raw["leverage"]
    info = raw.get("info") or {}
    notional = parse.dec(info.get("notional"))
    margin = parse.dec(info.get("positionInitialMargin") or info.get("initialMargin"))
    if not notional or not margin:
        return None
    return int((abs(notional) / margin).to_integral_value())
