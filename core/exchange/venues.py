"""The venues Tradewind trades on and their quirks, without importing ccxt.

Bybit, Binance USDⓈ-M and OKX, linear USDT perpetuals. Importing ccxt costs ~70 MB of
memory, so this table is all a paper-only process ever loads; `core.exchange.ccxt_client`
is imported on the first real-exchange client. The exchange lists of the configuration
(`LIVE_EXCHANGES`, `KNOWN_EXCHANGES`) derive from this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PAPER = "paper"  # the embedded paper exchange: no venue, no ccxt


def title(exchange: str) -> str:
    """The venue's display name: bybit → Bybit."""
    venue = VENUES.get(exchange)
    return venue.title if venue is not None else exchange.capitalize()


@dataclass(slots=True, frozen=True)
class Venue:
    name: str
    title: str
    ccxt_id: str
    account_types: tuple[str, ...]
    needs_passphrase: bool = False
    rate_per_s: float = 20.0  # our shared per-IP budget for this venue
    options: Mapping[str, Any] = field(default_factory=dict)
    # Parameters ccxt needs to scope account-wide reads to linear USDT perpetuals.
    linear_params: Mapping[str, Any] = field(default_factory=dict)
    # ccxt's demo-trading switch does not reach this venue's demo: it is the sandbox.
    demo_in_sandbox: bool = False
    # The client class, imported with ccxt on first use: the venue's quirks live there.
    client: str = "core.exchange.ccxt_client.CcxtClient"


VENUES: dict[str, Venue] = {
    "bybit": Venue(
        name="bybit",
        title="Bybit",
        ccxt_id="bybit",
        account_types=("live", "demo", "testnet"),
        rate_per_s=100.0,  # Bybit allows 600 requests / 5 s per IP
        options={
            "defaultType": "swap",
            "defaultSubType": "linear",
            "defaultSettle": "USDT",
            "fetchMarkets": {"types": ["linear"]},
            # Unified trading account: skips two account-probe requests per new client.
            "enableUnifiedAccount": True,
            "enableUnifiedMargin": False,
        },
        linear_params={"subType": "linear", "settleCoin": "USDT"},
        client="core.exchange.bybit.BybitClient",
    ),
    "binance": Venue(
        name="binance",
        title="Binance",
        ccxt_id="binanceusdm",
        account_types=("live", "demo", "testnet"),
        rate_per_s=30.0,  # 2,400 request weight per minute per IP
        options={
            "defaultType": "future",
            "fetchMarkets": {"types": ["linear"]},
            # Open orders across the account are one request (weight 40), not one per symbol.
            "warnOnFetchOpenOrdersWithoutSymbol": False,
        },
        client="core.exchange.binance.BinanceClient",
    ),
    "okx": Venue(
        name="okx",
        title="OKX",
        ccxt_id="okx",
        account_types=("live", "demo"),
        needs_passphrase=True,
        demo_in_sandbox=True,
        rate_per_s=30.0,
        options={"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}},
        linear_params={"instType": "SWAP"},
        client="core.exchange.okx.OkxClient",
    ),
}

LIVE_EXCHANGES = tuple(VENUES)
KNOWN_EXCHANGES = (PAPER, *LIVE_EXCHANGES)
