"""A local fake Bybit v5 exchange for tests and benchmarks.

    async with ExchangeServer(symbols=30, seed=1) as server:
        server.add_account("key", "secret", balance_usdt=Decimal("10000"))
        exchange = server.ccxt("key", "secret")  # real ccxt.async_support.bybit
        try:
            await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
            server.set_price("BTCUSDT", "66000")
            server.faults.add(path="/v5/order/create", kind=FaultKind.ACCEPT_THEN_DROP)
        finally:
            await exchange.close()

See ``ccxt_support`` for how ccxt is pointed at the server and ``faults`` for fault kinds.
"""

from .ccxt_support import URL_KEYS, bybit_url_overrides, make_ccxt_bybit
from .engine import MAKER_FEE, TAKER_FEE, Engine
from .faults import Fault, FaultKind, FaultPlan, Stats, TokenBucket
from .market import FULL_SYMBOL_COUNT, LARGE_SYMBOL_COUNT, Instrument, MarketData
from .models import Account, BybitError, Order, Position
from .server import HOST, ExchangeServer

__all__ = [
    "FULL_SYMBOL_COUNT",
    "HOST",
    "LARGE_SYMBOL_COUNT",
    "MAKER_FEE",
    "TAKER_FEE",
    "URL_KEYS",
    "Account",
    "BybitError",
    "Engine",
    "ExchangeServer",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "Instrument",
    "MarketData",
    "Order",
    "Position",
    "Stats",
    "TokenBucket",
    "bybit_url_overrides",
    "make_ccxt_bybit",
]
