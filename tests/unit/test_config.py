"""Settings from the environment: defaults, good values, and one clear line per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import KNOWN_EXCHANGES, LIVE_EXCHANGES, load_settings
from core.crypto import generate_key
from core.errors import ConfigError
from core.exchange.breaker import BreakerPolicy
from core.exchange.venues import VENUES


def test_defaults_give_the_console_chat_on_the_paper_exchange() -> None:
    settings = load_settings({})
    assert settings.console_mode
    assert settings.db_path == Path("data/tradewind.db")
    assert settings.master_key_file == Path("data/master.key")
    assert settings.exchanges == KNOWN_EXCHANGES
    assert settings.market_source == "paper"
    assert (settings.scan_interval, settings.sync_interval) == (10.0, 300.0)
    assert settings.metrics_addr == ("127.0.0.1", 9108)
    assert settings.log_level == "INFO"
    assert settings.admin_ids == frozenset()


def test_the_exchange_lists_follow_the_venue_table() -> None:
    assert KNOWN_EXCHANGES == ("paper", "bybit", "binance", "okx")  # README's default
    assert LIVE_EXCHANGES == tuple(VENUES) == ("bybit", "binance", "okx")


def test_good_values_are_parsed() -> None:
    k1, k2 = generate_key().decode(), generate_key().decode()
    settings = load_settings(
        {
            "TELEGRAM_BOT_TOKEN": "123456789:AAF1k2m3n4o5p6q7r8s9t0uvwxyzABCDEFG",
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot",
            "TRADEWIND_DB": "/var/lib/tradewind/bot.db",
            "TRADEWIND_MASTER_KEY": f" {k1} , {k2} ",
            "TRADEWIND_ADMIN_IDS": "5, 7",
            "TRADEWIND_EXCHANGES": "Bybit,paper,bybit",
            "TRADEWIND_EXCHANGE_URLS": '{"bybit": "http://127.0.0.1:8900/"}',
            "TRADEWIND_MARKET_SOURCE": "bybit",
            "TRADEWIND_SCAN_INTERVAL": "2.5",
            "TRADEWIND_SYNC_INTERVAL": "60",
            "TRADEWIND_METRICS_ADDR": "0.0.0.0:9200",
            "TRADEWIND_METRICS_PUBLIC": "1",
            "TRADEWIND_LOG_LEVEL": "debug",
        }
    )
    assert not settings.console_mode
    assert settings.master_keys == (k1.encode(), k2.encode())
    assert settings.master_key_file == Path("/var/lib/tradewind/master.key")
    assert settings.admin_ids == frozenset({5, 7})
    assert settings.exchanges == ("bybit", "paper")
    assert settings.exchange_urls == {"bybit": "http://127.0.0.1:8900"}
    assert settings.scan_interval == 2.5 and settings.sync_interval == 60
    assert settings.metrics_addr == ("0.0.0.0", 9200)
    assert settings.log_level == "DEBUG"


def test_streams_default_to_the_venue_caps_and_zero_turns_them_off() -> None:
    assert load_settings({}).streams == 1000
    assert load_settings({"TRADEWIND_STREAMS": "250"}).streams == 250
    assert load_settings({"TRADEWIND_STREAMS": "0"}).streams == 0


def test_metrics_on_loopback_needs_no_opt_in() -> None:
    for addr, host in [
        ("localhost:9108", "localhost"),
        ("[::1]:9108", "::1"),
        ("127.0.0.2:1", "127.0.0.2"),
    ]:
        assert load_settings({"TRADEWIND_METRICS_ADDR": addr}).metrics_addr[0] == host  # type: ignore[index]


def test_public_metrics_address_needs_the_explicit_opt_in() -> None:
    env = {"TRADEWIND_METRICS_ADDR": "[::]:9108"}
    with pytest.raises(ConfigError, match="TRADEWIND_METRICS_PUBLIC=1"):
        load_settings(env)
    assert load_settings({**env, "TRADEWIND_METRICS_PUBLIC": "yes"}).metrics_addr == ("::", 9108)
    with pytest.raises(ConfigError):
        load_settings({**env, "TRADEWIND_METRICS_PUBLIC": "0"})


def test_empty_metrics_addr_disables_the_endpoint() -> None:
    assert load_settings({"TRADEWIND_METRICS_ADDR": ""}).metrics_addr is None


BAD = [
    ("TELEGRAM_BOT_TOKEN", "not-a-token", "is not a bot token"),
    ("TELEGRAM_API_BASE_URL", "ftp://example", "is not an http(s) URL"),
    ("TRADEWIND_DB", "/", "is a directory"),
    ("TRADEWIND_MASTER_KEY", "short", "key #1 is not a Fernet key"),
    ("TRADEWIND_ADMIN_IDS", "5,abc", "'abc' is not a Telegram user id"),
    ("TRADEWIND_ADMIN_IDS", "-3", "is not a Telegram user id"),
    ("TRADEWIND_EXCHANGES", "bybit,kraken", "unknown exchange 'kraken'"),
    ("TRADEWIND_EXCHANGES", ",", "lists no exchange"),
    ("TRADEWIND_EXCHANGE_URLS", "{bybit:", "is not JSON"),
    ("TRADEWIND_EXCHANGE_URLS", '["x"]', "must be a JSON object"),
    ("TRADEWIND_EXCHANGE_URLS", '{"kraken": "http://x"}', "unknown exchange 'kraken'"),
    ("TRADEWIND_EXCHANGE_URLS", '{"bybit": "localhost"}', "is not an http(s) URL"),
    ("TRADEWIND_MARKET_SOURCE", "nasdaq", "'nasdaq' is not a market source"),
    ("TRADEWIND_SCAN_INTERVAL", "soon", "'soon' is not a number of seconds from 1 to 3600"),
    ("TRADEWIND_SCAN_INTERVAL", "0", "is not a number of seconds"),
    ("TRADEWIND_SCAN_INTERVAL", "nan", "is not a number of seconds"),
    ("TRADEWIND_SYNC_INTERVAL", "1", "from 10 to 86400"),
    ("TRADEWIND_METRICS_ADDR", "9108", "is not host:port"),
    ("TRADEWIND_METRICS_ADDR", "localhost:99999", "is not host:port"),
    ("TRADEWIND_METRICS_ADDR", "0.0.0.0:9108", "'0.0.0.0' is not a loopback address"),
    ("TRADEWIND_METRICS_ADDR", "metrics.example:9108", "is not a loopback address"),
    ("TRADEWIND_METRICS_PUBLIC", "maybe", "'maybe' is not a switch"),
    ("TRADEWIND_LOG_WIRE", "loud", "'loud' is not a switch"),
    ("TRADEWIND_LOG_LEVEL", "LOUD", "'LOUD' is not a level"),
    ("TRADEWIND_STREAMS", "-1", "'-1' is not a number of accounts from 0 (streams off)"),
    ("TRADEWIND_STREAMS", "lots", "is not a number of accounts"),
    ("TRADEWIND_STREAMS", "1000000", "is not a number of accounts"),
]


@pytest.mark.parametrize(("variable", "value", "problem"), BAD, ids=[f"{v}={x}" for v, x, _ in BAD])
def test_bad_value_names_variable_problem_and_example(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{variable}: ")
    assert problem in message
    assert f"(example: {variable}=" in message


def test_master_key_error_never_echoes_the_value() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    with pytest.raises(ConfigError) as caught:
        load_settings({"TRADEWIND_MASTER_KEY": f"{generate_key().decode()},{secret}"})
    assert "key #2" in str(caught.value)
    assert secret not in str(caught.value)


def test_the_breaker_is_on_by_default_and_configurable() -> None:
    assert load_settings({}).breaker == BreakerPolicy(failures=5, cooldown_s=30.0)
    assert load_settings({"TRADEWIND_BREAKER": " 8 / 120 "}).breaker == BreakerPolicy(8, 120.0)
    assert load_settings({"TRADEWIND_BREAKER": "off"}).breaker is None


@pytest.mark.parametrize("value", ["5", "0/30", "5/0", "5/99999", "five/30", "5/30,1"])
def test_a_bad_breaker_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"TRADEWIND_BREAKER": value})
    assert str(caught.value).startswith("TRADEWIND_BREAKER: ")
    assert "TRADEWIND_BREAKER=5/30" in str(caught.value)
