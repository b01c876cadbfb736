"""Market data as traders meet it: symbols they type, and prices (one cached call per market)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from core.errors import InvalidInput
from core.exchange.models import Market, Ticker
from core.exchange.venues import title
from services.exchanges import ExchangeGateway


class SymbolNotFound(InvalidInput):
    """The typed symbol is not listed; `suggestions` are the nearest listed ones."""

    def __init__(self, text: str, exchange: str, suggestions: list[str]) -> None:
        self.suggestions = suggestions
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"{text} is not listed on {title(exchange)}.{hint}")


class MarketService:
    """Resolves symbols and serves tickers from the gateway's shared tape."""

    def __init__(self, gateway: ExchangeGateway) -> None:
        self._gateway = gateway

    async def markets(self, exchange: str) -> Mapping[str, Market]:
        """Tradable markets of an exchange (paper: the configured paper market)."""
        if exchange == "paper":
            source = await self._gateway.paper_source()
            return {s: m for s, m in source.markets().items() if m.active}
        venue = self._gateway.venue(exchange)
        await venue.public()
        return venue.markets()

    async def tickers(self, exchange: str) -> Mapping[str, Ticker]:
        """Every ticker of the market, from at most one request per TTL for everybody."""
        return await self._gateway.tickers(exchange)

    async def ticker(self, exchange: str, symbol: str) -> Ticker:
        found = (await self.tickers(exchange)).get(symbol)
        if found is None:
            raise InvalidInput(f"{symbol} has no price on {title(exchange)} right now")
        return found

    async def resolve(self, exchange: str, text: str) -> Market:
        """`BTC`, `btcusdt`, `BTC/USDT` or `BTC/USDT:USDT` → the listed linear perpetual."""
        return lookup(await self.markets(exchange), exchange, text)


def lookup(markets: Mapping[str, Market], exchange: str, text: str) -> Market:
    """Find a typed symbol in a market table (fetch the table once to look up many)."""
    wanted = text.strip().upper()
    for candidate in _spellings(wanted):
        if candidate in markets:
            return markets[candidate]
    for market in markets.values():
        if market.exchange_id.upper() == wanted:
            return market
    raise SymbolNotFound(text.strip()[:30], exchange, _nearest(wanted, markets))


def _spellings(text: str) -> list[str]:
    base = text.split("/")[0].split(":")[0]
    if "/" not in text and base.endswith("USDT") and len(base) > 4:
        base = base[: -len("USDT")]
    return [text, f"{base}/USDT:USDT"]


def _nearest(text: str, markets: Mapping[str, Market], limit: int = 3) -> list[str]:
    base = _spellings(text)[1].split("/")[0]
    bases = {m.base: m.base for m in markets.values()}
    return difflib.get_close_matches(base, list(bases), n=limit, cutoff=0.5)
