"""Settings from the environment, validated once at start-up.

Every variable of the interface contract is parsed here and nowhere else. A bad value raises
`ConfigError`, whose text is one line naming the variable, the problem and an example; the
entry point prints it and exits.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import ConfigError
from core.exchange.breaker import BreakerPolicy
from core.exchange.venues import KNOWN_EXCHANGES, LIVE_EXCHANGES
from core.throttle import FloodLimit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")
_PLAN_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
_FLOOD_RE = re.compile(r"^(\d{1,5})\s*/\s*(\d{1,5})\s*,\s*(\d{1,4})$")
DEFAULT_FLOOD = FloodLimit(count=20, seconds=60.0, burst=5)
_BREAKER_RE = re.compile(r"^(\d{1,4})\s*/\s*(\d{1,5})$")
DEFAULT_BREAKER = BreakerPolicy(failures=5, cooldown_s=30.0)
DEFAULT_STREAMS = 1000  # within every venue's private connection limits per IP
MAX_STREAMS = 100_000
MAX_PLAN_DAYS = 3650
MAX_PLAN_STARS = 100_000


@dataclass(slots=True, frozen=True)
class Plan:
    """A licence plan: how many days it grants and its price in Telegram Stars (0: not sold)."""

    name: str
    days: int
    stars: int


DEFAULT_PLANS = (Plan("trial", 7, 0), Plan("pro", 30, 500))


@dataclass(slots=True, frozen=True)
class Settings:
    """The validated configuration of one Tradewind process."""

    telegram_bot_token: str | None = None
    telegram_api_base_url: str | None = None
    db_path: Path = Path("data/tradewind.db")
    master_keys: tuple[bytes, ...] = ()
    master_key_file: Path = Path("data/master.key")
    admin_ids: frozenset[int] = frozenset()
    exchanges: tuple[str, ...] = KNOWN_EXCHANGES
    exchange_urls: Mapping[str, str] = field(default_factory=dict)
    market_source: str = "paper"
    scan_interval: float = 10.0
    sync_interval: float = 300.0
    metrics_addr: tuple[str, int] | None = ("127.0.0.1", 9108)
    log_level: str = "INFO"
    log_wire: bool = False
    plans: tuple[Plan, ...] = DEFAULT_PLANS
    # The environment's default is DEFAULT_FLOOD; Settings built in code (tests, benchmarks
    # that send hundreds of commands as one user) have no anti-flood unless they ask.
    flood: FloodLimit | None = None
    equity_retention_days: int = 400  # balance snapshots older than this are pruned
    # Likewise DEFAULT_BREAKER from the environment; none for Settings built in code, so
    # tests that inject exchange faults on purpose do not trip it unless they ask.
    breaker: BreakerPolicy | None = None
    # Accounts streamed at once (0: every account is polled). The environment's default is
    # DEFAULT_STREAMS; Settings built in code (tests) stream nothing unless they ask.
    streams: int = 0
    candle_retention_days: int = 90  # stored candles older than this are deleted
    backtest_workers: int = 2  # backtests running at once (each takes a core); 0: none
    backtest_slippage_pct: float = 0.05  # assumed against the trader on every backtest fill

    @property
    def console_mode(self) -> bool:
        """Without a bot token Tradewind runs the local console chat."""
        return self.telegram_bot_token is None


def load_settings(env: Mapping[str, str]) -> Settings:
    """Parse and validate every Tradewind variable in `env`."""
    db_path = _path(env, "TRADEWIND_DB", "data/tradewind.db")
    return Settings(
        telegram_bot_token=_token(env),
        telegram_api_base_url=_base_url(env),
        db_path=db_path,
        master_keys=_master_keys(env),
        master_key_file=db_path.parent / "master.key",
        admin_ids=_admin_ids(env),
        exchanges=_exchanges(env),
        exchange_urls=_exchange_urls(env),
        market_source=_market_source(env),
        scan_interval=_seconds(env, "TRADEWIND_SCAN_INTERVAL", 10.0, 1.0, 3600.0),
        sync_interval=_seconds(env, "TRADEWIND_SYNC_INTERVAL", 300.0, 10.0, 86400.0),
        candle_retention_days=int(_number(env, "TRADEWIND_CANDLE_RETENTION_DAYS", 90, 7, 3650)),
        backtest_workers=int(_number(env, "TRADEWIND_BACKTEST_WORKERS", 2, 0, 16)),
        backtest_slippage_pct=_number(
            env, "TRADEWIND_BACKTEST_SLIPPAGE_PCT", 0.05, 0.0, 5.0, whole=False
        ),
        metrics_addr=_metrics_addr(env),
        log_level=_log_level(env),
        log_wire=_flag(env, "TRADEWIND_LOG_WIRE"),
        plans=_plans(env),
        flood=_flood(env),
        equity_retention_days=_days(env, "TRADEWIND_EQUITY_RETENTION_DAYS", 400, 1, 3650),
        breaker=_breaker(env),
        streams=_streams(env),
    )


def _get(env: Mapping[str, str], name: str) -> str | None:
    """Return the stripped value, treating an empty value as unset."""
    value = env.get(name, "").strip()
    return value or None


def _token(env: Mapping[str, str]) -> str | None:
    value = _get(env, "TELEGRAM_BOT_TOKEN")
    if value is not None and not _TOKEN_RE.match(value):
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN",
            "is not a bot token (digits, a colon, then the secret from @BotFather)",
            "123456789:AAF1k2m3n4o5p6q7r8s9t0uvwxyzABCDEFG",
        )
    return value


def _base_url(env: Mapping[str, str]) -> str | None:
    value = _get(env, "TELEGRAM_API_BASE_URL")
    if value is not None and not _is_http_url(value):
        raise ConfigError(
            "TELEGRAM_API_BASE_URL",
            f"{value!r} is not an http(s) URL",
            "http://127.0.0.1:8081/bot",
        )
    return value


def _path(env: Mapping[str, str], name: str, default: str) -> Path:
    value = _get(env, name) or default
    path = Path(value)
    if path.exists() and path.is_dir():
        raise ConfigError(name, f"{value!r} is a directory, not a file", "./data/tradewind.db")
    return path


def _master_keys(env: Mapping[str, str]) -> tuple[bytes, ...]:
    value = _get(env, "TRADEWIND_MASTER_KEY")
    if value is None:
        return ()
    keys = [part.strip() for part in value.split(",")]
    for position, key in enumerate(keys, start=1):
        if not _is_fernet_key(key):
            raise ConfigError(
                "TRADEWIND_MASTER_KEY",
                f"key #{position} is not a Fernet key (44 url-safe base64 characters)",
                "<output of `tradewind gen-key`>,<older key>",
            )
    return tuple(key.encode("ascii") for key in keys)


def _admin_ids(env: Mapping[str, str]) -> frozenset[int]:
    value = _get(env, "TRADEWIND_ADMIN_IDS")
    if value is None:
        return frozenset()
    ids: set[int] = set()
    for part in value.split(","):
        item = part.strip()
        if not item.isdigit() or int(item) <= 0:
            raise ConfigError(
                "TRADEWIND_ADMIN_IDS",
                f"{item!r} is not a Telegram user id (a positive integer)",
                "123456789,987654321",
            )
        ids.add(int(item))
    return frozenset(ids)


def _exchanges(env: Mapping[str, str]) -> tuple[str, ...]:
    value = _get(env, "TRADEWIND_EXCHANGES")
    if value is None:
        return KNOWN_EXCHANGES
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in KNOWN_EXCHANGES]
    if unknown or not names:
        problem = f"unknown exchange {unknown[0]!r}" if unknown else "lists no exchange"
        raise ConfigError(
            "TRADEWIND_EXCHANGES",
            f"{problem}; choose from {', '.join(KNOWN_EXCHANGES)}",
            "paper,bybit",
        )
    return tuple(dict.fromkeys(names))


def _exchange_urls(env: Mapping[str, str]) -> dict[str, str]:
    value = _get(env, "TRADEWIND_EXCHANGE_URLS")
    if value is None:
        return {}
    example = '{"bybit": "http://127.0.0.1:8900"}'
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError("TRADEWIND_EXCHANGE_URLS", f"is not JSON ({exc.msg})", example) from None
    if not isinstance(parsed, dict):
        raise ConfigError("TRADEWIND_EXCHANGE_URLS", "must be a JSON object", example)
    urls: dict[str, str] = {}
    for name, url in parsed.items():
        if name not in LIVE_EXCHANGES:
            raise ConfigError(
                "TRADEWIND_EXCHANGE_URLS",
                f"unknown exchange {name!r}; choose from {', '.join(LIVE_EXCHANGES)}",
                example,
            )
        if not isinstance(url, str) or not _is_http_url(url):
            raise ConfigError(
                "TRADEWIND_EXCHANGE_URLS", f"the URL for {name} is not an http(s) URL", example
            )
        urls[name] = url.rstrip("/")
    return urls


def _market_source(env: Mapping[str, str]) -> str:
    value = (_get(env, "TRADEWIND_MARKET_SOURCE") or "paper").lower()
    if value not in KNOWN_EXCHANGES:
        raise ConfigError(
            "TRADEWIND_MARKET_SOURCE",
            f"{value!r} is not a market source; choose from {', '.join(KNOWN_EXCHANGES)}",
            "paper",
        )
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    value = _get(env, name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not low <= seconds <= high:  # also false for NaN
        raise ConfigError(
            name, f"{value!r} is not a number of seconds from {low:g} to {high:g}", f"{default:g}"
        )
    return seconds


def _days(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _get(env, name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConfigError(
            name, f"{value!r} is not a number of days from {low} to {high}", str(default)
        )
    return int(value)


def _number(
    env: Mapping[str, str], name: str, default: float, low: float, high: float, whole: bool = True
) -> float:
    value = _get(env, name)
    if value is None:
        return default
    try:
        number = float(value) if not whole or value.strip().lstrip("-").isdigit() else math.nan
    except ValueError:
        number = math.nan
    if not low <= number <= high:  # also false for NaN
        kind = "a whole number" if whole else "a number"
        raise ConfigError(name, f"{value!r} is not {kind} from {low:g} to {high:g}", f"{default:g}")
    return number


def _metrics_addr(env: Mapping[str, str]) -> tuple[str, int] | None:
    public = _flag(env, "TRADEWIND_METRICS_PUBLIC")
    if "TRADEWIND_METRICS_ADDR" in env and not env["TRADEWIND_METRICS_ADDR"].strip():
        return None
    value = _get(env, "TRADEWIND_METRICS_ADDR") or "127.0.0.1:9108"
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            "TRADEWIND_METRICS_ADDR",
            f"{value!r} is not host:port (port 0-65535; empty disables the endpoint)",
            "127.0.0.1:9108",
        )
    host = host.strip("[]")
    if not _is_loopback(host) and not public:
        raise ConfigError(
            "TRADEWIND_METRICS_ADDR",
            f"{host!r} is not a loopback address; /metrics and /health would be reachable "
            "from other machines (set TRADEWIND_METRICS_PUBLIC=1 to allow it)",
            "127.0.0.1:9108",
        )
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = (_get(env, name) or "0").lower()
    if value not in ("0", "1", "false", "true", "no", "yes"):
        raise ConfigError(name, f"{value!r} is not a switch; use 1 or 0", "1")
    return value in ("1", "true", "yes")


def _log_level(env: Mapping[str, str]) -> str:
    value = (_get(env, "TRADEWIND_LOG_LEVEL") or "INFO").upper()
    if value not in LOG_LEVELS or not isinstance(logging.getLevelName(value), int):
        raise ConfigError(
            "TRADEWIND_LOG_LEVEL",
            f"{value!r} is not a level; choose from {', '.join(LOG_LEVELS)}",
            "INFO",
        )
    return value


def _plans(env: Mapping[str, str]) -> tuple[Plan, ...]:
    value = _get(env, "TRADEWIND_PLANS")
    if value is None:
        return DEFAULT_PLANS
    example = "pro:30:500,trial:7:0"
    plans: dict[str, Plan] = {}
    for part in (p.strip() for p in value.split(",")):
        fields = [f.strip() for f in part.split(":")]
        if len(fields) != 3 or not _PLAN_RE.match(fields[0].lower()):
            raise ConfigError(
                "TRADEWIND_PLANS", f"{part!r} is not name:days:stars (name a-z, 0-9, _)", example
            )
        name, days, stars = fields[0].lower(), fields[1], fields[2]
        if name in plans:
            raise ConfigError("TRADEWIND_PLANS", f"plan {name!r} is listed twice", example)
        if not days.isdigit() or not 1 <= int(days) <= MAX_PLAN_DAYS:
            raise ConfigError(
                "TRADEWIND_PLANS",
                f"days of plan {name!r} must be a whole number from 1 to {MAX_PLAN_DAYS}",
                example,
            )
        if not stars.isdigit() or int(stars) > MAX_PLAN_STARS:
            raise ConfigError(
                "TRADEWIND_PLANS",
                f"price of plan {name!r} must be whole Stars from 0 (not sold) to {MAX_PLAN_STARS}",
                example,
            )
        plans[name] = Plan(name, int(days), int(stars))
    return tuple(plans.values())


def _flood(env: Mapping[str, str]) -> FloodLimit | None:
    value = _get(env, "TRADEWIND_FLOOD")
    if value is None:
        return DEFAULT_FLOOD
    if value.lower() in ("off", "0"):
        return None
    match = _FLOOD_RE.match(value)
    count, seconds, burst = (int(g) for g in match.groups()) if match else (0, 0, 0)
    if not (1 <= count <= 10_000 and 1 <= seconds <= 3600 and 1 <= burst <= 1000):
        raise ConfigError(
            "TRADEWIND_FLOOD",
            f"{value!r} is not COUNT/SECONDS,BURST (count 1-10000, seconds 1-3600, "
            "burst 1-1000) or off",
            "20/60,5",
        )
    return FloodLimit(count=count, seconds=float(seconds), burst=burst)


def _breaker(env: Mapping[str, str]) -> BreakerPolicy | None:
    value = _get(env, "TRADEWIND_BREAKER")
    if value is None:
        return DEFAULT_BREAKER
    if value.lower() in ("off", "0"):
        return None
    match = _BREAKER_RE.match(value)
    failures, seconds = (int(g) for g in match.groups()) if match else (0, 0)
    if not (1 <= failures <= 1000 and 1 <= seconds <= 3600):
        raise ConfigError(
            "TRADEWIND_BREAKER",
            f"{value!r} is not FAILURES/SECONDS (failures 1-1000, cooldown 1-3600 s) or off",
            "5/30",
        )
    return BreakerPolicy(failures=failures, cooldown_s=float(seconds))


def _streams(env: Mapping[str, str]) -> int:
    value = _get(env, "TRADEWIND_STREAMS")
    if value is None:
        return DEFAULT_STREAMS
    if not value.isdigit() or int(value) > MAX_STREAMS:
        raise ConfigError(
            "TRADEWIND_STREAMS",
            f"{value!r} is not a number of accounts from 0 (streams off) to {MAX_STREAMS}",
            str(DEFAULT_STREAMS),
        )
    return int(value)


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_fernet_key(key: str) -> bool:
    try:
        return len(key) == 44 and len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
