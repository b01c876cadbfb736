"""The running bot builds the stream manager only when streams are on, and a command or an
order on an account makes that account stream (the real Application, offline Bot API)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from core.exchange.models import OrderRequest, OrderType, Side
from tests.harness import running_bot
from tests.integration.test_account_streams import eventually


async def test_streams_off_builds_no_manager(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        assert bot.services.streams is None


async def test_a_command_on_an_account_makes_it_stream(tmp_path: Path) -> None:
    async with running_bot(tmp_path, streams=10) as bot:
        streams = bot.services.streams
        assert streams is not None
        await bot.send(7, "/start")
        await bot.services.accounts.connect(7, "paper", "paper")
        assert not streams.streaming(7, "paper", "paper")
        await bot.send(7, "/balance")
        assert streams.streaming(7, "paper", "paper")
        stream = streams.stream(7, "paper", "paper")
        assert stream is not None
        await eventually(lambda: stream.connected)


async def test_an_order_sent_makes_its_account_stream(tmp_path: Path) -> None:
    async with running_bot(tmp_path, streams=10) as bot:
        streams = bot.services.streams
        assert streams is not None
        await bot.send(8, "/start")
        await bot.services.accounts.connect(8, "paper", "paper")
        account = bot.services.exchanges.account(8, "paper", "paper")
        request = OrderRequest("BTC/USDT:USDT", Side.BUY, OrderType.MARKET, Decimal("0.01"), "tw8")
        await account.create_order(request)
        assert streams.streaming(8, "paper", "paper")
