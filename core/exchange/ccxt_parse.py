"""ccxt's unified structures (dicts of floats and strings) → Tradewind's Decimal models."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.exchange.models import (
    ZERO,
    AssetBalance,
    Balance,
    Candle,
    Fill,
    Market,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
    Ticker,
)

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
    "expired": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}


def dec(value: Any) -> Decimal | None:
    """A ccxt number (float, str, int or None) as Decimal, without float noise."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def dec0(value: Any) -> Decimal:
    return dec(value) or ZERO


def utc(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, UTC)


def is_linear_usdt_perp(raw: Mapping[str, Any]) -> bool:
    return bool(raw.get("swap") and raw.get("linear") and raw.get("settle") == "USDT")


def market(raw: Mapping[str, Any]) -> Market:
    precision = raw.get("precision") or {}
    limits = raw.get("limits") or {}
    info = raw.get("info") or {}
    size = dec(raw.get("contractSize")) or Decimal(1)  # OKX counts in contracts of `size`
    lot = dec(precision.get("amount")) or Decimal("0.001")
    min_qty = dec((limits.get("amount") or {}).get("min")) or lot
    if size != 1:
        lot, min_qty = lot * size, min_qty * size
    min_notional = dec((limits.get("cost") or {}).get("min"))
    if min_notional is None:
        lot_filter = info.get("lotSizeFilter") if isinstance(info, dict) else None
        min_notional = dec((lot_filter or {}).get("minNotionalValue")) or Decimal(5)
    max_leverage = dec((limits.get("leverage") or {}).get("max")) or Decimal(20)
    return Market(
        symbol=raw["symbol"],
        exchange_id=str(raw["id"]),
        base=raw["base"],
        quote=raw["quote"],
        settle=raw.get("settle") or raw["quote"],
        tick_size=dec(precision.get("price")) or Decimal("0.0001"),
        lot_size=lot,
        min_qty=min_qty,
        min_notional=min_notional,
        max_leverage=int(max_leverage),
        active=raw.get("active") is not False,
        listed_at=utc(raw.get("created")),
    )


def ticker(raw: Mapping[str, Any]) -> Ticker:
    info = raw.get("info") or {}
    mark = raw.get("markPrice") or (info.get("markPrice") if isinstance(info, dict) else None)
    last = dec(raw.get("last")) or dec(raw.get("close")) or ZERO
    return Ticker(
        symbol=raw["symbol"],
        last=last,
        bid=dec(raw.get("bid")),
        ask=dec(raw.get("ask")),
        mark=dec(mark),
        high_24h=dec(raw.get("high")),
        low_24h=dec(raw.get("low")),
        base_volume_24h=dec0(raw.get("baseVolume")),
        quote_volume_24h=dec0(raw.get("quoteVolume")),
        change_24h_pct=dec(raw.get("percentage")),
        timestamp=utc(raw.get("timestamp")) or datetime.now(UTC),
    )


def candle(row: list[Any]) -> Candle:
    ts, o, h, low, c, v = row[:6]
    return Candle(int(ts), dec0(o), dec0(h), dec0(low), dec0(c), dec0(v))


def balance(raw: Mapping[str, Any], positions_upnl: Decimal | None = None) -> Balance:
    """Unified-account totals when the venue reports them, else ccxt's USDT line."""
    usdt = raw.get("USDT") or {}
    info = raw.get("info") or {}
    account = _bybit_account(info)
    assets = tuple(
        AssetBalance(code, dec0(v.get("total")), dec0(v.get("free")), dec0(v.get("used")))
        for code, v in raw.items()
        if isinstance(v, dict) and code.isupper() and dec0(v.get("total")) != 0
    )
    if account:
        return Balance(
            equity=dec0(account.get("totalEquity")),
            available=dec0(account.get("totalAvailableBalance")),
            used_margin=dec0(account.get("totalInitialMargin")),
            unrealised_pnl=dec0(account.get("totalPerpUPL")),
            assets=assets,
        )
    upnl = positions_upnl or ZERO
    total = dec0(usdt.get("total"))
    return Balance(
        equity=total + upnl,
        available=dec0(usdt.get("free")),
        used_margin=dec0(usdt.get("used")),
        unrealised_pnl=upnl,
        assets=assets,
    )


def _bybit_account(info: Any) -> Mapping[str, Any] | None:
    try:
        entry = info["result"]["list"][0]
    except (KeyError, IndexError, TypeError):
        return None
    return entry if isinstance(entry, dict) and "totalEquity" in entry else None


def position(raw: Mapping[str, Any]) -> Position | None:
    """A ccxt position, or None when it is flat."""
    contracts = dec0(raw.get("contracts"))
    size = contracts * (dec(raw.get("contractSize")) or Decimal(1))
    if size == 0 or raw.get("side") not in ("long", "short"):
        return None
    entry = dec0(raw.get("entryPrice"))
    mark = dec(raw.get("markPrice")) or entry
    leverage = int(dec(raw.get("leverage")) or 1)
    margin = dec(raw.get("initialMargin")) or dec(raw.get("collateral")) or size * entry / leverage
    return Position(
        symbol=raw["symbol"],
        side=PositionSide(raw["side"]),
        qty=size,
        entry_price=entry,
        mark_price=mark,
        unrealised_pnl=dec0(raw.get("unrealizedPnl")),
        leverage=leverage,
        margin=margin,
        liquidation_price=dec(raw.get("liquidationPrice")),
        take_profit=dec(raw.get("takeProfitPrice")),
        stop_loss=dec(raw.get("stopLossPrice")),
        trailing_distance=dec((raw.get("info") or {}).get("trailingStop")) or None,
    )


def order(raw: Mapping[str, Any]) -> Order:
    fee = raw.get("fee") or {}
    kind = str(raw.get("type") or "market").lower()
    return Order(
        order_id=str(raw.get("id")),
        client_order_id=raw.get("clientOrderId"),
        symbol=raw.get("symbol") or "",
        side=Side(str(raw.get("side") or "buy").lower()),
        order_type=OrderType.LIMIT if kind == "limit" else OrderType.MARKET,
        qty=dec0(raw.get("amount")),
        price=dec(raw.get("price")),
        status=_STATUS.get(str(raw.get("status")), OrderStatus.OPEN),
        filled_qty=dec0(raw.get("filled")),
        avg_price=dec(raw.get("average")),
        fee=dec0(fee.get("cost") if isinstance(fee, dict) else None),
        reduce_only=bool(raw.get("reduceOnly")),
        take_profit=dec(raw.get("takeProfitPrice")),
        stop_loss=dec(raw.get("stopLossPrice")),
        created_at=utc(raw.get("timestamp")),
    )


def fill(raw: Mapping[str, Any], contract_size: Decimal = Decimal(1)) -> Fill:
    """A ccxt trade of the account (`fetch_my_trades`) as a `Fill`; sizes in base units.

    ccxt's unified trade has no realised PnL: a venue that reports one in `info` (Binance
    `realizedPnl`, OKX `fillPnl`) has it read from there.
    """
    fee = raw.get("fee") or {}
    info = raw.get("info") or {}
    realised = None
    if isinstance(info, dict):
        realised = dec(info.get("realizedPnl") if "realizedPnl" in info else info.get("fillPnl"))
    return Fill(
        fill_id=str(raw.get("id")),
        order_id=str(raw.get("order") or ""),
        client_order_id=(info.get("clOrdId") if isinstance(info, dict) else None)
        or raw.get("clientOrderId")
        or None,
        symbol=raw.get("symbol") or "",
        side=Side(str(raw.get("side") or "buy").lower()),
        price=dec0(raw.get("price")),
        qty=dec0(raw.get("amount")) * contract_size,
        fee=dec0(fee.get("cost") if isinstance(fee, dict) else None),
        fee_currency=str((fee.get("currency") if isinstance(fee, dict) else None) or "USDT"),
        ts=utc(raw.get("timestamp")) or datetime.now(UTC),
        realised_pnl=realised,
    )
