"""Bybit's linear instruments straight from the raw JSON to `Market`, without ccxt's tables.

`/v5/market/instruments-info?category=linear` lists every linear contract, 1,000 per page.
ccxt's `load_markets` turns each one into a dict of ~40 keys, deep-extends it with fee and
limit defaults and indexes it three ways; for 5,000 contracts that is about a second of CPU
and tens of MB, where the registry only needs our `Market` of each linear USDT perpetual.

`combine(parse_page(...) of every page)` equals `{s: ccxt_parse.market(m) for s, m in
api.load_markets().items() if ccxt_parse.is_linear_usdt_perp(m)}` for the same pages, field
for field and digit for digit: numbers go through float as ccxt's `safe_number` sends them
(`"0.00001"` → `1e-05` → `Decimal('0.00001')`, as the ccxt path stores it), and where one
symbol appears twice the copy ccxt would keep wins. Each page is parsed as it arrives, so
only one page of raw JSON is alive at a time.
Pinned against the installed ccxt by tests/integration/test_lean_markets.py.

This module imports no ccxt: it needs the JSON only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.exchange.ccxt_parse import dec
from core.exchange.models import Market

PAGE_LIMIT = 1000  # Bybit's maximum page size for instruments-info
# ccxt's base `commonCurrencies` (bybit adds none): currency ids it renames.
COMMON_CURRENCIES = {"XBT": "BTC", "BCHSV": "BSV"}
_SWAPS = frozenset({"LinearPerpetual", "InversePerpetual"})  # ccxt: swap = either
_TICK, _LOT, _MIN_NOTIONAL, _LEVERAGE = Decimal("0.0001"), Decimal("0.001"), Decimal(5), Decimal(20)

# Distinct number strings are few (tick sizes, steps, leverages): convert each once and let
# every market share the Decimal. Bounded so a hostile feed cannot grow it without limit.
_NUMBERS: dict[str, Decimal | None] = {}
_NUMBERS_MAX = 50_000


def page_rows(payload: Mapping[str, Any]) -> tuple[str | None, list[Any], str | None]:
    """One instruments-info response → (its category, its rows, the next page's cursor)."""
    result = payload.get("result")
    if not isinstance(result, Mapping):
        return None, [], None
    rows = result.get("list")
    return (
        _text(result.get("category")),
        rows if isinstance(rows, list) else [],
        _text(result.get("nextPageCursor")),
    )


def parse_page(rows: Iterable[Any], category: str | None) -> list[Market]:
    """One page's rows → the linear USDT perpetuals among them, in page order.

    `category` is the response's `result.category` (ccxt reads it there); a response
    without one falls back to each row's own.
    """
    found: list[Market] = []
    for row in rows:
        if isinstance(row, Mapping):
            market = _market(row, category or _text(row.get("category")))
            if market is not None:
                found.append(market)
    return found


class InstrumentParser:
    """`parse_page` that remembers each contract's raw fields and its `Market`.

    Contracts rarely change between two loads, so an unchanged one costs a comparison of
    its raw fields instead of a parse (about 4x cheaper) and keeps the very same `Market`
    object. Only the contracts of the latest load are remembered.
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[Any, ...], Market | None]] = {}
        self._seen: dict[str, tuple[tuple[Any, ...], Market | None]] = {}

    def parse_page(self, rows: Iterable[Any], category: str | None) -> list[Market]:
        found: list[Market] = []
        known, seen = self._known, self._seen
        for row in rows:
            if not isinstance(row, Mapping):
                continue
            row_category = category or _text(row.get("category"))
            key = _fingerprint(row, row_category)
            cached = None if key is None else known.get(key[1])
            if cached is not None and cached[0] == key:
                market = cached[1]  # only plain-text keys are remembered, so this one is too
                seen[key[1]] = cached
            else:
                market = _market(row, row_category)
                if key is not None and _plain(key):
                    seen[key[1]] = (key, market)
            if market is not None:
                found.append(market)
        return found

    def combine(
        self, pages: Sequence[Sequence[Market]], pre_launch: Sequence[Market] = ()
    ) -> dict[str, Market]:
        """`combine`, and the load is complete: forget contracts it no longer listed."""
        self._known, self._seen = self._seen, {}
        return combine(pages, pre_launch)


def _fingerprint(row: Mapping[str, Any], category: str | None) -> tuple[Any, ...] | None:
    """Every raw value `_market` reads (None if a filter is no dict or the id no text)."""
    lot, price, leverage = (
        row.get("lotSizeFilter"),
        row.get("priceFilter"),
        row.get("leverageFilter"),
    )
    if type(lot) is not dict or type(price) is not dict or type(leverage) is not dict:
        return None
    key = (
        category, row.get("symbol"), row.get("contractType"), row.get("status"),
        row.get("baseCoin"), row.get("quoteCoin"), row.get("settleCoin"), row.get("launchTime"),
        lot.get("qtyStep"), lot.get("minTradingQty"), lot.get("minOrderQty"),
        lot.get("minNotionalValue"), price.get("tickSize"), leverage.get("maxLeverage"),
    )  # fmt: skip
    return key if type(key[1]) is str else None


_KEY_TYPES = frozenset({str, type(None)})


def _plain(key: tuple[Any, ...]) -> bool:
    """Only text and None: `==` on such keys means same input (it would call 1, 1.0 and
    True the same, where ccxt would not)."""
    return {type(value) for value in key} <= _KEY_TYPES


def combine(
    pages: Sequence[Sequence[Market]], pre_launch: Sequence[Market] = ()
) -> dict[str, Market]:
    """Pages (in the order fetched) and pre-launch contracts → markets by unified symbol.

    ccxt prepends every further page to what it has, then appends the pre-launch rows, and
    indexes by symbol (a later copy replaces an earlier one in place): the same here.
    """
    markets: dict[str, Market] = {}
    for page in (*reversed(pages), pre_launch):
        for market in page:
            markets[market.symbol] = market
    return markets


def _market(row: Mapping[str, Any], category: str | None) -> Market | None:
    """One raw instrument → Market, or None if it is no linear USDT perpetual."""
    contract = _text(row.get("contractType"))
    if category != "linear" or contract not in _SWAPS:
        return None
    base_id, quote_id = _text(row.get("baseCoin")), _text(row.get("quoteCoin"))
    if base_id is None or quote_id is None:
        return None
    settle_id = _text(row.get("settleCoin")) or quote_id
    usdc = contract == "LinearPerpetual" and settle_id == "USD"
    settle = "USDC" if usdc else _currency(settle_id)
    if settle != "USDT":
        return None
    base, quote = _currency(base_id), _currency(quote_id)
    lot_filter = _dict(row.get("lotSizeFilter"))
    price_filter = _dict(row.get("priceFilter"))
    lot = _number(lot_filter.get("qtyStep")) or _LOT
    min_qty = _number(_text(lot_filter.get("minTradingQty")) or lot_filter.get("minOrderQty"))
    min_notional = _number(lot_filter.get("minNotionalValue"))
    if min_notional is None:  # ccxt_parse falls back to the raw string, then to 5
        min_notional = dec(lot_filter.get("minNotionalValue")) or _MIN_NOTIONAL
    leverage = _number(_dict(row.get("leverageFilter")).get("maxLeverage")) or _LEVERAGE
    return Market(
        symbol=f"{base}/{quote}:{settle}",
        exchange_id=str(_text(row.get("symbol"))),
        base=base,
        quote=quote,
        settle=settle,
        tick_size=_number(price_filter.get("tickSize")) or _TICK,
        lot_size=lot,
        min_qty=min_qty or lot,
        min_notional=min_notional,
        max_leverage=int(leverage),
        active=_text(row.get("status")) == "Trading",
        listed_at=_launch(row.get("launchTime")),
    )


def _text(value: Any) -> str | None:
    """ccxt's safe_string: a non-empty string, or a number as text; else None."""
    kind = type(value)
    if kind is str:
        return value if value else None
    if kind is int or kind is float:
        return str(value)
    return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _currency(currency_id: str) -> str:
    code = currency_id.upper()
    return COMMON_CURRENCIES.get(code, code)


def _number(value: Any) -> Decimal | None:
    """ccxt's safe_number then `ccxt_parse.dec`: text → float → Decimal(str(float))."""
    text = _text(value)
    if text is None:
        return None
    try:
        return _NUMBERS[text]
    except KeyError:
        pass
    try:
        number: Decimal | None = Decimal(str(float(text)))
    except (ValueError, InvalidOperation):
        number = None
    if number is not None and not number.is_finite():
        number = None
    if len(_NUMBERS) < _NUMBERS_MAX:
        _NUMBERS[text] = number
    return number


def _launch(value: Any) -> datetime | None:
    """ccxt's safe_integer (int(float(text))) of the launch time, as a UTC datetime."""
    try:
        ms = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)
