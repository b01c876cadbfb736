"""The registry's diff: an unchanged symbol keeps its row object; any changed field is seen."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.exchange.models import Market, Ticker
from db.repositories.markets import DELISTED, HALTED, TRADING, MarketRow
from services.market_registry import NEW_FOR, _diff

NOW = datetime(2026, 5, 1, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
BTC = Market(
    "BTC/USDT:USDT", "BTCUSDT", "BTC", "USDT", "USDT", Decimal("0.1"), Decimal("0.001"),
    Decimal("0.001"), Decimal(5), 100, True, NOW - timedelta(days=400),
)  # fmt: skip
NEW = replace(BTC, symbol="NEW/USDT:USDT", exchange_id="NEWUSDT", base="NEW", listed_at=NOW)
TICK = Ticker(
    "BTC/USDT:USDT", Decimal(65000), None, None, None, None, None, Decimal(10),
    Decimal(650000), Decimal("1.5"), NOW,
)  # fmt: skip


def baseline() -> dict[str, MarketRow]:
    markets = {BTC.symbol: BTC, NEW.symbol: NEW}
    tickers = {BTC.symbol: TICK, NEW.symbol: replace(TICK, symbol=NEW.symbol)}
    rows, changed, events = _diff("bybit", {}, markets, tickers, NOW, imported=True)
    assert len(changed) == 2 and events == []
    return rows


def test_nothing_changed_keeps_every_row_object() -> None:
    old = baseline()
    markets = {BTC.symbol: BTC, NEW.symbol: NEW}
    tickers = {BTC.symbol: TICK, NEW.symbol: replace(TICK, symbol=NEW.symbol)}
    rows, changed, events = _diff("bybit", old, markets, tickers, LATER, imported=False)
    assert changed == [] and events == []
    assert all(rows[s] is old[s] for s in old)


@pytest.mark.parametrize(
    ("market", "ticker", "field", "value"),
    [
        (replace(BTC, tick_size=Decimal("0.5")), TICK, "tick_size", Decimal("0.5")),
        (replace(BTC, lot_size=Decimal("0.01")), TICK, "lot_size", Decimal("0.01")),
        (replace(BTC, min_qty=Decimal("0.002")), TICK, "min_qty", Decimal("0.002")),
        (replace(BTC, min_notional=Decimal(10)), TICK, "min_notional", Decimal(10)),
        (replace(BTC, max_leverage=50), TICK, "max_leverage", 50),
        (replace(BTC, base="XBT"), TICK, "base", "XBT"),
        (replace(BTC, listed_at=NOW - timedelta(days=1)), TICK, "is_new", True),
        (BTC, replace(TICK, last=Decimal(65001)), "last_price", 65001.0),
        (BTC, replace(TICK, quote_volume_24h=Decimal(1)), "volume_24h", 1.0),
        (BTC, replace(TICK, change_24h_pct=None), "change_24h_pct", None),
        (replace(BTC, active=False), TICK, "status", HALTED),
        (replace(BTC, active=False), None, "status", DELISTED),
    ],
)
def test_each_changed_field_makes_a_new_row(
    market: Market, ticker: Ticker | None, field: str, value: object
) -> None:
    old = baseline()
    tickers = {} if ticker is None else {BTC.symbol: ticker}
    rows, changed, _ = _diff("bybit", old, {BTC.symbol: market}, tickers, LATER, imported=False)
    (row,) = [r for r in changed if r.symbol == BTC.symbol]
    assert getattr(row, field) == value and rows[BTC.symbol] is row


def test_a_listing_stops_being_new_after_its_window() -> None:
    old = baseline()
    assert old[NEW.symbol].is_new and old[NEW.symbol].status == TRADING
    markets = {BTC.symbol: BTC, NEW.symbol: NEW}
    tickers = {BTC.symbol: TICK, NEW.symbol: replace(TICK, symbol=NEW.symbol)}
    later = NOW + NEW_FOR + timedelta(seconds=1)
    rows, changed, _ = _diff("bybit", old, markets, tickers, later, imported=False)
    assert [r.symbol for r in changed] == [NEW.symbol] and not rows[NEW.symbol].is_new
    assert rows[BTC.symbol] is old[BTC.symbol]
