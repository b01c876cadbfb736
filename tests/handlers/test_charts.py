"""/equity through the real Application: a valid PNG photo with its figures in the caption."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.offline_api import ApiCall
from db.repositories.trades import TradeLog, TradeRepository
from tests.fakes.clock import FakeClock
from tests.harness import BotHarness, running_bot, texts

TRADER, OTHER = 42, 43
NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with running_bot(tmp_path, clock=FakeClock(NOW)) as harness:
        for user_id in (TRADER, OTHER):
            await harness.send(user_id, "/start")
        yield harness


def trade(exit_ts: datetime, pnl: str) -> TradeLog:
    return TradeLog(
        user_id=TRADER, exchange="paper", account_type="paper", symbol="BTC/USDT:USDT",
        side="long", qty=Decimal(1), entry_price=Decimal(1), exit_price=Decimal(1),
        pnl=Decimal(pnl), fee=Decimal("0.1"), entry_ts=exit_ts - timedelta(hours=1),
        exit_ts=exit_ts,
    )  # fmt: skip


def photo(calls: list[ApiCall]) -> tuple[bytes, str]:
    (call,) = [c for c in calls if c.method == "sendPhoto"]
    assert isinstance(call.result, dict)
    (size,) = call.result["photo"]
    return Path(size["file_id"]).read_bytes(), str(call.result.get("caption", ""))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_equity_is_a_png_with_its_figures(bot: BotHarness) -> None:
    await TradeRepository(bot.store).record_many(
        [trade(NOW - timedelta(days=d), p) for d, p in ((20, "10"), (10, "-15"), (2, "20"))]
        + [trade(NOW - timedelta(days=60), "100")]
    )
    data, caption = photo(await bot.send(TRADER, "/equity"))
    assert png_size(data) == (800, 400) and 10_000 < len(data) < 500_000
    assert caption.startswith("Equity, last 30 days (UTC) since 2026-03-01")
    assert "Realised PnL: +15.00 USDT · 3 trades · win rate 67%" in caption
    assert "Max drawdown: -15.00 USDT" in caption
    data, caption = photo(await bot.send(TRADER, "/equity all"))
    assert png_size(data) == (800, 400)
    assert "Realised PnL: +115.00 USDT · 4 trades" in caption
    assert "since 2026-01-28" in caption  # the day before the first trade: the curve starts at 0


async def test_equity_without_trades_is_a_flat_curve(bot: BotHarness) -> None:
    data, caption = photo(await bot.send(OTHER, "/equity 90d"))
    assert png_size(data) == (800, 400)
    assert "No realised trades in this span" in caption


@pytest.mark.parametrize("args", ["7d", "30d 90d", "ALLL", "<b>"])
async def test_equity_refuses_a_bad_span(bot: BotHarness, args: str) -> None:
    calls = await bot.send(TRADER, f"/equity {args}")
    assert [c.method for c in calls if c.method.startswith("send")] == ["sendMessage"]
    assert texts(calls) == [
        "Usage: /equity [30d|90d|all] (default 30d): cumulative realised PnL as a chart."
    ]
