"""OKX's quirks over the generic ccxt client.

Swaps are sized in contracts (BTC-USDT-SWAP: 0.01 BTC each); the generic client converts
with ccxt's `contractSize`, so nothing here needs to. A finished order's `clOrdId` is
accepted again, so each placement is preceded by a lookup (`ids_free_after_fill`). An
account in long/short position mode, or in the spot-only simple mode, is told what to
change at /connect. The venue table (`core.exchange.venues`) names this class for OKX.

OKX keeps no TP/SL on a position: each is an algo order (`core.exchange.okx_algos`), the
ones attached to an entry as well as a whole-position one (`closeFraction`). A position's
levels are read from the pending algos, and a change replaces them with one whole-position
algo. The order an algo sends has no `clOrdId`, so its fills name no trigger: they are
matched to the algo history's `ordId` (`actualSide` tp/sl), one paged read per catch-up
that found such closes. Liquidation is in the fill's own `subType`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.exchange import ccxt_parse as parse
from core.exchange import okx_algos as algos
from core.exchange.ccxt_client import CcxtClient, Page
from core.exchange.errors import AccountSetupRequired, ExchangeError, InvalidOrder
from core.exchange.ids import PREFIX, client_order_id
from core.exchange.key_info import KeyInfo
from core.exchange.models import Fill, PagedList, Position, Side, TradingStop, unexplained_close

SIMPLE_MODE = "1"  # OKX account level 1: spot only, no swaps
PAGE = 100  # pending orders per page, OKX's maximum
ALGO_PREFIX = "tpsl"  # our whole-position algos' algoClOrdId


class OkxClient(CcxtClient):
    """An OKX account through ccxt: USDT swaps, net position mode."""

    ids_free_after_fill = True

    async def fetch_fills(self, since: datetime | None = None) -> PagedList[Fill]:
        """Fills from `/api/v5/trade/fills-history` (three months), 100 a page, each page
        older than the last one's `billId`, oldest first. `fillPnl` is OKX's realised PnL
        of the fill, before fees: the ledger needs no closed-position record (OKX's
        positions-history names no order to match one to)."""
        request: dict[str, Any] = {"instType": "SWAP", "limit": str(PAGE)}
        if since is not None:
            request["begin"] = str(int(since.timestamp() * 1000))

        async def page(cursor: str | None) -> Page:
            asked = {**request, **({"after": cursor} if cursor else {})}
            answer = await self.api.privateGetTradeFillsHistory(asked)
            rows = answer.get("data") or []
            following = str(rows[-1]["billId"]) if len(rows) == PAGE else None
            return rows, following

        rows, complete = await self._read_pages("fetch_fills", page)
        if not self._venue.symbols_by_id():
            await self.load_markets()
        names = self._venue.symbols_by_id()
        parsed = (self._okx_fill(row, names) for row in rows)
        found = await self._with_triggers([f for f in parsed if f is not None])
        return PagedList(sorted(found[::-1], key=lambda f: f.ts), complete)

    async def name_triggers(self, fills: Sequence[Fill]) -> list[Fill]:
        """A pushed OKX fill of a TP or SL names no algo (its order has no `clOrdId`): the
        same algo-history read as the REST fills get, only when such closes are there."""
        return await self._with_triggers(list(fills))

    async def _with_triggers(self, fills: list[Fill]) -> list[Fill]:
        """Name the TP or SL that sent the closes of orders Tradewind did not place: one
        read of the algo history, paged until every such order is found (or to its end).
        A failed read fails the whole read of fills, so the catch-up tries again rather
        than log a TP as a close made on the exchange."""
        wanted = {f.order_id for f in fills if unexplained_close(f)}
        if not wanted:
            return fills
        request = {"ordType": algos.KINDS, "state": "effective", "instType": "SWAP"}
        request["limit"] = str(PAGE)
        sides: dict[str, str] = {}

        async def page(cursor: str | None) -> Page:
            asked = {**request, **({"after": cursor} if cursor else {})}
            answer = await self.api.privateGetTradeOrdersAlgoHistory(asked)
            rows = answer.get("data") or []
            sides.update(algos.sent_orders(rows))
            done = wanted <= sides.keys()
            following = str(rows[-1]["algoId"]) if len(rows) == PAGE and not done else None
            return rows, following

        await self._read_pages("fetch_fills", page)
        named = {order_id: sides[order_id] for order_id in wanted & sides.keys()}
        return [replace(f, trigger=named[f.order_id]) if f.order_id in named else f for f in fills]

    def _okx_fill(self, row: Mapping[str, Any], names: Mapping[str, str]) -> Fill | None:
        symbol = names.get(str(row.get("instId")))
        stamp = parse.utc(row.get("ts"))
        if symbol is None or stamp is None:
            return None
        return Fill(
            fill_id=str(row.get("tradeId")),  # ccxt's trade id, as the streams name it too
            order_id=str(row.get("ordId") or ""),
            client_order_id=str(row.get("clOrdId") or "") or None,
            symbol=symbol,
            side=Side.BUY if row.get("side") == "buy" else Side.SELL,
            price=parse.dec0(row.get("fillPx")),
            qty=parse.dec0(row.get("fillSz")) * self._contract_size(symbol),
            fee=-parse.dec0(row.get("fee")),  # OKX counts a fee paid as negative
            fee_currency=str(row.get("feeCcy") or "USDT"),
            ts=stamp,
            realised_pnl=parse.dec(row.get("fillPnl")),
            reduce_only=algos.closing(row.get("subType")),
            trigger=algos.LIQUIDATION if algos.liquidated(row.get("subType")) else None,
        )

    async def fetch_positions(self) -> PagedList[Position]:
        """Positions with the TP/SL of their pending algos, read once for all held symbols
        (a flat account costs no request)."""
        positions = await super().fetch_positions()
        if not positions:
            return positions
        found = algos.levels(await self._pending_algos(None))
        held = []
        for position in positions:
            tp, sl = found.get(self._inst_id(position.symbol), (None, None))
            held.append(replace(position, take_profit=tp, stop_loss=sl))
        return PagedList(held, positions.complete)

    async def set_trading_stop(self, stop: TradingStop) -> None:
        """An open position's TP/SL as one whole-position algo (`closeFraction` 1, market
        legs): the symbol's pending TP/SL algos are read, the asked levels replace theirs
        (zero removes one), those algos are cancelled (OKX holds one whole-position algo
        per position) and the new one placed. A placement OKX refuses puts the levels
        back as they were, then raises. OKX's trailing algo is not used: the bot keeps a
        trailing stop, as on Binance."""
        if stop.trailing_distance:
            raise InvalidOrder(
                self.exchange, "OKX trailing stops are kept by the bot, not on the position."
            )
        inst = self._inst_id(stop.symbol)
        pending = await self._pending_algos(inst)
        was = algos.levels(pending).get(inst, (None, None))
        tp, sl = algos.level(was[0], stop.take_profit), algos.level(was[1], stop.stop_loss)
        for batch in algos.cancel_batches(pending):
            await self.call(
                "set_trading_stop",
                lambda b=batch: self.api.privatePostTradeCancelAlgos(b),  # type: ignore[misc]
                retry=False,
            )
        closing = stop.side.closing_side.value
        try:
            await self._protect_whole(inst, closing, tp, sl)
        except ExchangeError:
            if pending:
                await self._protect_whole(inst, closing, *was)
            raise

    async def _protect_whole(
        self, inst: str, side: str, tp: Decimal | None, sl: Decimal | None
    ) -> None:
        if tp is None and sl is None:
            return
        # Not Tradewind's order prefix: should OKX hand this id on to the order the algo
        # sends, its close must still be looked up in the algo history, not taken as ours.
        cid = ALGO_PREFIX + client_order_id("tpsl", inst, time.time_ns())[len(PREFIX) :][:28]
        request = algos.whole_position(inst, side, tp, sl, cid)
        await self.call(
            "set_trading_stop", lambda: self.api.privatePostTradeOrderAlgo(request), retry=False
        )

    async def _pending_algos(self, inst: str | None) -> list[dict[str, Any]]:
        """The account's pending TP/SL algos (of one instrument, or all), every page."""
        request = {"ordType": algos.KINDS, "instType": "SWAP", "limit": str(PAGE)}
        if inst:
            request["instId"] = inst

        async def page(cursor: str | None) -> Page:
            asked = {**request, **({"after": cursor} if cursor else {})}
            answer = await self.api.privateGetTradeOrdersAlgoPending(asked)
            rows = answer.get("data") or []
            return rows, str(rows[-1]["algoId"]) if len(rows) == PAGE else None

        rows, _complete = await self._read_pages("fetch_open_orders", page)
        return rows

    def _inst_id(self, symbol: str) -> str:
        market = self._venue.markets().get(symbol)
        return market.exchange_id if market else str(self.api.market_id(symbol))

    async def _orders_page(
        self, symbol: str | None, params: dict[str, Any], cursor: str | None
    ) -> Page:
        """One page of pending orders, 100 a page, each after the last one's `ordId` (ccxt's
        own paging walks back in time, which pending orders cannot be filtered by)."""
        request = {"instType": "SWAP", "limit": str(PAGE)}
        if symbol:
            request["instId"] = self.api.market_id(symbol)
        if cursor:
            request["after"] = cursor
        answer = await self.api.privateGetTradeOrdersPending(request)
        rows = answer.get("data") or []
        following = str(rows[-1]["ordId"]) if len(rows) == PAGE else None
        return self.api.parse_orders(rows), following

    async def check_account(self) -> None:
        """Tradewind sends no `posSide`: a long/short mode account refuses its orders."""
        mode = await self.call("fetch_position_mode", lambda: self.api.fetch_position_mode())
        if (mode.get("info") or {}).get("acctLv") == SIMPLE_MODE:
            raise AccountSetupRequired(
                self.exchange,
                "Your OKX account is in Simple mode, which cannot trade swaps. Switch the "
                "account mode to Single-currency margin (Trade → Settings → Account mode), "
                "then /connect again.",
            )
        if mode.get("hedged"):
            raise AccountSetupRequired(
                self.exchange,
                "Your OKX account uses Long/short position mode; Tradewind trades in Net "
                "mode. Switch it in Trade → Settings → Position mode (with no open positions "
                "or orders), then /connect again.",
            )

    async def fetch_key_info(self) -> KeyInfo:
        """`GET /api/v5/account/config`: the key's `perm` and its bound `ip` addresses."""
        answer = await self.call("fetch_key_info", lambda: self.api.privateGetAccountConfig())
        rows = answer.get("data") or [{}]
        return key_info_from_okx(rows[0])


def key_info_from_okx(row: dict[str, Any]) -> KeyInfo:
    """`perm` is e.g. "read_only,trade,withdraw"; `ip` is the bound addresses, "" for none
    (an answer without the field claims nothing about them)."""
    perms = {p.strip() for p in str(row.get("perm") or "").split(",")}
    ip = row.get("ip")
    return KeyInfo(
        reported=True,
        can_trade="trade" in perms,
        can_withdraw="withdraw" in perms,
        ip_restricted=ip is None or bool(str(ip).strip()),
    )
