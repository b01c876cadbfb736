"""OKX's quirks over the generic ccxt client.

Swaps are sized in contracts (BTC-USDT-SWAP: 0.01 BTC each); the generic client converts
with ccxt's `contractSize`, so nothing here needs to. A finished order's `clOrdId` is
accepted again, so each placement is preceded by a lookup (`ids_free_after_fill`). The
venue table (`core.exchange.venues`) names this class for OKX.
"""

from __future__ import annotations

from core.exchange.ccxt_client import CcxtClient


class OkxClient(CcxtClient):
    """An OKX account through ccxt: USDT swaps, net position mode."""

    ids_free_after_fill = True
