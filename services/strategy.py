"""Per-trader strategy settings: parsed once, cached, changed one validated key at a time."""

from __future__ import annotations

import asyncio
import difflib
import functools
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, tzinfo
from decimal import Decimal, InvalidOperation

from core.cache import CacheLayer
from core.clock import Clock
from core.errors import InvalidInput
from db.repositories.strategy import StrategyRecord, StrategyRepository
from services.accounts import PAPER, AccountService
from services.caching import STRATEGY
from services.ladder_rungs import parse_ladder
from services.market import MarketService, SymbolNotFound, lookup

__all__ = [
    "KEYS",
    "MAX_LEVERAGE",
    "SettingChange",
    "StrategyRecord",
    "StrategyService",
    "timezone_named",
    "zone",
]

MAX_SYMBOLS = 50
LADDER_NOTE = (
    "Placed as reduce-only limit orders when an entry fills; it replaces the single take "
    "profit (tp_pct) of those positions."
)
MAINTENANCE_PCT = Decimal("0.5")  # the maintenance margin rate venues charge small positions
MAX_LEVERAGE = 125  # the highest any venue offers; each market's own cap is checked per order
_CLEAR = {"-", "none", "clear"}
_ON, _OFF = {"on", "true", "yes", "1", "enable"}, {"off", "false", "no", "0", "disable"}


@dataclass(slots=True, frozen=True)
class _Range:
    """The accepted values of one numeric setting, and how to word a refusal."""

    low: Decimal
    high: Decimal
    what: str
    example: str
    unit: str = ""
    whole: bool = False
    places: int = 2  # decimals kept

    def refusal(self, key: str) -> InvalidInput:
        low, high = f"{self.low:,f}", f"{self.high:,f}"
        text = f"{key} must be {self.what} from {low} to {high}{self.unit}"
        extra = (
            " (each market's own maximum is checked when you trade)" if key == "leverage" else ""
        )
        return InvalidInput(f"{text}{extra}, e.g. /set {key} {self.example}.")


_RANGES = {
    "size_usdt": _Range(Decimal(5), Decimal(1_000_000), "a fixed size", "50", " USDT"),
    "risk_pct": _Range(Decimal("0.1"), Decimal(10), "a share of equity", "1", " %"),
    "leverage": _Range(Decimal(1), Decimal(MAX_LEVERAGE), "a whole number", "10", "×", True),
    "tp_pct": _Range(Decimal("0.1"), Decimal(500), "a take-profit distance", "3", " %"),
    "sl_pct": _Range(Decimal("0.1"), Decimal(100), "a stop-loss distance", "1.5", " %"),
    "max_positions": _Range(Decimal(1), Decimal(50), "a whole number", "5", whole=True),
    "min_score": _Range(Decimal(0), Decimal(1), "a signal score", "0.7"),
    "limit_order_ttl_min": _Range(
        Decimal(1), Decimal(10_080), "a whole number of minutes", "60", " min", True
    ),
    "max_drift_pct": _Range(Decimal("0.01"), Decimal(20), "a price move", "0.3", " %"),
    "max_signal_age_s": _Range(
        Decimal(5), Decimal(3600), "a whole number of seconds", "120", " s", True
    ),
    "trail_pct": _Range(Decimal("0.1"), Decimal(50), "a trailing distance", "1.5", " % (or off)"),
    "trail_activation_pct": _Range(
        Decimal("0.1"), Decimal(500), "a profit to start trailing at", "2", " % (or off)"
    ),
}
_CLEARABLE = {"trail_pct", "trail_activation_pct"}
KEYS = (
    *_RANGES,
    "auto_trade",
    "post_only",
    "autotrade_entry",
    "allow",
    "deny",
    "tz",
    "report_time",
    "tp_ladder",
    "ladder_breakeven",
)
_ENTRIES = ("market", "limit")
_SETTERS: dict[str, Callable[[StrategyRecord, Decimal], StrategyRecord]] = {
    "size_usdt": lambda r, n: replace(r, size_usdt=n, risk_pct=None),
    "risk_pct": lambda r, n: replace(r, risk_pct=n, size_usdt=None),
    "leverage": lambda r, n: replace(r, leverage=int(n)),
    "tp_pct": lambda r, n: replace(r, tp_pct=n),
    "sl_pct": lambda r, n: replace(r, sl_pct=n),
    "max_positions": lambda r, n: replace(r, max_positions=int(n)),
    "min_score": lambda r, n: replace(r, min_score=float(n)),
    "limit_order_ttl_min": lambda r, n: replace(r, limit_order_ttl_min=int(n)),
    "max_drift_pct": lambda r, n: replace(r, max_drift_pct=n),
    "max_signal_age_s": lambda r, n: replace(r, max_signal_age_s=int(n)),
    "trail_pct": lambda r, n: replace(r, trail_pct=n),
    "trail_activation_pct": lambda r, n: replace(r, trail_activation_pct=n),
}


@dataclass(slots=True, frozen=True)
class SettingChange:
    """A saved change: the new settings, the key changed and what else it implied."""

    record: StrategyRecord
    key: str
    note: str = ""


class StrategyService:
    """Reads and saves strategy settings through a cache of parsed records."""

    def __init__(self, strategies: StrategyRepository, cache: CacheLayer, clock: Clock) -> None:
        self._strategies = strategies
        self._cache = cache.cache(STRATEGY.name)
        self._clock = clock
        self._changing = asyncio.Lock()  # read-modify-write of one record at a time

    async def settings(self, user_id: int) -> StrategyRecord:
        """The trader's settings (defaults if never changed), parsed once per cache life."""

        async def load() -> StrategyRecord:
            return await self._strategies.get(user_id)

        record: StrategyRecord = await self._cache.get_or_load(str(user_id), load)
        return record

    async def timezone(self, user_id: int) -> tzinfo:
        """The trader's timezone for reports (UTC until they set one)."""
        return zone((await self.settings(user_id)).timezone)

    async def save(self, record: StrategyRecord) -> None:
        """Store the settings and put the parsed record in the cache."""
        await self._strategies.save(record, self._clock.now())
        self._cache.set(str(record.user_id), record)

    async def change(
        self,
        user_id: int,
        key: str,
        value: str,
        *,
        accounts: AccountService,
        market: MarketService,
    ) -> SettingChange:
        """Validate and save one setting; a refusal names the accepted range or symbols.

        Symbols of `allow`/`deny` are resolved on the exchange of the trader's active account
        (the paper market without one), through the services passed in.
        """
        name = key.strip().lower()
        if name in ("tz", "timezone"):
            zone = timezone_named(value)
            async with self._changing:
                current = await self.settings(user_id)
                return await self._store(replace(current, timezone=zone), "tz")
        if name == "tp_ladder":
            ladder = parse_ladder(value)
            async with self._changing:
                current = await self.settings(user_id)
                note = "" if ladder is None else LADDER_NOTE
                return await self._store(replace(current, tp_ladder=ladder), name, note)
        if name == "report_time":
            at = report_time(value)
            async with self._changing:
                current = await self.settings(user_id)
                note = "" if at is None else f"Daily at {at} {current.timezone}, weekly on Mondays."
                return await self._store(replace(current, report_time=at), name, note)
        if name in ("allow", "deny"):
            account = await accounts.active(user_id)
            exchange = account.exchange if account is not None else PAPER
            symbols = await _resolve_all(value, exchange, market)
            async with self._changing:
                current = await self.settings(user_id)
                other = current.deny_symbols if name == "allow" else current.allow_symbols
                _check_overlap(name, symbols, other)
                if name == "allow":
                    return await self._store(replace(current, allow_symbols=symbols), name)
                return await self._store(replace(current, deny_symbols=symbols), name)
        apply = _parse(name, value)
        async with self._changing:
            current = await self.settings(user_id)
            record = apply(current)
            note = ""
            if name == "size_usdt" and current.risk_pct is not None:
                note = "risk_pct is cleared: every trade now uses this fixed size."
            elif name == "risk_pct" and current.size_usdt is not None:
                note = "size_usdt is cleared: every trade is now sized from your equity."
            elif name == "leverage":
                note = "Each market's own maximum is checked when you trade."
            elif name == "auto_trade":
                record, note = self._auto_trade_switched(current, record)
            elif name == "post_only" and record.post_only:
                note = "A limit order priced to fill at once is refused instead of taking."
            elif name == "autotrade_entry" and record.autotrade_entry == "limit":
                note = (
                    "Auto-trade now rests a limit at the signal's price; it is cancelled "
                    f"after {record.limit_order_ttl_min} min unfilled (limit_order_ttl_min)."
                )
            if name in ("sl_pct", "leverage"):
                note = " ".join(filter(None, [note, liquidation_warning(record)]))
            return await self._store(record, name, note)

    def _auto_trade_switched(
        self, current: StrategyRecord, record: StrategyRecord
    ) -> tuple[StrategyRecord, str]:
        """Stamp when auto-trade went on: only signals published after it are traded."""
        if not record.auto_trade:
            return replace(record, auto_trade_since=None), ""
        if current.auto_trade and current.auto_trade_since is not None:
            return record, ""  # already on: the earlier start stands
        note = "Signals published from now on are traded; earlier ones are not."
        return replace(record, auto_trade_since=self._clock.now()), note

    async def _store(self, record: StrategyRecord, key: str, note: str = "") -> SettingChange:
        await self.save(record)
        return SettingChange(record, key, note)


def timezone_named(value: str) -> str:
    """The IANA name `value` means (any letter case); refused with the nearest names."""
    text = value.strip()
    names = _zone_names()
    found = names.get(text.lower())
    if found is not None:
        return found
    near = difflib.get_close_matches(text.lower(), names, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(names[n] for n in near)}?" if near else ""
    raise InvalidInput(
        f"“{text[:40]}” is not a timezone.{hint} Use an IANA name, e.g. /set tz Europe/Berlin "
        "or /set tz UTC."
    )


def report_time(value: str) -> str | None:
    """`HH:MM` (24-hour, local) of the scheduled reports, or None for `off`."""
    text = value.strip().lower()
    if text in _OFF | _CLEAR:
        return None
    match = re.fullmatch(r"([01]?\d|2[0-3])[:.h]([0-5]\d)", text)
    if match is None:
        raise InvalidInput(
            "report_time is a time of day in your timezone, 00:00 to 23:59, or off, "
            "e.g. /set report_time 08:00."
        )
    return f"{int(match[1]):02d}:{match[2]}"


def zone(name: str) -> tzinfo:
    """A stored IANA name as a timezone; UTC if the tz database no longer knows it."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


@functools.cache
def _zone_names() -> dict[str, str]:
    """Every IANA zone name by its lower-case form (read once from the tz database)."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def liquidation_warning(record: StrategyRecord) -> str:
    """Words when the default stop loss at the default leverage sits beyond liquidation
    (isolated margin: about 100 / leverage % from the entry, less the maintenance margin)."""
    reach = Decimal(100) / record.leverage - MAINTENANCE_PCT
    if record.sl_pct < reach:
        return ""
    return (
        f"⚠️ At {record.leverage}× a position is liquidated about {reach:.2f} % from its entry, "
        f"before your {record.sl_pct:f} % stop loss: lower sl_pct below {reach:.2f} or the "
        "leverage."
    )


def _parse(key: str, value: str) -> Callable[[StrategyRecord], StrategyRecord]:
    """How one numeric or on/off setting changes a record (refused here if out of range)."""
    if key in _CLEARABLE and value.strip().lower() in _OFF | _CLEAR:
        return lambda record: _cleared(record, key)
    text = value.strip().lower()
    if key == "ladder_breakeven":
        if text not in _ON | _OFF:
            raise InvalidInput("ladder_breakeven must be on or off, e.g. /set ladder_breakeven on.")
        return lambda record: replace(record, ladder_breakeven=text in _ON)
    if key in ("auto_trade", "post_only"):
        if text not in _ON | _OFF:
            raise InvalidInput(f"{key} must be on or off, e.g. /set {key} on.")
        if key == "post_only":
            return lambda record: replace(record, post_only=text in _ON)
        return lambda record: replace(record, auto_trade=text in _ON)
    if key == "autotrade_entry":
        if text not in _ENTRIES:
            raise InvalidInput(
                "autotrade_entry must be market (enter at once) or limit (a limit order at "
                "the signal's price), e.g. /set autotrade_entry limit."
            )
        return lambda record: replace(record, autotrade_entry=text)
    bounds = _RANGES.get(key)
    if bounds is None:
        near = difflib.get_close_matches(key, KEYS, n=1)
        hint = f" Did you mean {near[0]}?" if near else ""
        raise InvalidInput(f"There is no setting “{key[:30]}”.{hint} Keys: {', '.join(KEYS)}.")
    number = _number(value, bounds, key)
    return lambda record: _SETTERS[key](record, number)


def _cleared(record: StrategyRecord, key: str) -> StrategyRecord:
    if key == "trail_pct":
        return replace(record, trail_pct=None)
    return replace(record, trail_activation_pct=None)


def _number(value: str, bounds: _Range, key: str) -> Decimal:
    """Parse a finite number inside the range; `3%`, `10x` and `50 usdt` are accepted."""
    text = re.sub(r"\s*(%|x|×|usdt)$", "", value.strip().lower())
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise bounds.refusal(key) from None
    if not number.is_finite() or not bounds.low <= number <= bounds.high:
        raise bounds.refusal(key)
    if bounds.whole:
        if number != number.to_integral_value():
            raise bounds.refusal(key)
        return number.quantize(Decimal(1))
    rounded = number.quantize(Decimal(1).scaleb(-bounds.places))
    if rounded == rounded.to_integral_value():
        return rounded.quantize(Decimal(1))
    return rounded.normalize()


async def _resolve_all(value: str, exchange: str, market: MarketService) -> tuple[str, ...]:
    """Resolve a comma-separated symbol list to unified symbols; `-` is the empty list."""
    text = value.strip()
    if text.lower() in _CLEAR:
        return ()
    wanted = list(dict.fromkeys(w for w in re.split(r"[,\s]+", text) if w))
    if not wanted:
        raise InvalidInput("Give symbols separated by commas, e.g. /set allow BTC,ETH (- clears).")
    if len(wanted) > MAX_SYMBOLS:
        raise InvalidInput(f"At most {MAX_SYMBOLS} symbols per list.")
    markets = await market.markets(exchange)  # one table for every word
    found: list[str] = []
    unknown: list[str] = []
    for word in wanted:
        try:
            found.append(lookup(markets, exchange, word).symbol)
        except SymbolNotFound as missing:
            unknown.append(str(missing))
    if unknown:
        raise InvalidInput(" ".join(unknown) + " Nothing was changed.")
    return tuple(dict.fromkeys(found))


def _check_overlap(key: str, symbols: tuple[str, ...], other: tuple[str, ...]) -> None:
    """Refuse a symbol on both lists: which one should win would be a guess."""
    both = [s for s in symbols if s in other]
    if both:
        other_key = "deny" if key == "allow" else "allow"
        raise InvalidInput(
            f"{', '.join(both)} is also on your {other_key} list. Change that list first "
            f"(/set {other_key} - clears it) or leave it out here."
        )
