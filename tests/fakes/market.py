"""A market whose prices only move when a test says so."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from core.clock import Clock
from core.exchange.errors import InvalidOrder
from core.exchange.models import Candle, Market, Ticker


def make_market(
    base: str, tick: str, lot: str, max_leverage: int, *, active: bool = True
) -> Market:
    return Market(
        symbol=f"{base}/USDT:USDT",
        exchange_id=f"{base}USDT",
        base=base,
        quote="USDT",
        settle="USDT",
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        min_qty=Decimal(lot),
        min_notional=Decimal(5),
        max_leverage=max_leverage,
        active=active,
    )


BTC, ETH, TINY = "BTC/USDT:USDT", "ETH/USDT:USDT", "TINY/USDT:USDT"
DEFAULT_MARKETS = (
    make_market("BTC", "0.1", "0.001", 100),
    make_market("ETH", "0.01", "0.01", 50),
    make_market("TINY", "0.0001", "1", 20),
)


class FakeMarketSource:
    """Implements `core.paper.market_source.MarketSource`; `set_price` moves one symbol."""

    def __init__(self, clock: Clock, markets: Iterable[Market] = DEFAULT_MARKETS) -> None:
        self._clock = clock
        self._markets = {m.symbol: m for m in markets}
        self._prices = {symbol: Decimal(1) for symbol in self._markets}

    def set_price(self, symbol: str, price: Decimal | str | int) -> None:
        self._prices[symbol] = Decimal(price)

    def delist(self, symbol: str) -> None:
        market = self._markets[symbol]
        self._markets[symbol] = make_market(
            market.base, str(market.tick_size), str(market.lot_size), market.max_leverage,
            active=False,
        )  # fmt: skip

    def markets(self) -> dict[str, Market]:
        return dict(self._markets)

    def tickers(self) -> dict[str, Ticker]:
        return {s: self.ticker(s) for s, m in self._markets.items() if m.active}

    def ticker(self, symbol: str) -> Ticker:
        market = self._markets.get(symbol)
        if market is None or not market.active:
            raise InvalidOrder("paper", f"unknown symbol {symbol}")
        price = self._prices[symbol]
        return Ticker(
            symbol, price, price, price, price, price, price, Decimal(0), Decimal(0), Decimal(0),
            self._clock.now(),
        )  # fmt: skip

    def ohlcv(self, symbol: str, timeframe: str = "1m", limit: int = 100) -> list[Candle]:
        price = self.ticker(symbol).last
        ts = int(self._clock.now().timestamp()) // 60 * 60_000
        return [Candle(ts, price, price, price, price, Decimal(0))]
