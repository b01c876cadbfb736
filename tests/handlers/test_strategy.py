"""/strategy and /set through the real Application: defaults, validation, symbols, caching."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.exchange.credentials import ApiCredentials
from db.repositories.strategy import StrategyRepository
from tests.exchange_server import ExchangeServer
from tests.harness import BotHarness, running_bot, texts

TRADER = 42
KEY, SECRET = "strategy-key", "strategy-secret"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path) as harness:
        yield harness


async def reply(bot: BotHarness, text: str, user_id: int = TRADER) -> str:
    (answer,) = texts(await bot.send(user_id, text))
    return answer


def statements(bot: BotHarness, name: str) -> float:
    found = bot.services.metrics.totals("tradewind_db_statement_seconds", "statement")
    return found.get(name, (0.0, 0.0))[0]


async def test_strategy_shows_the_defaults(bot: BotHarness) -> None:
    text = await reply(bot, "/strategy")
    assert text.startswith("Your strategy")
    for line in (
        "Size: 50 USDT per trade (size_usdt)",
        "Leverage: 5×",
        "Take profit: 3% (tp_pct) · Stop loss: 1.5% (sl_pct)",
        "Max open positions: 5 (max_positions)",
        "Auto-trade: off (auto_trade), on signals scoring ≥ 0.70 (min_score)",
        "Auto-trade skips a signal once the price moved over 0.3% (max_drift_pct) or it is "
        "older than 120 s (max_signal_age_s)",
        "Allowed symbols: all (allow)",
        "Denied symbols: none (deny)",
        "/set KEY VALUE",
    ):
        assert line in text


HAPPY = [
    ("size_usdt", "120.5", "120.5 USDT per trade", "size_usdt", Decimal("120.5")),
    ("risk_pct", "2.5%", "2.5% of equity per trade", "risk_pct", Decimal("2.5")),
    ("leverage", "20", "20×", "leverage", 20),
    ("tp_pct", "4", "4%", "tp_pct", Decimal(4)),
    ("sl_pct", "0.8", "0.8%", "sl_pct", Decimal("0.8")),
    ("max_positions", "12", "12", "max_positions", 12),
    ("auto_trade", "on", "on", "auto_trade", True),
    ("min_score", "0.85", "0.85", "min_score", 0.85),
    ("max_drift_pct", "0.5%", "0.5%", "max_drift_pct", Decimal("0.5")),
    ("max_signal_age_s", "60", "60 s", "max_signal_age_s", 60),
]


async def test_set_changes_each_key_and_saves_it(bot: BotHarness) -> None:
    store = bot.store
    for key, value, shown, field, stored in HAPPY:
        text = await reply(bot, f"/set {key} {value}")
        assert text.startswith(f"✅ {key} is now {shown}."), text
        saved = await StrategyRepository(store).get(TRADER)
        assert getattr(saved, field) == stored, key
    assert "Auto-trade: on" in await reply(bot, "/strategy")
    await reply(bot, "/set auto_trade off")
    assert (await bot.services.strategy.settings(TRADER)).auto_trade is False


async def test_size_and_risk_clear_each_other(bot: BotHarness) -> None:
    text = await reply(bot, "/set risk_pct 1")
    assert "size_usdt is cleared" in text
    settings = await bot.services.strategy.settings(TRADER)
    assert (settings.risk_pct, settings.size_usdt) == (Decimal(1), None)
    assert "Size: 1% of equity per trade (risk_pct)" in await reply(bot, "/strategy")
    assert "risk_pct is cleared" in await reply(bot, "/set size_usdt 75")
    settings = await bot.services.strategy.settings(TRADER)
    assert (settings.risk_pct, settings.size_usdt) == (None, Decimal(75))


RANGES = {
    "size_usdt": ("4.99", "from 5 to 1,000,000 USDT"),
    "risk_pct": ("10.5", "from 0.1 to 10 %"),
    "leverage": ("126", "from 1 to 125×"),
    "tp_pct": ("500.01", "from 0.1 to 500 %"),
    "sl_pct": ("0.09", "from 0.1 to 100 %"),
    "max_positions": ("51", "from 1 to 50"),
    "min_score": ("1.01", "from 0 to 1"),
    "max_drift_pct": ("20.01", "from 0.01 to 20 %"),
    "max_signal_age_s": ("3601", "from 5 to 3,600 s"),
}


async def test_out_of_range_and_garbage_are_refused_with_the_range(bot: BotHarness) -> None:
    before = await bot.services.strategy.settings(TRADER)
    for key, (too_far, accepted) in RANGES.items():
        for value in (too_far, "nan", "inf", "-inf", "-1", "1e999", "abc", "1,5", "0x10"):
            text = await reply(bot, f"/set {key} {value}")
            assert accepted in text and f"e.g. /set {key}" in text, (key, value, text)
    assert "each market's own maximum is checked when you trade" in await reply(
        bot, "/set leverage 2.5"
    )
    assert "whole number" in await reply(bot, "/set max_positions 3.5")
    assert "on or off" in await reply(bot, "/set auto_trade maybe")
    assert await bot.services.strategy.settings(TRADER) == before
    assert await StrategyRepository(bot.store).get(TRADER) == before


async def test_unknown_key_and_missing_value_show_the_keys(bot: BotHarness) -> None:
    text = await reply(bot, "/set tp_ptc 3")
    assert "There is no setting “tp_ptc”. Did you mean tp_pct?" in text
    assert "size_usdt, risk_pct, leverage" in text and "allow, deny" in text
    for incomplete in ("/set", "/set leverage"):
        text = await reply(bot, incomplete)
        assert text.startswith("Usage: /set KEY VALUE") and "max_positions" in text


async def test_allow_and_deny_resolve_symbols_on_the_paper_market(bot: BotHarness) -> None:
    text = await reply(bot, "/set allow btcusdt, ETH/USDT:USDT,btc")
    assert text.startswith("✅ allow is now BTC, ETH.")
    settings = await bot.services.strategy.settings(TRADER)
    assert settings.allow_symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    text = await reply(bot, "/set deny ETHH,SOL")
    assert "ETHH is not listed on Paper. Did you mean ETH" in text
    assert "Nothing was changed." in text
    assert (await bot.services.strategy.settings(TRADER)).deny_symbols == ()
    text = await reply(bot, "/set deny eth")
    assert "ETH/USDT:USDT is also on your allow list" in text
    assert (await reply(bot, "/set deny SOL")).startswith("✅ deny is now SOL.")
    assert (await reply(bot, "/set allow -")).startswith("✅ allow is now all symbols.")
    settings = await bot.services.strategy.settings(TRADER)
    assert (settings.allow_symbols, settings.deny_symbols) == ((), ("SOL/USDT:USDT",))
    assert "Denied symbols: SOL (deny)" in await reply(bot, "/strategy")


async def test_symbols_resolve_on_the_active_accounts_exchange(tmp_path: Path) -> None:
    async with ExchangeServer(symbols=["BTCUSDT", "TWINDUSDT"], seed=3) as server:
        server.add_account(KEY, SECRET, Decimal("1000"))
        async with running_bot(tmp_path, exchange_urls={"bybit": server.base_url}) as bot:
            no_account = await reply(bot, "/set allow TWIND")
            assert "TWIND is not listed on Paper" in no_account
            await bot.send(TRADER, "/start")
            await bot.services.accounts.connect(
                TRADER, "bybit", "demo", ApiCredentials(KEY, SECRET)
            )
            assert (await reply(bot, "/set allow twind")).startswith("✅ allow is now TWIND.")
            missing = await reply(bot, "/set deny ETH")
            assert "ETH is not listed on Bybit" in missing
            settings = await bot.services.strategy.settings(TRADER)
            assert settings.allow_symbols == ("TWIND/USDT:USDT",)


async def test_settings_are_parsed_once_then_served_from_the_cache(bot: BotHarness) -> None:
    await reply(bot, "/strategy")
    assert statements(bot, "strategy.get") == 1
    await reply(bot, "/strategy")
    await bot.services.strategy.settings(TRADER)
    assert statements(bot, "strategy.get") == 1
    await reply(bot, "/set tp_pct 7")  # saving puts the new record in the cache
    assert "Take profit: 7%" in await reply(bot, "/strategy")
    assert statements(bot, "strategy.get") == 1
    assert statements(bot, "strategy.save") == 1


async def test_values_are_escaped_and_rounded(bot: BotHarness) -> None:
    text = await reply(bot, "/set <b>x</b> 1")
    assert "There is no setting “<b>x</b>”" in text  # shown literally, not as markup
    assert (await reply(bot, "/set min_score 0.755")).startswith("✅ min_score is now 0.76.")
    assert (await reply(bot, "/set size_usdt 1000000")).startswith(
        "✅ size_usdt is now 1,000,000 USDT per trade."
    )


async def test_auto_trade_on_says_only_later_signals_trade(bot: BotHarness) -> None:
    text = await reply(bot, "/set auto_trade on")
    assert "Signals published from now on are traded; earlier ones are not." in text
    since = (await bot.services.strategy.settings(TRADER)).auto_trade_since
    assert since is not None
    assert "earlier ones" not in await reply(bot, "/set auto_trade on")  # still on since then
    assert (await bot.services.strategy.settings(TRADER)).auto_trade_since == since
    await reply(bot, "/set auto_trade off")
    assert (await bot.services.strategy.settings(TRADER)).auto_trade_since is None
