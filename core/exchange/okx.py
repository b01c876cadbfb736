"""OKX's quirks over the generic ccxt client.

Swaps are sized in contracts (BTC-USDT-SWAP: 0.01 BTC each); the generic client converts
with ccxt's `contractSize`, so nothing here needs to. A finished order's `clOrdId` is
accepted again, so each placement is preceded by a lookup (`ids_free_after_fill`). An
account in long/short position mode, or in the spot-only simple mode, is told what to
change at /connect. The venue table (`core.exchange.venues`) names this class for OKX.
"""

from __future__ import annotations

from typing import Any

from core.exchange.ccxt_client import CcxtClient, Page
from core.exchange.errors import AccountSetupRequired
from core.exchange.key_info import KeyInfo

SIMPLE_MODE = "1"  # OKX account level 1: spot only, no swaps
PAGE = 100  # pending orders per page, OKX's maximum


class OkxClient(CcxtClient):
    """An OKX account through ccxt: USDT swaps, net position mode."""

    ids_free_after_fill = True

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
