"""Per-user strategy settings, parsed into typed values once per read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from db.repositories import HotQuery
from db.repositories.base import Repository, from_ms, to_dec, to_ms, to_text
from db.store import Row, Tx


@dataclass(slots=True, frozen=True)
class StrategyRecord:
    """A trader's sizing, risk and automation settings (defaults match the schema)."""

    user_id: int
    size_usdt: Decimal | None = Decimal("50")
    risk_pct: Decimal | None = None
    leverage: int = 5
    tp_pct: Decimal = Decimal("3")
    sl_pct: Decimal = Decimal("1.5")
    max_positions: int = 5
    auto_trade: bool = False
    min_score: float = 0.7
    allow_symbols: tuple[str, ...] = field(default_factory=tuple)
    deny_symbols: tuple[str, ...] = field(default_factory=tuple)
    limit_order_ttl_min: int = 60
    # When auto-trade was last turned on: signals published before it are not traded.
    # Saving an auto-trading record without one stamps the time of the save.
    auto_trade_since: datetime | None = None
    max_drift_pct: Decimal = Decimal("0.3")  # skip a signal once the price moved further
    max_signal_age_s: int = 120  # skip a signal older than this
    timezone: str = "UTC"  # IANA name: where the trader's days begin in reports
    report_time: str | None = None  # HH:MM local: daily (and Monday weekly) report; None: off
    post_only: bool = False  # limit orders only rest (maker); one that would take is refused
    autotrade_entry: str = "market"  # market | limit (at the signal's price)
    trail_pct: Decimal | None = None  # default trailing distance, % of the price; None: none
    trail_activation_pct: Decimal | None = None  # ... trailing from this profit; None: at once
    tp_ladder: str | None = None  # partial take profits as `PCT:SHARE,...`; None: none
    ladder_breakeven: bool = True  # the stop loss moves to the entry once the first part fills


_COLUMNS = (
    "user_id, size_usdt, risk_pct, leverage, tp_pct, sl_pct, max_positions, auto_trade, "
    "min_score, allow_symbols, deny_symbols, limit_order_ttl_min, auto_trade_since, "
    "max_drift_pct, max_signal_age_s, timezone, report_time, post_only, autotrade_entry, "
    "trail_pct, trail_activation_pct, tp_ladder, ladder_breakeven"
)
_GET = f"SELECT {_COLUMNS} FROM strategy_settings WHERE user_id = ?"
_AUTO_TRADERS = f"SELECT {_COLUMNS} FROM strategy_settings WHERE auto_trade = 1 AND min_score <= ?"
_UPSERT = """
INSERT INTO strategy_settings (user_id, size_usdt, risk_pct, leverage, tp_pct, sl_pct,
    max_positions, auto_trade, min_score, allow_symbols, deny_symbols, limit_order_ttl_min,
    auto_trade_since, max_drift_pct, max_signal_age_s, timezone, report_time, post_only,
    autotrade_entry, trail_pct, trail_activation_pct, tp_ladder, ladder_breakeven, updated_at)
VALUES (:user_id, :size_usdt, :risk_pct, :leverage, :tp_pct, :sl_pct, :max_positions,
    :auto_trade, :min_score, :allow_symbols, :deny_symbols, :limit_order_ttl_min,
    :auto_trade_since, :max_drift_pct, :max_signal_age_s, :timezone, :report_time, :post_only,
    :autotrade_entry, :trail_pct, :trail_activation_pct, :tp_ladder, :ladder_breakeven, :now)
ON CONFLICT (user_id) DO UPDATE SET
    size_usdt = excluded.size_usdt, risk_pct = excluded.risk_pct,
    leverage = excluded.leverage, tp_pct = excluded.tp_pct, sl_pct = excluded.sl_pct,
    max_positions = excluded.max_positions, auto_trade = excluded.auto_trade,
    min_score = excluded.min_score, allow_symbols = excluded.allow_symbols,
    deny_symbols = excluded.deny_symbols, limit_order_ttl_min = excluded.limit_order_ttl_min,
    auto_trade_since = excluded.auto_trade_since, max_drift_pct = excluded.max_drift_pct,
    max_signal_age_s = excluded.max_signal_age_s, timezone = excluded.timezone,
    report_time = excluded.report_time, post_only = excluded.post_only,
    autotrade_entry = excluded.autotrade_entry, trail_pct = excluded.trail_pct,
    trail_activation_pct = excluded.trail_activation_pct, tp_ladder = excluded.tp_ladder,
    ladder_breakeven = excluded.ladder_breakeven, updated_at = excluded.updated_at
"""

HOT_QUERIES = (
    HotQuery("strategy.get", _GET, (1,)),
    HotQuery("strategy.auto_traders", _AUTO_TRADERS, (0.8,)),
)


class StrategyRepository(Repository):
    """SQL for strategy_settings."""

    async def get(self, user_id: int) -> StrategyRecord:
        """Return the user's settings, or the defaults when they never changed any."""
        row = await self.store.fetchone("strategy.get", _GET, (user_id,))
        return StrategyRecord(user_id=user_id) if row is None else strategy_from_row(row)

    async def auto_traders(self, signal_score: float) -> list[StrategyRecord]:
        """Settings of every auto-trading user whose threshold this score meets."""
        rows = await self.store.fetchall("strategy.auto_traders", _AUTO_TRADERS, (signal_score,))
        return [strategy_from_row(row) for row in rows]

    async def save(self, record: StrategyRecord, now: datetime, tx: Tx | None = None) -> None:
        async with self._tx(tx) as t:
            await t.execute("strategy.save", _UPSERT, _params(record, now))

    async def save_many(self, records: Sequence[StrategyRecord], now: datetime) -> int:
        """Save many users' settings in one transaction (imports, demo data)."""
        async with self.store.transaction() as tx:
            return await tx.executemany(
                "strategy.save_many", _UPSERT, [_params(r, now) for r in records]
            )


def _params(record: StrategyRecord, now: datetime) -> dict[str, object]:
    return {
        "user_id": record.user_id,
        "size_usdt": to_text(record.size_usdt),
        "risk_pct": to_text(record.risk_pct),
        "leverage": record.leverage,
        "tp_pct": str(record.tp_pct),
        "sl_pct": str(record.sl_pct),
        "max_positions": record.max_positions,
        "auto_trade": int(record.auto_trade),
        "min_score": record.min_score,
        "allow_symbols": json.dumps(list(record.allow_symbols)),
        "deny_symbols": json.dumps(list(record.deny_symbols)),
        "limit_order_ttl_min": record.limit_order_ttl_min,
        "auto_trade_since": _since(record, now),
        "max_drift_pct": str(record.max_drift_pct),
        "max_signal_age_s": record.max_signal_age_s,
        "timezone": record.timezone,
        "report_time": record.report_time,
        "post_only": int(record.post_only),
        "autotrade_entry": record.autotrade_entry,
        "trail_pct": to_text(record.trail_pct),
        "trail_activation_pct": to_text(record.trail_activation_pct),
        "tp_ladder": record.tp_ladder,
        "ladder_breakeven": int(record.ladder_breakeven),
        "now": to_ms(now),
    }


def _since(record: StrategyRecord, now: datetime) -> int | None:
    """Off has no start; on without a known start began now, never earlier."""
    if not record.auto_trade:
        return None
    return to_ms(record.auto_trade_since or now)


def strategy_from_row(row: Row) -> StrategyRecord:
    """A strategy_settings row (or any query selecting its columns) as a record."""
    names = list(row.keys())
    return StrategyRecord(
        user_id=row["user_id"],
        size_usdt=to_dec(row["size_usdt"]),
        risk_pct=to_dec(row["risk_pct"]),
        leverage=row["leverage"],
        tp_pct=Decimal(row["tp_pct"]),
        sl_pct=Decimal(row["sl_pct"]),
        max_positions=row["max_positions"],
        auto_trade=bool(row["auto_trade"]),
        min_score=row["min_score"],
        allow_symbols=tuple(json.loads(row["allow_symbols"])),
        deny_symbols=tuple(json.loads(row["deny_symbols"])),
        limit_order_ttl_min=row["limit_order_ttl_min"],
        auto_trade_since=from_ms(row["auto_trade_since"]),
        max_drift_pct=Decimal(row["max_drift_pct"]),
        max_signal_age_s=row["max_signal_age_s"],
        # Queries that select the columns they need (auto-trade candidates) leave it out
        # (a row's `in` looks at its values: its names are asked for).
        timezone=row["timezone"] if "timezone" in names else "UTC",
        report_time=row["report_time"] if "report_time" in names else None,
        post_only=bool(row["post_only"]) if "post_only" in names else False,
        autotrade_entry=row["autotrade_entry"] if "autotrade_entry" in names else "market",
        trail_pct=to_dec(row["trail_pct"]) if "trail_pct" in names else None,
        trail_activation_pct=(
            to_dec(row["trail_activation_pct"]) if "trail_activation_pct" in names else None
        ),
        tp_ladder=row["tp_ladder"] if "tp_ladder" in names else None,
        ladder_breakeven=bool(row["ladder_breakeven"]) if "ladder_breakeven" in names else True,
    )
