"""Bybit's bulk tickers straight from the raw JSON to `Ticker`, without ccxt's parser.

`/v5/market/tickers?category=linear` answers every linear contract at once. ccxt's
`parse_tickers` spends most of the client-side time of that call building dicts of floats
(and `ccxt_parse.ticker` then turns the floats back into Decimals); going from Bybit's
number strings to `Ticker` directly is ~6x faster and needs no float round trip.

The result matches `ccxt_parse.ticker(api.parse_tickers(...)[symbol])` field for field
(ccxt's rules included: a zero bid/ask/high/low/percentage means "no value", a missing 24 h
percentage is derived from the 24 h open), except the timestamp, which is the response's
server `time` (ccxt leaves it empty and `ccxt_parse.ticker` uses "now").
Pinned against the installed ccxt by tests/integration/test_lean_tickers.py.

This module imports no ccxt: it needs the JSON and the venue's exchange id → symbol map
only (built from our own markets, so ccxt's market tables need not be loaded).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from typing import Any

from core.exchange.models import ZERO, Ticker

# ccxt's Precise.div keeps 18 decimal places, truncated towards zero.
_PRECISE_PLACES = Decimal("1e-18")


def tickers_from_bybit(
    payload: Mapping[str, Any], symbols_by_id: Mapping[str, str]
) -> dict[str, Ticker]:
    """Bybit v5 tickers JSON (the whole response) → `Ticker` by unified symbol.

    `symbols_by_id` maps Bybit's id (`BTCUSDT`) to the unified symbol of each loaded linear
    USDT perpetual; an id it does not know (listed since the last load) is skipped.
    """
    rows, stamp = ticker_rows(payload)
    return parse_rows(rows, symbols_by_id, stamp)


def ticker_rows(payload: Mapping[str, Any]) -> tuple[Sequence[Any], datetime]:
    """The response's rows and its server time (for parsing in parts with `parse_rows`)."""
    result = payload.get("result")
    rows = result.get("list") if isinstance(result, Mapping) else None
    return (rows if isinstance(rows, list) else []), _server_time(payload.get("time"))


def parse_rows(
    rows: Iterable[Any], symbols_by_id: Mapping[str, str], stamp: datetime
) -> dict[str, Ticker]:
    """Some rows of a tickers response → `Ticker` by unified symbol (see tickers_from_bybit)."""
    tickers: dict[str, Ticker] = {}
    for row in rows:
        exchange_id = row.get("symbol") if isinstance(row, Mapping) else None
        if not isinstance(exchange_id, str):
            continue
        symbol = symbols_by_id.get(exchange_id)
        if symbol is not None:
            ticker = _ticker(symbol, row, stamp)
            if ticker.last > 0:  # a row without a price is no quote to trade or scan on
                tickers[symbol] = ticker
    return tickers


def _ticker(symbol: str, row: Mapping[str, Any], stamp: datetime) -> Ticker:
    last = _dec(row.get("lastPrice")) or ZERO
    change: Decimal | None = _nonzero(_dec(row.get("price24hPcnt")))
    if change is not None:
        change = change.scaleb(2)  # Bybit sends a fraction: 0.0123 → 1.23 %
    else:
        change = _derived_pct(last, _nonzero(_dec(row.get("prevPrice24h"))))
    return Ticker(
        symbol=symbol,
        last=last,
        bid=_nonzero(_dec(row.get("bid1Price"))),
        ask=_nonzero(_dec(row.get("ask1Price"))),
        mark=_dec(row.get("markPrice")),
        high_24h=_nonzero(_dec(row.get("highPrice24h"))),
        low_24h=_nonzero(_dec(row.get("lowPrice24h"))),
        base_volume_24h=_dec(row.get("volume24h")) or ZERO,
        quote_volume_24h=_dec(row.get("turnover24h")) or ZERO,
        change_24h_pct=change,
        timestamp=stamp,
    )


def _dec(text: Any) -> Decimal | None:
    """A Bybit number string as Decimal; '', None or garbage → None."""
    if not text:
        return None
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return value if value.is_finite() else None


def _nonzero(value: Decimal | None) -> Decimal | None:
    return value if value else None  # ccxt's omit_zero: 0 means "no value"


def _derived_pct(last: Decimal, prev: Decimal | None) -> Decimal | None:
    """The 24 h change in % from the 24 h open, as ccxt derives it when Bybit sends 0.

    ccxt: Precise (last − open) / open, truncated to 18 places, × 100, handed over as a
    float. We take the same steps, float included, so both paths agree to the last digit.
    """
    if not last or prev is None:
        return None
    try:
        with localcontext() as exact:
            exact.prec = 80
            ratio = ((last - prev) / prev).quantize(_PRECISE_PLACES, rounding=ROUND_DOWN)
        return Decimal(repr(float(ratio.scaleb(2))))
    except (InvalidOperation, OverflowError):
        return None


def _server_time(ms: Any) -> datetime:
    if isinstance(ms, str) and ms.isdigit():
        ms = int(ms)
    if isinstance(ms, int) and not isinstance(ms, bool) and ms > 0:
        try:
            return datetime.fromtimestamp(ms / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)
