"""OKX's quirks over the generic ccxt client.

Swaps are sized in contracts (BTC-USDT-SWAP: 0.01 BTC each); the generic client converts
with ccxt's `contractSize`, so nothing here needs to. A finished order's `clOrdId` is
accepted again, so each placement is preceded by a lookup (`ids_free_after_fill`). An
account in long/short position mode, or in the spot-only simple mode, is told what to
change at /connect. The venue table (`core.exchange.venues`) names this class for OKX.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.exchange import ccxt_parse as parse
from core.exchange.ccxt_client import CcxtClient, Page
from core.exchange.errors import AccountSetupRequired
from core.exchange.key_info import KeyInfo
from core.exchange.models import Fill, PagedList, Side

SIMPLE_MODE = "1"  # OKX account level 1: spot only, no swaps
PAGE = 100  # pending orders per page, OKX's maximum


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
        found = [f for f in parsed if f is not None]
        return PagedList(sorted(found[::-1], key=lambda f: f.ts), complete)

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
        )

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
