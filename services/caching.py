"""The trader-facing caches: names, TTLs and the key convention, in one place.

Keys are `"{user_id}:{exchange}:{account_type}"` for per-account data (balance, positions,
orders), which only the account client (`services.account_client`) reads and drops; the
warmer reloads the same entries. Market-wide entries are keyed by exchange.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.cache import CacheLayer


@dataclass(slots=True, frozen=True)
class CacheSpec:
    name: str
    ttl: float
    maxsize: int


TICKERS = CacheSpec("tickers", 5, 16)  # one entry per exchange: the whole market
BALANCE = CacheSpec("balance", 15, 50_000)
POSITIONS = CacheSpec("positions", 10, 50_000)
ORDERS = CacheSpec("orders", 10, 50_000)
ACCOUNTS = CacheSpec("accounts", 60, 50_000)  # the active account and its credentials
STRATEGY = CacheSpec("strategy", 600, 50_000)  # parsed settings; saving invalidates
PER_ACCOUNT = (BALANCE, POSITIONS, ORDERS)


def define_trader_caches(layer: CacheLayer) -> None:
    for spec in (TICKERS, BALANCE, POSITIONS, ORDERS, ACCOUNTS, STRATEGY):
        layer.define(spec.name, spec.ttl, spec.maxsize)


def account_key(user_id: int, exchange: str, account_type: str) -> str:
    return f"{user_id}:{exchange}:{account_type}"
